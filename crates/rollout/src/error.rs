//! The crate's one error type. Messages are lowercase, put the context first, and say what
//! to do next.
//!
//! A rollout that is aborted by a gate and rolled back is **not** an error: it is an outcome
//! in the [`RolloutReport`](crate::RolloutReport). Errors are what kept the work from being
//! carried out: bad configuration, a busy app, a platform that failed.

use std::time::Duration;

use crate::platform::Slot;

/// Everything that can go wrong while configuring or running a rollout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A strategy or platform built from values that cannot work (a weight above 100, a
    /// malformed `maxSurge`). Raised when the value is given, never half-way through a
    /// rollout.
    #[error("invalid {what}: {message}")]
    InvalidConfig {
        /// The setting (`maxSurge`, `canary step 3`, `front port`).
        what: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A rollout of this app is already running.
    #[error(
        "a rollout is already running ({running}): wait for it to finish or abort it before starting another"
    )]
    Busy {
        /// What the running rollout does (`blue-green to v2`).
        running: String,
    },
    /// An operation that would drop traffic on the slot that serves it.
    #[error(
        "cannot {operation} slot {slot}: it receives traffic; route traffic away from it first"
    )]
    SlotLive {
        /// The slot.
        slot: Slot,
        /// What was refused (`deploy to`, `stop`).
        operation: &'static str,
    },
    /// Something did not happen in time.
    #[error("{what} did not happen within {waited:?}")]
    Deadline {
        /// What was awaited (`slot green ready (1 of 2 instances)`).
        what: String,
        /// How long it was awaited.
        waited: Duration,
    },
    /// An instance could not be started.
    #[error("while starting {version} in slot {slot}: {message}")]
    InstanceStart {
        /// The slot.
        slot: Slot,
        /// The version.
        version: String,
        /// Why (the program, the OS error, the factory's message).
        message: String,
    },
    /// An instance exited while it was expected to run.
    #[error("an instance of {version} in slot {slot} exited: {status}")]
    InstanceExited {
        /// The slot.
        slot: Slot,
        /// The version.
        version: String,
        /// The exit status or signal, as the OS reported it.
        status: String,
    },
    /// Rollback asked for while no earlier release is on standby.
    #[error("nothing to roll back to: {reason}")]
    NoRollbackTarget {
        /// Why (`slot blue was stopped 5 minutes after the switch`).
        reason: String,
    },
    /// A rollout was stopped: by a failed gate or analysis, a refused confirmation, or an
    /// operator's abort. Strategies return it to make the driver roll back; the driver turns
    /// it into [`Outcome::RolledBack`](crate::Outcome::RolledBack), so callers of
    /// [`Rollouts`](crate::Rollouts) see it only when the rollout task itself was cancelled.
    #[error("the rollout was aborted: {reason}")]
    Aborted {
        /// Why (`gate smoke failed: GET /smoke: status 500`, `abort requested: operator`).
        reason: String,
    },
    /// A rollout was aborted and even the rollback could not be carried out: the platform may
    /// be between two releases.
    #[error(
        "the rollback after an aborted rollout ({reason}) failed: {source}; check the platform's status and route all traffic to the previous release by hand"
    )]
    RollbackFailed {
        /// Why the rollout was aborted.
        reason: String,
        /// What made the rollback fail.
        #[source]
        source: Box<Error>,
    },
    /// A network or OS operation of the platform failed.
    #[error("while {context}: {source}")]
    Io {
        /// What was being done (`binding the front port 127.0.0.1:8080`).
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A platform operation failed for a reason the platform reports (an API error).
    #[error("{platform} platform: while {operation}: {message}")]
    Platform {
        /// The platform's name.
        platform: String,
        /// The operation and the object (`patching Service shop-active`).
        operation: String,
        /// The platform's message.
        message: String,
    },
}

impl Error {
    /// `true` for errors in what the caller gave (configuration, arguments): a CLI exits `2`.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::InvalidConfig { .. })
    }

    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            what: what.into(),
            message: message.into(),
        }
    }
}
