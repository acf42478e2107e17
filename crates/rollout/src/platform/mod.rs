//! Where releases run: the [`Platform`] trait and the plain data it speaks in.
//!
//! A platform holds two **slots**, [`Slot::Blue`] and [`Slot::Green`], each running some
//! number of instances of one version, and a **traffic switch** in front of them whose
//! [`Routing`] says which slot gets new requests. Every strategy is expressed in these few
//! operations, so the same [`BlueGreen`](crate::BlueGreen), [`Rolling`](crate::Rolling) and
//! [`Canary`](crate::Canary) run on this machine ([`LocalPlatform`](crate::LocalPlatform)) and,
//! in a later release, on Kubernetes (two Deployments and a Service whose selector picks the
//! slot).
//!
//! | operation        | local platform                                   | Kubernetes                                  |
//! |------------------|--------------------------------------------------|---------------------------------------------|
//! | [`deploy`]       | start N instances (in-process apps or processes) | set the Deployment's image, scale it         |
//! | [`scale`]        | start or drain-and-stop instances                | patch `replicas`                             |
//! | [`wait_ready`]   | poll each instance's readiness probe over HTTP   | `kubectl rollout status` decision            |
//! | [`route`]        | swap the switch's routing table (atomic)         | patch the active Service's selector          |
//! | [`stop`]         | drain, then stop every instance of the slot      | scale the Deployment to zero                 |
//! | [`traffic`]      | the switch's per-slot counters                   | (metrics are the cluster's business)        |
//!
//! [`deploy`]: Platform::deploy
//! [`scale`]: Platform::scale
//! [`wait_ready`]: Platform::wait_ready
//! [`route`]: Platform::route
//! [`stop`]: Platform::stop
//! [`traffic`]: Platform::traffic

// Kubernetes: Deployments and Services through kube-rs (crate feature `kube`).
#[cfg(feature = "kube")]
pub mod kube;
pub mod local;
mod stats;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

pub use self::stats::{LatencyHistogram, TrafficStats};
use crate::Error;

/// One of the two places a release can run.
///
/// Blue-green switches between them; rolling and canary move from the live slot to the other
/// one. Which slot is live is the platform's state ([`PlatformStatus::routing`]), never an
/// assumption of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// The `blue` slot.
    Blue,
    /// The `green` slot.
    Green,
}

impl Slot {
    /// Both slots, blue first.
    pub const ALL: [Slot; 2] = [Slot::Blue, Slot::Green];

    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    /// `"blue"` or `"green"`: the label value used in Kubernetes selectors and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the traffic switch sends **new** requests. Requests already in flight finish where
/// they started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Routing {
    /// Nothing is routed: every request is answered `503 Service Unavailable` by the switch.
    /// The state of a platform before its first release.
    None,
    /// Every new request goes to the ready instances of one slot.
    All {
        /// The slot.
        slot: Slot,
    },
    /// `percent` of new requests go to `canary`, the rest to the other slot.
    Split {
        /// The slot that receives `percent` of requests.
        canary: Slot,
        /// 0 to 100.
        percent: u8,
    },
    /// Every ready instance of either slot gets an equal share, as a Kubernetes Service that
    /// selects on the app alone does during a rolling update.
    Pooled,
}

impl Routing {
    /// The slot that receives every request, if one does.
    pub fn live_slot(&self) -> Option<Slot> {
        match *self {
            Routing::All { slot } => Some(slot),
            Routing::Split {
                canary,
                percent: 100,
            } => Some(canary),
            Routing::Split { canary, percent: 0 } => Some(canary.other()),
            _ => None,
        }
    }
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Routing::None => f.write_str("no traffic"),
            Routing::All { slot } => write!(f, "100% {slot}"),
            Routing::Split { canary, percent } => {
                write!(
                    f,
                    "{}% {}, {percent}% {canary}",
                    100 - percent,
                    canary.other()
                )
            }
            Routing::Pooled => f.write_str("pooled across ready instances"),
        }
    }
}

/// What one slot runs right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    /// The slot.
    pub slot: Slot,
    /// The version deployed to it, `None` when nothing ever was (or it was stopped).
    pub version: Option<String>,
    /// Instances asked for.
    pub desired: u32,
    /// Instances started and not yet stopped (ready or not).
    pub running: u32,
    /// Instances whose readiness probe passes; only these receive traffic.
    pub ready: u32,
}

/// A snapshot of a platform: both slots and the routing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlatformStatus {
    /// Blue, then green.
    pub slots: [SlotStatus; 2],
    /// Where new requests go.
    pub routing: Routing,
}

impl PlatformStatus {
    /// The status of one slot.
    pub fn slot(&self, slot: Slot) -> &SlotStatus {
        &self.slots[slot as usize]
    }

    /// The slot that receives every request, if one does.
    pub fn live_slot(&self) -> Option<Slot> {
        self.routing.live_slot()
    }
}

/// Where releases run. Object safe: strategies hold an `Arc<dyn Platform>`.
///
/// Implementations carry decisions out and decide nothing themselves: which slot to deploy
/// to, when to switch and when to roll back are the strategies' business. Every method is
/// idempotent where it can be (routing to the current routing, scaling to the current size
/// and stopping a stopped slot succeed and change nothing), so a driver can retry after a
/// crash.
#[async_trait]
pub trait Platform: Send + Sync + fmt::Debug {
    /// A short name for messages and reports (`"local"`, `"kubernetes"`).
    fn name(&self) -> &str;

    /// Both slots and the current routing.
    async fn status(&self) -> Result<PlatformStatus, Error>;

    /// Runs `replicas` instances of `version` in `slot`, replacing what ran there.
    ///
    /// Returns once the instances are started, not once they are ready: call
    /// [`wait_ready`](Platform::wait_ready). Refused with [`Error::SlotLive`] when the slot
    /// receives traffic, because replacing it would drop requests.
    async fn deploy(&self, slot: Slot, version: &str, replicas: u32) -> Result<(), Error>;

    /// Changes the number of instances of `slot`. Instances removed are taken out of routing
    /// first, drained, then stopped.
    async fn scale(&self, slot: Slot, replicas: u32) -> Result<(), Error>;

    /// Waits until every desired instance of `slot` is ready, or fails with
    /// [`Error::Deadline`] after `deadline`. Fails at once with [`Error::InstanceExited`]
    /// when an instance dies while waiting.
    async fn wait_ready(&self, slot: Slot, deadline: Duration) -> Result<(), Error>;

    /// Sends new requests as `routing` says. Atomic; requests in flight are not affected.
    async fn route(&self, routing: Routing) -> Result<(), Error>;

    /// Drains every instance of `slot` (in-flight requests finish) and stops it. The slot
    /// must not receive traffic ([`Error::SlotLive`]).
    async fn stop(&self, slot: Slot) -> Result<(), Error>;

    /// A base URL (`http://host:port`) whose requests reach only `slot`, whatever the
    /// routing: where smoke tests go before the switch. `None` when the platform has no
    /// such endpoint.
    async fn preview_url(&self, slot: Slot) -> Result<Option<String>, Error>;

    /// Requests, errors and latencies that the switch saw for `slot` since its last
    /// [`deploy`](Platform::deploy). Counters only grow: compare two readings for a window.
    async fn traffic(&self, slot: Slot) -> Result<TrafficStats, Error>;
}
