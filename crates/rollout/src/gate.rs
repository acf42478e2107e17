//! Gates: checks a new release must pass before it gets traffic. A failed gate aborts the
//! rollout, which rolls back.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::platform::Slot;

/// The default timeout of a gate.
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of a response body an HTTP gate reads to look for
/// [`body_contains`](Gate::body_contains).
const MAX_BODY: usize = 1024 * 1024;

/// What a gate knows about the release it checks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateContext {
    /// The slot the release runs in.
    pub slot: Slot,
    /// The version being rolled out.
    pub version: String,
    /// A base URL (`http://127.0.0.1:40123`) that reaches only this slot, when the platform
    /// has one.
    pub preview_url: Option<String>,
}

impl GateContext {
    /// A context; strategies build it, tests of custom gates may too.
    ///
    /// ```
    /// use engine_ops_rollout::{GateContext, Slot};
    ///
    /// let ctx = GateContext::new(Slot::Green, "v2", Some("http://127.0.0.1:9000".into()));
    /// assert_eq!(ctx.version, "v2");
    /// ```
    pub fn new(slot: Slot, version: impl Into<String>, preview_url: Option<String>) -> Self {
        Self {
            slot,
            version: version.into(),
            preview_url,
        }
    }
}

type GateFn =
    dyn Fn(GateContext) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync;

#[derive(Clone)]
enum Check {
    Http {
        path: String,
        status: Option<StatusCode>,
        body_contains: Option<String>,
    },
    Fn(Arc<GateFn>),
}

/// A named check of a new release, with a timeout. A failed gate aborts the rollout, which
/// rolls back.
///
/// Two kinds: [`Gate::http`] sends a `GET` to the slot's preview URL (the platform's endpoint
/// that reaches only the new release, whatever the routing) and expects a status and,
/// optionally, a piece of body; [`Gate::from_fn`] runs any async check with a
/// [`GateContext`]. Every gate has a timeout (5 s by default): a gate that hangs fails.
///
/// ```
/// use std::time::Duration;
/// use engine_ops_rollout::Gate;
///
/// let smoke = Gate::http("smoke", "/api/v1/optimize?probe=1")
///     .expect_status(200)
///     .body_contains("\"ok\":true")
///     .timeout(Duration::from_secs(2));
/// let version = Gate::from_fn("reports its version", |ctx| async move {
///     if ctx.version.starts_with('v') { Ok(()) } else { Err(format!("odd version {}", ctx.version)) }
/// });
/// # let _ = (smoke, version);
/// ```
#[derive(Clone)]
pub struct Gate {
    name: String,
    check: Check,
    timeout: Duration,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Gate");
        d.field("name", &self.name);
        match &self.check {
            Check::Http {
                path,
                status,
                body_contains,
            } => d
                .field("path", path)
                .field("status", status)
                .field("body_contains", body_contains),
            Check::Fn(_) => d.field("check", &"fn"),
        };
        d.field("timeout", &self.timeout).finish()
    }
}

impl Gate {
    /// A `GET` of `path` (with query, if any) against the slot's preview URL; passes on a
    /// `2xx` status unless [`expect_status`](Gate::expect_status) says otherwise. Fails when
    /// the platform has no preview URL.
    ///
    /// ```
    /// use engine_ops_rollout::Gate;
    ///
    /// let gate = Gate::http("ready", "/health/ready");
    /// assert_eq!(gate.name(), "ready");
    /// ```
    pub fn http(name: impl Into<String>, path: impl Into<String>) -> Self {
        let mut path = path.into();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        Self {
            name: name.into(),
            check: Check::Http {
                path,
                status: None,
                body_contains: None,
            },
            timeout: DEFAULT_GATE_TIMEOUT,
        }
    }

    /// Any async check: `Ok(())` passes, `Err(message)` fails with the message.
    ///
    /// ```
    /// use engine_ops_rollout::Gate;
    ///
    /// let gate = Gate::from_fn("has preview", |ctx| async move {
    ///     ctx.preview_url.map(|_| ()).ok_or_else(|| "no preview url".to_owned())
    /// });
    /// # let _ = gate;
    /// ```
    pub fn from_fn<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn(GateContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let check: Arc<GateFn> = Arc::new(move |ctx| Box::pin(check(ctx)));
        Self {
            name: name.into(),
            check: Check::Fn(check),
            timeout: DEFAULT_GATE_TIMEOUT,
        }
    }

    /// For an HTTP gate, the one status that passes (instead of any `2xx`). Ignored by
    /// [`from_fn`](Gate::from_fn) gates.
    ///
    /// # Panics
    ///
    /// When `status` is not a valid HTTP status code (100 to 999).
    ///
    /// ```
    /// use engine_ops_rollout::Gate;
    ///
    /// // The old API must answer 410 Gone on the new release.
    /// let gate = Gate::http("v0 sunset", "/api/v0/optimize").expect_status(410);
    /// # let _ = gate;
    /// ```
    pub fn expect_status(mut self, status: u16) -> Self {
        let status = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("{status} is not an HTTP status code (100 to 999)"));
        if let Check::Http { status: s, .. } = &mut self.check {
            *s = Some(status);
        }
        self
    }

    /// For an HTTP gate, a piece of text the body must contain (the first MiB is read).
    /// Ignored by [`from_fn`](Gate::from_fn) gates.
    ///
    /// ```
    /// use engine_ops_rollout::Gate;
    ///
    /// let gate = Gate::http("version", "/version").body_contains("v2");
    /// # let _ = gate;
    /// ```
    pub fn body_contains(mut self, text: impl Into<String>) -> Self {
        if let Check::Http { body_contains, .. } = &mut self.check {
            *body_contains = Some(text.into());
        }
        self
    }

    /// How long the gate may take before it fails (default 5 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use engine_ops_rollout::Gate;
    ///
    /// let gate = Gate::http("slow warm-up", "/warm").timeout(Duration::from_secs(30));
    /// assert_eq!(gate.timeout_duration(), Duration::from_secs(30));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The gate's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The gate's timeout.
    pub fn timeout_duration(&self) -> Duration {
        self.timeout
    }

    /// Runs the gate once, within its timeout. `Ok(detail)` when it passed (`GET /health:
    /// 200 OK in 3ms`), `Err(reason)` when it failed.
    ///
    /// ```
    /// use engine_ops_rollout::{Gate, GateContext, Slot};
    ///
    /// # tokio_test(async {
    /// let gate = Gate::from_fn("always", |_| async { Ok(()) });
    /// let ctx = GateContext::new(Slot::Green, "v2", None);
    /// assert!(gate.run(ctx).await.is_ok());
    /// # });
    /// # fn tokio_test(f: impl std::future::Future<Output = ()>) {
    /// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    /// # }
    /// ```
    pub async fn run(&self, ctx: GateContext) -> Result<String, String> {
        let started = Instant::now();
        let run = async {
            match &self.check {
                Check::Fn(check) => check(ctx).await.map(|()| "ok".to_owned()),
                Check::Http {
                    path,
                    status,
                    body_contains,
                } => http_check(&ctx, path, *status, body_contains.as_deref()).await,
            }
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(detail)) => Ok(format!("{detail} in {:?}", Rounded(started.elapsed()))),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!(
                "timed out after {:?}: raise the gate's timeout if the release needs longer",
                self.timeout
            )),
        }
    }
}

async fn http_check(
    ctx: &GateContext,
    path: &str,
    expected: Option<StatusCode>,
    body_contains: Option<&str>,
) -> Result<String, String> {
    let Some(base) = &ctx.preview_url else {
        return Err(format!(
            "the platform has no preview url for slot {}: use a Gate::from_fn gate there",
            ctx.slot
        ));
    };
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("GET {url}: not a valid url: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = Request::get(uri)
        .body(Empty::new())
        .map_err(|e| format!("GET {path}: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("GET {path}: {}", chain(&e)))?;
    let status = response.status();
    let status_ok = match expected {
        Some(expected) => status == expected,
        None => status.is_success(),
    };
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|collected| collected.to_bytes());
    if !status_ok {
        let wanted = expected.map_or_else(|| "2xx".to_owned(), |s| s.to_string());
        return Err(format!("GET {path}: status {status}, expected {wanted}"));
    }
    if let Some(needle) = body_contains {
        let body = body.map_err(|e| format!("GET {path}: while reading the body: {e}"))?;
        if !String::from_utf8_lossy(&body).contains(needle) {
            return Err(format!(
                "GET {path}: status {status}, but the body does not contain {needle:?}"
            ));
        }
    }
    Ok(format!("GET {path}: {status}"))
}

/// An error and its sources, `: `-separated (hyper's own message is terse).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A duration rounded to milliseconds for display.
struct Rounded(Duration);

impl fmt::Debug for Rounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        write!(
            f,
            "{:?}",
            Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    async fn server() -> String {
        let app = Router::new()
            .route("/ok", get(|| async { r#"{"ok":true,"version":"v2"}"# }))
            .route(
                "/broken",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
            )
            .route("/gone", get(|| async { (StatusCode::GONE, "gone") }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn ctx(url: &str) -> GateContext {
        GateContext::new(Slot::Green, "v2", Some(url.to_owned()))
    }

    #[tokio::test]
    async fn http_gates_check_status_and_body_over_loopback() {
        let url = server().await;
        let passed = Gate::http("ok", "/ok").run(ctx(&url)).await.unwrap();
        assert!(passed.starts_with("GET /ok: 200 OK in "), "{passed}");
        assert!(
            Gate::http("ok", "ok")
                .body_contains("\"version\":\"v2\"")
                .run(ctx(&format!("{url}/")))
                .await
                .is_ok()
        );
        let wrong_body = Gate::http("ok", "/ok")
            .body_contains("v3")
            .run(ctx(&url))
            .await
            .unwrap_err();
        assert!(
            wrong_body.contains("does not contain \"v3\""),
            "{wrong_body}"
        );
        let broken = Gate::http("broken", "/broken")
            .run(ctx(&url))
            .await
            .unwrap_err();
        assert_eq!(
            broken,
            "GET /broken: status 500 Internal Server Error, expected 2xx"
        );
        assert!(
            Gate::http("gone", "/gone")
                .expect_status(410)
                .run(ctx(&url))
                .await
                .is_ok()
        );
        let not_gone = Gate::http("ok", "/ok")
            .expect_status(410)
            .run(ctx(&url))
            .await;
        assert!(not_gone.unwrap_err().contains("expected 410 Gone"));
    }

    #[tokio::test]
    async fn a_hanging_gate_fails_at_its_timeout() {
        let url = server().await;
        let err = Gate::http("slow", "/slow")
            .timeout(Duration::from_millis(100))
            .run(ctx(&url))
            .await
            .unwrap_err();
        assert!(err.starts_with("timed out after 100ms"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_previews_and_missing_urls_fail() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = Gate::http("down", "/")
            .run(ctx(&format!("http://{addr}")))
            .await
            .unwrap_err();
        assert!(err.starts_with("GET /: "), "{err}");
        let err = Gate::http("none", "/")
            .run(GateContext::new(Slot::Blue, "v1", None))
            .await
            .unwrap_err();
        assert!(err.contains("no preview url for slot blue"), "{err}");
    }

    #[tokio::test]
    async fn function_gates_see_the_context() {
        let gate = Gate::from_fn("version", |ctx| async move {
            if ctx.version == "v2" && ctx.slot == Slot::Green {
                Ok(())
            } else {
                Err(format!("unexpected {} in {}", ctx.version, ctx.slot))
            }
        });
        assert!(gate.run(ctx("http://unused")).await.is_ok());
        let err = gate
            .run(GateContext::new(Slot::Blue, "v1", None))
            .await
            .unwrap_err();
        assert_eq!(err, "unexpected v1 in blue");
    }
}
