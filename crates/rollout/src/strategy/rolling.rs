//! Rolling update: replace the live release's instances a few at a time, within `maxSurge`
//! and `maxUnavailable`, as a Kubernetes Deployment does.
//!
//! The planner ([`Rolling::plan`]) is a pure function of three counts; the strategy runs its
//! steps over two slots: the old release in the live slot, the new one in the other, both
//! behind [`Routing::Pooled`] so that every ready instance of either version serves.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{Action, DEFAULT_READY_DEADLINE, RolloutStrategy, execute};
use crate::fenceposts::{Fenceposts, IntOrPercent, IntoIntOrPercent};
use crate::platform::{Routing, Slot};
use crate::rollout::RolloutContext;
use crate::{Error, EventKind};

/// One step of a rolling update, over instance counts of the old and the new release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "step", content = "to", rename_all = "snake_case")]
pub enum RollingStep {
    /// Run this many instances of the new release (more than before). New instances count
    /// as serving only once ready.
    ScaleNew(u32),
    /// Wait until every instance of the new release is ready.
    WaitNewReady,
    /// Keep this many instances of the old release (fewer than before).
    ScaleOld(u32),
}

impl fmt::Display for RollingStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollingStep::ScaleNew(to) => write!(f, "scale the new release to {to}"),
            RollingStep::WaitNewReady => f.write_str("wait until the new release is ready"),
            RollingStep::ScaleOld(to) => write!(f, "scale the old release to {to}"),
        }
    }
}

/// A rolling update of `replicas` instances, `maxSurge` above and `maxUnavailable` below.
///
/// Both default to `25%`, as in Kubernetes, and are resolved with its rounding (see
/// [`resolve_fenceposts`](crate::resolve_fenceposts)). Values that cannot work (both zero,
/// a percentage above 100 %, malformed text) are refused by [`build`](RollingBuilder::build).
///
/// Running it: the old release is live in slot A; the new version is deployed to slot B
/// with 0 instances; routing becomes [`Routing::Pooled`]; the steps of [`Rolling::plan`] are
/// carried out (`scale(B, n)`, `wait_ready(B)`, `scale(A, n)`); finally all traffic goes to B
/// and A is stopped. At every moment at least `replicas - maxUnavailable` ready instances
/// serve, and at most `replicas + maxSurge` run. When nothing is live, the new version is
/// simply deployed with `replicas` instances and gets all traffic once ready.
///
/// When A runs another number of instances than `replicas`, it is first scaled to
/// `replicas` (a warning event says so), so that the bounds hold for the count asked for.
///
/// ```
/// use engine_ops_rollout::{Rolling, RollingStep::*};
///
/// let rolling = Rolling::builder().replicas(4).max_surge("25%").max_unavailable(0).build()?;
/// assert_eq!((rolling.fenceposts().surge, rolling.fenceposts().unavailable), (1, 0));
/// assert_eq!(&rolling.plan_steps()[..4], &[ScaleNew(1), WaitNewReady, ScaleOld(3), ScaleNew(2)]);
///
/// assert!(Rolling::builder().replicas(4).max_surge(0).max_unavailable("0%").build().is_err());
/// assert!(Rolling::builder().max_surge("20Percent").build().is_err());
/// # Ok::<(), engine_ops_rollout::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Rolling {
    replicas: u32,
    max_surge: IntOrPercent,
    max_unavailable: IntOrPercent,
    fenceposts: Fenceposts,
    steps: Vec<RollingStep>,
    ready_deadline: Duration,
}

impl Rolling {
    /// A builder: 1 replica, `maxSurge` and `maxUnavailable` 25 %, a 60 s ready deadline
    /// per wait.
    pub fn builder() -> RollingBuilder {
        RollingBuilder {
            replicas: 1,
            max_surge: Ok(IntOrPercent::default()),
            max_unavailable: Ok(IntOrPercent::default()),
            ready_deadline: DEFAULT_READY_DEADLINE,
        }
    }

    /// Instances of the new release at the end.
    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// `maxSurge` as given.
    pub fn max_surge(&self) -> IntOrPercent {
        self.max_surge
    }

    /// `maxUnavailable` as given.
    pub fn max_unavailable(&self) -> IntOrPercent {
        self.max_unavailable
    }

    /// `maxSurge` and `maxUnavailable` resolved for [`replicas`](Self::replicas).
    pub fn fenceposts(&self) -> Fenceposts {
        self.fenceposts
    }

    /// The steps of this update: [`Rolling::plan`] of its replicas and fenceposts.
    pub fn plan_steps(&self) -> &[RollingStep] {
        &self.steps
    }

    /// The steps that take `replicas` ready instances of an old release to `replicas` ready
    /// instances of a new one, never with more than `replicas + surge` running nor fewer than
    /// `replicas - unavailable` ready (old instances are ready; a new one counts once a
    /// [`WaitNewReady`](RollingStep::WaitNewReady) has passed). Pure.
    ///
    /// Like the deployment controller, each round scales the new release up as far as the
    /// surge allows, scales the old one down as far as the ready count allows, then waits for
    /// the new instances. `surge + unavailable` must be at least 1 (what
    /// [`resolve_fenceposts`](crate::resolve_fenceposts) guarantees), or nothing could move:
    /// the plan is then empty. `replicas == 0` gives an empty plan.
    ///
    /// ```
    /// use engine_ops_rollout::{Rolling, RollingStep::*};
    ///
    /// // 25 %/25 % of 4 resolves to surge 1, unavailable 1.
    /// assert_eq!(Rolling::plan(4, 1, 1), [
    ///     ScaleNew(1), ScaleOld(3), WaitNewReady,
    ///     ScaleNew(2), ScaleOld(2), WaitNewReady,
    ///     ScaleNew(3), ScaleOld(1), WaitNewReady,
    ///     ScaleNew(4), ScaleOld(0), WaitNewReady,
    /// ]);
    /// assert_eq!(Rolling::plan(3, 3, 0), [ScaleNew(3), WaitNewReady, ScaleOld(0)]);
    /// assert!(Rolling::plan(0, 1, 1).is_empty());
    /// ```
    pub fn plan(replicas: u32, surge: u32, unavailable: u32) -> Vec<RollingStep> {
        let mut steps = Vec::new();
        if replicas == 0 || surge.saturating_add(unavailable) == 0 {
            return steps;
        }
        let max_running = replicas.saturating_add(surge);
        let min_ready = replicas.saturating_sub(unavailable);
        let (mut old, mut new_running, mut new_ready) = (replicas, 0u32, 0u32);
        while old > 0 || new_ready < replicas {
            // Scale the new release up as far as the surge allows.
            let new_target = replicas.min(max_running.saturating_sub(old));
            if new_target > new_running {
                new_running = new_target;
                steps.push(RollingStep::ScaleNew(new_running));
            }
            // Scale the old release down as far as the ready count allows.
            let old_target = old.min(min_ready.saturating_sub(new_ready));
            if old_target < old {
                old = old_target;
                steps.push(RollingStep::ScaleOld(old));
            }
            // Wait for the new instances.
            if new_running > new_ready {
                new_ready = new_running;
                steps.push(RollingStep::WaitNewReady);
            }
        }
        steps
    }

    pub(crate) fn actions(&self, live: Option<Slot>) -> Vec<Action> {
        let Some(old) = live else {
            let slot = Slot::Blue;
            return vec![
                Action::Deploy {
                    slot,
                    replicas: self.replicas,
                },
                Action::WaitReady { slot },
                Action::Route(Routing::All { slot }),
            ];
        };
        let new = old.other();
        let mut plan = vec![
            Action::Deploy {
                slot: new,
                replicas: 0,
            },
            Action::Route(Routing::Pooled),
        ];
        plan.extend(self.steps.iter().map(|step| match *step {
            RollingStep::ScaleNew(replicas) => Action::Scale {
                slot: new,
                replicas,
            },
            RollingStep::WaitNewReady => Action::WaitReady { slot: new },
            RollingStep::ScaleOld(replicas) => Action::Scale {
                slot: old,
                replicas,
            },
        }));
        plan.push(Action::Route(Routing::All { slot: new }));
        plan.push(Action::Stop { slot: old });
        plan
    }

    /// The steps a rollout takes when `live` is the live slot, as progress lines.
    ///
    /// ```
    /// use engine_ops_rollout::{Rolling, Slot};
    ///
    /// let steps = Rolling::builder().replicas(1).max_surge(1).max_unavailable(0).build()?
    ///     .steps(Some(Slot::Blue));
    /// assert_eq!(steps, [
    ///     "deploy to green (0 instances)",
    ///     "pool traffic across the ready instances of both slots",
    ///     "scale green to 1 instance",
    ///     "wait until green is ready",
    ///     "scale blue to 0 instances",
    ///     "switch all traffic to green",
    ///     "stop blue",
    /// ]);
    /// # Ok::<(), engine_ops_rollout::Error>(())
    /// ```
    pub fn steps(&self, live: Option<Slot>) -> Vec<String> {
        self.actions(live).iter().map(ToString::to_string).collect()
    }
}

#[async_trait]
impl RolloutStrategy for Rolling {
    fn name(&self) -> &str {
        "rolling"
    }

    fn ready_deadline(&self) -> Duration {
        self.ready_deadline
    }

    async fn run(&self, ctx: &mut RolloutContext) -> Result<(), Error> {
        if self.fenceposts.unavailable_forced {
            ctx.emit(EventKind::Warning(format!(
                "maxSurge {} and maxUnavailable {} both round to 0 instances of {}: maxUnavailable raised to 1, as Kubernetes does",
                self.max_surge, self.max_unavailable, self.replicas
            )));
        }
        let live = ctx.live_slot();
        match live {
            None => ctx.emit(EventKind::Warning(format!(
                "no release is live: {} goes to blue with {} instances and gets all traffic once ready",
                ctx.version(),
                self.replicas
            ))),
            Some(old) => {
                let desired = ctx.initial().slot(old).desired;
                if desired != self.replicas {
                    ctx.emit(EventKind::Warning(format!(
                        "slot {old} runs {desired} instances, the update asks for {}: scaling it to {} first",
                        self.replicas, self.replicas
                    )));
                    ctx.scale(old, self.replicas).await?;
                    ctx.wait_ready(old, self.ready_deadline).await?;
                }
            }
        }
        let plan = self.actions(live);
        execute(ctx, &plan, self.ready_deadline).await
    }
}

/// Configures a [`Rolling`] update. Values are checked by [`build`](Self::build), which
/// reports the first malformed one.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RollingBuilder {
    replicas: u32,
    max_surge: Result<IntOrPercent, Error>,
    max_unavailable: Result<IntOrPercent, Error>,
    ready_deadline: Duration,
}

impl RollingBuilder {
    /// Instances at the end (default 1). Zero is valid: the new version becomes the live one
    /// with no instances.
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Instances that may run above `replicas`: a count (`1`) or a percentage (`"25%"`,
    /// rounded up). Default `25%`.
    pub fn max_surge(mut self, value: impl IntoIntOrPercent) -> Self {
        self.max_surge = value.into_int_or_percent();
        self
    }

    /// Instances that may be missing from `replicas`: a count (`0`) or a percentage
    /// (`"25%"`, rounded down). Default `25%`.
    pub fn max_unavailable(mut self, value: impl IntoIntOrPercent) -> Self {
        self.max_unavailable = value.into_int_or_percent();
        self
    }

    /// How long each wait for new instances may take (default 60 s).
    pub fn ready_deadline(mut self, deadline: Duration) -> Self {
        self.ready_deadline = deadline;
        self
    }

    /// The update, with its plan.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming `maxSurge` or `maxUnavailable` for malformed text, a
    /// negative count, a percentage above 100 %, or both given as zero; or for a zero ready
    /// deadline.
    pub fn build(self) -> Result<Rolling, Error> {
        let rename = |what: &'static str| {
            move |error: Error| match error {
                Error::InvalidConfig { message, .. } => Error::invalid(what, message),
                other => other,
            }
        };
        let max_surge = self.max_surge.map_err(rename("maxSurge"))?;
        let max_unavailable = self.max_unavailable.map_err(rename("maxUnavailable"))?;
        if self.ready_deadline.is_zero() {
            return Err(Error::invalid(
                "rolling ready deadline",
                "zero leaves no time to start: give new instances time to become ready (e.g. 60 s)",
            ));
        }
        let fenceposts = Fenceposts::resolve(max_surge, max_unavailable, self.replicas)?;
        let steps = Rolling::plan(self.replicas, fenceposts.surge, fenceposts.unavailable);
        Ok(Rolling {
            replicas: self.replicas,
            max_surge,
            max_unavailable,
            fenceposts,
            steps,
            ready_deadline: self.ready_deadline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::RollingStep::*;
    use super::*;

    /// Replays a plan and checks the bounds after every step.
    fn replay(replicas: u32, surge: u32, unavailable: u32) -> (u32, u32) {
        let (mut old, mut running, mut ready) = (replicas, 0, 0);
        for step in Rolling::plan(replicas, surge, unavailable) {
            match step {
                ScaleNew(to) => {
                    assert!(to > running);
                    running = to;
                }
                WaitNewReady => ready = running,
                ScaleOld(to) => {
                    assert!(to < old);
                    old = to;
                }
            }
            assert!(old + running <= replicas + surge, "{step:?}");
            assert!(
                old + ready >= replicas.saturating_sub(unavailable),
                "{step:?}"
            );
        }
        (old, ready)
    }

    #[test]
    fn plans_like_the_deployment_controller() {
        // maxSurge 1, maxUnavailable 0: one new instance at a time, old removed once the
        // new one is ready.
        assert_eq!(
            Rolling::plan(3, 1, 0),
            [
                ScaleNew(1),
                WaitNewReady,
                ScaleOld(2),
                ScaleNew(2),
                WaitNewReady,
                ScaleOld(1),
                ScaleNew(3),
                WaitNewReady,
                ScaleOld(0),
            ]
        );
        // maxSurge 0, maxUnavailable 1: an old instance goes first.
        assert_eq!(
            Rolling::plan(2, 0, 1),
            [
                ScaleOld(1),
                ScaleNew(1),
                WaitNewReady,
                ScaleOld(0),
                ScaleNew(2),
                WaitNewReady
            ]
        );
        // 25 %/25 % of 10 = surge 3, unavailable 2.
        assert_eq!(
            Rolling::plan(10, 3, 2),
            [
                ScaleNew(3),
                ScaleOld(8),
                WaitNewReady,
                ScaleNew(5),
                ScaleOld(5),
                WaitNewReady,
                ScaleNew(8),
                ScaleOld(3),
                WaitNewReady,
                ScaleNew(10),
                ScaleOld(0),
                WaitNewReady,
            ]
        );
        // Everything may go at once.
        assert_eq!(
            Rolling::plan(4, 0, 4),
            [ScaleOld(0), ScaleNew(4), WaitNewReady]
        );
    }

    #[test]
    fn every_plan_respects_the_bounds_and_ends_all_new() {
        for replicas in 0..=12 {
            for surge in 0..=13 {
                for unavailable in 0..=13 {
                    if surge + unavailable == 0 {
                        assert!(Rolling::plan(replicas, 0, 0).is_empty());
                        continue;
                    }
                    assert_eq!(replay(replicas, surge, unavailable), (0, replicas));
                }
            }
        }
    }

    #[test]
    fn zero_replicas_is_an_empty_plan() {
        let rolling = Rolling::builder().replicas(0).build().unwrap();
        assert!(rolling.plan_steps().is_empty());
        assert_eq!(
            rolling.steps(Some(Slot::Green)),
            [
                "deploy to blue (0 instances)",
                "pool traffic across the ready instances of both slots",
                "switch all traffic to blue",
                "stop green",
            ]
        );
    }

    #[test]
    fn builder_resolves_with_kubernetes_rounding() {
        let rolling = Rolling::builder().replicas(10).build().unwrap();
        assert_eq!(rolling.max_surge(), IntOrPercent::Percent(25));
        assert_eq!(
            (rolling.fenceposts().surge, rolling.fenceposts().unavailable),
            (3, 2)
        );
        let forced = Rolling::builder()
            .replicas(10)
            .max_surge("0%")
            .max_unavailable("1%")
            .build()
            .unwrap();
        assert_eq!(
            forced.fenceposts(),
            Fenceposts {
                surge: 0,
                unavailable: 1,
                unavailable_forced: true
            }
        );
    }

    #[test]
    fn builder_names_the_malformed_setting() {
        let err = Rolling::builder()
            .max_surge("20Percent")
            .build()
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid maxSurge: "), "{err}");
        let err = Rolling::builder().max_unavailable(-1).build().unwrap_err();
        assert!(
            err.to_string().starts_with("invalid maxUnavailable: "),
            "{err}"
        );
        let err = Rolling::builder()
            .max_surge(0)
            .max_unavailable("0%")
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("may not be 0 when `maxSurge` is 0"),
            "{err}"
        );
        let err = Rolling::builder()
            .ready_deadline(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.is_bad_input());
    }

    #[test]
    fn a_first_release_is_deployed_whole() {
        let rolling = Rolling::builder().replicas(3).build().unwrap();
        assert_eq!(
            rolling.steps(None),
            [
                "deploy to blue (3 instances)",
                "wait until blue is ready",
                "switch all traffic to blue",
            ]
        );
    }
}
