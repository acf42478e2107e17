//! Blue-green, rolling and canary rollouts that move traffic without dropping a request.
//!
//! (Crate documentation: written once the strategies land.)

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod load;
pub mod platform;

mod analysis;
mod event;
mod fenceposts;
mod gate;
mod report;
mod rollout;
mod strategy;

pub use error::Error;
#[cfg(feature = "kube")]
pub use platform::kube::{KubePlatform, RolloutRecord};
pub use platform::local::{InstanceInfo, LocalPlatform, LocalPlatformBuilder, ProcessSpec};
pub use platform::{
    LatencyHistogram, Platform, PlatformStatus, Routing, Slot, SlotStatus, TrafficStats,
};

pub use analysis::{Analysis, Measurement, MeasurementOutcome, Verdict};
pub use event::{Event, EventKind, Phase};
pub use fenceposts::{Fenceposts, IntOrPercent, IntoIntOrPercent, resolve_fenceposts};
pub use gate::{DEFAULT_GATE_TIMEOUT, Gate, GateContext};
pub use report::{Outcome, RollbackReport, RolloutReport, SlotTraffic, Standby, SwitchTiming};
pub use rollout::{EventStream, RolloutContext, RolloutController, RolloutHandle, Rollouts};
pub use strategy::{
    BlueGreen, BlueGreenBuilder, Canary, CanaryBuilder, CanaryStep, DEFAULT_READY_DEADLINE,
    DEFAULT_STANDBY, Pause, Rolling, RollingBuilder, RollingStep, RolloutStrategy,
};
