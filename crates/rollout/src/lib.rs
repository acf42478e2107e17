//! Blue-green, rolling and canary rollouts that move traffic without dropping a request.
//!
//! (Crate documentation: written once the strategies land.)

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod platform;

pub use error::Error;
pub use platform::{
    LatencyHistogram, Platform, PlatformStatus, Routing, Slot, SlotStatus, TrafficStats,
};
