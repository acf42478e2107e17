//! [`KubePlatform`]: the [`Platform`] operations as Kubernetes API calls, and the rollout's
//! state as annotations.
//!
//! Every operation reads what it needs, decides with plain data (the routing from the
//! active Service's selector, the rollout status from [`rollout_status`]) and writes with the
//! smallest patch that does the job, so that a driver that crashed half-way can run again.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::pin;
use std::time::Duration;

use ::kube::api::{Api, Patch, PatchParams, WatchEvent, WatchParams};
use ::kube::{Client, Config};
use async_trait::async_trait;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::compat;
use super::manifests::{active_service_name, deployment_name, preview_service_name};
use super::status::{RolloutStatus, rollout_status};
use crate::Error;
use crate::platform::{Platform, PlatformStatus, Routing, Slot, SlotStatus, TrafficStats};

pub(super) const PLATFORM: &str = "kubernetes";

/// The field manager named in every patch (`kubectl get … --show-managed-fields` shows it).
pub const FIELD_MANAGER: &str = "engine-ops-rollout";

/// The prefix of every annotation this platform writes.
pub const ANNOTATION_PREFIX: &str = "engine-ops.dev/";

/// On the active Service while a rollout runs: what it does (`blue-green to shop:2.0.0`).
pub const ROLLOUT_ANNOTATION: &str = "engine-ops.dev/rollout";
/// On the active Service while a rollout runs: the phase the driver last reported.
pub const PHASE_ANNOTATION: &str = "engine-ops.dev/rollout-phase";
/// On the active Service while a rollout runs: when it began (RFC 3339, UTC).
pub const STARTED_ANNOTATION: &str = "engine-ops.dev/rollout-started-at";
/// On the active Service from the start of a rollout on: the slot that was live before it.
pub const PREVIOUS_SLOT_ANNOTATION: &str = "engine-ops.dev/previous-slot";
/// On the active Service from the start of a rollout on: the image the live slot ran before.
pub const PREVIOUS_IMAGE_ANNOTATION: &str = "engine-ops.dev/previous-image";
/// On the active Service while traffic is split: `<canary slot>=<percent>` (`green=10`).
pub const CANARY_WEIGHT_ANNOTATION: &str = "engine-ops.dev/canary-weight";

/// Attempts of a patch answered `409 Conflict` before the conflict is reported.
pub(super) const CONFLICT_ATTEMPTS: u32 = 5;
/// The wait after the first conflict; it doubles after each further one.
const CONFLICT_BACKOFF: Duration = Duration::from_millis(50);
/// The longest single watch request; the watch is re-established after it.
pub(super) const MAX_WATCH_SECONDS: u64 = 290;

/// One app's blue-green pair in one namespace, driven through the Kubernetes API.
///
/// The objects are those [`manifests::blue_green`](super::manifests::blue_green) builds:
/// Deployments `<app>-blue` and `<app>-green` (labels `app`, `version`), Service
/// `<app>-active` whose selector `{app, version}` picks the live slot and Service
/// `<app>-preview` that picks the other one. [`Platform::status`] reads the live slot from the
/// active Service's selector; nothing is remembered in the process, so any number of
/// `KubePlatform`s (or a later command after a crash) see the same state.
///
/// | operation | API calls |
/// |---|---|
/// | [`status`](Platform::status) | GET active Service, GET both Deployments; a slot's version is its app container's image while it asks for replicas |
/// | [`deploy`](Platform::deploy) | GET active Service, GET Deployment, strategic-merge PATCH the app container's image and `replicas`, merge PATCH the preview Service's selector |
/// | [`scale`](Platform::scale) | merge PATCH `spec.replicas` |
/// | [`wait_ready`](Platform::wait_ready) | GET, then WATCH the Deployment until [`rollout_status`] says done |
/// | [`route`](Platform::route) | merge PATCH the active Service's selector (and the preview's); `Split` also scales |
/// | [`stop`](Platform::stop) | GET active Service, GET Deployment, merge PATCH `replicas: 0` |
///
/// A **version** is a container image reference here. The app container is the one named
/// like the app, or the first one. Patches name [`FIELD_MANAGER`]; a `409 Conflict` is retried
/// up to 5 times with a doubling backoff from 50 ms; other API errors become
/// [`Error::Platform`] naming the verb and the object (`patching Service shop-active`).
///
/// **Traffic splits are approximate.** A Service balances over ready pods, so
/// [`Routing::Split`] is carried out as a replica ratio: with `total` replicas across both
/// slots (the live slot's replicas when traffic still goes to one slot, the sum of both once
/// split), the canary slot gets `ceil(total × percent / 100)` replicas and the other slot the
/// rest, and the active Service's selector drops `version` so that it selects both (pooled).
/// The slot that grows is scaled first and the one that shrinks last, so capacity never dips.
/// With 3 replicas, 10 % becomes 1 of 3 pods (33 %). [`Routing::Pooled`] is the same selector
/// without scaling. Precise weights need a service mesh or a Gateway API `HTTPRoute`.
///
/// **No traffic counters.** [`Platform::traffic`] returns zeros: request metrics are the
/// cluster's business (Prometheus, a mesh). Strategies treat no data as inconclusive.
///
/// ```no_run
/// use std::time::Duration;
/// use engine_ops_rollout::{KubePlatform, Platform, Routing, Slot};
///
/// # async fn run() -> Result<(), engine_ops_rollout::Error> {
/// // KUBECONFIG, ~/.kube/config or the in-cluster service account; namespace "shop".
/// let platform = KubePlatform::try_default(Some("shop"), "shop").await?;
/// let live = platform.status().await?.live_slot().unwrap_or(Slot::Blue);
/// let idle = live.other();
/// platform.deploy(idle, "ghcr.io/engine-ops/shop:2.0.0", 3).await?;
/// platform.wait_ready(idle, Duration::from_secs(300)).await?;
/// platform.route(Routing::All { slot: idle }).await?;
/// platform.stop(live).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct KubePlatform {
    client: Client,
    namespace: String,
    app: String,
    deployments: Api<Deployment>,
    services: Api<Service>,
}

impl fmt::Debug for KubePlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubePlatform")
            .field("namespace", &self.namespace)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// What a running (or crashed) rollout left on the active Service: see
/// [`KubePlatform::begin_rollout`]. The phase is free text, so a strategy can record its step
/// there too (`canary step 2 of 4`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RolloutRecord {
    /// What the rollout does, as given to [`KubePlatform::begin_rollout`].
    pub description: String,
    /// The phase last reported with [`KubePlatform::set_rollout_phase`] (`started` at first).
    pub phase: String,
    /// When it began (RFC 3339, UTC), if recorded.
    pub started_at: Option<String>,
    /// The slot that was live when it began: where a rollback routes back to.
    pub previous_slot: Option<Slot>,
    /// The image that slot ran.
    pub previous_image: Option<String>,
}

impl KubePlatform {
    /// A platform for `app` in `namespace`, talking through `client`.
    pub fn new(client: Client, namespace: impl Into<String>, app: impl Into<String>) -> Self {
        let namespace = namespace.into();
        Self {
            deployments: Api::namespaced(client.clone(), &namespace),
            services: Api::namespaced(client.clone(), &namespace),
            client,
            namespace,
            app: app.into(),
        }
    }

    /// A platform whose client is configured the usual way: the file(s) named by
    /// `KUBECONFIG`, else `~/.kube/config`, else the in-cluster service account. `namespace`
    /// `None` takes the current context's namespace (`default` when it names none).
    pub async fn try_default(namespace: Option<&str>, app: &str) -> Result<Self, Error> {
        let operation = "loading the Kubernetes client configuration";
        let config = Config::infer().await.map_err(|e| Error::Platform {
            platform: PLATFORM.into(),
            operation: operation.into(),
            message: format!(
                "{e}; set KUBECONFIG or write ~/.kube/config (`kubectl config view` shows what kubectl uses), or run inside a cluster"
            ),
        })?;
        let namespace = namespace.map_or_else(|| config.default_namespace.clone(), String::from);
        let client = Client::try_from(config).map_err(|e| Error::Platform {
            platform: PLATFORM.into(),
            operation: "building the Kubernetes client".into(),
            message: format!("{e}; an https:// API server needs the crate feature `kube-tls`"),
        })?;
        Ok(Self::new(client, namespace, app))
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The app.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Records on the active Service that a rollout described by `description` has begun,
    /// with the slot that is live now and its image, so that the next command can tell that
    /// a driver crashed half-way and where to roll back to.
    ///
    /// Refused with [`Error::Busy`] while another rollout is recorded. Two drivers that begin
    /// at once cannot both succeed: the write is conditional on the Service's
    /// `resourceVersion`.
    pub async fn begin_rollout(&self, description: &str) -> Result<(), Error> {
        let name = active_service_name(&self.app);
        for attempt in 1..=CONFLICT_ATTEMPTS {
            let service = self.service(&name).await?;
            if let Some(record) = record_from(&service) {
                return Err(Error::Busy {
                    running: describe(&record, &name),
                });
            }
            let previous_slot = routing_of(&service, &name)?.live_slot();
            let previous_image = match previous_slot {
                Some(slot) => image_of(&self.deployment(slot).await?, &self.app),
                None => None,
            };
            let now = k8s_openapi::jiff::Timestamp::now();
            let started = k8s_openapi::jiff::Timestamp::from_second(now.as_second())
                .unwrap_or(now)
                .to_string();
            let patch = json!({
                "metadata": {
                    "resourceVersion": service.metadata.resource_version,
                    "annotations": {
                        ROLLOUT_ANNOTATION: description,
                        PHASE_ANNOTATION: "started",
                        STARTED_ANNOTATION: started,
                        PREVIOUS_SLOT_ANNOTATION: previous_slot.map(Slot::as_str),
                        PREVIOUS_IMAGE_ANNOTATION: previous_image,
                    }
                }
            });
            match self
                .services
                .patch(&name, &patch_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(app = %self.app, description, "rollout recorded");
                    return Ok(());
                }
                Err(e) if is_conflict(&e) && attempt < CONFLICT_ATTEMPTS => {
                    tracing::debug!(service = %name, attempt, "conflict while recording a rollout; reading again");
                }
                Err(e) => return Err(self.api_error("patching", "Service", &name, e)),
            }
        }
        Err(conflict_exhausted("Service", &name))
    }

    /// Records the phase the running rollout has reached (`switched`, `canary step 2 of 4`).
    pub async fn set_rollout_phase(&self, phase: &str) -> Result<(), Error> {
        let patch = json!({ "metadata": { "annotations": { PHASE_ANNOTATION: phase } } });
        self.patch_service(&active_service_name(&self.app), &patch)
            .await
            .map(drop)
    }

    /// Clears the running-rollout record. The previous slot and image stay, for a later
    /// rollback. Succeeds when no rollout is recorded.
    pub async fn finish_rollout(&self) -> Result<(), Error> {
        let patch = json!({
            "metadata": {
                "annotations": {
                    ROLLOUT_ANNOTATION: null,
                    PHASE_ANNOTATION: null,
                    STARTED_ANNOTATION: null,
                }
            }
        });
        self.patch_service(&active_service_name(&self.app), &patch)
            .await?;
        tracing::info!(app = %self.app, "rollout record cleared");
        Ok(())
    }

    /// The rollout recorded on the active Service, if one began and did not finish: a
    /// running one, or one whose driver crashed.
    pub async fn rollout_in_progress(&self) -> Result<Option<RolloutRecord>, Error> {
        let service = self.service(&active_service_name(&self.app)).await?;
        Ok(record_from(&service))
    }

    async fn service(&self, name: &str) -> Result<Service, Error> {
        self.services
            .get(name)
            .await
            .map_err(|e| self.api_error("reading", "Service", name, e))
    }

    async fn deployment(&self, slot: Slot) -> Result<Deployment, Error> {
        let name = deployment_name(&self.app, slot);
        self.deployments
            .get(&name)
            .await
            .map_err(|e| self.api_error("reading", "Deployment", &name, e))
    }

    async fn patch_service(&self, name: &str, patch: &Value) -> Result<Service, Error> {
        patch_retrying(self, &self.services, "Service", name, Patch::Merge(patch)).await
    }

    async fn patch_replicas(&self, slot: Slot, replicas: u32) -> Result<(), Error> {
        let name = deployment_name(&self.app, slot);
        let replicas = replicas_i32(replicas)?;
        let patch = json!({ "spec": { "replicas": replicas } });
        patch_retrying(
            self,
            &self.deployments,
            "Deployment",
            &name,
            Patch::Merge(&patch),
        )
        .await?;
        tracing::info!(deployment = %name, replicas, "scaled");
        Ok(())
    }

    /// The active Service and the routing its selector says.
    async fn routing(&self) -> Result<Routing, Error> {
        let name = active_service_name(&self.app);
        routing_of(&self.service(&name).await?, &name)
    }

    fn api_error(&self, verb: &str, kind: &str, name: &str, error: ::kube::Error) -> Error {
        self.layout_api_error(
            "blue-green",
            "rollout manifests blue-green",
            verb,
            kind,
            name,
            error,
        )
    }

    /// An API error as [`Error::Platform`], naming the verb and the object; a missing
    /// object says how to create the `layout`'s objects (`create`: the command that prints
    /// them).
    pub(super) fn layout_api_error(
        &self,
        layout: &str,
        create: &str,
        verb: &str,
        kind: &str,
        name: &str,
        error: ::kube::Error,
    ) -> Error {
        let ns = &self.namespace;
        let message = match &error {
            ::kube::Error::Api(status) if status.code == 404 => format!(
                "{kind} {name} does not exist in namespace {ns}: create the {layout} objects with `{create} | kubectl apply -n {ns} -f -`"
            ),
            ::kube::Error::Api(status) => format!(
                "the API server answered {} {}: {}",
                status.code, status.reason, status.message
            ),
            other => {
                format!("{other}; check that the API server is reachable (`kubectl cluster-info`)")
            }
        };
        Error::Platform {
            platform: PLATFORM.into(),
            operation: format!("{verb} {kind} {name}"),
            message,
        }
    }

    /// Watches the Deployment until its rollout is complete, keeping the last status seen in
    /// `last` for the deadline's message. Runs until cancelled otherwise.
    async fn watch_rollout(
        &self,
        name: &str,
        watch_seconds: u32,
        last: &mut Option<RolloutStatus>,
    ) -> Result<(), Error> {
        let check = |deployment: &Deployment, last: &mut Option<RolloutStatus>| {
            let status = rollout_status(deployment);
            tracing::debug!(deployment = %name, %status, "rollout status");
            if status.is_failed() {
                return Err(Error::Platform {
                    platform: PLATFORM.into(),
                    operation: format!("waiting for Deployment {name} to roll out"),
                    message: format!(
                        "{status} (ProgressDeadlineExceeded): its pods did not become available within spec.progressDeadlineSeconds; see `kubectl describe deployment {name} -n {ns}` and the pods' events, fix the image or its configuration, and keep traffic where it is",
                        ns = self.namespace
                    ),
                });
            }
            let done = status.is_done();
            *last = Some(status);
            Ok(done)
        };
        loop {
            let deployment = self
                .deployments
                .get(name)
                .await
                .map_err(|e| self.api_error("reading", "Deployment", name, e))?;
            if check(&deployment, last)? {
                return Ok(());
            }
            let version = deployment.metadata.resource_version.unwrap_or_default();
            let params = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(watch_seconds);
            let stream = self
                .deployments
                .watch(&params, &version)
                .await
                .map_err(|e| self.api_error("watching", "Deployment", name, e))?;
            let mut stream = pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(WatchEvent::Added(deployment) | WatchEvent::Modified(deployment)) => {
                        if check(&deployment, last)? {
                            return Ok(());
                        }
                    }
                    Ok(WatchEvent::Deleted(_)) => {
                        return Err(Error::Platform {
                            platform: PLATFORM.into(),
                            operation: format!("waiting for Deployment {name} to roll out"),
                            message: "the Deployment was deleted while waiting: recreate it (`rollout manifests blue-green | kubectl apply -f -`)".into(),
                        });
                    }
                    Ok(WatchEvent::Bookmark(_)) => {}
                    Ok(WatchEvent::Error(status)) if status.code == 410 => {
                        tracing::debug!(deployment = %name, "watch expired; reading again");
                        break;
                    }
                    Ok(WatchEvent::Error(status)) => {
                        return Err(self.api_error(
                            "watching",
                            "Deployment",
                            name,
                            ::kube::Error::Api(status),
                        ));
                    }
                    Err(error) => {
                        tracing::warn!(deployment = %name, %error, "watch interrupted; reading again");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                }
            }
        }
    }
}

/// Sends `patch`, retrying a `409 Conflict` up to [`CONFLICT_ATTEMPTS`] times.
async fn patch_retrying<K>(
    platform: &KubePlatform,
    api: &Api<K>,
    kind: &str,
    name: &str,
    patch: Patch<&Value>,
) -> Result<K, Error>
where
    K: Clone + DeserializeOwned + fmt::Debug,
{
    let mut backoff = CONFLICT_BACKOFF;
    for attempt in 1..=CONFLICT_ATTEMPTS {
        match api.patch(name, &patch_params(), &patch).await {
            Ok(object) => return Ok(object),
            Err(e) if is_conflict(&e) && attempt < CONFLICT_ATTEMPTS => {
                tracing::debug!(
                    kind,
                    name,
                    attempt,
                    ?backoff,
                    "409 conflict; retrying the patch"
                );
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) if is_conflict(&e) => return Err(conflict_exhausted(kind, name)),
            Err(e) => return Err(platform.api_error("patching", kind, name, e)),
        }
    }
    Err(conflict_exhausted(kind, name))
}

pub(super) fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

pub(super) fn is_conflict(error: &::kube::Error) -> bool {
    matches!(error, ::kube::Error::Api(status) if status.code == 409)
}

pub(super) fn conflict_exhausted(kind: &str, name: &str) -> Error {
    Error::Platform {
        platform: PLATFORM.into(),
        operation: format!("patching {kind} {name}"),
        message: format!(
            "the API server answered 409 Conflict {CONFLICT_ATTEMPTS} times: another client keeps changing it; find it with `kubectl get {} {name} --show-managed-fields -o yaml` and try again",
            kind.to_lowercase()
        ),
    }
}

fn replicas_i32(replicas: u32) -> Result<i32, Error> {
    i32::try_from(replicas).map_err(|_| {
        Error::invalid(
            "replicas",
            format!("{replicas} is above Kubernetes' limit of 2^31-1"),
        )
    })
}

fn annotations(service: &Service) -> Option<&BTreeMap<String, String>> {
    service.metadata.annotations.as_ref()
}

fn slot_from(value: &str) -> Option<Slot> {
    Slot::ALL.into_iter().find(|slot| slot.as_str() == value)
}

/// The routing the active Service's selector says: `version` names the slot; without it the
/// Service pools both slots, split when the canary-weight annotation says so.
fn routing_of(service: &Service, name: &str) -> Result<Routing, Error> {
    let selector = service
        .spec
        .as_ref()
        .and_then(|spec| spec.selector.as_ref());
    match selector.and_then(|selector| selector.get("version")) {
        Some(version) => slot_from(version)
            .map(|slot| Routing::All { slot })
            .ok_or_else(|| Error::Platform {
                platform: PLATFORM.into(),
                operation: format!("reading Service {name}"),
                message: format!(
                    "its selector picks version {version:?}, which is not a slot: set it to blue or green (`kubectl patch service {name} -p '{{\"spec\":{{\"selector\":{{\"version\":\"blue\"}}}}}}'`)"
                ),
            }),
        None => {
            let weight = annotations(service).and_then(|a| a.get(CANARY_WEIGHT_ANNOTATION));
            let split = weight.and_then(|weight| {
                let (slot, percent) = weight.split_once('=')?;
                Some(Routing::Split {
                    canary: slot_from(slot)?,
                    percent: percent.parse().ok().filter(|p| *p <= 100)?,
                })
            });
            Ok(split.unwrap_or(Routing::Pooled))
        }
    }
}

/// `true` when `slot`, running `replicas`, gets requests under `routing`.
fn receives_traffic(routing: Routing, slot: Slot, replicas: i32) -> bool {
    match routing {
        Routing::None => false,
        Routing::All { slot: live } => live == slot,
        Routing::Split { canary, percent } => {
            replicas > 0
                && if slot == canary {
                    percent > 0
                } else {
                    percent < 100
                }
        }
        Routing::Pooled => replicas > 0,
    }
}

fn desired(deployment: &Deployment) -> i32 {
    compat::spec(deployment)
        .and_then(|spec| spec.replicas)
        .unwrap_or(0)
}

/// The app container: the one named like the app, else the first one.
pub(super) fn app_container<'a>(
    deployment: &'a Deployment,
    app: &str,
) -> Option<&'a k8s_openapi::api::core::v1::Container> {
    let containers = &compat::spec(deployment)?.template.spec.as_ref()?.containers;
    containers
        .iter()
        .find(|container| container.name == app)
        .or_else(|| containers.first())
}

pub(super) fn image_of(deployment: &Deployment, app: &str) -> Option<String> {
    app_container(deployment, app).and_then(|container| container.image.clone())
}

fn record_from(service: &Service) -> Option<RolloutRecord> {
    let annotations = annotations(service)?;
    let description = annotations.get(ROLLOUT_ANNOTATION)?.clone();
    Some(RolloutRecord {
        description,
        phase: annotations
            .get(PHASE_ANNOTATION)
            .cloned()
            .unwrap_or_else(|| "unknown".into()),
        started_at: annotations.get(STARTED_ANNOTATION).cloned(),
        previous_slot: annotations
            .get(PREVIOUS_SLOT_ANNOTATION)
            .and_then(|slot| slot_from(slot)),
        previous_image: annotations.get(PREVIOUS_IMAGE_ANNOTATION).cloned(),
    })
}

fn describe(record: &RolloutRecord, service: &str) -> String {
    let mut text = format!("{}, phase {}", record.description, record.phase);
    if let Some(at) = &record.started_at {
        text.push_str(&format!(", started {at}"));
    }
    text.push_str(&format!(
        "; if its driver crashed, check the slots and clear it with `kubectl annotate service {service} {ROLLOUT_ANNOTATION}-`"
    ));
    text
}

#[async_trait]
impl Platform for KubePlatform {
    fn name(&self) -> &str {
        PLATFORM
    }

    async fn status(&self) -> Result<PlatformStatus, Error> {
        let routing = self.routing().await?;
        let blue = self.slot_status(Slot::Blue).await?;
        let green = self.slot_status(Slot::Green).await?;
        Ok(PlatformStatus {
            slots: [blue, green],
            routing,
        })
    }

    async fn deploy(&self, slot: Slot, version: &str, replicas: u32) -> Result<(), Error> {
        let replicas = replicas_i32(replicas)?;
        let routing = self.routing().await?;
        let deployment = self.deployment(slot).await?;
        let name = deployment_name(&self.app, slot);
        if receives_traffic(routing, slot, desired(&deployment)) {
            return Err(Error::SlotLive {
                slot,
                operation: "deploy to",
            });
        }
        let container = app_container(&deployment, &self.app).ok_or_else(|| Error::Platform {
            platform: PLATFORM.into(),
            operation: format!("reading Deployment {name}"),
            message: "its pod template has no container: recreate it with `rollout manifests blue-green | kubectl apply -f -`".into(),
        })?;
        let patch = json!({
            "spec": {
                "replicas": replicas,
                "template": {
                    "spec": {
                        "containers": [{ "name": container.name, "image": version }]
                    }
                }
            }
        });
        patch_retrying(
            self,
            &self.deployments,
            "Deployment",
            &name,
            Patch::Strategic(&patch),
        )
        .await?;
        let preview = json!({
            "spec": { "selector": { "app": self.app, "version": slot.as_str() } }
        });
        self.patch_service(&preview_service_name(&self.app), &preview)
            .await?;
        tracing::info!(deployment = %name, image = version, replicas, "deployed");
        Ok(())
    }

    async fn scale(&self, slot: Slot, replicas: u32) -> Result<(), Error> {
        self.patch_replicas(slot, replicas).await
    }

    async fn wait_ready(&self, slot: Slot, deadline: Duration) -> Result<(), Error> {
        let name = deployment_name(&self.app, slot);
        let watch_seconds = deadline.as_secs().saturating_add(1).min(MAX_WATCH_SECONDS) as u32;
        let mut last = None;
        match tokio::time::timeout(
            deadline,
            self.watch_rollout(&name, watch_seconds, &mut last),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(Error::Deadline {
                what: format!(
                    "slot {slot} ready ({})",
                    last.map_or_else(
                        || format!("Deployment {name}: no status read"),
                        |status| status.to_string()
                    )
                ),
                waited: deadline,
            }),
        }
    }

    async fn route(&self, routing: Routing) -> Result<(), Error> {
        let active = active_service_name(&self.app);
        match routing {
            Routing::None => Err(Error::invalid(
                "routing",
                "a Kubernetes Service cannot route to nothing: route to a slot, or delete the active Service to stop serving",
            )),
            Routing::All { slot } => {
                let patch = json!({
                    "metadata": { "annotations": { CANARY_WEIGHT_ANNOTATION: null } },
                    "spec": { "selector": { "app": self.app, "version": slot.as_str() } }
                });
                self.patch_service(&active, &patch).await?;
                tracing::info!(service = %active, %slot, "all traffic routed");
                let preview = json!({
                    "spec": { "selector": { "app": self.app, "version": slot.other().as_str() } }
                });
                self.patch_service(&preview_service_name(&self.app), &preview)
                    .await?;
                Ok(())
            }
            Routing::Pooled => {
                let patch = json!({
                    "metadata": { "annotations": { CANARY_WEIGHT_ANNOTATION: null } },
                    "spec": { "selector": { "app": self.app, "version": null } }
                });
                self.patch_service(&active, &patch).await?;
                tracing::info!(service = %active, "traffic pooled across both slots");
                Ok(())
            }
            Routing::Split { canary, percent } => self.split(canary, percent).await,
        }
    }

    async fn stop(&self, slot: Slot) -> Result<(), Error> {
        let routing = self.routing().await?;
        let deployment = self.deployment(slot).await?;
        if receives_traffic(routing, slot, desired(&deployment)) {
            return Err(Error::SlotLive {
                slot,
                operation: "stop",
            });
        }
        self.patch_replicas(slot, 0).await
    }

    async fn preview_url(&self, slot: Slot) -> Result<Option<String>, Error> {
        let name = preview_service_name(&self.app);
        let service = self.service(&name).await?;
        let spec = service.spec.as_ref();
        let selected = spec
            .and_then(|spec| spec.selector.as_ref())
            .and_then(|selector| selector.get("version"))
            .and_then(|version| slot_from(version));
        let port = spec
            .and_then(|spec| spec.ports.as_ref())
            .and_then(|ports| ports.first())
            .map(|port| port.port);
        Ok(match (selected, port) {
            (Some(selected), Some(port)) if selected == slot => {
                Some(format!("http://{name}.{}.svc:{port}", self.namespace))
            }
            _ => None,
        })
    }

    async fn traffic(&self, _slot: Slot) -> Result<TrafficStats, Error> {
        Ok(TrafficStats::default())
    }
}

impl KubePlatform {
    /// What the slot's Deployment asks for and has; the version only while it asks for pods.
    async fn slot_status(&self, slot: Slot) -> Result<SlotStatus, Error> {
        let deployment = self.deployment(slot).await?;
        let desired = desired(&deployment);
        let status = deployment.status.clone().unwrap_or_default();
        let count = |n: Option<i32>| u32::try_from(n.unwrap_or(0)).unwrap_or(0);
        Ok(SlotStatus {
            slot,
            version: (desired > 0)
                .then(|| image_of(&deployment, &self.app))
                .flatten(),
            desired: count(Some(desired)),
            running: count(status.replicas),
            ready: count(status.ready_replicas),
        })
    }

    /// `Routing::Split` as a replica ratio behind a pooled selector (see the type's docs).
    async fn split(&self, canary: Slot, percent: u8) -> Result<(), Error> {
        if percent > 100 {
            return Err(Error::invalid(
                "traffic split",
                format!("{percent}% is above 100%: give a percentage from 0 to 100"),
            ));
        }
        let routing = self.routing().await?;
        let stable = canary.other();
        let current_canary = desired(&self.deployment(canary).await?);
        let current_stable = desired(&self.deployment(stable).await?);
        let total = match routing {
            Routing::All { slot } if slot == canary => current_canary,
            Routing::All { .. } => current_stable,
            _ => current_canary + current_stable,
        };
        if total <= 0 {
            return Err(Error::Platform {
                platform: PLATFORM.into(),
                operation: format!("splitting traffic {percent}% to {canary}"),
                message:
                    "neither slot has replicas to share: deploy and scale the stable slot first"
                        .into(),
            });
        }
        let canary_replicas = split_replicas(total, percent);
        let stable_replicas = total - canary_replicas;
        tracing::info!(%canary, percent, total, canary_replicas, stable_replicas, "splitting by replicas");
        let as_u32 = |n: i32| u32::try_from(n).unwrap_or(0);
        // Grow first, pool, then shrink: capacity never dips below `total`.
        if canary_replicas > current_canary {
            self.patch_replicas(canary, as_u32(canary_replicas)).await?;
        }
        if stable_replicas > current_stable {
            self.patch_replicas(stable, as_u32(stable_replicas)).await?;
        }
        let patch = json!({
            "metadata": {
                "annotations": { CANARY_WEIGHT_ANNOTATION: format!("{canary}={percent}") }
            },
            "spec": { "selector": { "app": self.app, "version": null } }
        });
        self.patch_service(&active_service_name(&self.app), &patch)
            .await?;
        if canary_replicas < current_canary {
            self.patch_replicas(canary, as_u32(canary_replicas)).await?;
        }
        if stable_replicas < current_stable {
            self.patch_replicas(stable, as_u32(stable_replicas)).await?;
        }
        Ok(())
    }
}

/// The canary's replicas for `percent` of `total`: `ceil(total × percent / 100)`, so any
/// percentage above zero gets at least one pod.
fn split_replicas(total: i32, percent: u8) -> i32 {
    let total = u64::try_from(total).unwrap_or(0);
    let canary = (total * u64::from(percent.min(100))).div_ceil(100);
    i32::try_from(canary).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_replicas_round_up_and_keep_the_total() {
        assert_eq!(split_replicas(10, 10), 1);
        assert_eq!(split_replicas(10, 0), 0);
        assert_eq!(split_replicas(10, 100), 10);
        assert_eq!(split_replicas(3, 10), 1);
        assert_eq!(split_replicas(3, 34), 2);
        assert_eq!(split_replicas(3, 50), 2);
        assert_eq!(split_replicas(4, 50), 2);
        assert_eq!(split_replicas(1, 1), 1);
        assert_eq!(split_replicas(i32::MAX, 100), i32::MAX);
    }

    #[test]
    fn a_slot_receives_traffic_as_the_routing_says() {
        use Slot::*;
        assert!(receives_traffic(Routing::All { slot: Blue }, Blue, 3));
        assert!(!receives_traffic(Routing::All { slot: Blue }, Green, 3));
        assert!(!receives_traffic(Routing::None, Blue, 3));
        assert!(receives_traffic(Routing::Pooled, Green, 1));
        assert!(!receives_traffic(Routing::Pooled, Green, 0));
        let split = |percent| Routing::Split {
            canary: Green,
            percent,
        };
        assert!(receives_traffic(split(10), Green, 1));
        assert!(receives_traffic(split(10), Blue, 2));
        assert!(!receives_traffic(split(0), Green, 1));
        assert!(!receives_traffic(split(100), Blue, 1));
    }

    fn service(selector: &[(&str, &str)], weight: Option<&str>) -> Service {
        let selector: BTreeMap<_, _> = selector.iter().copied().collect();
        let annotations = weight.map(|weight| json!({ CANARY_WEIGHT_ANNOTATION: weight }));
        serde_json::from_value(json!({
            "metadata": { "annotations": annotations },
            "spec": { "selector": selector }
        }))
        .unwrap()
    }

    #[test]
    fn routing_is_read_from_the_selector() {
        let all = |slot| Routing::All { slot };
        let read = |s: &Service| routing_of(s, "shop-active").unwrap();
        assert_eq!(
            read(&service(&[("app", "shop"), ("version", "green")], None)),
            all(Slot::Green)
        );
        assert_eq!(read(&service(&[("app", "shop")], None)), Routing::Pooled);
        assert_eq!(
            read(&service(&[("app", "shop")], Some("green=10"))),
            Routing::Split {
                canary: Slot::Green,
                percent: 10
            }
        );
        // A malformed weight reads as pooled, which is what the selector does.
        assert_eq!(
            read(&service(&[("app", "shop")], Some("green=150"))),
            Routing::Pooled
        );
        // The weight only counts while the selector pools.
        assert_eq!(
            read(&service(
                &[("app", "shop"), ("version", "blue")],
                Some("green=10")
            )),
            all(Slot::Blue)
        );
        let error =
            routing_of(&service(&[("version", "purple")], None), "shop-active").unwrap_err();
        assert!(error.to_string().contains("\"purple\""), "{error}");
    }
}
