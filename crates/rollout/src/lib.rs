//! Blue-green, rolling and canary rollouts that move traffic without dropping a request.
//!
//! A release runs on a [`Platform`]: two [`Slot`]s, `blue` and `green`, and a traffic switch
//! whose [`Routing`] says where new requests go. A [`RolloutStrategy`] ([`BlueGreen`],
//! [`Rolling`], [`Canary`]) is a plan over those few operations; the [`Rollouts`] driver
//! carries it out, emits an [`Event`] at each step, runs the [`Gate`]s and [`Analysis`] that
//! decide promote, wait or abort, and on any failure rolls back to the release that was live
//! when it started. What happened is in the [`RolloutReport`].
//!
//! # Quick start
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use engine_ops_rollout::{BlueGreen, LocalPlatform, Outcome, Rollouts, Slot};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let platform = LocalPlatform::builder()
//!     .app(|version: &str| {
//!         let body = format!("hello from {version}");
//!         Ok(Router::new()
//!             .route("/", get(move || std::future::ready(body.clone())))
//!             .route("/health/ready", get(|| async { "ready" })))
//!     })
//!     .build()
//!     .await?;
//! let rollouts = Rollouts::new(Arc::new(platform.clone()));
//!
//! rollouts.start(BlueGreen::builder().build()?, "v1")?.await?; // nothing live: v1 to blue
//! let report = rollouts.start(BlueGreen::builder().build()?, "v2")?.await?;
//! assert_eq!(report.outcome, Outcome::Promoted);
//! assert_eq!(report.to_slot, Some(Slot::Green));
//!
//! let rollback = rollouts.rollback().await?; // blue is on standby: instant
//! assert_eq!(rollback.to_slot, Slot::Blue);
//! platform.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Contents
//!
//! - **Platforms**: [`Platform`] and its data ([`Slot`], [`Routing`], [`PlatformStatus`],
//!   [`SlotStatus`], [`TrafficStats`], [`LatencyHistogram`]); [`LocalPlatform`] (in-process
//!   or child-process instances behind an atomic switch; [`LocalPlatformBuilder`],
//!   [`ProcessSpec`], [`InstanceInfo`]); `KubePlatform` with feature `kube` (see
//!   [`platform`]).
//! - **Strategies**: [`RolloutStrategy`]; [`BlueGreen`], [`Rolling`] (with
//!   [`IntOrPercent`], [`resolve_fenceposts`], [`RollingStep`]), [`Canary`] (with
//!   [`CanaryStep`], [`Pause`]).
//! - **Decisions**: [`Gate`] and [`GateContext`] (smoke tests), [`Analysis`],
//!   [`Measurement`], [`Verdict`] (error rate and latency over windows).
//! - **Running**: [`Rollouts`], [`RolloutHandle`], [`RolloutController`], [`EventStream`],
//!   [`RolloutContext`] (for strategies of your own).
//! - **Results**: [`Event`], [`EventKind`], [`Phase`]; [`RolloutReport`], [`Outcome`],
//!   [`RollbackReport`].
//! - [`load`]: a steady loopback load generator for rehearsals, tests and benches.
//! - [`Error`].
//!
//! # Rules every strategy follows
//!
//! - **Only one rollout per app at a time**: [`Rollouts::start`] returns [`Error::Busy`] while
//!   one runs, so two switches never race.
//! - **Automatic rollback**: a failed gate, a passed deadline, an instance that exits, or
//!   [`RolloutHandle::abort`] puts the slot that was live at the start back at its size,
//!   gives it all traffic, and stops what the rollout started. The outcome is
//!   [`Outcome::RolledBack`] with the reason; it is not an error.
//! - **No request is dropped by a switch**: routing changes apply to new requests; an
//!   instance leaves routing before it is drained and stopped.
//!
//! # Features
//!
//! | feature    | default | what it adds |
//! |------------|---------|--------------|
//! | `kube`     | no      | `KubePlatform` (kube-rs), `kubectl rollout status` semantics, manifests |
//! | `kube-tls` | no      | TLS to the API server (rustls) |
//! | `cli`      | no      | the `rollout` binary: `blue-green`, `rollback`, `status`, `rolling`, `manifests` on Kubernetes |

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
#[cfg(feature = "kube")]
pub use platform::kube::{
    PodProblem, PodProblemKind, RollingEvent, RollingReport, RollingUndo, RollingUpdate,
};
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

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
