//! `rollout rollback`: back to the previous release of a blue-green pair, and the recovery
//! from a crashed `blue-green` (a rollout record left on the active Service).
//!
//! What to do is decided first, from plain data ([`plan`]: the routing, both slots, and what
//! the annotations recorded), then carried out. The rules:
//!
//! - a rollout recorded as in progress (its driver crashed) is finished by restoring the
//!   slot it recorded as live before it: if traffic is already there (the crash came before
//!   the switch, or after the driver's own rollback), nothing is switched again: the other
//!   slot is scaled to zero and the record cleared;
//! - otherwise the slot that is not live is the target: switched to at once while it still
//!   runs and is ready (the standby), or first brought back from the image recorded for it
//!   (scaled up, or deployed again) and waited for;
//! - the slot left is scaled to zero, so no slot is orphaned; the record is cleared.

use std::time::Duration;

use engine_ops_rollout::platform::kube::{
    PREVIOUS_IMAGE_ANNOTATION, PREVIOUS_SLOT_ANNOTATION, RolloutRecord,
};
use engine_ops_rollout::{Error, KubePlatform, Platform, PlatformStatus, Routing, Slot};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use serde::Serialize;
use tokio::time::Instant;

use crate::blue_green::ask;
use crate::output::{self, Progress};
use crate::{Failure, Outcome};

/// What `rollback` was asked to do, resolved from the command line.
#[derive(Debug, Clone)]
pub(crate) struct RollbackOptions {
    pub(crate) yes: bool,
    pub(crate) replicas: Option<u32>,
    pub(crate) ready_timeout: Duration,
}

/// What is known before deciding: plain data, read from the cluster.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub(crate) status: PlatformStatus,
    /// The image in each slot's pod template (blue, green), whatever its replicas.
    pub(crate) images: [Option<String>; 2],
    /// A rollout recorded as in progress: (its description, the slot live before it, the
    /// image that slot ran).
    pub(crate) in_progress: Option<(String, Option<Slot>, Option<String>)>,
    /// What the last finished rollout recorded as live before it: (slot, image).
    pub(crate) last: (Option<Slot>, Option<String>),
    /// `--replicas`.
    pub(crate) replicas: Option<u32>,
}

/// What a rollback does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(crate) enum Plan {
    /// Traffic is already on `to`: scale `stop` to zero and clear the record.
    CleanUp { to: Slot, stop: Slot },
    /// `to` runs and is ready: switch to it at once, then scale `from` to zero.
    Switch { from: Slot, to: Slot },
    /// Bring `to` back first (deploy `image` again when `redeploy`, else scale it), wait
    /// until it is ready, switch, then scale `from` to zero.
    Restore {
        from: Slot,
        to: Slot,
        image: String,
        replicas: u32,
        redeploy: bool,
    },
}

impl Plan {
    fn to(&self) -> Slot {
        match *self {
            Plan::CleanUp { to, .. } | Plan::Switch { to, .. } | Plan::Restore { to, .. } => to,
        }
    }
}

fn ready(status: &PlatformStatus, slot: Slot) -> bool {
    let state = status.slot(slot);
    state.desired > 0 && state.ready >= state.desired
}

/// Decides the rollback from `facts` (pure), or says why there is nothing to do.
pub(crate) fn plan(facts: &Facts) -> Result<Plan, String> {
    let status = &facts.status;
    let image = |slot: Slot| facts.images[slot as usize].clone();
    let replicas_from = |slot: Slot| {
        facts
            .replicas
            .unwrap_or_else(|| status.slot(slot).desired.max(1))
    };
    if let Some((description, previous, previous_image)) = &facts.in_progress {
        let Some(to) = *previous else {
            return Err(format!(
                "the interrupted rollout ({description}) began with no slot live: there is no release to restore; check `rollout status`, then clear the record"
            ));
        };
        let from = to.other();
        if status.routing == (Routing::All { slot: to }) {
            return Ok(Plan::CleanUp { to, stop: from });
        }
        let current = image(to);
        if ready(status, to) && (previous_image.is_none() || *previous_image == current) {
            return Ok(Plan::Switch { from, to });
        }
        let Some(restore) = previous_image.clone().or(current.clone()) else {
            return Err(format!(
                "slot {to} has no image recorded or in its Deployment: deploy the release you want with `rollout blue-green <image>` after clearing the record"
            ));
        };
        return Ok(Plan::Restore {
            from,
            to,
            redeploy: current.as_deref() != Some(restore.as_str()),
            image: restore,
            replicas: replicas_from(from),
        });
    }
    let Routing::All { slot: from } = status.routing else {
        return Err(format!(
            "traffic is {} (a canary, or a rollout left half-way): no single release to roll back from; route all traffic to one slot first",
            status.routing
        ));
    };
    let to = from.other();
    if ready(status, to) {
        return Ok(Plan::Switch { from, to });
    }
    match &facts.last {
        (Some(slot), Some(recorded)) if *slot == to => Ok(Plan::Restore {
            from,
            to,
            redeploy: image(to).as_deref() != Some(recorded.as_str()),
            image: recorded.clone(),
            replicas: replicas_from(from),
        }),
        _ => Err(format!(
            "slot {to} runs nothing and no earlier release of it is recorded (already rolled back, or never released with `rollout blue-green`): release the version you want with `rollout blue-green <image>`"
        )),
    }
}

/// What `rollback` did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RollbackSummary {
    pub(crate) plan: Plan,
    /// The interrupted rollout that was finished, if any.
    pub(crate) recovered: Option<String>,
    pub(crate) from_image: Option<String>,
    pub(crate) to_image: Option<String>,
    /// Every action, in order.
    pub(crate) actions: Vec<String>,
    /// Seconds.
    pub(crate) duration: f64,
}

struct Steps<'a> {
    progress: &'a Progress,
    actions: Vec<String>,
}

impl Steps<'_> {
    fn done(&mut self, action: String) {
        self.progress.line(&action);
        self.actions.push(action);
    }

    /// Scales `slot` to zero once traffic left it; a failure is a warning, the switch stands.
    async fn scale_down(&mut self, platform: &KubePlatform, slot: Slot) {
        match platform.stop(slot).await {
            Ok(()) => self.done(format!("scaled {slot} to zero")),
            Err(error) => self.done(format!(
                "warning: could not scale {slot} to zero: {error}; scale it with `kubectl scale deployment {}-{slot} --replicas=0`",
                platform.app()
            )),
        }
    }
}

async fn facts(platform: &KubePlatform, replicas: Option<u32>) -> Result<Facts, Failure> {
    let record: Option<RolloutRecord> = platform.rollout_in_progress().await?;
    let status = platform.status().await?;
    let deployments: Api<Deployment> =
        Api::namespaced(platform.client().clone(), platform.namespace());
    let mut images = [None, None];
    for slot in Slot::ALL {
        let name = format!("{}-{slot}", platform.app());
        let deployment = deployments
            .get(&name)
            .await
            .map_err(|e| Failure::failed(format!("while reading Deployment {name}: {e}")))?;
        images[slot as usize] = crate::status::image_of(&deployment, platform.app());
    }
    let services: Api<Service> = Api::namespaced(platform.client().clone(), platform.namespace());
    let active = format!("{}-active", platform.app());
    let service = services
        .get(&active)
        .await
        .map_err(|e| Failure::failed(format!("while reading Service {active}: {e}")))?;
    let annotations = service.metadata.annotations.unwrap_or_default();
    let last = (
        annotations
            .get(PREVIOUS_SLOT_ANNOTATION)
            .and_then(|slot| Slot::ALL.into_iter().find(|s| s.as_str() == slot)),
        annotations.get(PREVIOUS_IMAGE_ANNOTATION).cloned(),
    );
    Ok(Facts {
        status,
        images,
        in_progress: record.map(|record| {
            (
                record.description,
                record.previous_slot,
                record.previous_image,
            )
        }),
        last,
        replicas,
    })
}

/// Runs `rollback`.
pub(crate) async fn run(
    platform: &KubePlatform,
    options: RollbackOptions,
    progress: &Progress,
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let facts = facts(platform, options.replicas).await?;
    let plan = plan(&facts).map_err(|reason| Failure::from(Error::NoRollbackTarget { reason }))?;
    let image = |slot: Slot| facts.images[slot as usize].clone();
    let to = plan.to();
    let (from_image, to_image) = match &plan {
        Plan::CleanUp { to, stop } => (image(*stop), image(*to)),
        Plan::Switch { from, to } => (image(*from), image(*to)),
        Plan::Restore {
            from,
            image: to_image,
            ..
        } => (image(*from), Some(to_image.clone())),
    };
    let app = platform.app();
    let mut question = match &facts.in_progress {
        Some((description, ..)) => format!(
            "a rollout is recorded as in progress ({description}); if its command still runs, answer no and let it finish. "
        ),
        None => String::new(),
    };
    question.push_str(&match &plan {
        Plan::CleanUp { to, stop } => format!(
            "traffic of {app} is already on {to}: scale {stop} to zero and clear the rollout record?"
        ),
        _ => format!(
            "roll {app} back: switch all traffic from {} ({}) to {to} ({})?",
            to.other(),
            from_image.as_deref().unwrap_or("?"),
            to_image.as_deref().unwrap_or("?")
        ),
    });
    if !options.yes && !ask(question).await {
        return Err(Failure::failed("not confirmed: nothing was changed"));
    }

    let recovered = facts
        .in_progress
        .as_ref()
        .map(|(description, ..)| description.clone());
    if recovered.is_none() {
        // Holds off a concurrent release while the rollback runs.
        platform
            .begin_rollout(&format!("rollback to {to}"))
            .await
            .map_err(|error| match error {
                Error::Busy { running } => Failure::busy(format!(
                    "another rollout of {app} began while the rollback was being prepared: {running}"
                )),
                other => other.into(),
            })?;
    } else if let Err(error) = platform
        .set_rollout_phase(&format!("rolling back to {to}"))
        .await
    {
        progress.line(format!("warning: could not record the phase: {error}"));
    }
    let mut steps = Steps {
        progress,
        actions: Vec::new(),
    };
    if let Some(description) = &recovered {
        steps.done(format!("finishing the interrupted rollout: {description}"));
    }
    let result = execute(platform, &plan, options.ready_timeout, &mut steps).await;
    match result {
        Ok(()) => {
            platform.finish_rollout().await?;
            steps.done("rollout record cleared".to_owned());
        }
        // Errors come before traffic moved (a failed scale-down after the switch is a
        // warning): the record this command made goes, a crashed rollout's record stays.
        Err(error) if recovered.is_none() => {
            let _ = platform.finish_rollout().await;
            return Err(Failure::failed(format!(
                "the rollback failed: {error}; traffic stays on {}",
                to.other()
            )));
        }
        Err(error) => {
            return Err(Failure::failed(format!(
                "the rollback failed: {error}; the rollout record stays on Service {app}-active: check `rollout status` and run `rollout rollback` again"
            )));
        }
    }
    let summary = RollbackSummary {
        plan,
        recovered,
        from_image,
        to_image,
        actions: steps.actions,
        duration: started.elapsed().as_secs_f64(),
    };
    Ok(Outcome {
        json: serde_json::to_value(&summary).unwrap_or_default(),
        text: output::rollback(app, &summary),
        ok: true,
    })
}

async fn execute(
    platform: &KubePlatform,
    plan: &Plan,
    ready_timeout: Duration,
    steps: &mut Steps<'_>,
) -> Result<(), Error> {
    match plan {
        Plan::CleanUp { to, stop } => {
            steps.done(format!("traffic is already on {to}: nothing to switch"));
            steps.scale_down(platform, *stop).await;
        }
        Plan::Switch { from, to } => {
            let switching = Instant::now();
            platform.route(Routing::All { slot: *to }).await?;
            steps.done(format!(
                "switched all traffic to {to} in {:.2?}",
                switching.elapsed()
            ));
            steps.scale_down(platform, *from).await;
        }
        Plan::Restore {
            from,
            to,
            image,
            replicas,
            redeploy,
        } => {
            if *redeploy {
                platform.deploy(*to, image, *replicas).await?;
                steps.done(format!("deployed {image} to {to} ({replicas} replicas)"));
            } else {
                platform.scale(*to, *replicas).await?;
                steps.done(format!("scaled {to} ({image}) to {replicas} replicas"));
            }
            steps.progress.line(format!("waiting until {to} is ready"));
            if let Err(error) = platform.wait_ready(*to, ready_timeout).await {
                // Traffic never moved: put the slot back where it was.
                let _ = platform.stop(*to).await;
                return Err(error);
            }
            steps.done(format!("{to} is ready"));
            let switching = Instant::now();
            platform.route(Routing::All { slot: *to }).await?;
            steps.done(format!(
                "switched all traffic to {to} in {:.2?}",
                switching.elapsed()
            ));
            steps.scale_down(platform, *from).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use engine_ops_rollout::SlotStatus;

    use super::*;

    const V1: &str = "shop:1";
    const V2: &str = "shop:2";

    fn slot(slot: Slot, desired: u32, ready: u32, version: Option<&str>) -> SlotStatus {
        SlotStatus {
            slot,
            version: version.map(String::from),
            desired,
            running: desired,
            ready,
        }
    }

    /// Green (V2) live with 3 ready; blue (V1) with `blue` (desired, ready).
    fn facts(blue: (u32, u32)) -> Facts {
        Facts {
            status: PlatformStatus {
                slots: [
                    slot(Slot::Blue, blue.0, blue.1, (blue.0 > 0).then_some(V1)),
                    slot(Slot::Green, 3, 3, Some(V2)),
                ],
                routing: Routing::All { slot: Slot::Green },
            },
            images: [Some(V1.into()), Some(V2.into())],
            in_progress: None,
            last: (Some(Slot::Blue), Some(V1.into())),
            replicas: None,
        }
    }

    #[test]
    fn a_ready_standby_is_switched_to_at_once() {
        assert_eq!(
            plan(&facts((3, 3))),
            Ok(Plan::Switch {
                from: Slot::Green,
                to: Slot::Blue
            })
        );
    }

    #[test]
    fn a_scaled_down_previous_release_is_brought_back_first() {
        let restore = |facts: &Facts| plan(facts).unwrap();
        assert_eq!(
            restore(&facts((0, 0))),
            Plan::Restore {
                from: Slot::Green,
                to: Slot::Blue,
                image: V1.into(),
                replicas: 3,
                redeploy: false
            }
        );
        // Not ready yet (1 of 3): brought to size and waited for, not switched to.
        assert!(matches!(restore(&facts((3, 1))), Plan::Restore { .. }));
        let mut other_image = facts((0, 0));
        other_image.images[0] = Some("shop:0".into());
        other_image.replicas = Some(5);
        assert_eq!(
            restore(&other_image),
            Plan::Restore {
                from: Slot::Green,
                to: Slot::Blue,
                image: V1.into(),
                replicas: 5,
                redeploy: true
            }
        );
    }

    #[test]
    fn nothing_recorded_for_the_idle_slot_is_nothing_to_roll_back_to() {
        let mut already = facts((0, 0));
        already.last = (Some(Slot::Green), Some(V2.into()));
        assert!(plan(&already).unwrap_err().contains("no earlier release"));
        let mut pooled = facts((3, 3));
        pooled.status.routing = Routing::Pooled;
        assert!(plan(&pooled).unwrap_err().contains("route all traffic"));
    }

    #[test]
    fn a_crashed_rollout_is_finished_without_a_second_switch() {
        // The crash came before the switch: traffic is still on blue.
        let mut before_switch = facts((3, 3));
        before_switch.status.routing = Routing::All { slot: Slot::Blue };
        before_switch.in_progress = Some((
            "blue-green to shop:2".into(),
            Some(Slot::Blue),
            Some(V1.into()),
        ));
        assert_eq!(
            plan(&before_switch),
            Ok(Plan::CleanUp {
                to: Slot::Blue,
                stop: Slot::Green
            })
        );
        // After the switch, blue still ready: switch back at once.
        let mut after_switch = facts((3, 3));
        after_switch.in_progress = before_switch.in_progress.clone();
        assert_eq!(
            plan(&after_switch),
            Ok(Plan::Switch {
                from: Slot::Green,
                to: Slot::Blue
            })
        );
        // After the switch and the scale-down of blue: restore from the record's image.
        let mut scaled_down = facts((0, 0));
        scaled_down.in_progress = before_switch.in_progress.clone();
        scaled_down.last = (None, None);
        assert!(matches!(
            plan(&scaled_down),
            Ok(Plan::Restore {
                to: Slot::Blue,
                redeploy: false,
                ..
            })
        ));
        // A record of a rollout that began with nothing live has nothing to restore.
        let mut nothing = facts((3, 3));
        nothing.in_progress = Some(("blue-green to shop:1".into(), None, None));
        assert!(plan(&nothing).unwrap_err().contains("no slot live"));
    }
}
