//! `KubePlatform` through the real kube-rs client against the stand-in API server
//! (`support/kube_apiserver.rs`, not a cluster): live-slot detection, a blue-green release and
//! its rollbacks with the exact requests sent, conflicts, deadlines, a failed rollout, missing
//! objects, traffic splits, the rollout record, and a kubeconfig read through `KUBECONFIG`.

#![cfg(feature = "kube")]
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "support/kube_apiserver.rs"]
mod kube_apiserver;

use std::time::Duration;

use engine_ops_rollout::platform::kube::manifests::{ManifestSpec, blue_green};
use engine_ops_rollout::platform::kube::{
    CANARY_WEIGHT_ANNOTATION, PREVIOUS_SLOT_ANNOTATION, ROLLOUT_ANNOTATION, rollout_status,
};
use engine_ops_rollout::{Error, KubePlatform, Platform, Routing, Slot, SlotStatus, TrafficStats};
use kube_apiserver::{ApiServer, Kind, Recorded, Rollout};
use serde_json::{Value, json};

const NS: &str = "shop-ns";
const V1: &str = "ghcr.io/engine-ops/shop:1.0.0";
const V2: &str = "ghcr.io/engine-ops/shop:2.0.0";
const SERVICES: &str = "/api/v1/namespaces/shop-ns/services";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/shop-ns/deployments";
const FM: &str = "fieldManager=engine-ops-rollout";
const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";

/// A stand-in holding the blue-green objects of `shop` (blue live with 3 replicas of V1),
/// and a platform talking to it.
async fn setup() -> (ApiServer, KubePlatform) {
    let server = ApiServer::start(NS).await;
    server.create_all(&blue_green(&ManifestSpec::new("shop", V1).replicas(3)).unwrap());
    let platform = KubePlatform::new(server.client(), NS, "shop");
    (server, platform)
}

fn get(path: String) -> String {
    format!("GET {path}")
}

fn patch(path: String) -> String {
    // kube-rs builds the query on `path?`, hence the empty first pair.
    format!("PATCH {path}?&{FM}")
}

fn watch(name: &str, timeout: u32) -> String {
    format!(
        "GET {DEPLOYMENTS}?&watch=true&timeoutSeconds={timeout}&fieldSelector=metadata.name%3D{name}&allowWatchBookmarks=true&resourceVersion=N"
    )
}

fn lines(requests: &[Recorded]) -> Vec<String> {
    requests.iter().map(Recorded::line).collect()
}

/// The bodies of the PATCH requests, with their content types.
fn patches(requests: &[Recorded]) -> Vec<(String, Value)> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.content_type.clone().unwrap_or_default(), r.body.clone()))
        .collect()
}

fn selector_patch(version: &str) -> Value {
    json!({ "spec": { "selector": { "app": "shop", "version": version } } })
}

fn switch_patch(version: &str) -> Value {
    json!({
        "metadata": { "annotations": { CANARY_WEIGHT_ANNOTATION: null } },
        "spec": { "selector": { "app": "shop", "version": version } }
    })
}

fn replicas_patch(n: i32) -> Value {
    json!({ "spec": { "replicas": n } })
}

fn selector(server: &ApiServer, service: &str) -> Value {
    server.object(Kind::Service, service).unwrap()["spec"]["selector"].clone()
}

#[tokio::test]
async fn the_live_slot_is_read_from_the_active_service() {
    let (server, platform) = setup().await;
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::All { slot: Slot::Blue });
    assert_eq!(
        status.slot(Slot::Blue),
        &SlotStatus {
            slot: Slot::Blue,
            version: Some(V1.into()),
            desired: 3,
            running: 3,
            ready: 3
        }
    );
    assert_eq!(
        status.slot(Slot::Green),
        &SlotStatus {
            slot: Slot::Green,
            version: None,
            desired: 0,
            running: 0,
            ready: 0
        }
    );
    assert_eq!(
        lines(&server.take_requests()),
        [
            get(format!("{SERVICES}/shop-active")),
            get(format!("{DEPLOYMENTS}/shop-blue")),
            get(format!("{DEPLOYMENTS}/shop-green")),
        ]
    );

    // Another client (kubectl, another driver) changes the selector: the platform follows.
    server.patch(Kind::Service, "shop-active", selector_patch("green"));
    let routing = platform.status().await.unwrap().routing;
    assert_eq!(routing, Routing::All { slot: Slot::Green });
    server.patch(
        Kind::Service,
        "shop-active",
        json!({ "spec": { "selector": { "version": null } } }),
    );
    assert_eq!(platform.status().await.unwrap().routing, Routing::Pooled);
    server.patch(
        Kind::Service,
        "shop-active",
        json!({ "metadata": { "annotations": { CANARY_WEIGHT_ANNOTATION: "green=25" } } }),
    );
    assert_eq!(
        platform.status().await.unwrap().routing,
        Routing::Split {
            canary: Slot::Green,
            percent: 25
        }
    );

    // No counters on Kubernetes, and no request to find that out.
    server.take_requests();
    assert_eq!(
        platform.traffic(Slot::Blue).await.unwrap(),
        TrafficStats::default()
    );
    assert!(server.requests().is_empty());
    assert_eq!(platform.name(), "kubernetes");
}

#[tokio::test]
async fn a_blue_green_release_and_its_rollbacks_send_exactly_these_requests() {
    let (server, platform) = setup().await;
    // Slow enough steps that wait_ready reads the Deployment before the controller moves.
    server.set_controller_step(Duration::from_millis(150));

    // 1. Deploy v2 to the idle slot: its image and size, and the preview Service on it.
    platform.deploy(Slot::Green, V2, 3).await.unwrap();
    let requests = server.take_requests();
    assert_eq!(
        lines(&requests),
        [
            get(format!("{SERVICES}/shop-active")),
            get(format!("{DEPLOYMENTS}/shop-green")),
            patch(format!("{DEPLOYMENTS}/shop-green")),
            patch(format!("{SERVICES}/shop-preview")),
        ]
    );
    assert_eq!(
        patches(&requests),
        [
            (
                STRATEGIC.into(),
                json!({ "spec": {
                    "replicas": 3,
                    "template": { "spec": { "containers": [{ "name": "shop", "image": V2 }] } }
                } })
            ),
            (MERGE.into(), selector_patch("green")),
        ]
    );
    let green = server.deployment("shop-green").unwrap();
    assert_eq!(green.metadata.generation, Some(2));
    assert_eq!(
        green.metadata.labels.unwrap()["version"],
        "green",
        "a patch keeps what it does not name"
    );
    assert_eq!(
        platform.preview_url(Slot::Green).await.unwrap().as_deref(),
        Some("http://shop-preview.shop-ns.svc:8080")
    );
    assert_eq!(platform.preview_url(Slot::Blue).await.unwrap(), None);
    server.take_requests();

    // 2. Wait for the rollout: one read, then one watch until kubectl would say done.
    platform
        .wait_ready(Slot::Green, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        lines(&server.take_requests()),
        [
            get(format!("{DEPLOYMENTS}/shop-green")),
            watch("shop-green", 31)
        ]
    );
    let green = server.deployment("shop-green").unwrap();
    assert!(rollout_status(&green).is_done());

    // 3. Switch: the active Service's selector, then the preview onto the old slot.
    platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    let requests = server.take_requests();
    assert_eq!(
        lines(&requests),
        [
            patch(format!("{SERVICES}/shop-active")),
            patch(format!("{SERVICES}/shop-preview")),
        ]
    );
    assert_eq!(
        patches(&requests),
        [
            (MERGE.into(), switch_patch("green")),
            (MERGE.into(), selector_patch("blue")),
        ]
    );
    assert_eq!(
        selector(&server, "shop-active"),
        json!({ "app": "shop", "version": "green" })
    );
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::All { slot: Slot::Green });
    assert_eq!(status.slot(Slot::Green).version.as_deref(), Some(V2));
    assert_eq!(status.slot(Slot::Green).ready, 3);
    server.take_requests();

    // 4. Roll back while blue still runs: route back, nothing else.
    platform
        .route(Routing::All { slot: Slot::Blue })
        .await
        .unwrap();
    let requests = server.take_requests();
    assert_eq!(
        patches(&requests),
        [
            (MERGE.into(), switch_patch("blue")),
            (MERGE.into(), selector_patch("green")),
        ]
    );
    assert_eq!(
        platform.status().await.unwrap().routing,
        Routing::All { slot: Slot::Blue }
    );

    // 5. Forward again, then stop the old slot: scaled to zero, not deleted.
    platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    server.take_requests();
    platform.stop(Slot::Blue).await.unwrap();
    let requests = server.take_requests();
    assert_eq!(
        lines(&requests),
        [
            get(format!("{SERVICES}/shop-active")),
            get(format!("{DEPLOYMENTS}/shop-blue")),
            patch(format!("{DEPLOYMENTS}/shop-blue")),
        ]
    );
    assert_eq!(patches(&requests), [(MERGE.into(), replicas_patch(0))]);
    platform
        .wait_ready(Slot::Blue, Duration::from_secs(30))
        .await
        .unwrap();
    let status = platform.status().await.unwrap();
    assert_eq!(status.slot(Slot::Blue).desired, 0);
    assert_eq!(status.slot(Slot::Blue).version, None);
    server.take_requests();

    // 6. Roll back after the stop: scale the old slot up, wait, route back.
    platform.scale(Slot::Blue, 3).await.unwrap();
    assert_eq!(
        patches(&server.take_requests()),
        [(MERGE.into(), replicas_patch(3))]
    );
    platform
        .wait_ready(Slot::Blue, Duration::from_secs(30))
        .await
        .unwrap();
    platform
        .route(Routing::All { slot: Slot::Blue })
        .await
        .unwrap();
    let status = platform.status().await.unwrap();
    assert_eq!(status.routing, Routing::All { slot: Slot::Blue });
    assert_eq!(status.slot(Slot::Blue).version.as_deref(), Some(V1));
    assert_eq!(status.slot(Slot::Blue).ready, 3);
    assert_eq!(
        selector(&server, "shop-preview"),
        json!({ "app": "shop", "version": "green" })
    );
}

#[tokio::test]
async fn a_conflict_on_the_selector_patch_is_retried() {
    let (server, platform) = setup().await;
    server.conflict_next_patches(Kind::Service, "shop-active", 2);
    platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    assert_eq!(
        lines(&server.take_requests()),
        [
            patch(format!("{SERVICES}/shop-active")),
            patch(format!("{SERVICES}/shop-active")),
            patch(format!("{SERVICES}/shop-active")),
            patch(format!("{SERVICES}/shop-preview")),
        ]
    );
    assert_eq!(
        selector(&server, "shop-active"),
        json!({ "app": "shop", "version": "green" })
    );
}

#[tokio::test]
async fn conflicts_that_do_not_stop_are_reported_with_the_verb_and_the_object() {
    let (server, platform) = setup().await;
    server.conflict_next_patches(Kind::Service, "shop-active", 100);
    let error = platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap_err();
    let Error::Platform {
        platform: name,
        operation,
        message,
    } = &error
    else {
        panic!("expected a platform error, got {error:?}");
    };
    assert_eq!(name, "kubernetes");
    assert_eq!(operation, "patching Service shop-active");
    assert!(message.contains("409 Conflict 5 times"), "{message}");
    assert_eq!(server.take_requests().len(), 5);
    assert_eq!(
        selector(&server, "shop-active"),
        json!({ "app": "shop", "version": "blue" })
    );
}

#[tokio::test]
async fn a_slot_that_never_becomes_available_hits_the_deadline_and_traffic_stays() {
    let (server, platform) = setup().await;
    server.set_rollout("shop-green", Rollout::Unavailable);
    platform.deploy(Slot::Green, V2, 3).await.unwrap();
    let deadline = Duration::from_secs(1);
    let error = platform
        .wait_ready(Slot::Green, deadline)
        .await
        .unwrap_err();
    let Error::Deadline { what, waited } = &error else {
        panic!("expected a deadline, got {error:?}");
    };
    assert_eq!(*waited, deadline);
    assert!(what.starts_with("slot green ready ("), "{what}");
    assert!(
        what.contains(
            r#"deployment "shop-green" rollout to finish: 0 of 3 updated replicas are available"#
        ),
        "{what}"
    );
    println!("{error}");

    // The driver keeps traffic where it is: the selector was never patched.
    let requests = server.requests();
    assert!(requests.iter().any(Recorded::is_watch));
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with("/shop-active")),
        "{:#?}",
        lines(&requests)
    );
    assert_eq!(
        platform.status().await.unwrap().routing,
        Routing::All { slot: Slot::Blue }
    );
}

#[tokio::test]
async fn progress_deadline_exceeded_fails_at_once() {
    let (server, platform) = setup().await;
    server.set_rollout("shop-green", Rollout::ProgressDeadlineExceeded);
    platform.deploy(Slot::Green, V2, 3).await.unwrap();
    // A deadline this long would fail the test as a Deadline if the failure were not seen.
    let error = platform
        .wait_ready(Slot::Green, Duration::from_secs(600))
        .await
        .unwrap_err();
    let Error::Platform {
        operation, message, ..
    } = &error
    else {
        panic!("expected a platform error, got {error:?}");
    };
    assert_eq!(operation, "waiting for Deployment shop-green to roll out");
    assert!(message.contains("ProgressDeadlineExceeded"), "{message}");
    assert!(
        message.contains(r#"deployment "shop-green" exceeded its progress deadline"#),
        "{message}"
    );
}

#[tokio::test]
async fn a_deployment_deleted_while_waiting_fails_at_once() {
    let (server, platform) = setup().await;
    server.set_rollout("shop-green", Rollout::Unavailable);
    platform.deploy(Slot::Green, V2, 3).await.unwrap();
    let waiting = tokio::spawn({
        let platform = platform.clone();
        async move {
            platform
                .wait_ready(Slot::Green, Duration::from_secs(600))
                .await
        }
    });
    // Delete once the watch is open.
    while !server.requests().iter().any(Recorded::is_watch) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.delete(Kind::Deployment, "shop-green");
    let error = waiting.await.unwrap().unwrap_err();
    assert!(
        error.to_string().contains("deleted while waiting"),
        "{error}"
    );
}

#[tokio::test]
async fn missing_objects_are_named_with_how_to_create_them() {
    // Nothing at all.
    let server = ApiServer::start(NS).await;
    let platform = KubePlatform::new(server.client(), NS, "shop");
    let error = platform.status().await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("kubernetes platform: while reading Service shop-active: "),
        "{message}"
    );
    assert!(
        message.contains("does not exist in namespace shop-ns"),
        "{message}"
    );
    assert!(
        message.contains("`rollout manifests blue-green | kubectl apply -n shop-ns -f -`"),
        "{message}"
    );

    // No green Deployment.
    let (server, platform) = setup().await;
    server.delete(Kind::Deployment, "shop-green");
    let error = platform.deploy(Slot::Green, V2, 3).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("while reading Deployment shop-green: Deployment shop-green does not exist"),
        "{error}"
    );
    assert!(
        !server.requests().iter().any(|r| r.method == "PATCH"),
        "nothing is patched before every object is found"
    );

    // No preview Service: reading it, and patching it after the Deployment was patched,
    // each name the verb and the object of the failed call.
    server.delete(Kind::Service, "shop-preview");
    let error = platform.preview_url(Slot::Green).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("while reading Service shop-preview"),
        "{error}"
    );
    let (server, platform) = setup().await;
    server.delete(Kind::Service, "shop-preview");
    let error = platform.deploy(Slot::Green, V2, 3).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("while patching Service shop-preview: Service shop-preview does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn the_live_slot_is_neither_replaced_nor_stopped() {
    let (server, platform) = setup().await;
    let error = platform.deploy(Slot::Blue, V2, 3).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::SlotLive {
                slot: Slot::Blue,
                operation: "deploy to"
            }
        ),
        "{error:?}"
    );
    let error = platform.stop(Slot::Blue).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::SlotLive {
                slot: Slot::Blue,
                operation: "stop"
            }
        ),
        "{error:?}"
    );
    assert!(!server.requests().iter().any(|r| r.method == "PATCH"));
    assert_eq!(
        server.deployment("shop-blue").unwrap().metadata.generation,
        Some(1)
    );
}

#[tokio::test]
async fn a_split_scales_by_replica_ratio_behind_a_pooled_selector() {
    let (server, platform) = setup().await;
    platform.deploy(Slot::Green, V2, 0).await.unwrap();
    server.take_requests();

    // 34 % of 3 replicas: ceil(1.02) = 2 canary pods, 1 stable. Grow, pool, then shrink.
    let split = |percent| Routing::Split {
        canary: Slot::Green,
        percent,
    };
    platform.route(split(34)).await.unwrap();
    let requests = server.take_requests();
    assert_eq!(
        lines(&requests),
        [
            get(format!("{SERVICES}/shop-active")),
            get(format!("{DEPLOYMENTS}/shop-green")),
            get(format!("{DEPLOYMENTS}/shop-blue")),
            patch(format!("{DEPLOYMENTS}/shop-green")),
            patch(format!("{SERVICES}/shop-active")),
            patch(format!("{DEPLOYMENTS}/shop-blue")),
        ]
    );
    assert_eq!(
        patches(&requests),
        [
            (MERGE.into(), replicas_patch(2)),
            (
                MERGE.into(),
                json!({
                    "metadata": { "annotations": { CANARY_WEIGHT_ANNOTATION: "green=34" } },
                    "spec": { "selector": { "app": "shop", "version": null } }
                })
            ),
            (MERGE.into(), replicas_patch(1)),
        ]
    );
    assert_eq!(selector(&server, "shop-active"), json!({ "app": "shop" }));
    assert_eq!(platform.status().await.unwrap().routing, split(34));

    // From a split, the total is both slots: 100 % moves every replica to the canary.
    platform.route(split(100)).await.unwrap();
    let status = platform.status().await.unwrap();
    assert_eq!(status.slot(Slot::Green).desired, 3);
    assert_eq!(status.slot(Slot::Blue).desired, 0);
    assert_eq!(status.routing, split(100));
    assert_eq!(status.live_slot(), Some(Slot::Green));

    // Pooled keeps the sizes; All puts `version` back and drops the weight.
    platform.route(Routing::Pooled).await.unwrap();
    assert_eq!(platform.status().await.unwrap().routing, Routing::Pooled);
    platform
        .route(Routing::All { slot: Slot::Green })
        .await
        .unwrap();
    let active = server.service("shop-active").unwrap();
    assert!(
        !active
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(CANARY_WEIGHT_ANNOTATION)
    );
    assert_eq!(
        selector(&server, "shop-active"),
        json!({ "app": "shop", "version": "green" })
    );

    // Nonsense is refused before anything is sent.
    server.take_requests();
    assert!(platform.route(split(101)).await.unwrap_err().is_bad_input());
    assert!(
        platform
            .route(Routing::None)
            .await
            .unwrap_err()
            .is_bad_input()
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn the_rollout_record_lets_the_next_command_detect_a_crashed_driver() {
    let (server, platform) = setup().await;
    assert_eq!(platform.rollout_in_progress().await.unwrap(), None);
    platform.begin_rollout("blue-green to 2.0.0").await.unwrap();

    // The driver "crashes"; the next command, with its own client, finds the record.
    drop(platform);
    let next = KubePlatform::new(server.client(), NS, "shop");
    let record = next.rollout_in_progress().await.unwrap().unwrap();
    assert_eq!(record.description, "blue-green to 2.0.0");
    assert_eq!(record.phase, "started");
    assert_eq!(record.previous_slot, Some(Slot::Blue));
    assert_eq!(record.previous_image.as_deref(), Some(V1));
    assert!(
        record
            .started_at
            .as_deref()
            .is_some_and(|at| at.ends_with('Z'))
    );

    let error = next.begin_rollout("blue-green to 3.0.0").await.unwrap_err();
    let Error::Busy { running } = &error else {
        panic!("expected busy, got {error:?}");
    };
    assert!(
        running.starts_with("blue-green to 2.0.0, phase started"),
        "{running}"
    );
    assert!(
        running.contains("kubectl annotate service shop-active engine-ops.dev/rollout-"),
        "{running}"
    );

    next.set_rollout_phase("switched").await.unwrap();
    assert_eq!(
        next.rollout_in_progress().await.unwrap().unwrap().phase,
        "switched"
    );
    next.finish_rollout().await.unwrap();
    assert_eq!(next.rollout_in_progress().await.unwrap(), None);
    let annotations = server
        .service("shop-active")
        .unwrap()
        .metadata
        .annotations
        .unwrap();
    assert!(!annotations.contains_key(ROLLOUT_ANNOTATION));
    assert_eq!(annotations[PREVIOUS_SLOT_ANNOTATION], "blue");
    next.begin_rollout("blue-green to 3.0.0").await.unwrap();
}

#[tokio::test]
async fn two_drivers_beginning_at_once_cannot_both_win() {
    let (server, first) = setup().await;
    let second = KubePlatform::new(server.client(), NS, "shop");
    for round in 0..5 {
        let (first_name, second_name) = (format!("first {round}"), format!("second {round}"));
        let (a, b) = tokio::join!(
            first.begin_rollout(&first_name),
            second.begin_rollout(&second_name)
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "round {round}: exactly one may begin: {a:?} {b:?}"
        );
        let loser = a.err().or(b.err()).unwrap();
        assert!(matches!(loser, Error::Busy { .. }), "{loser:?}");
        first.finish_rollout().await.unwrap();
    }
}

#[tokio::test]
async fn try_default_reads_the_kubeconfig_named_by_kubeconfig() {
    const CHILD: &str = "ENGINE_OPS_KUBECONFIG_CHILD";
    if std::env::var_os(CHILD).is_some() {
        // In the child process: the configuration comes from KUBECONFIG alone.
        let platform = KubePlatform::try_default(None, "shop").await.unwrap();
        assert_eq!(platform.namespace(), NS, "the context's namespace");
        let status = platform.status().await.unwrap();
        assert_eq!(status.routing, Routing::All { slot: Slot::Blue });
        let other = KubePlatform::try_default(Some("elsewhere"), "shop")
            .await
            .unwrap();
        assert_eq!(other.namespace(), "elsewhere");
        return;
    }
    let (server, _) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path());
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "try_default_reads_the_kubeconfig_named_by_kubeconfig",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    let requests = server.requests();
    let read = requests
        .iter()
        .find(|r| r.path == format!("{SERVICES}/shop-active"))
        .expect("the child read the active Service");
    assert_eq!(
        read.authorization.as_deref(),
        Some("Bearer stand-in-token"),
        "the kubeconfig's credentials are used"
    );
}

#[tokio::test]
async fn try_default_without_any_configuration_says_what_to_set() {
    const CHILD: &str = "ENGINE_OPS_NO_KUBECONFIG_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let error = KubePlatform::try_default(None, "shop").await.unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("while loading the Kubernetes client configuration"),
            "{message}"
        );
        assert!(message.contains("set KUBECONFIG"), "{message}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "try_default_without_any_configuration_says_what_to_set",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("KUBECONFIG", dir.path().join("absent"))
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
