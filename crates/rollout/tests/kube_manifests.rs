//! The Kubernetes manifests: the zero-downtime settings of every layout, the round trip
//! through YAML, JSON and k8s-openapi, and the generated copies under `infra/k8s/`, which
//! must match what the code renders (`ENGINE_OPS_BLESS=1` rewrites them).

#![cfg(feature = "kube")]

use std::path::{Path, PathBuf};

use engine_ops_rollout::platform::kube::manifests::{
    ManifestSpec, Manifests, blue_green, canary, rolling,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

const IMAGE: &str = "ghcr.io/engine-ops/shop:1.0.0";
const BLESS: &str = "ENGINE_OPS_BLESS";

/// The sample app of `infra/k8s/`.
fn sample() -> ManifestSpec {
    ManifestSpec::new("shop", IMAGE).replicas(3).port(8080)
}

fn json_of<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap()
}

fn layouts() -> Vec<(&'static str, Manifests)> {
    let spec = sample();
    vec![
        ("blue-green", blue_green(&spec).unwrap()),
        ("rolling", rolling(&spec).unwrap()),
        ("canary", canary(&spec).unwrap()),
    ]
}

#[test]
fn every_pod_is_set_up_for_zero_downtime() {
    for (layout, manifests) in layouts() {
        for deployment in &manifests.deployments {
            let d = json_of(deployment);
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            let context = format!("{layout}: {name}");
            let spec = &d["spec"];
            assert_eq!(
                spec["strategy"],
                json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } }),
                "{context}"
            );
            assert_eq!(
                spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"],
                "{context}: the selector picks the template's pods"
            );
            let pod = &spec["template"]["spec"];
            let container = &pod["containers"][0];
            assert_eq!(container["name"], "shop", "{context}");
            assert_eq!(container["image"], IMAGE, "{context}");
            assert_eq!(
                container["ports"],
                json!([{ "name": "http", "containerPort": 8080, "protocol": "TCP" }]),
                "{context}"
            );
            for (probe, path) in [
                ("startupProbe", "/health/startup"),
                ("livenessProbe", "/health/live"),
                ("readinessProbe", "/health/ready"),
            ] {
                assert_eq!(
                    container[probe]["httpGet"],
                    json!({ "path": path, "port": "http" }),
                    "{context}: {probe}"
                );
            }
            let startup = &container["startupProbe"];
            assert_eq!(
                startup["failureThreshold"].as_i64().unwrap()
                    * startup["periodSeconds"].as_i64().unwrap(),
                60,
                "{context}: a 60 s startup grace"
            );
            assert_eq!(
                container["lifecycle"]["preStop"]["exec"]["command"],
                json!(["sleep", "15"]),
                "{context}"
            );
            assert_eq!(pod["terminationGracePeriodSeconds"], 45, "{context}");
            assert_eq!(
                pod["affinity"]["podAntiAffinity"],
                json!({ "preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": { "matchLabels": { "app": "shop" } },
                        "topologyKey": "kubernetes.io/hostname"
                    }
                }] }),
                "{context}"
            );
            assert_eq!(
                container["resources"],
                json!({ "requests": { "cpu": "100m", "memory": "128Mi" } }),
                "{context}"
            );
        }
        for service in &manifests.services {
            let s = json_of(service);
            assert_eq!(
                s["spec"]["ports"],
                json!([{ "name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP" }]),
                "{layout}"
            );
        }
    }
}

#[test]
fn each_layout_has_its_objects_and_selectors() {
    let names = |m: &Manifests| -> (Vec<Value>, Vec<Value>) {
        (
            m.deployments
                .iter()
                .map(|d| {
                    let d = json_of(d);
                    json!([
                        d["metadata"]["name"],
                        d["spec"]["replicas"],
                        d["metadata"]["labels"]
                    ])
                })
                .collect(),
            m.services
                .iter()
                .map(|s| {
                    let s = json_of(s);
                    json!([s["metadata"]["name"], s["spec"]["selector"]])
                })
                .collect(),
        )
    };
    let spec = sample();
    assert_eq!(
        names(&blue_green(&spec).unwrap()),
        (
            vec![
                json!(["shop-blue", 3, { "app": "shop", "version": "blue" }]),
                json!(["shop-green", 0, { "app": "shop", "version": "green" }]),
            ],
            vec![
                json!(["shop-active", { "app": "shop", "version": "blue" }]),
                json!(["shop-preview", { "app": "shop", "version": "green" }]),
            ]
        )
    );
    assert_eq!(
        names(&rolling(&spec).unwrap()),
        (
            vec![json!(["shop", 3, { "app": "shop" }])],
            vec![json!(["shop", { "app": "shop" }])]
        )
    );
    assert_eq!(
        names(&canary(&spec).unwrap()),
        (
            vec![
                json!(["shop-stable", 3, { "app": "shop", "track": "stable" }]),
                json!(["shop-canary", 0, { "app": "shop", "track": "canary" }]),
            ],
            vec![json!(["shop", { "app": "shop" }])]
        )
    );
}

#[test]
fn manifests_round_trip_through_yaml_json_and_k8s_openapi() {
    for (layout, manifests) in layouts() {
        let yaml = manifests.to_yaml().unwrap();
        assert_eq!(
            yaml.matches("\n---\n").count(),
            manifests.deployments.len() + manifests.services.len() - 1,
            "{layout}: one document per object"
        );
        assert_eq!(
            Manifests::from_yaml(&yaml).unwrap(),
            manifests,
            "{layout}: YAML"
        );

        // Each object through JSON and the typed k8s-openapi structs.
        for deployment in &manifests.deployments {
            let json = json_of(deployment);
            assert_eq!(json["apiVersion"], "apps/v1");
            assert_eq!(json["kind"], "Deployment");
            let parsed: Deployment = serde_json::from_value(json).unwrap();
            assert_eq!(&parsed, deployment, "{layout}");
        }
        for service in &manifests.services {
            let json = json_of(service);
            assert_eq!(json["apiVersion"], "v1");
            assert_eq!(json["kind"], "Service");
            let parsed: Service = serde_json::from_value(json).unwrap();
            assert_eq!(&parsed, service, "{layout}");
        }

        // The List form: every item, Deployments first.
        let list = manifests.to_json().unwrap();
        assert_eq!(list["kind"], "List");
        let items = list["items"].as_array().unwrap();
        assert_eq!(
            items.len(),
            manifests.deployments.len() + manifests.services.len()
        );
        assert_eq!(items[0], json_of(&manifests.deployments[0]));
    }
}

#[test]
fn the_namespace_and_requests_are_written_when_given() {
    let spec = sample().namespace("prod").requests("250m", "256Mi");
    let manifests = blue_green(&spec).unwrap();
    let yaml = manifests.to_yaml().unwrap();
    assert_eq!(yaml.matches("namespace: prod").count(), 4, "{yaml}");
    let d = json_of(&manifests.deployments[0]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"],
        json!({ "cpu": "250m", "memory": "256Mi" })
    );
}

fn infra() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/k8s")
}

const HEADER: &str = "\
# Generated by engine-ops-rollout (crates/rollout/src/platform/kube/manifests.rs) for the sample
# app: ManifestSpec::new(\"shop\", \"ghcr.io/engine-ops/shop:1.0.0\").replicas(3).port(8080).
# Do not edit. Regenerate with:
#   ENGINE_OPS_BLESS=1 cargo test -p engine-ops-rollout --features kube --test kube_manifests
";

/// Every generated file under `infra/k8s/` and what it must hold.
fn generated() -> Vec<(&'static str, String)> {
    let spec = sample();
    let blue_green = blue_green(&spec).unwrap();
    let rolling = rolling(&spec).unwrap();
    let canary = canary(&spec).unwrap();
    [
        ("blue-green/deployments.yaml", blue_green.deployments_yaml()),
        ("blue-green/services.yaml", blue_green.services_yaml()),
        ("rolling/deployment.yaml", rolling.deployments_yaml()),
        ("rolling/service.yaml", rolling.services_yaml()),
        ("canary/deployments.yaml", canary.deployments_yaml()),
        ("canary/service.yaml", canary.services_yaml()),
    ]
    .into_iter()
    .map(|(file, yaml)| (file, format!("{HEADER}{}", yaml.unwrap())))
    .collect()
}

#[test]
fn the_copies_in_infra_k8s_are_up_to_date() {
    let bless = std::env::var_os(BLESS).is_some();
    let mut stale = Vec::new();
    for (file, expected) in generated() {
        let path = infra().join(file);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &expected).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(actual) if actual == expected => {}
            Ok(_) => stale.push(format!("{file} differs")),
            Err(e) => stale.push(format!("{file}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "infra/k8s/ is out of date ({}): regenerate it with `{BLESS}=1 cargo test -p engine-ops-rollout --features kube --test kube_manifests` and review the diff",
        stale.join(", ")
    );
}

#[test]
fn the_copies_in_infra_k8s_parse_back_to_the_same_objects() {
    let spec = sample();
    let bg = blue_green(&spec).unwrap();
    let read = |file: &str| {
        let path = infra().join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Manifests::from_yaml(&text).unwrap()
    };
    let deployments = read("blue-green/deployments.yaml");
    let services = read("blue-green/services.yaml");
    assert_eq!(deployments.deployments, bg.deployments);
    assert_eq!(services.services, bg.services);
    assert_eq!(
        read("rolling/deployment.yaml").deployments,
        rolling(&spec).unwrap().deployments
    );
    assert_eq!(
        read("canary/service.yaml").services,
        canary(&spec).unwrap().services
    );
}
