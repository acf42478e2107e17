//! `KubePlatform::rolling_update` and `undo_rolling` on the rolling layout (one Deployment
//! updated in place), through the real kube-rs client against the stand-in API server
//! (`support/kube_apiserver.rs`, not a cluster): the exact requests of an update, the undo
//! after `ProgressDeadlineExceeded` or a timeout, `kubectl rollout undo` semantics, the
//! rollout record that refuses a second update, conflicts, missing objects, and the pod
//! problems of the layout.

#![cfg(feature = "kube")]

#[path = "support/kube_apiserver.rs"]
mod kube_apiserver;

use std::time::Duration;

use engine_ops_rollout::platform::kube::manifests::{ManifestSpec, rolling};
use engine_ops_rollout::platform::kube::{
    PREVIOUS_IMAGE_ANNOTATION, ROLLOUT_ANNOTATION, STARTED_ANNOTATION,
};
use engine_ops_rollout::{
    Error, IntOrPercent, KubePlatform, Outcome, PodProblemKind, RollingEvent, RollingUpdate,
};
use kube_apiserver::{ApiServer, Kind, Recorded, Rollout};
use serde_json::{Value, json};

const NS: &str = "shop-ns";
const V1: &str = "ghcr.io/engine-ops/shop:1.0.0";
const V2: &str = "ghcr.io/engine-ops/shop:2.0.0";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop-ns/deployments/shop";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";

/// A stand-in holding the rolling objects of `shop` (3 replicas of V1, rolled out), and a
/// platform talking to it.
async fn setup() -> (ApiServer, KubePlatform) {
    let server = ApiServer::start(NS).await;
    server.create_all(&rolling(&ManifestSpec::new("shop", V1).replicas(3)).unwrap());
    let platform = KubePlatform::new(server.client(), NS, "shop");
    (server, platform)
}

fn patches(requests: &[Recorded]) -> Vec<(String, Value)> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.content_type.clone().unwrap_or_default(), r.body.clone()))
        .collect()
}

fn image(server: &ApiServer) -> Value {
    server.object(Kind::Deployment, "shop").unwrap()["spec"]["template"]["spec"]["containers"][0]
        ["image"]
        .clone()
}

fn annotations(server: &ApiServer) -> Value {
    server.object(Kind::Deployment, "shop").unwrap()["metadata"]["annotations"].clone()
}

fn quick(image: &str) -> RollingUpdate {
    RollingUpdate::new(image).timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn an_update_patches_once_watches_until_done_and_clears_its_record() {
    let (server, platform) = setup().await;
    server.set_controller_step(Duration::from_millis(50));
    let update = quick(V2)
        .max_surge(IntOrPercent::Percent(25))
        .max_unavailable(IntOrPercent::Int(0));
    let mut seen = Vec::new();
    let report = platform
        .rolling_update(&update, |event| seen.push(event.clone()))
        .await
        .unwrap();
    assert!(report.completed(), "{report}");
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(report.from_image.as_deref(), Some(V1));
    assert_eq!(report.undo, None);
    assert_eq!(report.events, seen, "the report keeps what progress saw");
    assert_eq!(
        seen[0],
        RollingEvent::Updated {
            deployment: "shop".into(),
            from_image: Some(V1.into()),
            to_image: V2.into()
        }
    );
    assert_eq!(
        seen.last().unwrap().to_string(),
        r#"deployment "shop" successfully rolled out"#
    );
    // Every status message once, in kubectl's words.
    let statuses: Vec<String> = seen[1..].iter().map(ToString::to_string).collect();
    let mut unique = statuses.clone();
    unique.dedup();
    assert_eq!(statuses, unique);

    let requests = server.requests();
    let lines: Vec<String> = requests.iter().map(Recorded::line).collect();
    assert_eq!(lines[0], format!("GET {DEPLOYMENT}"));
    assert_eq!(
        lines[1],
        format!("PATCH {DEPLOYMENT}?&fieldManager=engine-ops-rollout")
    );
    assert!(
        requests[2..requests.len() - 1]
            .iter()
            .all(|r| r.method == "GET"),
        "then only reads and watches: {lines:#?}"
    );
    assert!(requests.iter().any(Recorded::is_watch), "{lines:#?}");
    let patches = patches(&requests);
    assert_eq!(patches.len(), 2, "{patches:#?}");
    let (content_type, start) = &patches[0];
    assert_eq!(content_type, STRATEGIC);
    let rv = start["metadata"]["resourceVersion"].as_str().unwrap();
    assert!(rv.parse::<u64>().is_ok(), "conditional on the version read");
    assert_eq!(
        start["metadata"]["annotations"][ROLLOUT_ANNOTATION],
        format!("rolling to {V2}")
    );
    assert_eq!(
        start["metadata"]["annotations"][PREVIOUS_IMAGE_ANNOTATION],
        V1
    );
    assert!(
        start["metadata"]["annotations"][STARTED_ANNOTATION]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        start["spec"],
        json!({
            "template": { "spec": { "containers": [{ "name": "shop", "image": V2 }] } },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": 0 } }
        })
    );
    assert_eq!(
        patches[1],
        (
            MERGE.into(),
            json!({ "metadata": { "annotations": { ROLLOUT_ANNOTATION: null, STARTED_ANNOTATION: null } } })
        )
    );

    assert_eq!(image(&server), V2);
    assert_eq!(
        annotations(&server),
        json!({ PREVIOUS_IMAGE_ANNOTATION: V1 })
    );
    let stored = server.object(Kind::Deployment, "shop").unwrap();
    assert_eq!(
        stored["spec"]["strategy"]["rollingUpdate"],
        json!({ "maxSurge": "25%", "maxUnavailable": 0 })
    );
}

#[tokio::test]
async fn without_surge_settings_the_strategy_is_left_alone() {
    let (server, platform) = setup().await;
    platform.rolling_update(&quick(V2), |_| {}).await.unwrap();
    let (_, start) = &patches(&server.requests())[0];
    assert!(start["spec"].get("strategy").is_none(), "{start}");
}

#[tokio::test]
async fn progress_deadline_exceeded_is_undone_to_the_previous_image() {
    let (server, platform) = setup().await;
    // V2 never becomes available and the controller gives up; V1 rolls out again.
    server.set_rollout_for_image(V2, Rollout::ProgressDeadlineExceeded);
    let report = platform.rolling_update(&quick(V2), |_| {}).await.unwrap();
    let Outcome::RolledBack { reason } = &report.outcome else {
        panic!("expected an undo: {report}");
    };
    assert_eq!(
        reason,
        r#"deployment "shop" exceeded its progress deadline (ProgressDeadlineExceeded)"#
    );
    let undo = report.undo.clone().unwrap();
    assert_eq!(undo.from_image.as_deref(), Some(V2));
    assert_eq!(undo.to_image, V1);
    assert_eq!(report.warning, None, "the undo itself rolled out");
    assert!(report.events.iter().any(|e| matches!(
        e,
        RollingEvent::Undoing { to_image, .. } if to_image == V1
    )));
    assert_eq!(
        report.events.last().unwrap().to_string(),
        r#"deployment "shop" successfully rolled out"#
    );

    // The image was patched back, and the bad one is now "previous" (as kubectl undo does).
    assert_eq!(image(&server), V1);
    assert_eq!(
        annotations(&server),
        json!({ PREVIOUS_IMAGE_ANNOTATION: V2 })
    );
    let images: Vec<Value> = patches(&server.requests())
        .iter()
        .filter(|(content_type, _)| content_type == STRATEGIC)
        .map(|(_, body)| body["spec"]["template"]["spec"]["containers"][0]["image"].clone())
        .collect();
    assert_eq!(images, [json!(V2), json!(V1)]);
}

#[tokio::test]
async fn an_update_that_does_not_finish_in_time_is_undone() {
    let (server, platform) = setup().await;
    server.set_rollout_for_image(V2, Rollout::Unavailable);
    let update = RollingUpdate::new(V2).timeout(Duration::from_millis(400));
    let report = platform.rolling_update(&update, |_| {}).await.unwrap();
    let Outcome::RolledBack { reason } = &report.outcome else {
        panic!("expected an undo: {report}");
    };
    assert!(
        reason.starts_with("not rolled out within 400ms"),
        "{reason}"
    );
    assert!(
        reason.contains(r#"0 of 3 updated replicas are available"#),
        "the last status is named: {reason}"
    );
    assert_eq!(image(&server), V1);
    assert!(annotations(&server).get(ROLLOUT_ANNOTATION).is_none());
}

#[tokio::test]
async fn an_undo_that_does_not_roll_out_either_is_a_warning() {
    let (server, platform) = setup().await;
    server.set_rollout_for_image(V2, Rollout::ProgressDeadlineExceeded);
    server.set_rollout_for_image(V1, Rollout::Unavailable);
    let update = RollingUpdate::new(V2).timeout(Duration::from_millis(500));
    let report = platform.rolling_update(&update, |_| {}).await.unwrap();
    assert!(!report.completed());
    let warning = report.warning.unwrap();
    assert!(
        warning.starts_with(&format!(
            "{V1} was restored, but its rollout did not finish"
        )),
        "{warning}"
    );
    assert!(warning.contains("kubectl rollout status deployment/shop -n shop-ns"));
    assert_eq!(image(&server), V1);
}

#[tokio::test]
async fn undo_goes_back_and_forth_as_kubectl_rollout_undo_does() {
    let (server, platform) = setup().await;
    let error = platform.undo_rolling().await.unwrap_err();
    let Error::NoRollbackTarget { reason } = &error else {
        panic!("expected no target, got {error:?}");
    };
    assert!(
        reason.contains("kubectl rollout undo deployment/shop -n shop-ns"),
        "{reason}"
    );
    assert!(
        patches(&server.requests()).is_empty(),
        "nothing was changed"
    );

    platform.rolling_update(&quick(V2), |_| {}).await.unwrap();
    let undo = platform.undo_rolling().await.unwrap();
    assert_eq!(
        (undo.from_image.as_deref(), undo.to_image.as_str()),
        (Some(V2), V1)
    );
    assert_eq!(image(&server), V1);
    let again = platform.undo_rolling().await.unwrap();
    assert_eq!(
        (again.from_image.as_deref(), again.to_image.as_str()),
        (Some(V1), V2)
    );
    assert_eq!(image(&server), V2);
}

#[tokio::test]
async fn a_second_update_while_one_is_recorded_is_refused() {
    let (server, platform) = setup().await;
    server.patch(
        Kind::Deployment,
        "shop",
        json!({ "metadata": { "annotations": {
            ROLLOUT_ANNOTATION: "rolling to shop:9",
            STARTED_ANNOTATION: "2026-01-01T00:00:00Z",
        } } }),
    );
    server.take_requests();
    let error = platform
        .rolling_update(&quick(V2), |_| {})
        .await
        .unwrap_err();
    let Error::Busy { running } = &error else {
        panic!("expected busy, got {error:?}");
    };
    assert!(
        running.starts_with("rolling to shop:9 on Deployment shop, started 2026-01-01T00:00:00Z"),
        "{running}"
    );
    assert!(
        running.contains("kubectl annotate deployment shop -n shop-ns engine-ops.dev/rollout-"),
        "{running}"
    );
    assert!(patches(&server.requests()).is_empty());
    assert_eq!(image(&server), V1);
}

#[tokio::test]
async fn conflicts_on_the_start_are_read_again_and_retried() {
    let (server, platform) = setup().await;
    server.conflict_next_patches(Kind::Deployment, "shop", 2);
    let report = platform.rolling_update(&quick(V2), |_| {}).await.unwrap();
    assert!(report.completed());
    let lines: Vec<String> = server.requests().iter().map(Recorded::line).collect();
    let patch = format!("PATCH {DEPLOYMENT}?&fieldManager=engine-ops-rollout");
    let get = format!("GET {DEPLOYMENT}");
    assert_eq!(
        lines[..6],
        [
            get.clone(),
            patch.clone(),
            get.clone(),
            patch.clone(),
            get,
            patch
        ],
        "each attempt reads the Deployment again"
    );
}

#[tokio::test]
async fn a_missing_deployment_says_how_to_create_it() {
    let server = ApiServer::start(NS).await;
    let platform = KubePlatform::new(server.client(), NS, "shop");
    let error = platform
        .rolling_update(&quick(V2), |_| {})
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("kubernetes platform: while reading Deployment shop: Deployment shop does not exist in namespace shop-ns"),
        "{message}"
    );
    assert!(
        message.contains("rollout manifests rolling --app shop"),
        "{message}"
    );
}

#[tokio::test]
async fn updates_that_cannot_work_send_no_request() {
    let (server, platform) = setup().await;
    for update in [
        RollingUpdate::new(""),
        quick(V2).timeout(Duration::ZERO),
        quick(V2)
            .max_surge(IntOrPercent::Int(0))
            .max_unavailable(IntOrPercent::Percent(0)),
    ] {
        let error = platform.rolling_update(&update, |_| {}).await.unwrap_err();
        assert!(error.is_bad_input(), "{error}");
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn pod_problems_are_listed_by_the_app_label() {
    let (server, platform) = setup().await;
    server.create_pod(
        "shop-1",
        &[("app", "shop")],
        "shop",
        V1,
        json!({ "containerStatuses": [{
            "name": "shop", "image": V1, "imageID": "", "ready": false, "restartCount": 3,
            "state": { "waiting": { "reason": "CrashLoopBackOff" } }
        }] }),
    );
    server.create_pod(
        "shop-2",
        &[("app", "shop")],
        "shop",
        V1,
        json!({ "phase": "Running" }),
    );
    server.create_pod(
        "other-1",
        &[("app", "other")],
        "other",
        V1,
        json!({ "containerStatuses": [{
            "name": "other", "image": V1, "imageID": "", "ready": false, "restartCount": 0,
            "state": { "waiting": { "reason": "ErrImagePull" } }
        }] }),
    );
    let problems = platform.pod_problems().await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].pod, "shop-1");
    assert_eq!(problems[0].kind, PodProblemKind::CrashLoopBackOff);
    assert_eq!(problems[0].restarts, Some(3));
    assert_eq!(problems[0].slot, None, "the rolling layout has no slots");
    let lines: Vec<String> = server.requests().iter().map(Recorded::line).collect();
    assert_eq!(
        lines,
        ["GET /api/v1/namespaces/shop-ns/pods?&labelSelector=app%3Dshop"]
    );
}
