//! The crate's one error type. Messages are lowercase, name the setting involved, and say how
//! to fix it.

use std::time::Duration;

/// Everything that can go wrong while configuring probes or running the server.
///
/// Health-check failures are not errors: they are reported in the probe's response (see
/// [`Status`](crate::Status)). HTTP outcomes (503, 404, 405) are responses, never errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A check name that cannot be a key of the `checks` object.
    #[error(
        "invalid check name `{name}`: {reason}; use 1 to 64 letters, digits, `-`, `_` or `.`, with at most one `:` between two parts (e.g. `postgres:ping`)"
    )]
    InvalidCheckName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two checks with the same name.
    #[error("two checks are named `{name}`: give each check a unique name")]
    DuplicateCheck {
        /// The name.
        name: String,
    },
    /// A check whose timeout is zero.
    #[error(
        "check `{name}` has a zero timeout: give it a timeout above zero, below the probe's own timeout (Kubernetes' `timeoutSeconds` defaults to 1 s)"
    )]
    ZeroTimeout {
        /// The check.
        name: String,
    },
    /// A probe path that axum cannot route.
    #[error("invalid {probe} probe path `{path}`: {reason}")]
    InvalidPath {
        /// The probe (`startup`, `liveness`, `readiness`).
        probe: &'static str,
        /// The path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two probes configured with the same path.
    #[error("the {first} and {second} probes both use path `{path}`: give each probe its own path")]
    DuplicatePath {
        /// The path.
        path: String,
        /// The first probe.
        first: &'static str,
        /// The second probe.
        second: &'static str,
    },
    /// A shutdown deadline that leaves no time after the drain delay.
    #[error(
        "the shutdown deadline ({deadline:?}) must be longer than the drain delay ({drain_delay:?}): the deadline counts from the signal and must leave time to finish in-flight requests; keep it below the orchestrator's grace period (Kubernetes' terminationGracePeriodSeconds, 30 s by default)"
    )]
    InvalidShutdownTimings {
        /// The configured drain delay.
        drain_delay: Duration,
        /// The configured deadline.
        deadline: Duration,
    },
    /// Signal handlers could not be installed.
    #[error(
        "cannot listen for shutdown signals: {source}; call this inside a Tokio runtime with I/O enabled"
    )]
    Signal {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A function that needs a Tokio runtime was called outside one.
    #[error(
        "{what} needs a Tokio runtime: call it from within `#[tokio::main]` or `Runtime::block_on`"
    )]
    NoRuntime {
        /// The function.
        what: &'static str,
    },
    /// Shutdown was requested before the future given to
    /// [`ShutdownWatcher::cancel_on_shutdown`](crate::ShutdownWatcher::cancel_on_shutdown)
    /// completed: startup was cancelled.
    #[error("shutdown was requested before startup completed: startup was cancelled")]
    ShutdownRequested,
    /// The listener's address could not be read.
    #[error("cannot read the listener's local address: {source}")]
    LocalAddr {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A URL that an HTTP check cannot GET.
    #[cfg(feature = "http-check")]
    #[error(
        "invalid URL `{url}` for an HTTP check: {reason}; expected e.g. http://127.0.0.1:8080/health"
    )]
    InvalidUrl {
        /// The URL (credentials removed).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}
