//! The stand-in API server itself (`support/kube_apiserver.rs`), through the real kube-rs
//! client: the `KubePlatform` tests are only as good as its Kubernetes semantics, so those
//! are checked here: `Status` bodies, resourceVersion and generation, watches, conflicts,
//! patch flavours, the fake controller and the request log.

#![cfg(feature = "kube")]

#[path = "support/kube_apiserver.rs"]
mod kube_apiserver;

use std::time::Duration;

use engine_ops_rollout::platform::kube::manifests::{ManifestSpec, blue_green};
use engine_ops_rollout::platform::kube::{RolloutStatus, rollout_status};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube_apiserver::{ApiServer, Kind, Rollout};
use serde_json::{Value, json};

const NS: &str = "shop-ns";

async fn setup() -> (ApiServer, Api<Deployment>, Api<Service>) {
    let server = ApiServer::start(NS).await;
    server.create_all(
        &blue_green(&ManifestSpec::new("shop", "ghcr.io/engine-ops/shop:1.0.0")).unwrap(),
    );
    let client = server.client();
    (
        server,
        Api::namespaced(client.clone(), NS),
        Api::namespaced(client, NS),
    )
}

fn api_status(error: kube::Error) -> kube::core::Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv(object: &impl kube::Resource) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn missing_objects_are_404_with_a_status_body() {
    let (_server, deployments, services) = setup().await;
    let status = api_status(deployments.get("nope").await.unwrap_err());
    assert_eq!(status.code, 404);
    assert_eq!(status.reason, "NotFound");
    assert_eq!(status.message, r#"deployments.apps "nope" not found"#);
    assert_eq!(status.details.unwrap().kind, "deployments");
    let status = api_status(services.get("nope").await.unwrap_err());
    assert_eq!(status.message, r#"services "nope" not found"#);
    // Another namespace holds nothing.
    let elsewhere: Api<Service> = Api::namespaced(services.into_client(), "elsewhere");
    assert_eq!(
        api_status(elsewhere.get("shop-active").await.unwrap_err()).code,
        404
    );
}

#[tokio::test]
async fn changes_bump_the_resource_version_and_spec_changes_the_generation() {
    let (server, deployments, services) = setup().await;
    // Keep the controller still: its status updates would bump the resourceVersion too.
    server.set_controller_step(Duration::from_secs(600));
    let before = deployments.get("shop-green").await.unwrap();
    assert_eq!(before.metadata.generation, Some(1));
    let pp = PatchParams::default();

    let scaled = deployments
        .patch(
            "shop-green",
            &pp,
            &Patch::Merge(json!({ "spec": { "replicas": 2 } })),
        )
        .await
        .unwrap();
    assert!(rv(&scaled) > rv(&before));
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(server.resource_version(), rv(&scaled));

    // The same patch again changes nothing.
    let again = deployments
        .patch(
            "shop-green",
            &pp,
            &Patch::Merge(json!({ "spec": { "replicas": 2 } })),
        )
        .await
        .unwrap();
    assert_eq!(rv(&again), rv(&scaled));
    assert_eq!(again.metadata.generation, Some(2));

    // Metadata changes bump the resourceVersion, not the generation.
    let annotated = deployments
        .patch(
            "shop-green",
            &pp,
            &Patch::Merge(json!({ "metadata": { "annotations": { "a": "b" } } })),
        )
        .await
        .unwrap();
    assert!(rv(&annotated) > rv(&again));
    assert_eq!(annotated.metadata.generation, Some(2));

    // Services have no generation; null deletes a key (RFC 7386).
    let service = services
        .patch(
            "shop-active",
            &pp,
            &Patch::Merge(json!({ "spec": { "selector": { "version": null } } })),
        )
        .await
        .unwrap();
    assert_eq!(
        service.spec.unwrap().selector.unwrap(),
        [("app".to_string(), "shop".to_string())].into()
    );
}

#[tokio::test]
async fn watches_stream_the_events_after_the_given_resource_version() {
    let (server, deployments, _) = setup().await;
    let start = deployments.get("shop-blue").await.unwrap();
    server.patch(
        Kind::Deployment,
        "shop-blue",
        json!({ "metadata": { "labels": { "step": "1" } } }),
    );
    server.patch(
        Kind::Service,
        "shop-active",
        json!({ "metadata": { "labels": { "step": "1" } } }),
    );
    server.patch(
        Kind::Deployment,
        "shop-green",
        json!({ "metadata": { "labels": { "step": "1" } } }),
    );
    let params = WatchParams::default()
        .fields("metadata.name=shop-blue")
        .timeout(1);
    let events: Vec<_> = deployments
        .watch(&params, &rv(&start).to_string())
        .await
        .unwrap()
        .collect()
        .await;
    // Only shop-blue's change, after the given version; the stream ends at the timeout.
    assert_eq!(events.len(), 1, "{events:?}");
    let Ok(WatchEvent::Modified(changed)) = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(changed.metadata.labels.as_ref().unwrap()["step"], "1");
    assert!(rv(changed) > rv(&start));

    // From version 0: the current objects first, as ADDED.
    let all = WatchParams::default().timeout(1);
    let events: Vec<_> = deployments.watch(&all, "0").await.unwrap().collect().await;
    let added: Vec<String> = events
        .iter()
        .map(|e| match e {
            Ok(WatchEvent::Added(d)) => d.metadata.name.clone().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(added, ["shop-blue", "shop-green"]);
}

#[tokio::test]
async fn a_watch_sees_changes_made_while_it_is_open() {
    let (server, deployments, _) = setup().await;
    let start = deployments.get("shop-green").await.unwrap();
    let params = WatchParams::default()
        .fields("metadata.name=shop-green")
        .timeout(30);
    let stream = deployments
        .watch(&params, &rv(&start).to_string())
        .await
        .unwrap();
    let mut stream = std::pin::pin!(stream);
    server.delete(Kind::Deployment, "shop-green");
    let event = stream.next().await.unwrap().unwrap();
    assert!(matches!(event, WatchEvent::Deleted(_)), "{event:?}");
}

#[tokio::test]
async fn lists_hold_the_items_and_the_resource_version() {
    let (server, deployments, services) = setup().await;
    let list = deployments.list(&ListParams::default()).await.unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .map(|d| d.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["shop-blue", "shop-green"]);
    assert_eq!(
        list.metadata.resource_version,
        Some(server.resource_version().to_string())
    );
    let one = services
        .list(&ListParams::default().fields("metadata.name=shop-preview"))
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
}

#[tokio::test]
async fn conflicts_are_injected_and_resource_versions_are_preconditions() {
    let (server, _, services) = setup().await;
    let pp = PatchParams::default();
    let body = Patch::Merge(json!({ "metadata": { "labels": { "x": "1" } } }));
    server.conflict_next_patches(Kind::Service, "shop-active", 2);
    for _ in 0..2 {
        let status = api_status(services.patch("shop-active", &pp, &body).await.unwrap_err());
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        assert!(status.message.contains("the object has been modified"));
    }
    let current = services.patch("shop-active", &pp, &body).await.unwrap();

    // A patch naming an old resourceVersion is refused; the current one passes.
    let stale =
        Patch::Merge(json!({ "metadata": { "resourceVersion": "1", "labels": { "x": "2" } } }));
    assert_eq!(
        api_status(
            services
                .patch("shop-active", &pp, &stale)
                .await
                .unwrap_err()
        )
        .code,
        409
    );
    let fresh = Patch::Merge(json!({
        "metadata": { "resourceVersion": current.metadata.resource_version, "labels": { "x": "2" } }
    }));
    let patched = services.patch("shop-active", &pp, &fresh).await.unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["x"], "2");
}

#[tokio::test]
async fn strategic_merge_merges_containers_by_name_and_merge_replaces_lists() {
    let (_server, deployments, _) = setup().await;
    let pp = PatchParams::default();
    let containers = |d: &Deployment| -> Value {
        serde_json::to_value(d).unwrap()["spec"]["template"]["spec"]["containers"].clone()
    };
    let strategic = deployments
        .patch(
            "shop-green",
            &pp,
            &Patch::Strategic(json!({ "spec": { "template": { "spec": {
                "containers": [{ "name": "shop", "image": "shop:2" }]
            } } } })),
        )
        .await
        .unwrap();
    let merged = containers(&strategic);
    assert_eq!(merged[0]["image"], "shop:2");
    assert_eq!(
        merged[0]["readinessProbe"]["httpGet"]["path"], "/health/ready",
        "the rest of the container is kept"
    );

    let merge = deployments
        .patch(
            "shop-green",
            &pp,
            &Patch::Merge(json!({ "spec": { "template": { "spec": {
                "containers": [{ "name": "shop", "image": "shop:3" }]
            } } } })),
        )
        .await
        .unwrap();
    assert_eq!(
        containers(&merge),
        json!([{ "name": "shop", "image": "shop:3" }])
    );

    // Server-side apply is not implemented: refused, not misapplied.
    let apply = deployments
        .patch(
            "shop-green",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({ "apiVersion": "apps/v1", "kind": "Deployment" })),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(apply).code, 415);

    // A patch that breaks the type is 422, and nothing changes.
    let invalid = deployments
        .patch(
            "shop-green",
            &pp,
            &Patch::Merge(json!({ "spec": { "replicas": "many" } })),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(invalid).code, 422);
}

/// Polls the stored Deployment until `done` says so (the controller runs in 20 ms steps).
async fn until(
    server: &ApiServer,
    name: &str,
    done: impl Fn(&RolloutStatus) -> bool,
) -> Deployment {
    for _ in 0..500 {
        let deployment = server.deployment(name).unwrap();
        if done(&rollout_status(&deployment)) {
            return deployment;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} never reached the awaited status");
}

#[tokio::test]
async fn the_controller_moves_status_forward_holds_it_or_fails_it() {
    let (server, deployments, _) = setup().await;
    let pp = PatchParams::default();
    let image = |tag: &str| {
        Patch::Strategic(json!({ "spec": { "replicas": 2, "template": { "spec": {
            "containers": [{ "name": "shop", "image": format!("shop:{tag}") }]
        } } } }))
    };

    deployments
        .patch("shop-green", &pp, &image("2"))
        .await
        .unwrap();
    assert_eq!(
        rollout_status(&server.deployment("shop-green").unwrap()),
        RolloutStatus::SpecUpdateNotObserved
    );
    let done = until(&server, "shop-green", RolloutStatus::is_done).await;
    let status = done.status.unwrap();
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.available_replicas, Some(2));

    server.set_rollout("shop-green", Rollout::Unavailable);
    deployments
        .patch("shop-green", &pp, &image("3"))
        .await
        .unwrap();
    until(&server, "shop-green", |s| {
        matches!(
            s,
            RolloutStatus::WaitingForAvailable {
                available: 0,
                updated: 2,
                ..
            }
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!rollout_status(&server.deployment("shop-green").unwrap()).is_done());

    server.set_rollout("shop-green", Rollout::ProgressDeadlineExceeded);
    deployments
        .patch("shop-green", &pp, &image("4"))
        .await
        .unwrap();
    until(&server, "shop-green", RolloutStatus::is_failed).await;
}

#[tokio::test]
async fn every_request_is_recorded() {
    let (server, deployments, services) = setup().await;
    deployments.get("shop-blue").await.unwrap();
    services
        .patch(
            "shop-preview",
            &PatchParams::apply("m").force(),
            &Patch::Apply(json!({})),
        )
        .await
        .unwrap_err();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        "/apis/apps/v1/namespaces/shop-ns/deployments/shop-blue"
    );
    assert_eq!(requests[0].body, Value::Null);
    assert_eq!(requests[1].method, "PATCH");
    assert_eq!(
        requests[1].content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        requests[1].query.as_deref(),
        Some("&force=true&fieldManager=m")
    );
    assert_eq!(requests[1].body, json!({}));
}
