//! Shared test support: a test API (versions v1, v2, v3 with a two-step change chain), a way
//! to send one request either in process (`tower::ServiceExt::oneshot`) or over real HTTP on
//! loopback (`axum::serve` on 127.0.0.1:0 and a hyper-util client), and a settable clock.
#![allow(dead_code, unreachable_pub)]

use axum::Router;
use axum::body::Body;
use axum::extract::Request as AxumRequest;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use bytes::Bytes;
use engine_ops_apiver::{
    ApiVersion, ApiVersioning, ApiVersioningBuilder, ApiVersioningLayer, OriginalUri,
    RequestContext, ResponseContext, TransformError, VersionChange,
};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

/// How a request reaches the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `tower::ServiceExt::oneshot`, in process.
    Oneshot,
    /// Real HTTP/1.1 over loopback.
    Http,
}

pub const TRANSPORTS: [Transport; 2] = [Transport::Oneshot, Transport::Http];

/// A request to send.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

impl Req {
    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post_json(path: &str, body: &Value) -> Self {
        Self::new(Method::POST, path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
    }

    pub fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    fn build<B>(&self, uri: String, body: B) -> Request<B> {
        let mut req = Request::builder().method(self.method.clone()).uri(uri);
        for (name, value) in &self.headers {
            req = req.header(name.as_str(), HeaderValue::from_bytes(value).unwrap());
        }
        req.body(body).unwrap()
    }
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// Asserts an RFC 9457 problem body with this status, and returns it.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let json = self.json();
        assert_eq!(json["status"], status);
        for member in ["type", "title", "detail"] {
            assert!(json[member].is_string(), "{member} in {json}");
        }
        assert!(json["supported_versions"].is_array(), "{json}");
        json
    }
}

type App = BoxCloneSyncService<Request<Body>, Response, Infallible>;

/// A versioned service, reachable both ways.
pub struct Harness {
    pub app: App,
    pub layer: ApiVersioningLayer,
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Harness {
    /// Wraps `router` with the layer and serves it on an ephemeral loopback port.
    pub async fn new(layer: ApiVersioningLayer, router: Router) -> Self {
        let app: ApiVersioning<Router> = layer.layer(router);
        Self::serve(layer, BoxCloneSyncService::new(app)).await
    }

    /// Serves `router` as it is (it holds the layer itself, through `Router::layer`).
    pub async fn inside(layer: ApiVersioningLayer, router: Router) -> Self {
        Self::serve(layer, BoxCloneSyncService::new(router)).await
    }

    async fn serve(layer: ApiVersioningLayer, app: App) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = app.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                axum::ServiceExt::<AxumRequest>::into_make_service(served),
            )
            .await
            .unwrap();
        });
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            app,
            layer,
            addr,
            client,
        }
    }

    /// The test API of [`router`] behind `builder`.
    pub async fn with(builder: ApiVersioningBuilder) -> Self {
        Self::new(builder.build().unwrap(), router()).await
    }

    pub async fn send(&self, transport: Transport, req: &Req) -> Reply {
        match transport {
            Transport::Oneshot => {
                let request = req.build(req.path.clone(), Body::from(req.body.clone()));
                let response = self.app.clone().oneshot(request).await.unwrap();
                let (parts, body) = response.into_parts();
                Reply {
                    status: parts.status,
                    headers: parts.headers,
                    body: body.collect().await.unwrap().to_bytes(),
                }
            }
            Transport::Http => {
                let uri = format!("http://{}{}", self.addr, req.path);
                let request = req.build(uri, Full::new(req.body.clone()));
                let response = self.client.request(request).await.unwrap();
                let (parts, body) = response.into_parts();
                Reply {
                    status: parts.status,
                    headers: parts.headers,
                    body: body.collect().await.unwrap().to_bytes(),
                }
            }
        }
    }
}

/// v1 -> v2: `name` became `full_name`.
pub struct RenameName;

impl VersionChange for RenameName {
    fn upgrade_request(
        &self,
        body: &mut Value,
        _: &RequestContext<'_>,
    ) -> Result<(), TransformError> {
        let Some(obj) = body.as_object_mut() else {
            return Ok(());
        };
        if obj.contains_key("full_name") {
            return Err(
                TransformError::new("`full_name` is not part of v1; send `name`")
                    .with_status(StatusCode::UNPROCESSABLE_ENTITY),
            );
        }
        if let Some(name) = obj.remove("name") {
            obj.insert("full_name".into(), name);
        }
        Ok(())
    }

    fn downgrade_response(
        &self,
        body: &mut Value,
        _: &ResponseContext<'_>,
    ) -> Result<(), TransformError> {
        if let Some(obj) = body.as_object_mut()
            && let Some(name) = obj.remove("full_name")
        {
            obj.insert("name".into(), name);
        }
        Ok(())
    }
}

/// v2 -> v3: `amount` in cents became `{"amount": {"value": cents, "currency": "EUR"}}`.
pub struct MoneyObject;

impl VersionChange for MoneyObject {
    fn upgrade_request(
        &self,
        body: &mut Value,
        _: &RequestContext<'_>,
    ) -> Result<(), TransformError> {
        if let Some(obj) = body.as_object_mut()
            && let Some(amount) = obj.get_mut("amount")
        {
            if !amount.is_i64() {
                return Err(TransformError::new(
                    "`amount` must be an integer number of cents",
                ));
            }
            *amount = json!({"value": amount.take(), "currency": "EUR"});
        }
        Ok(())
    }

    fn downgrade_response(
        &self,
        body: &mut Value,
        cx: &ResponseContext<'_>,
    ) -> Result<(), TransformError> {
        if cx.path() == "/api/fail-downgrade" {
            return Err(TransformError::new("cannot express this in v2"));
        }
        if let Some(obj) = body.as_object_mut()
            && let Some(amount) = obj.get_mut("amount")
            && let Some(value) = amount.get("value").cloned()
        {
            *amount = value;
        }
        Ok(())
    }
}

/// A builder for v1, v2, v3 with the two changes, path stripping on.
pub fn chain_builder() -> ApiVersioningBuilder {
    ApiVersioning::builder()
        .versions(["v1", "v2", "v3"])
        .strip_version_from_path(true)
        .change("v1", "v2", RenameName)
        .change("v2", "v3", MoneyObject)
}

/// What the handler saw, as JSON.
async fn info(req: AxumRequest) -> Response {
    let version = req.extensions().get::<ApiVersion>().copied();
    let original = req.extensions().get::<OriginalUri>().cloned();
    let mut response = axum::Json(json!({
        "version": version.map(|v| v.version.to_string()),
        "source": version.map(|v| v.source.to_string()),
        "uri": req.uri().to_string(),
        "original": original.map(|o| o.0.to_string()),
    }))
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::LINK,
        HeaderValue::from_static("</handler>; rel=\"help\""),
    );
    response
}

/// Echoes a JSON body (in the latest format), with what the handler saw in headers.
async fn echo(req: AxumRequest) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let mut response = Response::new(Body::from(bytes.clone()));
    let headers = response.headers_mut();
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, ct.clone());
    }
    headers.insert("x-seen-length", HeaderValue::from(bytes.len()));
    if let Some(cl) = parts.headers.get(header::CONTENT_LENGTH) {
        headers.insert("x-seen-content-length", cl.clone());
    }
    headers.insert(
        "x-seen-body",
        HeaderValue::from_bytes(&bytes).unwrap_or(HeaderValue::from_static("(binary)")),
    );
    response
}

fn json_response(status: StatusCode, content_type: &'static str, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The test API, speaking v3.
pub fn router() -> Router {
    Router::new()
        .route("/api/info", any(info))
        .route("/info", any(info))
        .route("/api/echo", post(echo))
        .route(
            "/api/account",
            get(|| async {
                let mut r = json_response(
                    StatusCode::OK,
                    "application/json",
                    json!({"full_name": "Ada", "amount": {"value": 1250, "currency": "EUR"}}),
                );
                r.headers_mut()
                    .insert(header::ETAG, HeaderValue::from_static("\"acct-7\""));
                r
            }),
        )
        .route(
            "/api/conditional",
            get(|headers: HeaderMap| async move {
                let tag = HeaderValue::from_static("\"acct-7\"");
                let matches = headers.get(header::IF_NONE_MATCH) == Some(&tag);
                let mut r = if matches {
                    StatusCode::NOT_MODIFIED.into_response()
                } else {
                    json_response(StatusCode::OK, "application/json", json!({"full_name": "Ada"}))
                };
                r.headers_mut().insert(header::ETAG, tag);
                r
            }),
        )
        .route(
            "/api/text",
            get(|| async { "full_name: plain text" }).post(echo),
        )
        .route("/api/no-content", any(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/api/empty-json",
            get(|| async {
                let mut r = Response::new(Body::empty());
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }),
        )
        .route(
            "/api/gzip",
            get(|| async {
                let mut r = json_response(StatusCode::OK, "application/json", json!({"full_name": "Ada"}));
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }),
        )
        .route(
            "/api/problem",
            get(|| async {
                json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "application/problem+json",
                    json!({"type": "about:blank", "status": 422, "full_name": "Ada", "amount": {"value": 5, "currency": "EUR"}}),
                )
            }),
        )
        .route(
            "/api/big",
            get(|| async {
                json_response(
                    StatusCode::OK,
                    "application/json",
                    json!({"full_name": "x".repeat(4096)}),
                )
            }),
        )
        .route(
            "/api/bad-json",
            get(|| async {
                let mut r = (StatusCode::OK, "{not json").into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }),
        )
        .route(
            "/api/fail-downgrade",
            get(|| async { json_response(StatusCode::OK, "application/json", json!({"amount": 1})) }),
        )
        .fallback(info)
}

/// A clock the test sets, in nanoseconds since the epoch.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub fn at(secs: u64) -> Self {
        let clock = Self::default();
        clock.set(UNIX_EPOCH + Duration::from_secs(secs));
        clock
    }

    pub fn set(&self, at: SystemTime) {
        let nanos = at.duration_since(UNIX_EPOCH).unwrap().as_nanos();
        self.0
            .store(u64::try_from(nanos).unwrap(), Ordering::SeqCst);
    }

    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }

    pub fn as_fn(&self) -> impl Fn() -> SystemTime + Send + Sync + 'static {
        let clock = self.clone();
        move || clock.now()
    }
}
