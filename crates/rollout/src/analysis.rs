//! Metric analysis of a release under traffic: measurements over windows of the traffic
//! switch's counters, and the pure verdict that promotes, pauses or aborts a rollout.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::Error;
use crate::TrafficStats;
use crate::event::opt_secs;

/// How a release is judged under traffic: windows, thresholds and limits. Build it with
/// struct syntax over [`Analysis::default`]; it is checked when the strategy is built.
///
/// The semantics are those of Argo Rollouts' `AnalysisTemplate`, reduced to what the switch
/// measures (error rate and p99 latency):
///
/// - every [`interval`](Analysis::interval), one [`Measurement`] of the window just ended,
///   [`count`](Analysis::count) times;
/// - a measurement **fails** when the error rate is above
///   [`max_error_rate`](Analysis::max_error_rate) or the p99 latency above
///   [`max_p99_latency`](Analysis::max_p99_latency);
/// - a window with fewer than [`min_requests`](Analysis::min_requests) requests has **no
///   data**: it is inconclusive, never a success (a canary that received no traffic proved
///   nothing);
/// - the analysis **fails** as soon as more than [`failure_limit`](Analysis::failure_limit)
///   measurements failed (0: the first failure), is **inconclusive** as soon as more than
///   [`inconclusive_limit`](Analysis::inconclusive_limit) had no data, and **passes** once
///   `count` measurements are taken without reaching either limit and at least one of them
///   succeeded.
///
/// A rollout that gets a failing verdict aborts (and rolls back); an inconclusive one pauses
/// until an operator resumes (the step then counts as passed) or aborts it.
///
/// ```
/// use std::time::Duration;
/// use engine_ops_rollout::{Analysis, TrafficStats, Verdict};
///
/// let analysis = Analysis {
///     interval: Duration::from_secs(30),
///     count: 2,
///     max_error_rate: 0.05,
///     ..Analysis::default()
/// };
/// let healthy = TrafficStats { requests: 400, errors: 2, ..TrafficStats::default() };
/// let failing = TrafficStats { requests: 400, errors: 60, ..TrafficStats::default() };
///
/// let first = analysis.measure(&healthy);
/// assert_eq!(analysis.evaluate(&[first.clone()]), Verdict::Pending);
/// assert_eq!(analysis.evaluate(&[first.clone(), analysis.measure(&healthy)]), Verdict::Pass);
/// assert!(matches!(
///     analysis.evaluate(&[first, analysis.measure(&failing)]),
///     Verdict::Fail { .. }
/// ));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The length of one measurement window. Default 10 s.
    pub interval: Duration,
    /// How many measurements to take. Default 3.
    pub count: u32,
    /// How many failed measurements are tolerated; one more fails the analysis. Default 0:
    /// the first failed measurement fails it.
    pub failure_limit: u32,
    /// How many measurements without data are tolerated; one more makes the analysis
    /// inconclusive. Default 0.
    pub inconclusive_limit: u32,
    /// The highest acceptable share of errors (`5xx` and undeliverable requests) in a window,
    /// 0.0 to 1.0. Default 0.01 (1 %).
    pub max_error_rate: f64,
    /// The highest acceptable p99 latency of a window, if latency matters. The switch's
    /// histogram gives the upper bound of a bucket (100 µs, 250 µs, 500 µs, 1 ms, 2.5 ms, 5
    /// ms, 10 ms, 25 ms, 50 ms, 100 ms, …), so pick a threshold at such a bound. Default
    /// `None`.
    pub max_p99_latency: Option<Duration>,
    /// The fewest requests a window needs to say anything; fewer is "no data". Default 10.
    pub min_requests: u64,
}

impl Default for Analysis {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            count: 3,
            failure_limit: 0,
            inconclusive_limit: 0,
            max_error_rate: 0.01,
            max_p99_latency: None,
            min_requests: 10,
        }
    }
}

impl Analysis {
    /// The time all measurements take: `interval × count`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use engine_ops_rollout::Analysis;
    ///
    /// let analysis = Analysis { interval: Duration::from_secs(5), count: 4, ..Analysis::default() };
    /// assert_eq!(analysis.duration(), Duration::from_secs(20));
    /// ```
    pub fn duration(&self) -> Duration {
        self.interval.saturating_mul(self.count)
    }

    /// Checks the settings; `what` names the analysis in the message (`canary step 3`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a zero interval or count, or an error rate outside 0 to 1.
    ///
    /// ```
    /// use engine_ops_rollout::Analysis;
    ///
    /// assert!(Analysis::default().validate("watch").is_ok());
    /// assert!(Analysis { max_error_rate: 5.0, ..Analysis::default() }.validate("watch").is_err());
    /// ```
    pub fn validate(&self, what: &str) -> Result<(), Error> {
        if self.interval.is_zero() {
            return Err(Error::invalid(
                what,
                "the analysis interval is zero: give each measurement window a length (e.g. 10 s)",
            ));
        }
        if self.count == 0 {
            return Err(Error::invalid(
                what,
                "the analysis count is zero: take at least one measurement",
            ));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Err(Error::invalid(
                what,
                format!(
                    "max_error_rate {} is not a share between 0.0 and 1.0: write 5 % as 0.05",
                    self.max_error_rate
                ),
            ));
        }
        Ok(())
    }

    /// Judges one window of traffic (the difference of two readings, see
    /// [`TrafficStats::since`]).
    ///
    /// ```
    /// use engine_ops_rollout::{Analysis, MeasurementOutcome, TrafficStats};
    ///
    /// let analysis = Analysis { min_requests: 20, ..Analysis::default() };
    /// let quiet = TrafficStats { requests: 3, ..TrafficStats::default() };
    /// assert!(matches!(analysis.measure(&quiet).outcome, MeasurementOutcome::NoData { .. }));
    /// ```
    pub fn measure(&self, window: &TrafficStats) -> Measurement {
        let error_rate = window.error_rate();
        let p99 = window.latency.quantile(0.99);
        let outcome = if window.requests == 0 || window.requests < self.min_requests {
            MeasurementOutcome::NoData {
                reason: format!(
                    "{} requests in the window, at least {} needed",
                    window.requests,
                    self.min_requests.max(1)
                ),
            }
        } else if let Some(rate) = error_rate.filter(|&rate| rate > self.max_error_rate) {
            MeasurementOutcome::Failure {
                reason: format!(
                    "error rate {} ({} of {}) above {}",
                    Percent(rate),
                    window.errors,
                    window.requests,
                    Percent(self.max_error_rate)
                ),
            }
        } else if let (Some(max), Some(p99)) = (self.max_p99_latency, p99)
            && p99 > max
        {
            MeasurementOutcome::Failure {
                reason: format!("p99 latency {} above {max:?}", Latency(p99)),
            }
        } else {
            MeasurementOutcome::Success
        };
        Measurement {
            requests: window.requests,
            errors: window.errors,
            error_rate,
            p99,
            outcome,
        }
    }

    /// The verdict on the measurements taken so far: [`Verdict::Pending`] while more are
    /// needed. Pure: the same measurements always give the same verdict.
    pub fn evaluate(&self, measurements: &[Measurement]) -> Verdict {
        let mut failed = 0u32;
        let mut no_data = 0u32;
        let mut succeeded = 0u32;
        let mut last_failure = None;
        let mut last_no_data = None;
        for measurement in measurements {
            match &measurement.outcome {
                MeasurementOutcome::Success => succeeded += 1,
                MeasurementOutcome::Failure { reason } => {
                    failed += 1;
                    last_failure = Some(reason.as_str());
                }
                MeasurementOutcome::NoData { reason } => {
                    no_data += 1;
                    last_no_data = Some(reason.as_str());
                }
            }
        }
        if failed > self.failure_limit {
            return Verdict::Fail {
                reason: format!(
                    "{failed} of {} measurements failed (failure limit {}): {}",
                    measurements.len(),
                    self.failure_limit,
                    last_failure.unwrap_or_default()
                ),
            };
        }
        if no_data > self.inconclusive_limit {
            return Verdict::Inconclusive {
                reason: format!(
                    "{no_data} of {} measurements had no data (inconclusive limit {}): {}",
                    measurements.len(),
                    self.inconclusive_limit,
                    last_no_data.unwrap_or_default()
                ),
            };
        }
        if measurements.len() < self.count as usize {
            return Verdict::Pending;
        }
        if succeeded == 0 {
            return Verdict::Inconclusive {
                reason:
                    "no measurement succeeded: the release received too little traffic to judge"
                        .to_owned(),
            };
        }
        Verdict::Pass
    }
}

/// One window of traffic and what the analysis made of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// Requests completed in the window.
    pub requests: u64,
    /// Of those, errors.
    pub errors: u64,
    /// `errors / requests`, `None` without requests.
    pub error_rate: Option<f64>,
    /// The p99 latency (a bucket's upper bound), `None` without requests. Serialized in
    /// seconds.
    #[serde(serialize_with = "opt_secs")]
    pub p99: Option<Duration>,
    /// The judgement.
    pub outcome: MeasurementOutcome,
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests, {} errors", self.requests, self.errors)?;
        if let Some(rate) = self.error_rate {
            write!(f, " ({})", Percent(rate))?;
        }
        if let Some(p99) = self.p99 {
            write!(f, ", p99 {}", Latency(p99))?;
        }
        write!(f, ": {}", self.outcome)
    }
}

/// The judgement of one measurement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum MeasurementOutcome {
    /// Within every threshold.
    Success,
    /// Above a threshold.
    Failure {
        /// Which threshold, by how much.
        reason: String,
    },
    /// Too few requests to judge: inconclusive.
    NoData {
        /// How many requests there were.
        reason: String,
    },
}

impl fmt::Display for MeasurementOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeasurementOutcome::Success => f.write_str("ok"),
            MeasurementOutcome::Failure { reason } => write!(f, "failed: {reason}"),
            MeasurementOutcome::NoData { reason } => write!(f, "no data: {reason}"),
        }
    }
}

/// What an analysis decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// More measurements are needed.
    Pending,
    /// Every limit held and enough measurements succeeded: the rollout continues.
    Pass,
    /// Too many measurements failed: the rollout aborts and rolls back.
    Fail {
        /// Why.
        reason: String,
    },
    /// Too many measurements had no data: the rollout pauses until resumed or aborted.
    Inconclusive {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pending => f.write_str("pending"),
            Verdict::Pass => f.write_str("passed"),
            Verdict::Fail { reason } => write!(f, "failed: {reason}"),
            Verdict::Inconclusive { reason } => write!(f, "inconclusive: {reason}"),
        }
    }
}

/// A share shown as a percentage with one decimal.
struct Percent(f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}%", self.0 * 100.0)
    }
}

/// A p99 bucket bound: `≤ 25ms`, or `> 30s` for the unbounded bucket.
struct Latency(Duration);

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == Duration::MAX {
            f.write_str("> 30s")
        } else {
            write!(f, "≤ {:?}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(requests: u64, errors: u64) -> TrafficStats {
        TrafficStats {
            requests,
            errors,
            ..TrafficStats::default()
        }
    }

    fn analysis() -> Analysis {
        Analysis {
            interval: Duration::from_secs(1),
            count: 3,
            max_error_rate: 0.05,
            min_requests: 10,
            ..Analysis::default()
        }
    }

    #[test]
    fn measurements_compare_to_the_thresholds() {
        let a = analysis();
        assert_eq!(
            a.measure(&window(100, 5)).outcome,
            MeasurementOutcome::Success
        );
        let failed = a.measure(&window(100, 6));
        assert!(
            matches!(&failed.outcome, MeasurementOutcome::Failure { reason } if reason.contains("6.0%")),
            "{failed}"
        );
        assert!(matches!(
            a.measure(&window(9, 0)).outcome,
            MeasurementOutcome::NoData { .. }
        ));
        assert!(matches!(
            a.measure(&window(0, 0)).outcome,
            MeasurementOutcome::NoData { .. }
        ));
        let zero_min = Analysis {
            min_requests: 0,
            ..a
        };
        assert!(matches!(
            zero_min.measure(&window(0, 0)).outcome,
            MeasurementOutcome::NoData { .. }
        ));
    }

    #[test]
    fn p99_above_the_limit_fails_a_measurement() {
        let a = Analysis {
            max_p99_latency: Some(Duration::from_millis(25)),
            ..analysis()
        };
        let mut fast = window(100, 0);
        let mut slow = window(100, 0);
        for _ in 0..100 {
            fast.latency.record(Duration::from_millis(3));
            slow.latency.record(Duration::from_millis(40));
        }
        assert_eq!(a.measure(&fast).outcome, MeasurementOutcome::Success);
        let measured = a.measure(&slow);
        assert!(
            matches!(&measured.outcome, MeasurementOutcome::Failure { reason } if reason.contains("p99")),
            "{measured}"
        );
    }

    #[test]
    fn no_data_never_succeeds() {
        let a = analysis();
        let quiet = a.measure(&window(2, 0));
        // Even with a generous inconclusive limit, three windows without data do not pass.
        let lenient = Analysis {
            inconclusive_limit: 10,
            ..analysis()
        };
        let verdict = lenient.evaluate(&[quiet.clone(), quiet.clone(), quiet.clone()]);
        assert!(matches!(verdict, Verdict::Inconclusive { .. }), "{verdict}");
        // With the default limit (0), the first window without data is inconclusive.
        assert!(matches!(a.evaluate(&[quiet]), Verdict::Inconclusive { .. }));
    }

    #[test]
    fn failure_limit_zero_fails_on_the_first_failed_measurement() {
        let a = analysis();
        let ok = a.measure(&window(100, 0));
        let bad = a.measure(&window(100, 50));
        assert!(matches!(
            a.evaluate(std::slice::from_ref(&bad)),
            Verdict::Fail { .. }
        ));
        assert!(matches!(
            a.evaluate(&[ok.clone(), bad.clone()]),
            Verdict::Fail { .. }
        ));
        let tolerant = Analysis {
            failure_limit: 1,
            ..analysis()
        };
        assert_eq!(
            tolerant.evaluate(std::slice::from_ref(&bad)),
            Verdict::Pending
        );
        assert_eq!(
            tolerant.evaluate(&[bad.clone(), ok.clone(), ok.clone()]),
            Verdict::Pass
        );
        assert!(matches!(
            tolerant.evaluate(&[bad.clone(), ok, bad]),
            Verdict::Fail { .. }
        ));
    }

    #[test]
    fn passes_after_count_measurements_within_the_limits() {
        let a = analysis();
        let ok = a.measure(&window(50, 1));
        assert_eq!(a.evaluate(&[]), Verdict::Pending);
        assert_eq!(a.evaluate(&[ok.clone(), ok.clone()]), Verdict::Pending);
        assert_eq!(
            a.evaluate(&[ok.clone(), ok.clone(), ok.clone()]),
            Verdict::Pass
        );
        let tolerant = Analysis {
            inconclusive_limit: 1,
            ..analysis()
        };
        let quiet = a.measure(&window(0, 0));
        assert_eq!(
            tolerant.evaluate(&[quiet.clone(), ok.clone(), ok.clone()]),
            Verdict::Pass
        );
        assert!(matches!(
            tolerant.evaluate(&[quiet.clone(), quiet, ok]),
            Verdict::Inconclusive { .. }
        ));
    }

    #[test]
    fn validation_names_the_analysis() {
        assert!(analysis().validate("step 2").is_ok());
        for bad in [
            Analysis {
                interval: Duration::ZERO,
                ..analysis()
            },
            Analysis {
                count: 0,
                ..analysis()
            },
            Analysis {
                max_error_rate: -0.1,
                ..analysis()
            },
            Analysis {
                max_error_rate: f64::NAN,
                ..analysis()
            },
        ] {
            let err = bad.validate("canary step 2").unwrap_err();
            assert!(
                err.to_string().starts_with("invalid canary step 2:"),
                "{err}"
            );
        }
    }

    #[test]
    fn measurements_display_for_a_progress_line() {
        let a = analysis();
        let mut stats = window(200, 3);
        stats.latency.record(Duration::from_millis(4));
        let line = a.measure(&stats).to_string();
        assert_eq!(line, "200 requests, 3 errors (1.5%), p99 ≤ 5ms: ok");
    }
}
