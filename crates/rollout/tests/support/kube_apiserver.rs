//! A stand-in Kubernetes API server on loopback, for the `KubePlatform` tests: there is no
//! cluster here, so the tests talk to this through the real kube-rs client instead.
//!
//! It implements what `KubePlatform` uses, with Kubernetes' semantics:
//!
//! - `apps/v1` Deployments (`/apis/apps/v1/namespaces/{ns}/deployments[/{name}]`), `v1`
//!   Services (`/api/v1/namespaces/{ns}/services[/{name}]`) and `v1` Pods
//!   (`/api/v1/namespaces/{ns}/pods[/{name}]`, created by the test as a kubelet would report
//!   them) in one namespace;
//! - GET of one object, LIST (honouring `labelSelector=k=v,…` equality selectors), and WATCH
//!   (`?watch=true`: newline-delimited JSON events after `resourceVersion`, synthetic `ADDED`
//!   events first when it is absent or `0`; honours `fieldSelector=metadata.name=…` and
//!   `timeoutSeconds`);
//! - PATCH with `application/merge-patch+json` (RFC 7386) and
//!   `application/strategic-merge-patch+json` (the same, except that lists of objects with a
//!   `name` merge by name, as `containers` do); server-side apply and JSON patch answer `415`;
//! - a `resourceVersion` counter bumped on every change (a no-op patch changes nothing), and
//!   `metadata.generation` bumped when a spec changes; a patch carrying
//!   `metadata.resourceVersion` is conditional on it (`409` otherwise), as on a real server;
//! - errors as `Status` bodies: `404 NotFound`, `409 Conflict` (also injected for the next N
//!   patches of an object with [`ApiServer::conflict_next_patches`]), `415`, `422`;
//! - a small Deployment controller: after a spec change it moves `status` forward in steps
//!   (generation observed, new replicas created, replicas available) or holds it back, or
//!   reports `ProgressDeadlineExceeded`, per Deployment ([`ApiServer::set_rollout`]) or per
//!   image of the new pod template ([`ApiServer::set_rollout_for_image`]: a bad image fails
//!   wherever it goes, and the previous image rolls out again after an undo);
//! - a log of every request (method, path, query, content type, body, authorization).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use engine_ops_rollout::platform::kube::Manifests;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusDetails};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

type Body = BoxBody<Bytes, Infallible>;

/// The kinds the stand-in serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Deployment,
    Service,
    Pod,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::Service => "services",
            Kind::Pod => "pods",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Kind::Deployment => "apps",
            Kind::Service | Kind::Pod => "",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment => "apps/v1",
            Kind::Service | Kind::Pod => "v1",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::Pod => "Pod",
        }
    }

    /// `deployments.apps` or `services`, as Kubernetes names a resource in messages.
    fn resource(self) -> String {
        match self.group() {
            "" => self.plural().to_string(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    /// Parses into the k8s-openapi type and back: what is stored is what the type keeps.
    fn normalize(self, object: Value) -> Result<Value, serde_json::Error> {
        match self {
            Kind::Deployment => serde_json::to_value(serde_json::from_value::<Deployment>(object)?),
            Kind::Service => serde_json::to_value(serde_json::from_value::<Service>(object)?),
            Kind::Pod => serde_json::to_value(serde_json::from_value::<Pod>(object)?),
        }
    }
}

/// How the fake controller moves a Deployment's status after a spec change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Rollout {
    /// Observed, then new replicas created, then available: the rollout completes.
    #[default]
    Progress,
    /// Observed and new replicas created, but they never become available.
    Unavailable,
    /// Like `Unavailable`, then the Progressing condition turns `ProgressDeadlineExceeded`.
    ProgressDeadlineExceeded,
}

/// One request as the stand-in received it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) authorization: Option<String>,
    /// The body as JSON (`null` when empty; a JSON string when it was not JSON).
    pub(crate) body: Value,
}

impl Recorded {
    /// `METHOD /path?query`, with a watch's `resourceVersion` value replaced by `N` (it
    /// depends on how far the controller got when the client read the object).
    pub(crate) fn line(&self) -> String {
        let mut line = format!("{} {}", self.method, self.path);
        if let Some(query) = &self.query {
            let query = query
                .split('&')
                .map(|pair| {
                    if pair.starts_with("resourceVersion=") && query.contains("watch=true") {
                        "resourceVersion=N".to_string()
                    } else {
                        pair.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("&");
            line.push('?');
            line.push_str(&query);
        }
        line
    }

    pub(crate) fn is_watch(&self) -> bool {
        self.query
            .as_deref()
            .is_some_and(|query| query.split('&').any(|pair| pair == "watch=true"))
    }
}

struct Event {
    resource_version: u64,
    kind: Kind,
    name: String,
    type_: &'static str,
    object: Value,
}

struct State {
    namespace: String,
    resource_version: u64,
    next_uid: u64,
    objects: BTreeMap<(Kind, String), Value>,
    events: Vec<Event>,
    requests: Vec<Recorded>,
    conflicts: HashMap<(Kind, String), u32>,
    rollouts: HashMap<String, Rollout>,
    image_rollouts: HashMap<String, Rollout>,
}

struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    step: Mutex<Duration>,
}

/// The running stand-in. Dropping it stops accepting connections.
pub(crate) struct ApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl ApiServer {
    /// Starts a stand-in serving `namespace` on `127.0.0.1` (a free port).
    pub(crate) async fn start(namespace: &str) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                namespace: namespace.to_string(),
                resource_version: 100,
                next_uid: 1,
                objects: BTreeMap::new(),
                events: Vec::new(),
                requests: Vec::new(),
                conflicts: HashMap::new(),
                rollouts: HashMap::new(),
                image_rollouts: HashMap::new(),
            }),
            changed: watch::channel(100).0,
            step: Mutex::new(Duration::from_millis(20)),
        });
        let accept = tokio::spawn({
            let shared = shared.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(handle(shared, request).await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        ApiServer {
            addr,
            shared,
            accept,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client for this server, its default namespace the served one.
    pub(crate) fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url().parse().unwrap());
        config.default_namespace = self.namespace();
        kube::Client::try_from(config).unwrap()
    }

    /// Writes a kubeconfig naming this server (context `stand-in`, bearer token
    /// `stand-in-token`, the served namespace) to `dir/kubeconfig` and returns its path.
    pub(crate) fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {url}\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: stand-in\n    namespace: {ns}\ncurrent-context: stand-in\nusers:\n- name: stand-in\n  user:\n    token: stand-in-token\n",
            url = self.url(),
            ns = self.namespace()
        );
        std::fs::write(&path, yaml).unwrap();
        path
    }

    pub(crate) fn namespace(&self) -> String {
        self.shared.state.lock().unwrap().namespace.clone()
    }

    /// The time between two steps of the fake controller (20 ms unless set).
    pub(crate) fn set_controller_step(&self, step: Duration) {
        *self.shared.step.lock().unwrap() = step;
    }

    /// How the controller treats `deployment` from now on.
    pub(crate) fn set_rollout(&self, deployment: &str, rollout: Rollout) {
        let mut state = self.shared.state.lock().unwrap();
        state.rollouts.insert(deployment.to_string(), rollout);
    }

    /// How the controller treats any Deployment whose new pod template's first container runs
    /// `image`, from now on; it takes precedence over [`set_rollout`](Self::set_rollout).
    pub(crate) fn set_rollout_for_image(&self, image: &str, rollout: Rollout) {
        let mut state = self.shared.state.lock().unwrap();
        state.image_rollouts.insert(image.to_string(), rollout);
    }

    /// Answers the next `n` PATCH requests of the object with `409 Conflict`.
    pub(crate) fn conflict_next_patches(&self, kind: Kind, name: &str, n: u32) {
        let mut state = self.shared.state.lock().unwrap();
        state.conflicts.insert((kind, name.to_string()), n);
    }

    /// Creates every object of `manifests`; Deployments start fully rolled out.
    pub(crate) fn create_all(&self, manifests: &Manifests) {
        for deployment in &manifests.deployments {
            self.create(Kind::Deployment, serde_json::to_value(deployment).unwrap());
        }
        for service in &manifests.services {
            self.create(Kind::Service, serde_json::to_value(service).unwrap());
        }
    }

    /// Creates an object (as another client would: not recorded). A Deployment starts with
    /// its generation observed and every replica available.
    pub(crate) fn create(&self, kind: Kind, mut object: Value) {
        let mut state = self.shared.state.lock().unwrap();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let rv = state.resource_version + 1;
        let uid = state.next_uid;
        state.next_uid += 1;
        let metadata = &mut object["metadata"];
        metadata["namespace"] = json!(state.namespace);
        metadata["uid"] = json!(format!("00000000-0000-0000-0000-{uid:012}"));
        metadata["resourceVersion"] = json!(rv.to_string());
        metadata["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        if kind == Kind::Deployment {
            metadata["generation"] = json!(1);
            let desired = object["spec"]["replicas"].as_i64().unwrap_or(1);
            object["status"] = json!({
                "observedGeneration": 1,
                "replicas": desired,
                "updatedReplicas": desired,
                "readyReplicas": desired,
                "availableReplicas": desired,
                "conditions": conditions(desired > 0, "True", "NewReplicaSetAvailable"),
            });
        }
        let object = kind.normalize(object).unwrap();
        state.commit(kind, &name, "ADDED", object, rv);
        drop(state);
        self.shared.changed.send_replace(rv);
    }

    /// Merge-patches an object as another client would (not recorded, no conflicts).
    pub(crate) fn patch(&self, kind: Kind, name: &str, patch: Value) {
        let mut state = self.shared.state.lock().unwrap();
        let current = state.objects[&(kind, name.to_string())].clone();
        let mut next = current.clone();
        merge(&mut next, &patch, false);
        let next = kind.normalize(next).unwrap();
        if next != current {
            let rv = state.resource_version + 1;
            state.commit(kind, name, "MODIFIED", next, rv);
            drop(state);
            self.shared.changed.send_replace(rv);
        }
    }

    /// Deletes an object (not recorded).
    pub(crate) fn delete(&self, kind: Kind, name: &str) {
        let mut state = self.shared.state.lock().unwrap();
        if let Some(object) = state.objects.get(&(kind, name.to_string())).cloned() {
            let rv = state.resource_version + 1;
            state.commit(kind, name, "DELETED", object, rv);
            state.objects.remove(&(kind, name.to_string()));
            drop(state);
            self.shared.changed.send_replace(rv);
        }
    }

    pub(crate) fn deployment(&self, name: &str) -> Option<Deployment> {
        self.object(Kind::Deployment, name)
            .map(|object| serde_json::from_value(object).unwrap())
    }

    pub(crate) fn service(&self, name: &str) -> Option<Service> {
        self.object(Kind::Service, name)
            .map(|object| serde_json::from_value(object).unwrap())
    }

    /// Creates a pod named `name` with `labels` and one container `container` running
    /// `image`; `status` is its `status` as a kubelet would report it (conditions, container
    /// statuses).
    pub(crate) fn create_pod(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        container: &str,
        image: &str,
        status: Value,
    ) {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        self.create(
            Kind::Pod,
            json!({
                "metadata": { "name": name, "labels": labels },
                "spec": { "containers": [{ "name": container, "image": image }] },
                "status": status,
            }),
        );
    }

    /// The stored object as JSON.
    pub(crate) fn object(&self, kind: Kind, name: &str) -> Option<Value> {
        let state = self.shared.state.lock().unwrap();
        state.objects.get(&(kind, name.to_string())).cloned()
    }

    /// The server's current resourceVersion.
    pub(crate) fn resource_version(&self) -> u64 {
        self.shared.state.lock().unwrap().resource_version
    }

    /// Every request received so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    /// The requests received since the last call (and forgets them).
    pub(crate) fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.shared.state.lock().unwrap().requests)
    }
}

impl State {
    /// Stores `object` at resourceVersion `rv` and logs the event.
    fn commit(&mut self, kind: Kind, name: &str, type_: &'static str, mut object: Value, rv: u64) {
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.resource_version = rv;
        self.objects
            .insert((kind, name.to_string()), object.clone());
        self.events.push(Event {
            resource_version: rv,
            kind,
            name: name.to_string(),
            type_,
            object,
        });
    }
}

fn conditions(available: bool, progressing: &str, reason: &str) -> Value {
    json!([
        {
            "type": "Available",
            "status": if available { "True" } else { "False" },
            "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
        },
        { "type": "Progressing", "status": progressing, "reason": reason },
    ])
}

/// RFC 7386 merge of `patch` into `target`; with `strategic`, lists of objects that all have
/// a `name` merge element by element on it (Kubernetes' patchMergeKey for containers).
fn merge(target: &mut Value, patch: &Value, strategic: bool) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            let object = target.as_object_mut().unwrap();
            for (key, value) in fields {
                if value.is_null() {
                    object.remove(key);
                } else {
                    merge(
                        object.entry(key.clone()).or_insert(Value::Null),
                        value,
                        strategic,
                    );
                }
            }
        }
        Value::Array(items) if strategic && named_objects(items) => {
            let Some(existing) = target.as_array_mut().filter(|t| named_objects(t)) else {
                *target = patch.clone();
                return;
            };
            for item in items {
                match existing.iter_mut().find(|e| e["name"] == item["name"]) {
                    Some(element) => merge(element, item, strategic),
                    None => existing.push(item.clone()),
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn named_objects(items: &[Value]) -> bool {
    items
        .iter()
        .all(|item| item.get("name").is_some_and(Value::is_string))
}

fn status_response(
    code: StatusCode,
    reason: &str,
    message: String,
    details: Option<(Kind, &str)>,
) -> Response<Body> {
    let status = Status {
        status: Some("Failure".into()),
        message: Some(message),
        reason: Some(reason.into()),
        code: Some(i32::from(code.as_u16())),
        details: details.map(|(kind, name)| StatusDetails {
            name: Some(name.into()),
            group: (!kind.group().is_empty()).then(|| kind.group().into()),
            kind: Some(kind.plural().into()),
            ..StatusDetails::default()
        }),
        ..Status::default()
    };
    json_response(code, &serde_json::to_value(status).unwrap())
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())).boxed())
        .unwrap()
}

fn not_found(kind: Kind, name: &str) -> Response<Body> {
    status_response(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} \"{name}\" not found", kind.resource()),
        Some((kind, name)),
    )
}

fn conflict(kind: Kind, name: &str) -> Response<Body> {
    status_response(
        StatusCode::CONFLICT,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            kind.resource()
        ),
        Some((kind, name)),
    )
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Decodes `%XX` escapes and `+` (a space) of a query value.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        decoded.push(byte);
                        index += 3;
                        continue;
                    }
                    Err(_) => decoded.push(b'%'),
                }
            }
            b'+' => decoded.push(b' '),
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// `labelSelector=app%3Dshop%2Cversion%3Dgreen` → `[(app, shop), (version, green)]`. Only
/// equality requirements (`k=v`, `k==v`) are understood.
fn label_selector(query: Option<&str>) -> Vec<(String, String)> {
    let Some(selector) = query_param(query, "labelSelector") else {
        return Vec::new();
    };
    percent_decode(selector)
        .split(',')
        .filter_map(|requirement| {
            let (key, value) = requirement.split_once('=')?;
            Some((
                key.trim().to_string(),
                value.trim_start_matches('=').trim().to_string(),
            ))
        })
        .collect()
}

/// `metadata.name=shop-green` (URL-encoded) → `shop-green`.
fn name_selector(query: Option<&str>) -> Option<String> {
    let selector = query_param(query, "fieldSelector")?;
    let decoded = selector
        .replace("%3D", "=")
        .replace("%3d", "=")
        .replace('+', " ");
    decoded.strip_prefix("metadata.name=").map(String::from)
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(String::from),
        content_type: header("content-type"),
        authorization: header("authorization"),
        body: body.clone(),
    };
    shared.state.lock().unwrap().requests.push(recorded);

    let query = parts.uri.query();
    let segments: Vec<&str> = parts.uri.path().trim_matches('/').split('/').collect();
    let (kind, namespace, name) = match segments.as_slice() {
        [
            "apis",
            "apps",
            "v1",
            "namespaces",
            ns,
            "deployments",
            rest @ ..,
        ] => (Kind::Deployment, *ns, rest.first().copied()),
        ["api", "v1", "namespaces", ns, "services", rest @ ..] => {
            (Kind::Service, *ns, rest.first().copied())
        }
        ["api", "v1", "namespaces", ns, "pods", rest @ ..] => {
            (Kind::Pod, *ns, rest.first().copied())
        }
        _ => {
            return status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource".into(),
                None,
            );
        }
    };
    if segments.len() > 7 || (kind.group().is_empty() && segments.len() > 6) {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the stand-in serves no subresources".into(),
            None,
        );
    }
    let served = shared.state.lock().unwrap().namespace.clone();
    match (parts.method.clone(), name) {
        (Method::GET, Some(name)) => {
            let state = shared.state.lock().unwrap();
            match state.objects.get(&(kind, name.to_string())) {
                Some(object) if namespace == served => json_response(StatusCode::OK, object),
                _ => not_found(kind, name),
            }
        }
        (Method::GET, None) if query_param(query, "watch") == Some("true") => {
            watch_response(shared, kind, namespace == served, query)
        }
        (Method::GET, None) => {
            let state = shared.state.lock().unwrap();
            let only = name_selector(query);
            let labels = label_selector(query);
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|((k, n), object)| {
                    *k == kind
                        && namespace == served
                        && only.as_ref().is_none_or(|o| o == n)
                        && labels
                            .iter()
                            .all(|(key, value)| object["metadata"]["labels"][key] == **value)
                })
                .map(|(_, object)| object.clone())
                .collect();
            json_response(
                StatusCode::OK,
                &json!({
                    "apiVersion": kind.api_version(),
                    "kind": format!("{}List", kind.kind()),
                    "metadata": { "resourceVersion": state.resource_version.to_string() },
                    "items": items,
                }),
            )
        }
        (Method::PATCH, Some(name)) => {
            let content_type = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            patch_object(
                &shared,
                kind,
                name,
                namespace == served,
                &content_type,
                body,
            )
        }
        (method, _) => status_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the stand-in does not implement {method} here"),
            None,
        ),
    }
}

fn patch_object(
    shared: &Arc<Shared>,
    kind: Kind,
    name: &str,
    in_namespace: bool,
    content_type: &str,
    mut patch: Value,
) -> Response<Body> {
    let strategic = match content_type {
        "application/merge-patch+json" => false,
        "application/strategic-merge-patch+json" => true,
        other => {
            return status_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("the stand-in implements merge and strategic-merge patches, not {other:?}"),
                None,
            );
        }
    };
    if !patch.is_object() {
        return status_response(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the patch is not a JSON object".into(),
            None,
        );
    }
    let mut state = shared.state.lock().unwrap();
    let key = (kind, name.to_string());
    let Some(current) = state.objects.get(&key).filter(|_| in_namespace).cloned() else {
        return not_found(kind, name);
    };
    if let Some(remaining) = state.conflicts.get_mut(&key).filter(|n| **n > 0) {
        *remaining -= 1;
        return conflict(kind, name);
    }
    let precondition = patch
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|metadata| metadata.remove("resourceVersion"));
    if let Some(expected) = precondition.filter(|v| !v.is_null())
        && expected != current["metadata"]["resourceVersion"]
    {
        return conflict(kind, name);
    }
    let mut next = current.clone();
    merge(&mut next, &patch, strategic);
    next["metadata"]["name"] = current["metadata"]["name"].clone();
    next["metadata"]["namespace"] = current["metadata"]["namespace"].clone();
    next["status"] = current["status"].clone();
    let spec_changed = next["spec"] != current["spec"];
    if spec_changed && kind == Kind::Deployment {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        next["metadata"]["generation"] = json!(generation);
    }
    let next = match kind.normalize(next) {
        Ok(next) => next,
        Err(e) => {
            return status_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("{} \"{name}\" is invalid: {e}", kind.resource()),
                Some((kind, name)),
            );
        }
    };
    if next == current {
        return json_response(StatusCode::OK, &current);
    }
    let rv = state.resource_version + 1;
    state.commit(kind, name, "MODIFIED", next, rv);
    let stored = state.objects[&key].clone();
    let image = stored["spec"]["template"]["spec"]["containers"][0]["image"].as_str();
    let rollout = image
        .and_then(|image| state.image_rollouts.get(image))
        .or_else(|| state.rollouts.get(name))
        .copied()
        .unwrap_or_default();
    drop(state);
    shared.changed.send_replace(rv);
    if spec_changed && kind == Kind::Deployment {
        let generation = stored["metadata"]["generation"].as_i64().unwrap_or(1);
        tokio::spawn(control(
            shared.clone(),
            name.to_string(),
            generation,
            rollout,
        ));
    }
    json_response(StatusCode::OK, &stored)
}

/// The fake Deployment controller for one spec change (generation `generation`).
async fn control(shared: Arc<Shared>, name: String, generation: i64, rollout: Rollout) {
    let step = *shared.step.lock().unwrap();
    // 1. The new generation is observed; a new ReplicaSet exists but has no pods yet.
    tokio::time::sleep(step).await;
    let observed = update_status(&shared, &name, generation, |status, _| {
        status["observedGeneration"] = json!(generation);
        status["updatedReplicas"] = json!(0);
        status["conditions"] = conditions(
            status["availableReplicas"].as_i64().unwrap_or(0) > 0,
            "True",
            "ReplicaSetUpdated",
        );
    });
    if !observed {
        return;
    }
    // 2. The new pods exist, the old ones are gone; none is available yet.
    tokio::time::sleep(step).await;
    let created = update_status(&shared, &name, generation, |status, desired| {
        status["replicas"] = json!(desired);
        status["updatedReplicas"] = json!(desired);
        status["readyReplicas"] = json!(0);
        status["availableReplicas"] = json!(0);
        status["unavailableReplicas"] = json!(desired);
        status["conditions"] = conditions(desired == 0, "True", "ReplicaSetUpdated");
    });
    if !created {
        return;
    }
    tokio::time::sleep(step).await;
    match rollout {
        Rollout::Unavailable => {}
        Rollout::ProgressDeadlineExceeded => {
            update_status(&shared, &name, generation, |status, _| {
                status["conditions"] = conditions(false, "False", "ProgressDeadlineExceeded");
            });
        }
        // 3. Every new pod is ready and available.
        Rollout::Progress => {
            update_status(&shared, &name, generation, |status, desired| {
                status["readyReplicas"] = json!(desired);
                status["availableReplicas"] = json!(desired);
                status["unavailableReplicas"] = Value::Null;
                status["conditions"] = conditions(true, "True", "NewReplicaSetAvailable");
            });
        }
    }
}

/// Applies `change(status, spec.replicas)` while the Deployment is still at `generation`;
/// `false` when a newer spec superseded it (its own controller run takes over).
fn update_status(
    shared: &Arc<Shared>,
    name: &str,
    generation: i64,
    change: impl FnOnce(&mut Value, i64),
) -> bool {
    let mut state = shared.state.lock().unwrap();
    let key = (Kind::Deployment, name.to_string());
    let Some(mut object) = state.objects.get(&key).cloned() else {
        return false;
    };
    if object["metadata"]["generation"].as_i64() != Some(generation) {
        return false;
    }
    let desired = object["spec"]["replicas"].as_i64().unwrap_or(1);
    if !object["status"].is_object() {
        object["status"] = json!({});
    }
    change(&mut object["status"], desired);
    let object = Kind::Deployment.normalize(object).unwrap();
    let rv = state.resource_version + 1;
    state.commit(Kind::Deployment, name, "MODIFIED", object, rv);
    drop(state);
    shared.changed.send_replace(rv);
    true
}

fn watch_response(
    shared: Arc<Shared>,
    kind: Kind,
    in_namespace: bool,
    query: Option<&str>,
) -> Response<Body> {
    let only = name_selector(query);
    let timeout = query_param(query, "timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(290);
    let since: Option<u64> = query_param(query, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let matches =
            |k: Kind, n: &str| k == kind && in_namespace && only.as_deref().is_none_or(|o| o == n);
        let line = |type_: &str, object: &Value| {
            Bytes::from(json!({ "type": type_, "object": object }).to_string() + "\n")
        };
        let mut changed = shared.changed.subscribe();
        changed.borrow_and_update();
        let (mut last, initial) = {
            let state = shared.state.lock().unwrap();
            match since {
                Some(since) => (since, Vec::new()),
                None => (
                    state.resource_version,
                    state
                        .objects
                        .iter()
                        .filter(|((k, n), _)| matches(*k, n))
                        .map(|(_, object)| line("ADDED", object))
                        .collect(),
                ),
            }
        };
        for event in initial {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        loop {
            let pending: Vec<Bytes> = {
                let state = shared.state.lock().unwrap();
                let pending = state
                    .events
                    .iter()
                    .filter(|e| e.resource_version > last && matches(e.kind, &e.name))
                    .map(|e| line(e.type_, &e.object))
                    .collect();
                last = state.resource_version;
                pending
            };
            for event in pending {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                changed = changed.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(deadline) => return,
                () = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(StreamBody::new(stream).boxed())
        .unwrap()
}
