//! Rollout strategies: the [`RolloutStrategy`] trait, and the small vocabulary of actions that
//! [`BlueGreen`](crate::BlueGreen), [`Rolling`](crate::Rolling) and [`Canary`](crate::Canary)
//! plan in.
//!
//! Each strategy turns its configuration and the slot that is live into a **plan**, a list of
//! actions decided from plain data (tested without a platform), and runs it with one shared
//! executor that carries each action out through the [`RolloutContext`]. The driver
//! ([`Rollouts`](crate::Rollouts)) owns everything around it: one rollout at a time, aborts,
//! automatic rollback, the report.

mod blue_green;
mod canary;
mod rolling;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use self::blue_green::{BlueGreen, BlueGreenBuilder, DEFAULT_STANDBY};
pub use self::canary::{Canary, CanaryBuilder, CanaryStep, Pause};
pub use self::rolling::{Rolling, RollingBuilder, RollingStep};
use crate::analysis::Analysis;
use crate::gate::{Gate, GateContext};
use crate::platform::{Routing, Slot};
use crate::rollout::RolloutContext;
use crate::{Error, Phase};

/// How long a strategy waits, by default, for a slot to become ready after a deploy or a
/// scale-up, before the rollout aborts and rolls back.
pub const DEFAULT_READY_DEADLINE: Duration = Duration::from_secs(60);

/// A way to move an app from the live release to a new version. Object safe.
///
/// The driver ([`Rollouts::start`](crate::Rollouts::start)) calls [`run`](Self::run) once
/// with a [`RolloutContext`]. `run` moves forward through the context (whose operations
/// honour aborts and emit events) and returns `Ok(())` once the new version is live, or an
/// error to abort: **any** error makes the driver roll back to the release that was live at
/// the start (see [`Rollouts`](crate::Rollouts)). A strategy never rolls back itself.
///
/// ```
/// use async_trait::async_trait;
/// use engine_ops_rollout::{Error, Routing, RolloutContext, RolloutStrategy, Slot};
///
/// /// Deploys and switches, with no checks at all.
/// #[derive(Debug)]
/// struct YoloSwitch;
///
/// #[async_trait]
/// impl RolloutStrategy for YoloSwitch {
///     fn name(&self) -> &str {
///         "yolo"
///     }
///
///     async fn run(&self, ctx: &mut RolloutContext) -> Result<(), Error> {
///         let target = ctx.live_slot().map_or(Slot::Blue, Slot::other);
///         ctx.step(1, 2, format!("deploy {} to {target}", ctx.version()));
///         ctx.deploy(target, 1).await?;
///         ctx.wait_ready(target, self.ready_deadline()).await?;
///         ctx.step(2, 2, format!("switch all traffic to {target}"));
///         ctx.route(Routing::All { slot: target }).await
///     }
/// }
/// ```
#[async_trait]
pub trait RolloutStrategy: Send + Sync + fmt::Debug {
    /// A short name for events and reports (`"blue-green"`).
    fn name(&self) -> &str;

    /// How long a slot may take to become ready, in the rollout and in its rollback.
    fn ready_deadline(&self) -> Duration {
        DEFAULT_READY_DEADLINE
    }

    /// Carries the rollout out. `Err` aborts it: the driver rolls back.
    async fn run(&self, ctx: &mut RolloutContext) -> Result<(), Error>;
}

#[async_trait]
impl<S: RolloutStrategy + ?Sized> RolloutStrategy for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn ready_deadline(&self) -> Duration {
        (**self).ready_deadline()
    }

    async fn run(&self, ctx: &mut RolloutContext) -> Result<(), Error> {
        (**self).run(ctx).await
    }
}

#[async_trait]
impl<S: RolloutStrategy + ?Sized> RolloutStrategy for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn ready_deadline(&self) -> Duration {
        (**self).ready_deadline()
    }

    async fn run(&self, ctx: &mut RolloutContext) -> Result<(), Error> {
        (**self).run(ctx).await
    }
}

/// A confirmation hook: `true` goes on, `false` aborts.
pub(crate) type ConfirmFn =
    dyn Fn(GateContext) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync;

/// One thing a plan does. Plans are lists of these, decided up front from plain data.
#[derive(Clone)]
pub(crate) enum Action {
    /// Deploy the rollout's version to a slot.
    Deploy { slot: Slot, replicas: u32 },
    /// Scale a slot.
    Scale { slot: Slot, replicas: u32 },
    /// Wait until a slot is ready (the strategy's deadline).
    WaitReady { slot: Slot },
    /// Run a gate against a slot.
    Gate { slot: Slot, gate: Gate },
    /// Ask the confirmation hook.
    Confirm { slot: Slot, confirm: Arc<ConfirmFn> },
    /// Change the routing.
    Route(Routing),
    /// Pause.
    Pause(Pause),
    /// Run an analysis of a slot before going on (canary).
    Analysis { slot: Slot, analysis: Analysis },
    /// Watch the new live slot (blue-green, after the switch).
    Watch { slot: Slot, analysis: Analysis },
    /// Keep a slot running for instant rollback; the driver stops it after `delay`.
    Standby { slot: Slot, delay: Duration },
    /// Stop a slot.
    Stop { slot: Slot },
}

impl PartialEq for Action {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Deploy { slot, replicas } => {
                write!(f, "deploy to {slot} ({})", Instances(*replicas))
            }
            Action::Scale { slot, replicas } => {
                write!(f, "scale {slot} to {}", Instances(*replicas))
            }
            Action::WaitReady { slot } => write!(f, "wait until {slot} is ready"),
            Action::Gate { slot, gate } => write!(f, "gate {} on {slot}", gate.name()),
            Action::Confirm { slot, .. } => write!(f, "wait for confirmation of {slot}"),
            Action::Route(Routing::All { slot }) => write!(f, "switch all traffic to {slot}"),
            Action::Route(Routing::Pooled) => {
                f.write_str("pool traffic across the ready instances of both slots")
            }
            Action::Route(routing) => write!(f, "route traffic: {routing}"),
            Action::Pause(Pause::For(duration)) => write!(f, "pause for {duration:?}"),
            Action::Pause(Pause::UntilResumed) => f.write_str("pause until resumed"),
            Action::Analysis { slot, analysis } => write!(
                f,
                "analyse {slot} ({} × {:?})",
                analysis.count, analysis.interval
            ),
            Action::Watch { slot, analysis } => {
                write!(f, "watch {slot} for {:?}", analysis.duration())
            }
            Action::Standby { slot, delay } => {
                write!(f, "keep {slot} on standby for {delay:?}")
            }
            Action::Stop { slot } => write!(f, "stop {slot}"),
        }
    }
}

/// `1 instance`, `3 instances`.
struct Instances(u32);

impl fmt::Display for Instances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 instance"),
            n => write!(f, "{n} instances"),
        }
    }
}

/// Carries a plan out, one step event per action.
pub(crate) async fn execute(
    ctx: &mut RolloutContext,
    plan: &[Action],
    ready_deadline: Duration,
) -> Result<(), Error> {
    let total = plan.len();
    for (index, action) in plan.iter().enumerate() {
        let description = match action {
            Action::Deploy { slot, replicas } => {
                format!(
                    "deploy {} to {slot} ({})",
                    ctx.version(),
                    Instances(*replicas)
                )
            }
            other => other.to_string(),
        };
        ctx.step(index + 1, total, description);
        match action {
            Action::Deploy { slot, replicas } => ctx.deploy(*slot, *replicas).await?,
            Action::Scale { slot, replicas } => ctx.scale(*slot, *replicas).await?,
            Action::WaitReady { slot } => ctx.wait_ready(*slot, ready_deadline).await?,
            Action::Gate { slot, gate } => ctx.run_gate(gate, *slot).await?,
            Action::Confirm { slot, confirm } => ctx.confirm(*slot, confirm.as_ref()).await?,
            Action::Route(routing) => {
                ctx.route(*routing).await?;
                if let Routing::All { slot } = routing
                    && ctx.live_slot() != Some(*slot)
                {
                    ctx.phase(Phase::Promoted, Some(format!("{} is live", ctx.version())));
                }
            }
            Action::Pause(Pause::For(duration)) => {
                ctx.pause(
                    format!("for {duration:?}; resume to go on now, abort to roll back"),
                    Some(*duration),
                )
                .await?
            }
            Action::Pause(Pause::UntilResumed) => {
                ctx.pause("until resumed; abort to roll back", None).await?
            }
            Action::Analysis { slot, analysis } | Action::Watch { slot, analysis } => {
                ctx.analyze(*slot, analysis).await?
            }
            Action::Standby { slot, delay } => ctx.keep_on_standby(*slot, *delay),
            Action::Stop { slot } => ctx.stop(*slot).await?,
        }
    }
    Ok(())
}
