//! Pod problems: what keeps a release's pods from serving, surfaced the way kubectl warns of
//! it, so that `rollout status` (and a blue-green watch) can say *why* a slot is not ready
//! instead of only *that* it is not.
//!
//! A Deployment's status counts ready replicas; it does not say that the image does not
//! exist or that the container crashes on start. Those live on the pods: the `PodScheduled`
//! condition (`Unschedulable`, with the scheduler's message, as `kubectl describe` shows
//! under `FailedScheduling`) and each container's waiting reason (`ImagePullBackOff`,
//! `ErrImagePull`, `CrashLoopBackOff`, as the STATUS column of `kubectl get pods` shows),
//! with its restart count. [`problems_of_pod`] reads them from one pod (pure);
//! [`KubePlatform::pod_problems`] lists the app's pods and reads them all.

use std::fmt;

use ::kube::api::{Api, ListParams};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde::Serialize;

use super::KubePlatform;
use super::rolling::api_error;
use crate::Error;
use crate::platform::Slot;

/// What is wrong with a pod, in kubectl's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum PodProblemKind {
    /// The scheduler found no node for the pod (`PodScheduled` is `False` with reason
    /// `Unschedulable`): not enough CPU or memory, a taint, an affinity no node satisfies.
    Unschedulable,
    /// The kubelet gave up pulling the image for now and retries with a back-off: a wrong
    /// tag, a private registry without credentials.
    ImagePullBackOff,
    /// The last pull of the image failed.
    ErrImagePull,
    /// The container keeps exiting and the kubelet restarts it with a growing back-off.
    CrashLoopBackOff,
}

impl PodProblemKind {
    /// The reason as Kubernetes spells it (`CrashLoopBackOff`).
    pub fn as_str(self) -> &'static str {
        match self {
            PodProblemKind::Unschedulable => "Unschedulable",
            PodProblemKind::ImagePullBackOff => "ImagePullBackOff",
            PodProblemKind::ErrImagePull => "ErrImagePull",
            PodProblemKind::CrashLoopBackOff => "CrashLoopBackOff",
        }
    }

    fn from_waiting_reason(reason: &str) -> Option<Self> {
        match reason {
            "ImagePullBackOff" => Some(PodProblemKind::ImagePullBackOff),
            "ErrImagePull" => Some(PodProblemKind::ErrImagePull),
            "CrashLoopBackOff" => Some(PodProblemKind::CrashLoopBackOff),
            _ => None,
        }
    }
}

impl fmt::Display for PodProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem of one pod (a pod can have several: one per container).
///
/// `Display` gives a line like kubectl's warning:
///
/// ```
/// use engine_ops_rollout::platform::kube::problems_of_pod;
/// use k8s_openapi::api::core::v1::Pod;
///
/// let pod: Pod = serde_json::from_value(serde_json::json!({
///     "metadata": { "name": "shop-green-7d4b9-x2x4z", "labels": { "app": "shop", "version": "green" } },
///     "status": {
///         "containerStatuses": [{
///             "name": "shop", "image": "shop:2.0.0", "imageID": "", "ready": false,
///             "restartCount": 7,
///             "state": { "waiting": {
///                 "reason": "CrashLoopBackOff",
///                 "message": "back-off 5m0s restarting failed container=shop"
///             } }
///         }]
///     }
/// }))?;
/// let problems = problems_of_pod(&pod);
/// assert_eq!(
///     problems[0].to_string(),
///     "pod shop-green-7d4b9-x2x4z (green): container shop: CrashLoopBackOff, 7 restarts: back-off 5m0s restarting failed container=shop"
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PodProblem {
    /// The pod's name.
    pub pod: String,
    /// The slot the pod belongs to, from its `version` label (blue-green layout only).
    pub slot: Option<Slot>,
    /// The container, for a container problem; `None` for `Unschedulable`.
    pub container: Option<String>,
    /// What is wrong.
    pub kind: PodProblemKind,
    /// The message Kubernetes gave with the reason (the scheduler's, the kubelet's), if any.
    pub message: Option<String>,
    /// The container's restart count, for a container problem.
    pub restarts: Option<i32>,
}

impl fmt::Display for PodProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pod {}", self.pod)?;
        if let Some(slot) = self.slot {
            write!(f, " ({slot})")?;
        }
        f.write_str(": ")?;
        if let Some(container) = &self.container {
            write!(f, "container {container}: ")?;
        }
        write!(f, "{}", self.kind)?;
        match self.restarts {
            Some(1) => f.write_str(", 1 restart")?,
            Some(n) if self.container.is_some() => write!(f, ", {n} restarts")?,
            _ => {}
        }
        if let Some(message) = self.message.as_deref().filter(|m| !m.is_empty()) {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

/// The problems of one pod: `Unschedulable` from its `PodScheduled` condition, then one per
/// init or app container waiting with `ImagePullBackOff`, `ErrImagePull` or
/// `CrashLoopBackOff`. Empty for a healthy (or merely starting) pod. Pure.
pub fn problems_of_pod(pod: &Pod) -> Vec<PodProblem> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let slot = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get("version"))
        .and_then(|version| Slot::ALL.into_iter().find(|s| s.as_str() == version));
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let unschedulable = status.conditions.iter().flatten().find(|condition| {
        condition.type_ == "PodScheduled"
            && condition.status == "False"
            && condition.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unschedulable {
        problems.push(PodProblem {
            pod: name.clone(),
            slot,
            container: None,
            kind: PodProblemKind::Unschedulable,
            message: condition.message.clone(),
            restarts: None,
        });
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    problems.extend(containers.filter_map(|container| container_problem(&name, slot, container)));
    problems
}

fn container_problem(
    pod: &str,
    slot: Option<Slot>,
    status: &ContainerStatus,
) -> Option<PodProblem> {
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    let kind = PodProblemKind::from_waiting_reason(waiting.reason.as_deref()?)?;
    Some(PodProblem {
        pod: pod.to_owned(),
        slot,
        container: Some(status.name.clone()),
        kind,
        message: waiting.message.clone(),
        restarts: Some(status.restart_count),
    })
}

impl KubePlatform {
    /// The problems of every pod of the app (label `app=<app>`): both slots of the blue-green
    /// layout, or the one Deployment of the rolling layout. One LIST request.
    ///
    /// ```no_run
    /// use engine_ops_rollout::{KubePlatform, Slot};
    ///
    /// # async fn run() -> Result<(), engine_ops_rollout::Error> {
    /// let platform = KubePlatform::try_default(Some("shop"), "shop").await?;
    /// for problem in platform.pod_problems().await? {
    ///     if problem.slot == Some(Slot::Green) {
    ///         eprintln!("warning: {problem}");
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn pod_problems(&self) -> Result<Vec<PodProblem>, Error> {
        let pods: Api<Pod> = Api::namespaced(self.client().clone(), self.namespace());
        let selector = format!("app={}", self.app());
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| api_error(self, "listing", "Pods", &format!("-l {selector}"), e))?;
        Ok(list.items.iter().flat_map(problems_of_pod).collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "shop-green-1", "labels": { "app": "shop", "version": "green" } },
            "status": status,
        }))
        .unwrap()
    }

    fn container(name: &str, restarts: i32, state: Value) -> Value {
        json!({
            "name": name, "image": "shop:2", "imageID": "", "ready": false,
            "restartCount": restarts, "state": state,
        })
    }

    #[test]
    fn an_unschedulable_pod_carries_the_schedulers_message() {
        let problems = problems_of_pod(&pod(json!({
            "phase": "Pending",
            "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu."
            }]
        })));
        assert_eq!(
            problems,
            [PodProblem {
                pod: "shop-green-1".into(),
                slot: Some(Slot::Green),
                container: None,
                kind: PodProblemKind::Unschedulable,
                message: Some("0/3 nodes are available: 3 Insufficient cpu.".into()),
                restarts: None,
            }]
        );
        assert_eq!(
            problems[0].to_string(),
            "pod shop-green-1 (green): Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."
        );
    }

    #[test]
    fn each_waiting_reason_kubectl_warns_of_is_a_problem() {
        for (reason, kind) in [
            ("ImagePullBackOff", PodProblemKind::ImagePullBackOff),
            ("ErrImagePull", PodProblemKind::ErrImagePull),
            ("CrashLoopBackOff", PodProblemKind::CrashLoopBackOff),
        ] {
            let problems = problems_of_pod(&pod(json!({
                "containerStatuses": [
                    container("sidecar", 0, json!({ "running": {} })),
                    container("shop", 4, json!({ "waiting": { "reason": reason, "message": "m" } })),
                ]
            })));
            assert_eq!(problems.len(), 1, "{reason}");
            assert_eq!(problems[0].kind, kind);
            assert_eq!(problems[0].container.as_deref(), Some("shop"));
            assert_eq!(problems[0].restarts, Some(4));
            assert_eq!(problems[0].kind.as_str(), reason);
        }
    }

    #[test]
    fn healthy_starting_and_scheduled_pods_have_none() {
        for status in [
            json!({ "phase": "Running", "conditions": [
                { "type": "PodScheduled", "status": "True" },
                { "type": "Ready", "status": "False", "reason": "ContainersNotReady" },
            ] }),
            json!({ "containerStatuses": [
                container("shop", 0, json!({ "waiting": { "reason": "ContainerCreating" } })),
            ] }),
            // PodScheduled False for another reason (a scheduling gate) is not Unschedulable.
            json!({ "conditions": [
                { "type": "PodScheduled", "status": "False", "reason": "SchedulingGated" },
            ] }),
        ] {
            assert_eq!(problems_of_pod(&pod(status.clone())), [], "{status}");
        }
        let mut no_status = pod(json!(null));
        no_status.status = None;
        assert_eq!(problems_of_pod(&no_status), []);
    }

    #[test]
    fn init_containers_count_and_every_problem_is_listed() {
        let problems = problems_of_pod(&pod(json!({
            "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable" }],
            "initContainerStatuses": [
                container("migrate", 1, json!({ "waiting": { "reason": "CrashLoopBackOff" } })),
            ],
            "containerStatuses": [
                container("shop", 0, json!({ "waiting": { "reason": "ErrImagePull" } })),
            ],
        })));
        let kinds: Vec<_> = problems.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                PodProblemKind::Unschedulable,
                PodProblemKind::CrashLoopBackOff,
                PodProblemKind::ErrImagePull
            ]
        );
        assert_eq!(
            problems[1].to_string(),
            "pod shop-green-1 (green): container migrate: CrashLoopBackOff, 1 restart"
        );
        assert_eq!(
            problems[2].to_string(),
            "pod shop-green-1 (green): container shop: ErrImagePull, 0 restarts"
        );
        let json = serde_json::to_value(&problems[2]).unwrap();
        assert_eq!(json["kind"], "ErrImagePull");
        assert_eq!(json["slot"], "green");
    }
}
