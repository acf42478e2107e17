//! What a finished rollout (or an on-demand rollback) reports: the outcome and why, the
//! timings, the traffic each slot saw, and every event.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::event::{Event, secs};
use crate::platform::{Slot, TrafficStats};

/// How a rollout ended. A rollback is an outcome, not an error: the platform is back where
/// it was, as asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The new version is live.
    Promoted,
    /// The rollout was aborted and the release that was live at its start serves again.
    RolledBack {
        /// Why it was aborted (`gate smoke failed: …`, `aborted: operator`).
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Promoted => f.write_str("promoted"),
            Outcome::RolledBack { reason } => write!(f, "rolled back: {reason}"),
        }
    }
}

/// When traffic switched and how long the routing change took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SwitchTiming {
    /// When the routing call began, since the start of the rollout. Serialized in seconds.
    #[serde(serialize_with = "secs")]
    pub at: Duration,
    /// From the routing call to its return. Serialized in seconds.
    #[serde(serialize_with = "secs")]
    pub took: Duration,
}

/// A previous release left running after a blue-green switch, for an instant rollback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Standby {
    /// Its slot.
    pub slot: Slot,
    /// Its version.
    pub version: Option<String>,
    /// How long after the rollout ended the driver stops it (in the background), unless a
    /// [`rollback`](crate::Rollouts::rollback) or another rollout comes first. Serialized in
    /// seconds.
    #[serde(serialize_with = "secs")]
    pub stops_after: Duration,
}

/// What one slot's traffic counters saw during the rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlotTraffic {
    /// The slot.
    pub slot: Slot,
    /// Requests, errors and latencies between the start and the end of the rollout (for a
    /// slot deployed during the rollout: since its deploy).
    pub stats: TrafficStats,
}

/// The record of one rollout. `Display` gives a short human summary; `Serialize` the whole
/// record for scripts.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RolloutReport {
    /// The strategy (`blue-green`, `rolling`, `canary`).
    pub strategy: String,
    /// The platform (`local`).
    pub platform: String,
    /// The version that was live at the start, if any.
    pub from_version: Option<String>,
    /// The version rolled out.
    pub to_version: String,
    /// The slot that was live at the start, if any.
    pub from_slot: Option<Slot>,
    /// The slot the new version was deployed to (`None` if the rollout ended before).
    pub to_slot: Option<Slot>,
    /// Promoted, or rolled back and why.
    pub outcome: Outcome,
    /// From start to end, rollback included. Serialized in seconds.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// The routing change that gave the new version all traffic, if it happened (even when
    /// the rollout was rolled back afterwards).
    pub switch: Option<SwitchTiming>,
    /// The previous release, if it was left on standby.
    pub standby: Option<Standby>,
    /// Both slots' traffic during the rollout, blue first.
    pub traffic: Vec<SlotTraffic>,
    /// Everything that happened, in order.
    pub events: Vec<Event>,
}

impl RolloutReport {
    /// `true` when the new version is live.
    pub fn promoted(&self) -> bool {
        self.outcome == Outcome::Promoted
    }

    /// One slot's traffic during the rollout.
    pub fn traffic(&self, slot: Slot) -> Option<&TrafficStats> {
        self.traffic
            .iter()
            .find(|t| t.slot == slot)
            .map(|t| &t.stats)
    }
}

impl fmt::Display for RolloutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match (&self.from_version, self.from_slot) {
            (Some(version), Some(slot)) => format!("{version} ({slot})"),
            (None, Some(slot)) => slot.to_string(),
            _ => "nothing".to_owned(),
        };
        let to = match self.to_slot {
            Some(slot) => format!("{} ({slot})", self.to_version),
            None => self.to_version.clone(),
        };
        writeln!(
            f,
            "{} rollout from {from} to {to}: {}",
            self.strategy, self.outcome
        )?;
        write!(f, "  took {:.2?}", self.duration)?;
        if let Some(switch) = self.switch {
            write!(f, ", switched at {:.2?} in {:.2?}", switch.at, switch.took)?;
        }
        for slot in &self.traffic {
            if slot.stats.requests > 0 {
                write!(
                    f,
                    "\n  {}: {} requests, {} errors",
                    slot.slot, slot.stats.requests, slot.stats.errors
                )?;
            }
        }
        if let Some(standby) = &self.standby {
            write!(
                f,
                "\n  {} stays on standby for {:?}: rollback switches back at once",
                standby.slot, standby.stops_after
            )?;
        }
        Ok(())
    }
}

/// The record of an on-demand [`rollback`](crate::Rollouts::rollback).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RollbackReport {
    /// The slot that was live (now stopped).
    pub from_slot: Slot,
    /// Its version.
    pub from_version: Option<String>,
    /// The standby slot that is live again.
    pub to_slot: Slot,
    /// Its version.
    pub to_version: Option<String>,
    /// From the routing call to its return: how long the switch back took. Serialized in
    /// seconds.
    #[serde(serialize_with = "secs")]
    pub switch_took: Duration,
    /// The whole rollback, stopping the abandoned slot included. Serialized in seconds.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Set when traffic switched back but the abandoned slot could not be stopped.
    pub warning: Option<String>,
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rolled back from {} ({}) to {} ({}): switched in {:.2?}",
            self.from_version.as_deref().unwrap_or("?"),
            self.from_slot,
            self.to_version.as_deref().unwrap_or("?"),
            self.to_slot,
            self.switch_took
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: Outcome) -> RolloutReport {
        RolloutReport {
            strategy: "blue-green".into(),
            platform: "local".into(),
            from_version: Some("v1".into()),
            to_version: "v2".into(),
            from_slot: Some(Slot::Blue),
            to_slot: Some(Slot::Green),
            outcome,
            duration: Duration::from_millis(1500),
            switch: Some(SwitchTiming {
                at: Duration::from_secs(1),
                took: Duration::from_micros(40),
            }),
            standby: None,
            traffic: vec![
                SlotTraffic {
                    slot: Slot::Blue,
                    stats: TrafficStats {
                        requests: 100,
                        errors: 0,
                        ..TrafficStats::default()
                    },
                },
                SlotTraffic {
                    slot: Slot::Green,
                    stats: TrafficStats::default(),
                },
            ],
            events: Vec::new(),
        }
    }

    #[test]
    fn summarises_for_humans_and_serializes_for_scripts() {
        let promoted = report(Outcome::Promoted);
        assert!(promoted.promoted());
        assert_eq!(promoted.traffic(Slot::Blue).unwrap().requests, 100);
        let text = promoted.to_string();
        assert!(
            text.starts_with("blue-green rollout from v1 (blue) to v2 (green): promoted"),
            "{text}"
        );
        assert!(text.contains("blue: 100 requests, 0 errors"), "{text}");
        let json = serde_json::to_value(&promoted).unwrap();
        assert_eq!(json["outcome"]["result"], "promoted");
        assert_eq!(json["duration"], 1.5);
        assert_eq!(json["switch"]["at"], 1.0);
        let rolled_back = report(Outcome::RolledBack {
            reason: "gate smoke failed".into(),
        });
        assert!(!rolled_back.promoted());
        let json = serde_json::to_value(&rolled_back).unwrap();
        assert_eq!(json["outcome"]["reason"], "gate smoke failed");
    }
}
