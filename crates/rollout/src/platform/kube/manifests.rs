//! The Kubernetes objects of a zero-downtime deployment, built as k8s-openapi types and
//! rendered as YAML for `kubectl apply -f -`.
//!
//! Three layouts, each from one [`ManifestSpec`]:
//!
//! - [`blue_green`]: Deployments `<app>-blue` (the spec's replicas) and `<app>-green` (zero
//!   replicas, idle), labelled `app: <app>` and `version: blue|green`; Service `<app>-active`
//!   selecting `version: blue` and Service `<app>-preview` selecting `version: green`. This is
//!   what [`KubePlatform`](super::KubePlatform) drives.
//! - [`rolling`]: one Deployment `<app>` and one Service `<app>`; Kubernetes' own rolling
//!   update replaces the pods.
//! - [`canary`]: Deployments `<app>-stable` and `<app>-canary` (zero replicas), labelled
//!   `track: stable|canary`, behind one Service `<app>` that selects on `app` alone, so the
//!   canary's share of requests is its share of ready pods.
//!
//! Every pod template carries what a rollout needs to drop no request:
//!
//! - probes on the engine-ops-probes paths: `startupProbe` `GET /health/startup` every 5 s,
//!   12 failures allowed (a 60 s startup grace: `failureThreshold × periodSeconds = 60`), then
//!   `livenessProbe` `GET /health/live` and `readinessProbe` `GET /health/ready`;
//! - a `preStop` hook `sleep 15` (exec), so that endpoints controllers and load balancers stop
//!   sending traffic before the process sees `SIGTERM`, and `terminationGracePeriodSeconds: 45`
//!   above it: 15 s of preStop plus up to 30 s to finish in-flight requests;
//! - a preferred pod anti-affinity on `kubernetes.io/hostname`, so that losing one node does not
//!   take every replica;
//! - resource requests (the scheduler places pods where they fit);
//! - `RollingUpdate` with `maxSurge: 1` and `maxUnavailable: 0`: capacity never drops during an
//!   update.
//!
//! ```
//! use engine_ops_rollout::platform::kube::manifests::{ManifestSpec, blue_green};
//!
//! let spec = ManifestSpec::new("shop", "ghcr.io/engine-ops/shop:1.0.0").replicas(3).port(8080);
//! let manifests = blue_green(&spec)?;
//! assert_eq!(manifests.deployments.len(), 2);
//! let yaml = manifests.to_yaml()?;
//! assert!(yaml.contains("name: shop-active"));
//! assert!(yaml.contains("\n---\n"));
//! # Ok::<(), engine_ops_rollout::Error>(())
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler,
    PodAffinityTerm, PodAntiAffinity, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    Service, ServicePort, ServiceSpec, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::compat;
use crate::Error;
use crate::platform::Slot;

/// The startup probe's path (engine-ops-probes' default).
pub const STARTUP_PATH: &str = "/health/startup";
/// The liveness probe's path (engine-ops-probes' default).
pub const LIVENESS_PATH: &str = "/health/live";
/// The readiness probe's path (engine-ops-probes' default).
pub const READINESS_PATH: &str = "/health/ready";
/// Seconds the `preStop` hook sleeps before the container gets `SIGTERM`.
pub const PRE_STOP_SLEEP_SECONDS: i64 = 15;
/// The pods' `terminationGracePeriodSeconds`: the preStop sleep plus 30 s to drain.
pub const TERMINATION_GRACE_SECONDS: i64 = 45;
/// How long a pod may take to pass its startup probe: `failureThreshold × periodSeconds`.
pub const STARTUP_GRACE_SECONDS: i32 = 60;
const STARTUP_PERIOD_SECONDS: i32 = 5;
/// The name of the container port the probes and Services use.
const PORT_NAME: &str = "http";

/// The name of the Deployment of `slot` for `app` (`shop-blue`).
pub(crate) fn deployment_name(app: &str, slot: Slot) -> String {
    format!("{app}-{slot}")
}

/// The Service whose selector picks the live slot (`shop-active`).
pub(crate) fn active_service_name(app: &str) -> String {
    format!("{app}-active")
}

/// The Service whose selector picks the idle slot, for smoke tests (`shop-preview`).
pub(crate) fn preview_service_name(app: &str) -> String {
    format!("{app}-preview")
}

/// What to deploy: the app, its image, its size and where it listens.
///
/// ```
/// use engine_ops_rollout::platform::kube::manifests::ManifestSpec;
///
/// let spec = ManifestSpec::new("shop", "ghcr.io/engine-ops/shop:1.0.0")
///     .replicas(3)
///     .port(8080)
///     .namespace("prod")
///     .requests("250m", "256Mi");
/// assert_eq!(spec.replicas, 3);
/// assert_eq!(spec.namespace.as_deref(), Some("prod"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestSpec {
    /// The app's name: the `app` label, the container's name and the prefix of every object's
    /// name. A DNS label (lowercase letters, digits, `-`) of at most 50 characters, so that
    /// `<app>-preview` and `<app>-canary` still fit in 63.
    pub app: String,
    /// The container image (`ghcr.io/engine-ops/shop:1.0.0`).
    pub image: String,
    /// Replicas of the serving Deployment. Default 3.
    pub replicas: u32,
    /// The port the app listens on and the Services expose. Default 8080.
    pub port: u16,
    /// The namespace written into every object; `None` leaves it to `kubectl -n`.
    pub namespace: Option<String>,
    /// The container's CPU request. Default `100m`.
    pub cpu_request: String,
    /// The container's memory request. Default `128Mi`.
    pub memory_request: String,
}

impl ManifestSpec {
    /// A spec with 3 replicas on port 8080, no namespace, and requests of `100m` CPU and
    /// `128Mi` memory.
    pub fn new(app: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            image: image.into(),
            replicas: 3,
            port: 8080,
            namespace: None,
            cpu_request: "100m".into(),
            memory_request: "128Mi".into(),
        }
    }

    /// Sets the replicas of the serving Deployment.
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Sets the port the app listens on and the Services expose.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Writes `namespace` into every object.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the container's CPU and memory requests (Kubernetes quantities: `250m`, `256Mi`).
    pub fn requests(mut self, cpu: impl Into<String>, memory: impl Into<String>) -> Self {
        self.cpu_request = cpu.into();
        self.memory_request = memory.into();
        self
    }

    fn validate(&self) -> Result<(), Error> {
        let app = &self.app;
        let valid = !app.is_empty()
            && app.len() <= 50
            && app
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && app.as_bytes()[0].is_ascii_lowercase()
            && !app.ends_with('-');
        if !valid {
            return Err(Error::invalid(
                "app name",
                format!(
                    "`{app}` is not a DNS label: use 1 to 50 lowercase letters, digits and `-`, starting with a letter and not ending with `-`"
                ),
            ));
        }
        if self.image.trim().is_empty() {
            return Err(Error::invalid(
                "image",
                "the image is empty: give a reference such as `ghcr.io/engine-ops/shop:1.0.0`",
            ));
        }
        if self.port == 0 {
            return Err(Error::invalid(
                "port",
                "port 0 cannot be probed or served: give the port the app listens on",
            ));
        }
        if i32::try_from(self.replicas).is_err() {
            return Err(Error::invalid(
                "replicas",
                format!(
                    "{} replicas is above Kubernetes' limit of 2^31-1",
                    self.replicas
                ),
            ));
        }
        Ok(())
    }

    fn meta(&self, name: String, labels: &BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: self.namespace.clone(),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        }
    }

    /// A Deployment named `name` whose pods carry `labels` (also its selector).
    fn deployment(
        &self,
        name: String,
        labels: BTreeMap<String, String>,
        replicas: u32,
    ) -> Deployment {
        let replicas = i32::try_from(replicas).unwrap_or(i32::MAX);
        let http = || IntOrString::String(PORT_NAME.into());
        let probe = |path: &str, period: i32, failures: i32| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: http(),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(period),
            failure_threshold: Some(failures),
            timeout_seconds: Some(1),
            ..Probe::default()
        };
        let container = Container {
            name: self.app.clone(),
            image: Some(self.image.clone()),
            ports: Some(vec![ContainerPort {
                name: Some(PORT_NAME.into()),
                container_port: i32::from(self.port),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            startup_probe: Some(probe(
                STARTUP_PATH,
                STARTUP_PERIOD_SECONDS,
                STARTUP_GRACE_SECONDS / STARTUP_PERIOD_SECONDS,
            )),
            liveness_probe: Some(probe(LIVENESS_PATH, 10, 3)),
            readiness_probe: Some(probe(READINESS_PATH, 5, 2)),
            lifecycle: Some(Lifecycle {
                pre_stop: Some(LifecycleHandler {
                    exec: Some(ExecAction {
                        command: Some(vec!["sleep".into(), PRE_STOP_SLEEP_SECONDS.to_string()]),
                    }),
                    ..LifecycleHandler::default()
                }),
                ..Lifecycle::default()
            }),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_string(), Quantity(self.cpu_request.clone())),
                    ("memory".to_string(), Quantity(self.memory_request.clone())),
                ])),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        };
        let anti_affinity = PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(app_labels(&self.app)),
                            ..LabelSelector::default()
                        }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        };
        compat::deployment(
            self.meta(name, &labels),
            DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..LabelSelector::default()
                },
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(1)),
                        max_unavailable: Some(IntOrString::Int(0)),
                    }),
                }),
                progress_deadline_seconds: Some(600),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
                        affinity: Some(Affinity {
                            pod_anti_affinity: Some(anti_affinity),
                            ..Affinity::default()
                        }),
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            },
            None,
        )
    }

    /// A ClusterIP Service named `name` selecting `selector`, exposing the spec's port.
    fn service(&self, name: String, selector: BTreeMap<String, String>) -> Service {
        Service {
            metadata: self.meta(name, &app_labels(&self.app)),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(selector),
                ports: Some(vec![ServicePort {
                    name: Some(PORT_NAME.into()),
                    port: i32::from(self.port),
                    target_port: Some(IntOrString::String(PORT_NAME.into())),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }
}

fn app_labels(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), app.to_string())])
}

fn labels(app: &str, key: &str, value: &str) -> BTreeMap<String, String> {
    let mut labels = app_labels(app);
    labels.insert(key.into(), value.into());
    labels
}

/// A set of Kubernetes objects: what one layout function builds.
///
/// Rendered Deployments first, then Services, each a YAML document of its own.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifests {
    /// The Deployments.
    pub deployments: Vec<Deployment>,
    /// The Services.
    pub services: Vec<Service>,
}

impl Manifests {
    /// Every object as multi-document YAML (documents separated by `---`), Deployments first.
    pub fn to_yaml(&self) -> Result<String, Error> {
        let deployments = self.deployments_yaml()?;
        let services = self.services_yaml()?;
        Ok(match (deployments.is_empty(), services.is_empty()) {
            (false, false) => format!("{deployments}---\n{services}"),
            _ => deployments + &services,
        })
    }

    /// The Deployments alone as multi-document YAML.
    pub fn deployments_yaml(&self) -> Result<String, Error> {
        render(&self.deployments)
    }

    /// The Services alone as multi-document YAML.
    pub fn services_yaml(&self) -> Result<String, Error> {
        render(&self.services)
    }

    /// Every object as one JSON `v1` `List`, for `kubectl apply -f -` or an API client.
    pub fn to_json(&self) -> Result<serde_json::Value, Error> {
        let mut items = Vec::with_capacity(self.deployments.len() + self.services.len());
        for deployment in &self.deployments {
            items.push(to_json(deployment)?);
        }
        for service in &self.services {
            items.push(to_json(service)?);
        }
        Ok(serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items }))
    }

    /// Parses multi-document YAML of Deployments and Services (what [`to_yaml`] renders, or
    /// any hand-written file of those kinds). Other kinds are refused.
    ///
    /// [`to_yaml`]: Manifests::to_yaml
    pub fn from_yaml(yaml: &str) -> Result<Self, Error> {
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml)
            .map_err(|e| Error::invalid("manifests", format!("not valid YAML: {e}")))?;
        let mut manifests = Manifests::default();
        for (index, document) in documents.into_iter().enumerate() {
            let kind = document.get("kind").and_then(|kind| kind.as_str());
            let invalid = |e: serde_json::Error| {
                Error::invalid(
                    "manifests",
                    format!(
                        "document {} is not a valid {}: {e}",
                        index + 1,
                        kind.unwrap_or("")
                    ),
                )
            };
            match kind {
                Some("Deployment") => manifests
                    .deployments
                    .push(serde_json::from_value(document.clone()).map_err(invalid)?),
                Some("Service") => manifests
                    .services
                    .push(serde_json::from_value(document.clone()).map_err(invalid)?),
                other => {
                    return Err(Error::invalid(
                        "manifests",
                        format!(
                            "document {} has kind {:?}: only Deployment and Service are read",
                            index + 1,
                            other.unwrap_or("(none)")
                        ),
                    ));
                }
            }
        }
        Ok(manifests)
    }
}

fn to_json<T: Serialize>(object: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(object)
        .map_err(|e| Error::invalid("manifests", format!("cannot serialize an object: {e}")))
}

fn render<T: Serialize>(objects: &[T]) -> Result<String, Error> {
    serde_saphyr::to_string_multiple(objects)
        .map_err(|e| Error::invalid("manifests", format!("cannot render YAML: {e}")))
}

/// The blue-green pair [`KubePlatform`](super::KubePlatform) drives: Deployments `<app>-blue`
/// (serving, `spec.replicas` replicas) and `<app>-green` (idle, 0 replicas, same image), the
/// Service `<app>-active` selecting blue and `<app>-preview` selecting green.
pub fn blue_green(spec: &ManifestSpec) -> Result<Manifests, Error> {
    spec.validate()?;
    let app = &spec.app;
    let slot_labels = |slot: Slot| labels(app, "version", slot.as_str());
    Ok(Manifests {
        deployments: vec![
            spec.deployment(
                deployment_name(app, Slot::Blue),
                slot_labels(Slot::Blue),
                spec.replicas,
            ),
            spec.deployment(
                deployment_name(app, Slot::Green),
                slot_labels(Slot::Green),
                0,
            ),
        ],
        services: vec![
            spec.service(active_service_name(app), slot_labels(Slot::Blue)),
            spec.service(preview_service_name(app), slot_labels(Slot::Green)),
        ],
    })
}

/// One Deployment `<app>` updated in place by Kubernetes' rolling update (`maxSurge: 1`,
/// `maxUnavailable: 0`) and one Service `<app>`.
pub fn rolling(spec: &ManifestSpec) -> Result<Manifests, Error> {
    spec.validate()?;
    let app = &spec.app;
    Ok(Manifests {
        deployments: vec![spec.deployment(app.clone(), app_labels(app), spec.replicas)],
        services: vec![spec.service(app.clone(), app_labels(app))],
    })
}

/// A canary pair: Deployments `<app>-stable` (`spec.replicas` replicas) and `<app>-canary`
/// (0 replicas; scale it up to start a canary), labelled `track: stable|canary`, behind one
/// Service `<app>` that selects on `app` only, so each gets its share of ready pods.
pub fn canary(spec: &ManifestSpec) -> Result<Manifests, Error> {
    spec.validate()?;
    let app = &spec.app;
    Ok(Manifests {
        deployments: vec![
            spec.deployment(
                format!("{app}-stable"),
                labels(app, "track", "stable"),
                spec.replicas,
            ),
            spec.deployment(format!("{app}-canary"), labels(app, "track", "canary"), 0),
        ],
        services: vec![spec.service(app.clone(), app_labels(app))],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ManifestSpec {
        ManifestSpec::new("shop", "ghcr.io/engine-ops/shop:1.0.0")
    }

    #[test]
    fn app_names_must_be_dns_labels() {
        for bad in [
            "",
            "Shop",
            "shop_1",
            "-shop",
            "shop-",
            "1shop",
            &"a".repeat(51),
        ] {
            let error = blue_green(&ManifestSpec::new(bad, "img")).unwrap_err();
            assert!(error.is_bad_input(), "{bad}: {error}");
            assert!(error.to_string().contains("app name"), "{error}");
        }
        for good in ["shop", "a", "shop-api-2", &"a".repeat(50)] {
            blue_green(&ManifestSpec::new(good, "img")).unwrap();
        }
    }

    #[test]
    fn empty_image_and_port_zero_are_refused() {
        assert!(rolling(&ManifestSpec::new("shop", " ")).is_err());
        assert!(rolling(&spec().port(0)).is_err());
        assert!(rolling(&spec().replicas(u32::MAX)).is_err());
    }

    #[test]
    fn startup_grace_is_sixty_seconds() {
        let manifests = rolling(&spec()).unwrap();
        let pod = compat::spec(&manifests.deployments[0])
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        let startup = pod.containers[0].startup_probe.as_ref().unwrap();
        assert_eq!(
            startup.failure_threshold.unwrap() * startup.period_seconds.unwrap(),
            STARTUP_GRACE_SECONDS
        );
        assert!(pod.termination_grace_period_seconds.unwrap() > PRE_STOP_SLEEP_SECONDS);
    }

    #[test]
    fn namespace_is_written_only_when_given() {
        let without = blue_green(&spec()).unwrap();
        assert!(without.services[0].metadata.namespace.is_none());
        let with = blue_green(&spec().namespace("prod")).unwrap();
        assert!(
            with.deployments
                .iter()
                .all(|d| d.metadata.namespace.as_deref() == Some("prod"))
        );
    }

    #[test]
    fn other_kinds_are_refused_when_parsing() {
        let error = Manifests::from_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
            .unwrap_err();
        assert!(error.to_string().contains("ConfigMap"), "{error}");
    }
}
