//! Per-slot traffic counters: what canary analysis and reports read.

use std::time::Duration;

use serde::Serialize;

/// Upper bounds of the latency buckets, in microseconds; the last bucket is unbounded.
/// Roughly ×2 steps from 100 µs to 30 s: enough to tell a p99 of 2 ms from one of 50 ms.
const BOUNDS_MICROS: [u64; 19] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 15_000_000, 20_000_000, 30_000_000,
];

/// A fixed-bucket latency histogram whose counters only grow, so that the difference of two
/// readings ([`LatencyHistogram::since`]) is the histogram of a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencyHistogram {
    /// Counts per bucket: `counts[i]` counts latencies up to the i-th bound (and above the
    /// previous one); the last entry counts those above every bound.
    counts: Vec<u64>,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BOUNDS_MICROS.len() + 1],
        }
    }

    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        if self.counts.is_empty() {
            self.counts = vec![0; BOUNDS_MICROS.len() + 1];
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let index = BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.counts[index] += 1;
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The histogram of what was recorded after `earlier` was read.
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        let mut counts = self.counts.clone();
        counts.resize(BOUNDS_MICROS.len() + 1, 0);
        for (count, before) in counts.iter_mut().zip(&earlier.counts) {
            *count = count.saturating_sub(*before);
        }
        LatencyHistogram { counts }
    }

    /// The upper bound of the bucket holding quantile `q` (0.0 to 1.0): a latency at least
    /// as high as the true quantile, never lower. `None` when empty; `Duration::MAX` when it
    /// falls in the unbounded bucket.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(
                    BOUNDS_MICROS
                        .get(index)
                        .map_or(Duration::MAX, |&micros| Duration::from_micros(micros)),
                );
            }
        }
        Some(Duration::MAX)
    }
}

/// What the traffic switch saw for one slot: requests answered, errors, latencies.
///
/// An **error** is a `5xx` response or a request the switch could not deliver (connection
/// refused or reset): what a client of the service would count as a failure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrafficStats {
    /// Requests that completed (any status).
    pub requests: u64,
    /// Of those, `5xx` responses and delivery failures.
    pub errors: u64,
    /// Time to the response head, per request.
    pub latency: LatencyHistogram,
}

impl TrafficStats {
    /// The counters of the window between `earlier` and `self`.
    pub fn since(&self, earlier: &TrafficStats) -> TrafficStats {
        TrafficStats {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            latency: self.latency.since(&earlier.latency),
        }
    }

    /// `errors / requests`, `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let mut histogram = LatencyHistogram::new();
        for _ in 0..98 {
            histogram.record(Duration::from_micros(80));
        }
        histogram.record(Duration::from_millis(3));
        histogram.record(Duration::from_secs(60));
        assert_eq!(histogram.count(), 100);
        assert_eq!(histogram.quantile(0.5), Some(Duration::from_micros(100)));
        assert_eq!(histogram.quantile(0.99), Some(Duration::from_millis(5)));
        assert_eq!(histogram.quantile(1.0), Some(Duration::MAX));
        assert_eq!(LatencyHistogram::new().quantile(0.5), None);
    }

    #[test]
    fn windows_subtract_earlier_readings() {
        let mut stats = TrafficStats {
            requests: 10,
            errors: 1,
            ..TrafficStats::default()
        };
        stats.latency.record(Duration::from_millis(1));
        let earlier = stats.clone();
        stats.requests = 30;
        stats.errors = 11;
        stats.latency.record(Duration::from_millis(20));
        let window = stats.since(&earlier);
        assert_eq!((window.requests, window.errors), (20, 10));
        assert_eq!(window.error_rate(), Some(0.5));
        assert_eq!(window.latency.count(), 1);
        assert_eq!(
            window.latency.quantile(0.5),
            Some(Duration::from_millis(25))
        );
        assert_eq!(TrafficStats::default().error_rate(), None);
    }
}
