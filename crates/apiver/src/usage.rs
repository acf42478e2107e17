//! Per-version request counters, readable while the service runs.
//!
//! Counters are lock-free atomics, one cache line per version, bumped once per request.
//! A request is counted under the version it asked for (or the default, if it named none),
//! including requests answered `410 Gone`, so that an operator sees when a version's
//! traffic has stopped. Requests whose version could not be determined are counted as
//! rejected. CORS preflight requests are not counted.

use crate::version::Version;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
#[repr(align(64))]
struct Counters {
    requests: AtomicU64,
    defaulted: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    versions: Vec<Version>,
    counters: Vec<Counters>,
    rejected: AtomicU64,
}

/// A handle on the request counters of one [`ApiVersioningLayer`](crate::ApiVersioningLayer).
///
/// Cheap to clone; every clone reads the same counters.
///
/// ```
/// use engine_ops_apiver::{ApiVersioning, Version};
///
/// let layer = ApiVersioning::builder().version(1).version(2).build()?;
/// let usage = layer.usage();
/// assert_eq!(usage.requests(Version::new(1, 0)), Some(0));
/// assert!(usage.render_prometheus().contains("api_version_requests_total{version=\"v1\"} 0"));
/// # Ok::<(), engine_ops_apiver::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Usage(Arc<Inner>);

/// The counters of one version, from [`Usage::snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionUsage {
    /// The version.
    pub version: Version,
    /// Requests at this version, including those that named no version and got it as the
    /// default, and those answered `410 Gone`.
    pub requests: u64,
    /// Of `requests`, those that named no version.
    pub defaulted: u64,
}

impl Usage {
    pub(crate) fn new(versions: Vec<Version>) -> Self {
        let counters = versions.iter().map(|_| Counters::default()).collect();
        Self(Arc::new(Inner {
            versions,
            counters,
            rejected: AtomicU64::new(0),
        }))
    }

    /// Counts one request at the version with index `index`.
    pub(crate) fn record(&self, index: usize, defaulted: bool) {
        if let Some(c) = self.0.counters.get(index) {
            c.requests.fetch_add(1, Ordering::Relaxed);
            if defaulted {
                c.defaulted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn record_rejected(&self) {
        self.0.rejected.fetch_add(1, Ordering::Relaxed);
    }

    fn index(&self, version: Version) -> Option<usize> {
        self.0.versions.binary_search(&version).ok()
    }

    /// Requests at `version` so far; `None` if the version is not declared.
    pub fn requests(&self, version: impl Into<Version>) -> Option<u64> {
        let i = self.index(version.into())?;
        Some(self.0.counters[i].requests.load(Ordering::Relaxed))
    }

    /// Requests that named no version and were given `version` as the default.
    pub fn defaulted(&self, version: impl Into<Version>) -> Option<u64> {
        let i = self.index(version.into())?;
        Some(self.0.counters[i].defaulted.load(Ordering::Relaxed))
    }

    /// Requests rejected because their version was malformed, ambiguous, unknown or missing.
    pub fn rejected(&self) -> u64 {
        self.0.rejected.load(Ordering::Relaxed)
    }

    /// Every declared version's counters, oldest version first.
    pub fn snapshot(&self) -> Vec<VersionUsage> {
        self.0
            .versions
            .iter()
            .zip(&self.0.counters)
            .map(|(&version, c)| VersionUsage {
                version,
                requests: c.requests.load(Ordering::Relaxed),
                defaulted: c.defaulted.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The counters in the Prometheus text exposition format (version 0.0.4):
    ///
    /// ```text
    /// # HELP api_version_requests_total Requests per API version, including those answered 410 Gone.
    /// # TYPE api_version_requests_total counter
    /// api_version_requests_total{version="v1"} 12
    /// api_version_requests_total{version="v2"} 40
    /// # HELP api_version_default_requests_total Requests that named no version and were served the default.
    /// # TYPE api_version_default_requests_total counter
    /// api_version_default_requests_total{version="v1"} 0
    /// api_version_default_requests_total{version="v2"} 7
    /// # HELP api_version_rejected_requests_total Requests rejected for a malformed, ambiguous, unknown or missing version.
    /// # TYPE api_version_rejected_requests_total counter
    /// api_version_rejected_requests_total 1
    /// ```
    ///
    /// Serve it with `Content-Type: text/plain; version=0.0.4`.
    pub fn render_prometheus(&self) -> String {
        let snapshot = self.snapshot();
        let mut out = String::with_capacity(512 + snapshot.len() * 96);
        out.push_str("# HELP api_version_requests_total Requests per API version, including those answered 410 Gone.\n");
        out.push_str("# TYPE api_version_requests_total counter\n");
        for u in &snapshot {
            let _ = writeln!(
                out,
                "api_version_requests_total{{version=\"{}\"}} {}",
                u.version, u.requests
            );
        }
        out.push_str("# HELP api_version_default_requests_total Requests that named no version and were served the default.\n");
        out.push_str("# TYPE api_version_default_requests_total counter\n");
        for u in &snapshot {
            let _ = writeln!(
                out,
                "api_version_default_requests_total{{version=\"{}\"}} {}",
                u.version, u.defaulted
            );
        }
        out.push_str("# HELP api_version_rejected_requests_total Requests rejected for a malformed, ambiguous, unknown or missing version.\n");
        out.push_str("# TYPE api_version_rejected_requests_total counter\n");
        let _ = writeln!(
            out,
            "api_version_rejected_requests_total {}",
            self.rejected()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let usage = Usage::new(vec![Version::new(1, 0), Version::new(1, 1)]);
        usage.record(0, false);
        usage.record(1, true);
        usage.record(1, false);
        usage.record(9, false);
        usage.record_rejected();
        assert_eq!(usage.requests(Version::new(1, 0)), Some(1));
        assert_eq!(usage.requests(Version::new(1, 1)), Some(2));
        assert_eq!(usage.defaulted(Version::new(1, 1)), Some(1));
        assert_eq!(usage.requests(3), None);
        assert_eq!(usage.rejected(), 1);
        let text = usage.render_prometheus();
        assert!(text.contains("api_version_requests_total{version=\"v1.1\"} 2\n"));
        assert!(text.contains("api_version_default_requests_total{version=\"v1\"} 0\n"));
        assert!(text.ends_with("api_version_rejected_requests_total 1\n"));
    }
}
