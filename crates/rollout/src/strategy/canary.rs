//! Canary: give the new release a small, growing share of traffic, pause and analyse it
//! between steps, and promote it only if it holds up.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::{Action, DEFAULT_READY_DEADLINE, RolloutStrategy, execute};
use crate::analysis::Analysis;
use crate::gate::Gate;
use crate::platform::{Routing, Slot};
use crate::rollout::RolloutContext;
use crate::{Error, EventKind};

/// How long a canary step pauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// For a fixed time; [`resume`](crate::RolloutHandle::resume) ends it early, an abort
    /// ends it at once (and rolls back).
    For(Duration),
    /// Until [`resume`](crate::RolloutHandle::resume) is called (or an abort).
    UntilResumed,
}

/// One step of a canary rollout.
#[derive(Clone, Debug, PartialEq)]
pub enum CanaryStep {
    /// Send this percentage (0 to 100) of new requests to the canary. Weights may only grow
    /// from one step to the next.
    SetWeight(u8),
    /// Wait.
    Pause(Pause),
    /// Measure the canary's traffic: a pass goes on, a failure aborts (and rolls back), an
    /// inconclusive verdict pauses until resumed or aborted.
    Analysis(Analysis),
}

/// A canary rollout.
///
/// 1. deploy the new version to the idle slot with [`canary_replicas`](CanaryBuilder::canary_replicas)
///    instances (1 by default) and wait until they are ready; run the
///    [gates](CanaryBuilder::gate) against its preview URL;
/// 2. carry out the steps: [`SetWeight`](CanaryStep::SetWeight) routes that share of new
///    requests to the canary ([`Routing::Split`]), [`Pause`](CanaryStep::Pause) waits,
///    [`Analysis`](CanaryStep::Analysis) judges the canary's traffic;
/// 3. promote: scale the canary slot to [`replicas`](CanaryBuilder::replicas), wait until
///    ready, send it all traffic, stop the stable slot.
///
/// Any failure along the way (a gate, an analysis, a deadline, an abort) rolls back: the
/// stable slot, which never stopped serving, gets all traffic again and the canary stops.
/// With nothing live, there is nothing to compare against: the version is deployed with
/// `replicas` instances, gated, and gets all traffic (a warning event says so).
///
/// ```
/// use std::time::Duration;
/// use engine_ops_rollout::{Analysis, Canary, CanaryStep, Pause};
///
/// let canary = Canary::builder()
///     .replicas(4)
///     .step(CanaryStep::SetWeight(10))
///     .step(CanaryStep::Pause(Pause::For(Duration::from_secs(60))))
///     .step(CanaryStep::Analysis(Analysis { max_error_rate: 0.05, ..Analysis::default() }))
///     .step(CanaryStep::SetWeight(50))
///     .step(CanaryStep::Pause(Pause::UntilResumed))
///     .build()?;
/// assert_eq!(canary.canary_steps().len(), 5);
///
/// let down = Canary::builder()
///     .step(CanaryStep::SetWeight(50))
///     .step(CanaryStep::SetWeight(20))
///     .build();
/// assert!(down.is_err());
/// # Ok::<(), engine_ops_rollout::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Canary {
    replicas: u32,
    canary_replicas: u32,
    steps: Vec<CanaryStep>,
    gates: Vec<Gate>,
    ready_deadline: Duration,
}

impl Canary {
    /// A builder: 1 replica, 1 canary instance, no steps, no gates, a 60 s ready deadline.
    pub fn builder() -> CanaryBuilder {
        CanaryBuilder {
            strategy: Canary {
                replicas: 1,
                canary_replicas: 1,
                steps: Vec::new(),
                gates: Vec::new(),
                ready_deadline: DEFAULT_READY_DEADLINE,
            },
        }
    }

    /// Instances of the new release once promoted.
    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// Instances of the canary before promotion.
    pub fn canary_replicas(&self) -> u32 {
        self.canary_replicas
    }

    /// The steps, as given.
    pub fn canary_steps(&self) -> &[CanaryStep] {
        &self.steps
    }

    /// The steps a rollout takes when `live` is the live slot, as progress lines.
    ///
    /// ```
    /// use engine_ops_rollout::{Canary, CanaryStep, Slot};
    ///
    /// let canary = Canary::builder().replicas(3).step(CanaryStep::SetWeight(20)).build()?;
    /// assert_eq!(canary.steps(Some(Slot::Green)), [
    ///     "deploy to blue (1 instance)",
    ///     "wait until blue is ready",
    ///     "route traffic: 80% green, 20% blue",
    ///     "scale blue to 3 instances",
    ///     "wait until blue is ready",
    ///     "switch all traffic to blue",
    ///     "stop green",
    /// ]);
    /// # Ok::<(), engine_ops_rollout::Error>(())
    /// ```
    pub fn steps(&self, live: Option<Slot>) -> Vec<String> {
        self.plan(live).iter().map(ToString::to_string).collect()
    }

    pub(crate) fn plan(&self, live: Option<Slot>) -> Vec<Action> {
        let Some(stable) = live else {
            let slot = Slot::Blue;
            let mut plan = vec![
                Action::Deploy {
                    slot,
                    replicas: self.replicas,
                },
                Action::WaitReady { slot },
            ];
            plan.extend(self.gate_actions(slot));
            plan.push(Action::Route(Routing::All { slot }));
            return plan;
        };
        let canary = stable.other();
        let mut plan = vec![
            Action::Deploy {
                slot: canary,
                replicas: self.canary_replicas,
            },
            Action::WaitReady { slot: canary },
        ];
        plan.extend(self.gate_actions(canary));
        plan.extend(self.steps.iter().map(|step| match step {
            CanaryStep::SetWeight(percent) => Action::Route(Routing::Split {
                canary,
                percent: *percent,
            }),
            CanaryStep::Pause(pause) => Action::Pause(*pause),
            CanaryStep::Analysis(analysis) => Action::Analysis {
                slot: canary,
                analysis: analysis.clone(),
            },
        }));
        if self.replicas != self.canary_replicas {
            plan.push(Action::Scale {
                slot: canary,
                replicas: self.replicas,
            });
            plan.push(Action::WaitReady { slot: canary });
        }
        plan.push(Action::Route(Routing::All { slot: canary }));
        plan.push(Action::Stop { slot: stable });
        plan
    }

    fn gate_actions(&self, slot: Slot) -> impl Iterator<Item = Action> + '_ {
        self.gates.iter().map(move |gate| Action::Gate {
            slot,
            gate: gate.clone(),
        })
    }
}

#[async_trait]
impl RolloutStrategy for Canary {
    fn name(&self) -> &str {
        "canary"
    }

    fn ready_deadline(&self) -> Duration {
        self.ready_deadline
    }

    async fn run(&self, ctx: &mut RolloutContext) -> Result<(), Error> {
        if ctx.live_slot().is_none() {
            ctx.emit(EventKind::Warning(format!(
                "no release is live, so there is nothing to compare a canary with: {} goes to blue with {} instances and gets all traffic once ready",
                ctx.version(),
                self.replicas
            )));
        }
        let plan = self.plan(ctx.live_slot());
        execute(ctx, &plan, self.ready_deadline).await
    }
}

/// Configures a [`Canary`]; [`build`](Self::build) checks the steps.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct CanaryBuilder {
    strategy: Canary,
}

impl CanaryBuilder {
    /// Instances of the new release once promoted (default 1).
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.strategy.replicas = replicas;
        self
    }

    /// Instances of the canary before promotion (default 1, at most `replicas`).
    pub fn canary_replicas(mut self, replicas: u32) -> Self {
        self.strategy.canary_replicas = replicas;
        self
    }

    /// Adds a step.
    pub fn step(mut self, step: CanaryStep) -> Self {
        self.strategy.steps.push(step);
        self
    }

    /// Adds steps.
    pub fn steps(mut self, steps: impl IntoIterator<Item = CanaryStep>) -> Self {
        self.strategy.steps.extend(steps);
        self
    }

    /// Adds a gate, run against the canary's preview URL once it is ready, before it gets
    /// any traffic.
    pub fn gate(mut self, gate: Gate) -> Self {
        self.strategy.gates.push(gate);
        self
    }

    /// How long the canary (and, at promotion, the full slot) may take to become ready
    /// (default 60 s).
    pub fn ready_deadline(mut self, deadline: Duration) -> Self {
        self.strategy.ready_deadline = deadline;
        self
    }

    /// The strategy.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the step for a weight above 100 or below the one
    /// before, an invalid analysis; or for zero replicas, zero canary replicas or more canary
    /// replicas than replicas, a zero ready deadline.
    pub fn build(self) -> Result<Canary, Error> {
        let strategy = self.strategy;
        if strategy.replicas == 0 {
            return Err(Error::invalid(
                "canary replicas",
                "0 instances would serve nothing once promoted: give at least 1",
            ));
        }
        if strategy.canary_replicas == 0 || strategy.canary_replicas > strategy.replicas {
            return Err(Error::invalid(
                "canary replicas",
                format!(
                    "{} canary instances for {} replicas: give the canary from 1 to {} instances",
                    strategy.canary_replicas, strategy.replicas, strategy.replicas
                ),
            ));
        }
        if strategy.ready_deadline.is_zero() {
            return Err(Error::invalid(
                "canary ready deadline",
                "zero leaves no time to start: give the canary time to become ready (e.g. 60 s)",
            ));
        }
        let mut weight = 0u8;
        for (index, step) in strategy.steps.iter().enumerate() {
            let what = format!("canary step {}", index + 1);
            match step {
                CanaryStep::SetWeight(percent) if *percent > 100 => {
                    return Err(Error::invalid(
                        what,
                        format!(
                            "weight {percent} is above 100: give a percentage of requests from 0 to 100"
                        ),
                    ));
                }
                CanaryStep::SetWeight(percent) if *percent < weight => {
                    return Err(Error::invalid(
                        what,
                        format!(
                            "weight {percent} is below the previous weight {weight}: weights may only grow; to send less traffic to the canary, abort the rollout"
                        ),
                    ));
                }
                CanaryStep::SetWeight(percent) => weight = *percent,
                CanaryStep::Pause(_) => {}
                CanaryStep::Analysis(analysis) => analysis.validate(&what)?,
            }
        }
        Ok(strategy)
    }
}

impl fmt::Display for CanaryStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanaryStep::SetWeight(percent) => write!(f, "set weight {percent}%"),
            CanaryStep::Pause(Pause::For(duration)) => write!(f, "pause for {duration:?}"),
            CanaryStep::Pause(Pause::UntilResumed) => f.write_str("pause until resumed"),
            CanaryStep::Analysis(analysis) => {
                write!(f, "analysis ({} × {:?})", analysis.count, analysis.interval)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis() -> Analysis {
        Analysis {
            interval: Duration::from_secs(10),
            count: 2,
            ..Analysis::default()
        }
    }

    #[test]
    fn plans_weights_pauses_and_analyses_then_promotes() {
        let canary = Canary::builder()
            .replicas(4)
            .canary_replicas(1)
            .gate(Gate::http("smoke", "/"))
            .step(CanaryStep::SetWeight(10))
            .step(CanaryStep::Pause(Pause::For(Duration::from_secs(60))))
            .step(CanaryStep::Analysis(analysis()))
            .step(CanaryStep::SetWeight(50))
            .step(CanaryStep::Pause(Pause::UntilResumed))
            .step(CanaryStep::SetWeight(100))
            .build()
            .unwrap();
        assert_eq!(
            canary.steps(Some(Slot::Blue)),
            [
                "deploy to green (1 instance)",
                "wait until green is ready",
                "gate smoke on green",
                "route traffic: 90% blue, 10% green",
                "pause for 60s",
                "analyse green (2 × 10s)",
                "route traffic: 50% blue, 50% green",
                "pause until resumed",
                "route traffic: 0% blue, 100% green",
                "scale green to 4 instances",
                "wait until green is ready",
                "switch all traffic to green",
                "stop blue",
            ]
        );
    }

    #[test]
    fn a_first_release_skips_the_canary_steps() {
        let canary = Canary::builder()
            .replicas(2)
            .step(CanaryStep::SetWeight(10))
            .build()
            .unwrap();
        assert_eq!(
            canary.steps(None),
            [
                "deploy to blue (2 instances)",
                "wait until blue is ready",
                "switch all traffic to blue",
            ]
        );
    }

    #[test]
    fn weights_above_100_or_going_down_are_refused() {
        let err = Canary::builder()
            .step(CanaryStep::SetWeight(101))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid canary step 1: weight 101 is above 100: give a percentage of requests from 0 to 100"
        );
        let err = Canary::builder()
            .step(CanaryStep::SetWeight(20))
            .step(CanaryStep::Pause(Pause::UntilResumed))
            .step(CanaryStep::SetWeight(10))
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid canary step 3: weight 10 is below the previous weight 20"),
            "{err}"
        );
        // Equal weights are fine (a no-op routing change).
        assert!(
            Canary::builder()
                .step(CanaryStep::SetWeight(20))
                .step(CanaryStep::SetWeight(20))
                .build()
                .is_ok()
        );
    }

    #[test]
    fn replica_counts_and_analyses_are_checked() {
        assert!(Canary::builder().replicas(0).build().is_err());
        assert!(
            Canary::builder()
                .replicas(2)
                .canary_replicas(0)
                .build()
                .is_err()
        );
        assert!(
            Canary::builder()
                .replicas(2)
                .canary_replicas(3)
                .build()
                .is_err()
        );
        assert!(
            Canary::builder()
                .ready_deadline(Duration::ZERO)
                .build()
                .is_err()
        );
        let err = Canary::builder()
            .step(CanaryStep::SetWeight(5))
            .step(CanaryStep::Analysis(Analysis {
                interval: Duration::ZERO,
                ..analysis()
            }))
            .build()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("invalid canary step 2:"),
            "{err}"
        );
    }

    #[test]
    fn a_canary_as_large_as_the_release_needs_no_scale_up() {
        let canary = Canary::builder()
            .replicas(2)
            .canary_replicas(2)
            .build()
            .unwrap();
        let plan = canary.plan(Some(Slot::Blue));
        assert!(!plan.iter().any(|a| matches!(a, Action::Scale { .. })));
    }
}
