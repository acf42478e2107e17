//! Blue-green: run the new release beside the live one, check it, switch all traffic at
//! once, and keep the old release on standby for an instant rollback.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Action, ConfirmFn, DEFAULT_READY_DEADLINE, RolloutStrategy, execute};
use crate::analysis::Analysis;
use crate::gate::{Gate, GateContext};
use crate::platform::{Routing, Slot};
use crate::rollout::RolloutContext;
use crate::{Error, EventKind};

/// How long the previous release stays on standby after a switch, by default (as Argo
/// Rollouts' `scaleDownDelaySeconds`).
pub const DEFAULT_STANDBY: Duration = Duration::from_secs(30);

/// A blue-green rollout.
///
/// 1. deploy the new version to the **idle** slot (the one that is not live; blue when
///    nothing is live yet) and wait until it is ready (the [ready
///    deadline](BlueGreenBuilder::ready_deadline));
/// 2. run the [gates](BlueGreenBuilder::gate) against the slot's preview URL, then the
///    [confirmation hook](BlueGreenBuilder::confirm), if any;
/// 3. switch all traffic to it in one routing change (the report times it);
/// 4. [watch](BlueGreenBuilder::watch) the new live slot under real traffic, if asked;
/// 5. keep the previous release running on **standby** for
///    [`standby`](BlueGreenBuilder::standby) (30 s by default), during which
///    [`Rollouts::rollback`](crate::Rollouts::rollback) switches back at once; then the
///    driver stops it in the background (the report says when). A standby of zero stops it
///    before the rollout returns.
///
/// A failed gate, a refused confirmation, a failing watch, a deadline or an instance that
/// exits aborts the rollout, and the driver switches traffic back (before the switch, the old
/// release never lost it) and stops the new slot.
///
/// ```
/// use std::time::Duration;
/// use engine_ops_rollout::{Analysis, BlueGreen, Gate};
///
/// let strategy = BlueGreen::builder()
///     .replicas(2)
///     .ready_deadline(Duration::from_secs(20))
///     .gate(Gate::http("smoke", "/api/v1/optimize?probe=1"))
///     .confirm(|ctx| async move { ctx.version != "v13" })
///     .watch(Analysis { interval: Duration::from_secs(10), count: 3, ..Analysis::default() })
///     .standby(Duration::from_secs(300))
///     .build()?;
/// assert_eq!(strategy.replicas(), 2);
/// # Ok::<(), engine_ops_rollout::Error>(())
/// ```
#[derive(Clone)]
pub struct BlueGreen {
    replicas: u32,
    ready_deadline: Duration,
    gates: Vec<Gate>,
    confirm: Option<Arc<ConfirmFn>>,
    watch: Option<Analysis>,
    standby: Duration,
}

impl fmt::Debug for BlueGreen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlueGreen")
            .field("replicas", &self.replicas)
            .field("ready_deadline", &self.ready_deadline)
            .field("gates", &self.gates)
            .field("confirm", &self.confirm.is_some())
            .field("watch", &self.watch)
            .field("standby", &self.standby)
            .finish()
    }
}

impl BlueGreen {
    /// A builder with 1 replica, a 60 s ready deadline, no gate, no confirmation, no watch,
    /// and a 30 s standby.
    pub fn builder() -> BlueGreenBuilder {
        BlueGreenBuilder {
            strategy: BlueGreen {
                replicas: 1,
                ready_deadline: DEFAULT_READY_DEADLINE,
                gates: Vec::new(),
                confirm: None,
                watch: None,
                standby: DEFAULT_STANDBY,
            },
        }
    }

    /// Instances of the new release.
    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// How long the previous release stays on standby after the switch.
    pub fn standby(&self) -> Duration {
        self.standby
    }

    /// The slot a release goes to: the one that is not live; blue when nothing is.
    ///
    /// ```
    /// use engine_ops_rollout::{BlueGreen, Slot};
    ///
    /// assert_eq!(BlueGreen::target_slot(Some(Slot::Blue)), Slot::Green);
    /// assert_eq!(BlueGreen::target_slot(None), Slot::Blue);
    /// ```
    pub fn target_slot(live: Option<Slot>) -> Slot {
        live.map_or(Slot::Blue, Slot::other)
    }

    /// The steps a rollout takes when `live` is the live slot, as progress lines.
    ///
    /// ```
    /// use engine_ops_rollout::{BlueGreen, Slot};
    ///
    /// let steps = BlueGreen::builder().replicas(2).build()?.steps(Some(Slot::Blue));
    /// assert_eq!(steps, [
    ///     "deploy to green (2 instances)",
    ///     "wait until green is ready",
    ///     "switch all traffic to green",
    ///     "keep blue on standby for 30s",
    /// ]);
    /// # Ok::<(), engine_ops_rollout::Error>(())
    /// ```
    pub fn steps(&self, live: Option<Slot>) -> Vec<String> {
        self.plan(live).iter().map(ToString::to_string).collect()
    }

    pub(crate) fn plan(&self, live: Option<Slot>) -> Vec<Action> {
        let target = Self::target_slot(live);
        let mut plan = vec![
            Action::Deploy {
                slot: target,
                replicas: self.replicas,
            },
            Action::WaitReady { slot: target },
        ];
        plan.extend(self.gates.iter().map(|gate| Action::Gate {
            slot: target,
            gate: gate.clone(),
        }));
        if let Some(confirm) = &self.confirm {
            plan.push(Action::Confirm {
                slot: target,
                confirm: confirm.clone(),
            });
        }
        plan.push(Action::Route(Routing::All { slot: target }));
        if let Some(analysis) = &self.watch {
            plan.push(Action::Watch {
                slot: target,
                analysis: analysis.clone(),
            });
        }
        if let Some(old) = live {
            plan.push(if self.standby.is_zero() {
                Action::Stop { slot: old }
            } else {
                Action::Standby {
                    slot: old,
                    delay: self.standby,
                }
            });
        }
        plan
    }
}

#[async_trait]
impl RolloutStrategy for BlueGreen {
    fn name(&self) -> &str {
        "blue-green"
    }

    fn ready_deadline(&self) -> Duration {
        self.ready_deadline
    }

    async fn run(&self, ctx: &mut RolloutContext) -> Result<(), Error> {
        if ctx.live_slot().is_none() {
            ctx.emit(EventKind::Warning(format!(
                "no release is live: {} goes to blue and gets all traffic once ready",
                ctx.version()
            )));
        }
        let plan = self.plan(ctx.live_slot());
        execute(ctx, &plan, self.ready_deadline).await
    }
}

/// Configures a [`BlueGreen`]; [`build`](Self::build) checks the configuration.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BlueGreenBuilder {
    strategy: BlueGreen,
}

impl BlueGreenBuilder {
    /// Instances of the new release (default 1, at least 1).
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.strategy.replicas = replicas;
        self
    }

    /// How long the new slot may take to become ready (default 60 s); also the deadline of
    /// the old slot in a rollback.
    pub fn ready_deadline(mut self, deadline: Duration) -> Self {
        self.strategy.ready_deadline = deadline;
        self
    }

    /// Adds a gate, run against the new slot's preview URL once it is ready, in the order
    /// added. A failing gate aborts the rollout before any traffic reaches the new release.
    pub fn gate(mut self, gate: Gate) -> Self {
        self.strategy.gates.push(gate);
        self
    }

    /// The same as [`gate`](Self::gate): a smoke test.
    pub fn smoke(self, gate: Gate) -> Self {
        self.gate(gate)
    }

    /// A hook asked after the gates, before the switch: `true` switches, `false` aborts the
    /// rollout ("not confirmed"). It may take its time (a human clicking a button): an abort
    /// meanwhile acts at once.
    ///
    /// ```
    /// use engine_ops_rollout::BlueGreen;
    /// use tokio::sync::oneshot;
    ///
    /// let (approve, approval) = oneshot::channel::<bool>();
    /// let approval = std::sync::Mutex::new(Some(approval));
    /// let strategy = BlueGreen::builder()
    ///     .confirm(move |_ctx| {
    ///         let approval = approval.lock().unwrap().take();
    ///         async move {
    ///             match approval {
    ///                 Some(rx) => rx.await.unwrap_or(false),
    ///                 None => false,
    ///             }
    ///         }
    ///     })
    ///     .build()?;
    /// approve.send(true).unwrap();
    /// # let _ = strategy;
    /// # Ok::<(), engine_ops_rollout::Error>(())
    /// ```
    pub fn confirm<F, Fut>(mut self, confirm: F) -> Self
    where
        F: Fn(GateContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.strategy.confirm = Some(Arc::new(move |ctx| Box::pin(confirm(ctx))));
        self
    }

    /// After the switch, analyses the new live slot's traffic (its error rate, and p99 if
    /// set) for `analysis.interval × analysis.count`. A failing verdict rolls back; an
    /// inconclusive one pauses until resumed or aborted.
    pub fn watch(mut self, analysis: Analysis) -> Self {
        self.strategy.watch = Some(analysis);
        self
    }

    /// How long the previous release stays running after the switch, for an instant
    /// [`rollback`](crate::Rollouts::rollback) (default 30 s). Zero stops it before the
    /// rollout returns.
    pub fn standby(mut self, delay: Duration) -> Self {
        self.strategy.standby = delay;
        self
    }

    /// The strategy.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for zero replicas, a zero ready deadline, or an invalid watch
    /// analysis.
    pub fn build(self) -> Result<BlueGreen, Error> {
        let strategy = self.strategy;
        if strategy.replicas == 0 {
            return Err(Error::invalid(
                "blue-green replicas",
                "0 instances would serve nothing after the switch: give at least 1",
            ));
        }
        if strategy.ready_deadline.is_zero() {
            return Err(Error::invalid(
                "blue-green ready deadline",
                "zero leaves no time to start: give the slot time to become ready (e.g. 60 s)",
            ));
        }
        if let Some(analysis) = &strategy.watch {
            analysis.validate("blue-green watch")?;
        }
        Ok(strategy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploys_to_the_idle_slot_and_keeps_the_old_one_on_standby() {
        let strategy = BlueGreen::builder()
            .replicas(3)
            .gate(Gate::http("smoke", "/smoke"))
            .gate(Gate::from_fn("custom", |_| async { Ok(()) }))
            .confirm(|_| async { true })
            .watch(Analysis {
                interval: Duration::from_secs(5),
                count: 2,
                ..Analysis::default()
            })
            .standby(Duration::from_secs(120))
            .build()
            .unwrap();
        assert_eq!(
            strategy.steps(Some(Slot::Green)),
            [
                "deploy to blue (3 instances)",
                "wait until blue is ready",
                "gate smoke on blue",
                "gate custom on blue",
                "wait for confirmation of blue",
                "switch all traffic to blue",
                "watch blue for 10s",
                "keep green on standby for 120s",
            ]
        );
    }

    #[test]
    fn a_first_release_goes_to_blue_without_standby() {
        let strategy = BlueGreen::builder().build().unwrap();
        assert_eq!(
            strategy.steps(None),
            [
                "deploy to blue (1 instance)",
                "wait until blue is ready",
                "switch all traffic to blue",
            ]
        );
    }

    #[test]
    fn a_zero_standby_stops_the_old_slot_at_once() {
        let strategy = BlueGreen::builder()
            .standby(Duration::ZERO)
            .build()
            .unwrap();
        let plan = strategy.plan(Some(Slot::Blue));
        assert_eq!(plan.last(), Some(&Action::Stop { slot: Slot::Blue }));
        assert!(!plan.iter().any(|a| matches!(a, Action::Standby { .. })));
    }

    #[test]
    fn the_switch_is_the_only_routing_change_and_comes_after_every_check() {
        let strategy = BlueGreen::builder()
            .gate(Gate::http("smoke", "/"))
            .confirm(|_| async { true })
            .build()
            .unwrap();
        let plan = strategy.plan(Some(Slot::Blue));
        let routes: Vec<_> = plan
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a, Action::Route(_)))
            .collect();
        assert_eq!(routes.len(), 1);
        let switch = routes[0].0;
        let last_check = plan
            .iter()
            .rposition(|a| {
                matches!(
                    a,
                    Action::Gate { .. } | Action::Confirm { .. } | Action::WaitReady { .. }
                )
            })
            .unwrap();
        assert!(last_check < switch);
    }

    #[test]
    fn invalid_configurations_are_refused_when_built() {
        let zero = BlueGreen::builder().replicas(0).build().unwrap_err();
        assert!(
            zero.to_string().starts_with("invalid blue-green replicas"),
            "{zero}"
        );
        let deadline = BlueGreen::builder()
            .ready_deadline(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(deadline.is_bad_input());
        let watch = BlueGreen::builder()
            .watch(Analysis {
                count: 0,
                ..Analysis::default()
            })
            .build()
            .unwrap_err();
        assert!(
            watch.to_string().starts_with("invalid blue-green watch"),
            "{watch}"
        );
    }
}
