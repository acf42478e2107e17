//! What a rollout reports while it runs: typed [`Event`]s that a CLI prints as progress lines
//! (their `Display`), a test asserts on, and a report keeps (`Serialize`).

use std::fmt;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::analysis::{Measurement, Verdict};
use crate::platform::Routing;

/// One thing that happened during a rollout: `Display` is a progress line.
///
/// ```
/// use std::time::Duration;
/// use engine_ops_rollout::{Event, EventKind, Phase, Routing, Slot};
///
/// let event = Event {
///     at: Duration::from_millis(1500),
///     kind: EventKind::Traffic(Routing::Split { canary: Slot::Green, percent: 10 }),
/// };
/// assert_eq!(event.to_string(), "[   1.50s] traffic: 90% blue, 10% green");
/// let phase = EventKind::Phase { phase: Phase::Paused, reason: Some("waiting for resume".into()) };
/// assert_eq!(phase.to_string(), "paused: waiting for resume");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Time since the rollout started. Serialized in seconds.
    #[serde(serialize_with = "secs")]
    pub at: Duration,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:>7.2}s] {}", self.at.as_secs_f64(), self.kind)
    }
}

/// The kinds of [`Event`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The rollout entered a phase.
    Phase {
        /// The phase.
        phase: Phase,
        /// Why, where it matters (`gate smoke failed: …`, `waiting for resume`).
        reason: Option<String>,
    },
    /// A step of the strategy began.
    Step {
        /// 1-based.
        index: usize,
        /// Steps of the whole rollout, as planned when it started.
        total: usize,
        /// What the step does (`deploy v2 to green (3 instances)`).
        description: String,
    },
    /// A gate ran.
    Gate {
        /// The gate's name.
        name: String,
        /// Whether it passed.
        passed: bool,
        /// What it saw (`200 OK in 3ms`, `status 500`).
        detail: String,
    },
    /// The routing changed. Serialized as `{"kind": "traffic", "routing": {…}}`.
    #[serde(serialize_with = "traffic")]
    Traffic(Routing),
    /// A measurement of an analysis, and the verdict so far.
    Analysis {
        /// 1-based measurement number.
        index: u32,
        /// Measurements planned.
        count: u32,
        /// The window.
        measurement: Measurement,
        /// The verdict after it.
        verdict: Verdict,
    },
    /// Something that works but deserves attention (a forced `maxUnavailable`, a read of the
    /// traffic counters that failed). Serialized as `{"kind": "warning", "message": "…"}`.
    #[serde(serialize_with = "warning")]
    Warning(String),
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Phase { phase, reason } => match reason {
                Some(reason) => write!(f, "{phase}: {reason}"),
                None => write!(f, "{phase}"),
            },
            EventKind::Step {
                index,
                total,
                description,
            } => write!(f, "step {index}/{total}: {description}"),
            EventKind::Gate {
                name,
                passed,
                detail,
            } => {
                let result = if *passed { "passed" } else { "failed" };
                write!(f, "gate {name} {result}: {detail}")
            }
            EventKind::Traffic(routing) => write!(f, "traffic: {routing}"),
            EventKind::Analysis {
                index,
                count,
                measurement,
                verdict,
            } => write!(f, "analysis {index}/{count}: {measurement} ({verdict})"),
            EventKind::Warning(message) => write!(f, "warning: {message}"),
        }
    }
}

/// Where a rollout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Moving forward.
    Progressing,
    /// Waiting for [`resume`](crate::RolloutHandle::resume) (a pause step, an inconclusive
    /// analysis) or an abort.
    Paused,
    /// The new release receives all traffic; what follows is watching and cleaning up.
    Promoted,
    /// Stopped by a failed gate or analysis, a deadline, an instance that exited or an
    /// operator; a rollback follows.
    Aborted,
    /// The previous release receives all traffic again.
    RolledBack,
    /// The rollout finished with the new release live.
    Completed,
}

impl Phase {
    /// The phase in lowercase, as shown in progress lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Progressing => "progressing",
            Phase::Paused => "paused",
            Phase::Promoted => "promoted",
            Phase::Aborted => "aborted",
            Phase::RolledBack => "rolled back",
            Phase::Completed => "completed",
        }
    }

    /// `true` for phases a rollout ends in.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::RolledBack | Phase::Completed)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

fn traffic<S: Serializer>(routing: &Routing, serializer: S) -> Result<S::Ok, S::Error> {
    let mut state = serializer.serialize_struct("Traffic", 1)?;
    state.serialize_field("routing", routing)?;
    state.end()
}

fn warning<S: Serializer>(message: &str, serializer: S) -> Result<S::Ok, S::Error> {
    let mut state = serializer.serialize_struct("Warning", 1)?;
    state.serialize_field("message", message)?;
    state.end()
}

/// Serializes a duration as seconds (`f64`).
pub(crate) fn secs<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// Serializes an optional duration as seconds (`f64`) or `null`.
pub(crate) fn opt_secs<S: Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.serialize_some(&duration.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::MeasurementOutcome;
    use crate::platform::Slot;

    fn at(kind: EventKind) -> Event {
        Event {
            at: Duration::from_millis(250),
            kind,
        }
    }

    #[test]
    fn displays_one_progress_line_per_event() {
        let lines = [
            (
                EventKind::Phase {
                    phase: Phase::Progressing,
                    reason: None,
                },
                "progressing",
            ),
            (
                EventKind::Phase {
                    phase: Phase::Aborted,
                    reason: Some("gate smoke failed".into()),
                },
                "aborted: gate smoke failed",
            ),
            (
                EventKind::Step {
                    index: 2,
                    total: 5,
                    description: "wait until green is ready".into(),
                },
                "step 2/5: wait until green is ready",
            ),
            (
                EventKind::Gate {
                    name: "smoke".into(),
                    passed: false,
                    detail: "GET /health: status 500".into(),
                },
                "gate smoke failed: GET /health: status 500",
            ),
            (
                EventKind::Traffic(Routing::All { slot: Slot::Green }),
                "traffic: 100% green",
            ),
            (
                EventKind::Warning("maxUnavailable raised to 1".into()),
                "warning: maxUnavailable raised to 1",
            ),
        ];
        for (kind, line) in lines {
            assert_eq!(at(kind).to_string(), format!("[   0.25s] {line}"));
        }
    }

    #[test]
    fn serializes_with_a_kind_tag_and_seconds() {
        let event = at(EventKind::Step {
            index: 1,
            total: 3,
            description: "deploy".into(),
        });
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"at": 0.25, "kind": "step", "index": 1, "total": 3, "description": "deploy"})
        );
        let traffic = serde_json::to_value(at(EventKind::Traffic(Routing::Split {
            canary: Slot::Green,
            percent: 10,
        })))
        .unwrap();
        assert_eq!(traffic["kind"], "traffic");
        assert_eq!(traffic["routing"]["kind"], "split");
        assert_eq!(traffic["routing"]["percent"], 10);
        let warning = serde_json::to_value(at(EventKind::Warning("careful".into()))).unwrap();
        assert_eq!(
            warning,
            serde_json::json!({"at": 0.25, "kind": "warning", "message": "careful"})
        );
        let analysis = serde_json::to_value(at(EventKind::Analysis {
            index: 1,
            count: 2,
            measurement: Measurement {
                requests: 10,
                errors: 0,
                error_rate: Some(0.0),
                p99: Some(Duration::from_millis(5)),
                outcome: MeasurementOutcome::Success,
            },
            verdict: Verdict::Pending,
        }))
        .unwrap();
        assert_eq!(analysis["measurement"]["p99"], 0.005);
        assert_eq!(analysis["verdict"]["verdict"], "pending");
        assert_eq!(
            serde_json::to_value(at(EventKind::Phase {
                phase: Phase::RolledBack,
                reason: None
            }))
            .unwrap()["phase"],
            "rolled_back"
        );
    }
}
