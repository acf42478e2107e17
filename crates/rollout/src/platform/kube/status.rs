//! Is a Deployment rolled out? The decision `kubectl rollout status` makes, as a pure function.
//!
//! [`KubePlatform::wait_ready`](super::KubePlatform) watches a Deployment and asks this module
//! after every change; keeping the decision apart from the watch means it can be tested as a
//! table, and that it decides exactly as the tool operators already trust. It follows
//! kubectl's `DeploymentStatusViewer.Status` (`kubectl/pkg/polymorphichelpers/rollout_status.go`)
//! step by step, in kubectl's order:
//!
//! 1. `metadata.generation > status.observedGeneration`: the controller has not seen the
//!    latest spec yet; nothing else in the status can be trusted.
//! 2. The `Progressing` condition's reason is `ProgressDeadlineExceeded`: the rollout failed.
//! 3. `status.updatedReplicas < spec.replicas`: new replicas are still being created.
//! 4. `status.replicas > status.updatedReplicas`: old replicas are pending termination.
//! 5. `status.availableReplicas < status.updatedReplicas`: new replicas are not available.
//! 6. Otherwise the rollout is complete.
//!
//! Absent fields count as zero, as Go's zero values do; an absent `spec.replicas` skips step 3,
//! as kubectl does (the API server defaults it to 1, so it is only absent in hand-made objects).

use std::fmt;

use k8s_openapi::api::apps::v1::Deployment;

use super::compat;

/// The reason of the `Progressing` condition once `spec.progressDeadlineSeconds` has passed
/// without progress (Kubernetes' `deploymentutil.TimedOutReason`).
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// Where a Deployment's rollout stands, as [`rollout_status`] decides it.
///
/// [`Display`](fmt::Display) prints kubectl's message for the state, without its trailing
/// newline.
///
/// ```
/// use engine_ops_rollout::platform::kube::RolloutStatus;
///
/// let status = RolloutStatus::WaitingForAvailable {
///     name: "shop-green".into(),
///     available: 1,
///     updated: 3,
/// };
/// assert_eq!(
///     status.to_string(),
///     r#"Waiting for deployment "shop-green" rollout to finish: 1 of 3 updated replicas are available..."#
/// );
/// assert!(!status.is_done());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RolloutStatus {
    /// `metadata.generation` is above `status.observedGeneration`: the controller has not
    /// acted on the latest spec yet.
    SpecUpdateNotObserved,
    /// The `Progressing` condition says `ProgressDeadlineExceeded`: the rollout made no
    /// progress within `spec.progressDeadlineSeconds`. Waiting longer will not help.
    ProgressDeadlineExceeded {
        /// The Deployment.
        name: String,
    },
    /// Fewer replicas run the new template than `spec.replicas` asks for.
    UpdatingReplicas {
        /// The Deployment.
        name: String,
        /// `status.updatedReplicas`.
        updated: i32,
        /// `spec.replicas`.
        desired: i32,
    },
    /// Replicas of an older template still exist.
    OldReplicasPendingTermination {
        /// The Deployment.
        name: String,
        /// `status.replicas - status.updatedReplicas`.
        pending: i32,
    },
    /// Updated replicas exist but not all are available (ready for `minReadySeconds`).
    WaitingForAvailable {
        /// The Deployment.
        name: String,
        /// `status.availableReplicas`.
        available: i32,
        /// `status.updatedReplicas`.
        updated: i32,
    },
    /// Every desired replica runs the new template and is available; no old replica is left.
    Complete {
        /// The Deployment.
        name: String,
    },
}

impl RolloutStatus {
    /// `true` once the rollout is complete (kubectl exits 0).
    pub fn is_done(&self) -> bool {
        matches!(self, RolloutStatus::Complete { .. })
    }

    /// `true` when the rollout failed and waiting longer cannot help (kubectl exits 1).
    pub fn is_failed(&self) -> bool {
        matches!(self, RolloutStatus::ProgressDeadlineExceeded { .. })
    }
}

impl fmt::Display for RolloutStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RolloutStatus::SpecUpdateNotObserved => {
                f.write_str("Waiting for deployment spec update to be observed...")
            }
            RolloutStatus::ProgressDeadlineExceeded { name } => {
                write!(f, "deployment {name:?} exceeded its progress deadline")
            }
            RolloutStatus::UpdatingReplicas {
                name,
                updated,
                desired,
            } => write!(
                f,
                "Waiting for deployment {name:?} rollout to finish: {updated} out of {desired} new replicas have been updated..."
            ),
            RolloutStatus::OldReplicasPendingTermination { name, pending } => write!(
                f,
                "Waiting for deployment {name:?} rollout to finish: {pending} old replicas are pending termination..."
            ),
            RolloutStatus::WaitingForAvailable {
                name,
                available,
                updated,
            } => write!(
                f,
                "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
            ),
            RolloutStatus::Complete { name } => {
                write!(f, "deployment {name:?} successfully rolled out")
            }
        }
    }
}

/// Decides where `deployment`'s rollout stands, exactly as `kubectl rollout status` does.
///
/// ```
/// use engine_ops_rollout::platform::kube::{RolloutStatus, rollout_status};
/// use k8s_openapi::api::apps::v1::Deployment;
///
/// let deployment: Deployment = serde_json::from_value(serde_json::json!({
///     "metadata": { "name": "shop-blue", "generation": 4 },
///     "spec": { "replicas": 3, "selector": {}, "template": {} },
///     "status": {
///         "observedGeneration": 4,
///         "replicas": 3,
///         "updatedReplicas": 3,
///         "availableReplicas": 3
///     }
/// }))?;
/// assert_eq!(
///     rollout_status(&deployment),
///     RolloutStatus::Complete { name: "shop-blue".into() }
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn rollout_status(deployment: &Deployment) -> RolloutStatus {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::SpecUpdateNotObserved;
    }
    let progressing = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|condition| compat::condition_type(condition) == Some("Progressing"));
    if progressing.and_then(|condition| condition.reason.as_deref())
        == Some(PROGRESS_DEADLINE_EXCEEDED)
    {
        return RolloutStatus::ProgressDeadlineExceeded { name };
    }
    let replicas = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(desired) = compat::spec(deployment).and_then(|spec| spec.replicas)
        && updated < desired
    {
        return RolloutStatus::UpdatingReplicas {
            name,
            updated,
            desired,
        };
    }
    if replicas > updated {
        return RolloutStatus::OldReplicasPendingTermination {
            name,
            pending: replicas - updated,
        };
    }
    if available < updated {
        return RolloutStatus::WaitingForAvailable {
            name,
            available,
            updated,
        };
    }
    RolloutStatus::Complete { name }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// One row of the table: generation, observed generation, Progressing reason,
    /// spec.replicas, status.replicas, updated, available.
    struct Row {
        generation: i64,
        observed: i64,
        progressing: Option<&'static str>,
        desired: Option<i32>,
        replicas: i32,
        updated: i32,
        available: i32,
    }

    fn deployment(row: &Row) -> Deployment {
        let conditions = row.progressing.map(|reason| {
            let status = if reason == PROGRESS_DEADLINE_EXCEEDED {
                "False"
            } else {
                "True"
            };
            json!([
                { "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable" },
                { "type": "Progressing", "status": status, "reason": reason },
            ])
        });
        let mut spec = json!({ "selector": {}, "template": {} });
        if let Some(desired) = row.desired {
            spec["replicas"] = json!(desired);
        }
        serde_json::from_value(json!({
            "metadata": { "name": "shop-green", "generation": row.generation },
            "spec": spec,
            "status": {
                "observedGeneration": row.observed,
                "replicas": row.replicas,
                "updatedReplicas": row.updated,
                "availableReplicas": row.available,
                "conditions": conditions,
            }
        }))
        .unwrap()
    }

    fn name() -> String {
        "shop-green".into()
    }

    #[test]
    fn decision_table_matches_kubectl() {
        use RolloutStatus::*;
        let deadline = Some(PROGRESS_DEADLINE_EXCEEDED);
        let progressing = Some("ReplicaSetUpdated");
        let available = Some("NewReplicaSetAvailable");
        #[rustfmt::skip]
        let table: Vec<(Row, RolloutStatus)> = vec![
            // 1. generation not observed wins over everything, even a failed rollout.
            (Row { generation: 5, observed: 4, progressing: deadline, desired: Some(3), replicas: 3, updated: 3, available: 3 }, SpecUpdateNotObserved),
            (Row { generation: 5, observed: 4, progressing, desired: Some(3), replicas: 0, updated: 0, available: 0 }, SpecUpdateNotObserved),
            // observedGeneration above generation counts as observed (<=).
            (Row { generation: 4, observed: 5, progressing: available, desired: Some(3), replicas: 3, updated: 3, available: 3 }, Complete { name: name() }),
            // 2. ProgressDeadlineExceeded comes before the replica counts, even complete ones.
            (Row { generation: 5, observed: 5, progressing: deadline, desired: Some(3), replicas: 4, updated: 1, available: 0 }, ProgressDeadlineExceeded { name: name() }),
            (Row { generation: 5, observed: 5, progressing: deadline, desired: Some(3), replicas: 3, updated: 3, available: 3 }, ProgressDeadlineExceeded { name: name() }),
            // 3. updated below desired.
            (Row { generation: 5, observed: 5, progressing, desired: Some(3), replicas: 4, updated: 1, available: 1 }, UpdatingReplicas { name: name(), updated: 1, desired: 3 }),
            (Row { generation: 2, observed: 2, progressing: None, desired: Some(3), replicas: 0, updated: 0, available: 0 }, UpdatingReplicas { name: name(), updated: 0, desired: 3 }),
            // without spec.replicas, step 3 is skipped (kubectl checks for nil).
            (Row { generation: 2, observed: 2, progressing, desired: None, replicas: 2, updated: 1, available: 1 }, OldReplicasPendingTermination { name: name(), pending: 1 }),
            // 4. old replicas pending termination.
            (Row { generation: 5, observed: 5, progressing, desired: Some(3), replicas: 5, updated: 3, available: 3 }, OldReplicasPendingTermination { name: name(), pending: 2 }),
            (Row { generation: 5, observed: 5, progressing, desired: Some(3), replicas: 4, updated: 3, available: 1 }, OldReplicasPendingTermination { name: name(), pending: 1 }),
            // 5. updated but not yet available.
            (Row { generation: 5, observed: 5, progressing, desired: Some(3), replicas: 3, updated: 3, available: 2 }, WaitingForAvailable { name: name(), available: 2, updated: 3 }),
            (Row { generation: 5, observed: 5, progressing, desired: Some(3), replicas: 3, updated: 3, available: 0 }, WaitingForAvailable { name: name(), available: 0, updated: 3 }),
            // 6. complete, including a Deployment scaled to zero.
            (Row { generation: 5, observed: 5, progressing: available, desired: Some(3), replicas: 3, updated: 3, available: 3 }, Complete { name: name() }),
            (Row { generation: 7, observed: 7, progressing: available, desired: Some(0), replicas: 0, updated: 0, available: 0 }, Complete { name: name() }),
            // more updated than desired (a scale-down in flight) is not kubectl's business.
            (Row { generation: 5, observed: 5, progressing, desired: Some(2), replicas: 3, updated: 3, available: 3 }, Complete { name: name() }),
        ];
        for (index, (row, expected)) in table.iter().enumerate() {
            assert_eq!(rollout_status(&deployment(row)), *expected, "row {index}");
        }
    }

    #[test]
    fn messages_are_kubectls() {
        let cases = [
            (
                RolloutStatus::SpecUpdateNotObserved,
                "Waiting for deployment spec update to be observed...",
            ),
            (
                RolloutStatus::ProgressDeadlineExceeded { name: name() },
                r#"deployment "shop-green" exceeded its progress deadline"#,
            ),
            (
                RolloutStatus::UpdatingReplicas {
                    name: name(),
                    updated: 1,
                    desired: 3,
                },
                r#"Waiting for deployment "shop-green" rollout to finish: 1 out of 3 new replicas have been updated..."#,
            ),
            (
                RolloutStatus::OldReplicasPendingTermination {
                    name: name(),
                    pending: 2,
                },
                r#"Waiting for deployment "shop-green" rollout to finish: 2 old replicas are pending termination..."#,
            ),
            (
                RolloutStatus::Complete { name: name() },
                r#"deployment "shop-green" successfully rolled out"#,
            ),
        ];
        for (status, message) in cases {
            assert_eq!(status.to_string(), message);
        }
    }

    #[test]
    fn a_deployment_without_status_waits_for_the_controller() {
        let mut fresh = deployment(&Row {
            generation: 1,
            observed: 0,
            progressing: None,
            desired: Some(3),
            replicas: 0,
            updated: 0,
            available: 0,
        });
        fresh.status = None;
        assert_eq!(rollout_status(&fresh), RolloutStatus::SpecUpdateNotObserved);
        fresh.metadata.generation = None;
        assert_eq!(
            rollout_status(&fresh),
            RolloutStatus::UpdatingReplicas {
                name: name(),
                updated: 0,
                desired: 3
            }
        );
    }

    #[test]
    fn only_the_progressing_condition_can_fail_a_rollout() {
        let mut d = deployment(&Row {
            generation: 3,
            observed: 3,
            progressing: Some("NewReplicaSetAvailable"),
            desired: Some(1),
            replicas: 1,
            updated: 1,
            available: 1,
        });
        // The reason on another condition type does not count.
        let conditions = d.status.as_mut().unwrap().conditions.as_mut().unwrap();
        conditions[0].reason = Some(PROGRESS_DEADLINE_EXCEEDED.into());
        assert!(rollout_status(&d).is_done());
        assert!(!rollout_status(&d).is_failed());
    }
}
