//! `rollout status`: where an app stands, read from the cluster in one pass: which layout it
//! uses (the active Service of a blue-green pair, else the Deployment of the rolling
//! layout), which slot is live, each Deployment's image and replicas with kubectl's rollout
//! message, the rollout record if one is in progress, and the problems of the app's pods.

use std::collections::BTreeMap;

use engine_ops_rollout::platform::kube::{
    PHASE_ANNOTATION, PREVIOUS_IMAGE_ANNOTATION, PREVIOUS_SLOT_ANNOTATION, ROLLOUT_ANNOTATION,
    STARTED_ANNOTATION, rollout_status,
};
use engine_ops_rollout::{KubePlatform, Platform, PodProblem, Routing, Slot};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use serde::Serialize;

use crate::output;
use crate::{Failure, Outcome};

/// One Deployment of the app.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeploymentState {
    pub(crate) name: String,
    /// Blue-green only.
    pub(crate) slot: Option<Slot>,
    /// `live`, `standby` (not live, running), `idle` (scaled to zero) or `serving` (rolling).
    pub(crate) role: &'static str,
    pub(crate) image: Option<String>,
    pub(crate) desired: i32,
    pub(crate) ready: i32,
    pub(crate) updated: i32,
    pub(crate) available: i32,
    /// kubectl's `rollout status` message.
    pub(crate) rollout: String,
    pub(crate) rolled_out: bool,
}

/// The rollout record, and the release recorded before the last rollout.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Record {
    /// `Service shop-active` or `Deployment shop`.
    pub(crate) on: String,
    /// What the rollout in progress does; `None` when none is.
    pub(crate) in_progress: Option<String>,
    pub(crate) phase: Option<String>,
    pub(crate) started_at: Option<String>,
    pub(crate) previous_slot: Option<String>,
    pub(crate) previous_image: Option<String>,
}

/// What `rollout status` shows.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusReport {
    pub(crate) app: String,
    pub(crate) namespace: String,
    /// `blue-green` or `rolling`.
    pub(crate) layout: &'static str,
    /// Blue-green only.
    pub(crate) routing: Option<Routing>,
    pub(crate) live: Option<Slot>,
    pub(crate) deployments: Vec<DeploymentState>,
    pub(crate) record: Record,
    pub(crate) problems: Vec<PodProblem>,
}

/// The app container's image: the container named like the app, else the first.
pub(crate) fn image_of(deployment: &Deployment, app: &str) -> Option<String> {
    // Through JSON: the shape of `spec` differs between Kubernetes versions.
    let json = serde_json::to_value(deployment).ok()?;
    let containers = json["spec"]["template"]["spec"]["containers"].as_array()?;
    containers
        .iter()
        .find(|container| container["name"] == app)
        .or_else(|| containers.first())
        .and_then(|container| container["image"].as_str())
        .map(String::from)
}

fn state(
    deployment: &Deployment,
    app: &str,
    slot: Option<Slot>,
    role: &'static str,
) -> DeploymentState {
    let json = serde_json::to_value(deployment).unwrap_or_default();
    let number = |value: &serde_json::Value| value.as_i64().and_then(|n| i32::try_from(n).ok());
    let status = &json["status"];
    let verdict = rollout_status(deployment);
    DeploymentState {
        name: deployment.metadata.name.clone().unwrap_or_default(),
        slot,
        role,
        image: image_of(deployment, app),
        desired: number(&json["spec"]["replicas"]).unwrap_or(1),
        ready: number(&status["readyReplicas"]).unwrap_or(0),
        updated: number(&status["updatedReplicas"]).unwrap_or(0),
        available: number(&status["availableReplicas"]).unwrap_or(0),
        rollout: verdict.to_string(),
        rolled_out: verdict.is_done(),
    }
}

fn record(on: String, annotations: Option<&BTreeMap<String, String>>) -> Record {
    let get = |key: &str| annotations.and_then(|a| a.get(key)).cloned();
    Record {
        on,
        in_progress: get(ROLLOUT_ANNOTATION),
        phase: get(ROLLOUT_ANNOTATION).and(get(PHASE_ANNOTATION)),
        started_at: get(ROLLOUT_ANNOTATION).and(get(STARTED_ANNOTATION)),
        previous_slot: get(PREVIOUS_SLOT_ANNOTATION),
        previous_image: get(PREVIOUS_IMAGE_ANNOTATION),
    }
}

fn read_error(kind: &str, name: &str, namespace: &str, error: kube::Error) -> Failure {
    Failure::failed(format!(
        "kubernetes platform: while reading {kind} {name} in namespace {namespace}: {error}; check that the API server is reachable (`kubectl cluster-info`)"
    ))
}

/// Reads where the app stands.
pub(crate) async fn read(platform: &KubePlatform) -> Result<StatusReport, Failure> {
    let (app, namespace) = (platform.app(), platform.namespace());
    let services: Api<Service> = Api::namespaced(platform.client().clone(), namespace);
    let deployments: Api<Deployment> = Api::namespaced(platform.client().clone(), namespace);
    let active_name = format!("{app}-active");
    let active = services
        .get_opt(&active_name)
        .await
        .map_err(|e| read_error("Service", &active_name, namespace, e))?;
    let mut report = StatusReport {
        app: app.to_owned(),
        namespace: namespace.to_owned(),
        layout: "blue-green",
        routing: None,
        live: None,
        deployments: Vec::new(),
        record: record(String::new(), None),
        problems: Vec::new(),
    };
    match active {
        Some(active) => {
            let status = platform.status().await?;
            report.routing = Some(status.routing);
            report.live = status.live_slot();
            for slot in Slot::ALL {
                let name = format!("{app}-{slot}");
                let deployment = deployments
                    .get(&name)
                    .await
                    .map_err(|e| read_error("Deployment", &name, namespace, e))?;
                let desired = status.slot(slot).desired;
                let role = if report.live == Some(slot) {
                    "live"
                } else if desired == 0 {
                    "idle"
                } else {
                    "standby"
                };
                report
                    .deployments
                    .push(state(&deployment, app, Some(slot), role));
            }
            report.record = record(
                format!("Service {active_name}"),
                active.metadata.annotations.as_ref(),
            );
        }
        None => {
            let deployment = deployments
                .get_opt(app)
                .await
                .map_err(|e| read_error("Deployment", app, namespace, e))?
                .ok_or_else(|| {
                    Failure::failed(format!(
                        "no objects of app {app} in namespace {namespace}: neither Service {active_name} (blue-green) nor Deployment {app} (rolling) exists; create them with `rollout manifests blue-green --app {app} --image <image> | kubectl apply -n {namespace} -f -`"
                    ))
                })?;
            report.layout = "rolling";
            report
                .deployments
                .push(state(&deployment, app, None, "serving"));
            report.record = record(
                format!("Deployment {app}"),
                deployment.metadata.annotations.as_ref(),
            );
        }
    }
    report.problems = platform.pod_problems().await?;
    Ok(report)
}

/// Runs `status`: not ok (exit 1) when pods have problems.
pub(crate) async fn run(platform: &KubePlatform) -> Result<Outcome, Failure> {
    let report = read(platform).await?;
    Ok(Outcome {
        ok: report.problems.is_empty(),
        text: output::status(&report),
        json: serde_json::to_value(&report).unwrap_or_default(),
    })
}
