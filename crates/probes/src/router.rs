//! Serving the probes over HTTP: [`Probes::router`] and [`ProbeService`].

use crate::check::Probe;
use crate::registry::Probes;
use crate::report::{HEALTH_JSON, HealthReport, Status};
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower_service::Service;

impl Probes {
    /// An axum router serving the three probes on their paths. Its state type is free, so
    /// it merges into any `Router<S>`.
    ///
    /// - `GET` and `HEAD` (same headers, no body); other methods get `405` with
    ///   `Allow: GET, HEAD`.
    /// - `200 OK` for `pass` and `warn`, `503 Service Unavailable` for `fail`.
    /// - `Content-Type: application/health+json` and `Cache-Control: no-store` (a cached probe
    ///   response would hide a change of state).
    /// - The body is `{"status":"…"}` unless detail is enabled (see [`Detail`](crate::Detail)).
    ///
    /// **Mount the probes outside your middleware**: merge the probe router *after* adding
    /// authentication, rate limiting, load shedding or timeouts to your app's router, so those
    /// layers do not apply to it. The orchestrator has no credentials, a rate limiter must not
    /// starve it, and an overloaded app must still answer liveness, or it gets restarted when
    /// it only needed to shed load.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), engine_ops_probes::Error> {
    /// use axum::{Router, body::Body, routing::get};
    /// use engine_ops_probes::{Lifecycle, Probes};
    /// use http::{Request, StatusCode};
    /// use tower::ServiceExt;
    ///
    /// let lifecycle = Lifecycle::new();
    /// let probes = Probes::builder(lifecycle.clone()).build()?;
    ///
    /// let app = Router::new()
    ///     .route("/api", get(|| async { "data" }))
    ///     // .layer(auth).layer(rate_limit): these wrap the routes above only
    ///     .merge(probes.router());
    ///
    /// let ask = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    /// let res = app.clone().oneshot(ask("/health/ready")).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// assert_eq!(res.headers()["content-type"], "application/health+json");
    /// assert_eq!(res.headers()["cache-control"], "no-store");
    ///
    /// lifecycle.mark_started();
    /// let res = app.oneshot(ask("/health/ready")).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::OK);
    /// # Ok(())
    /// # }
    /// ```
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Probe::ALL.into_iter().fold(Router::new(), |router, probe| {
            router.route_service(
                self.path(probe),
                ProbeService {
                    probes: self.clone(),
                    only: Some(probe),
                },
            )
        })
    }

    /// A tower service answering the three probes on their paths, and `404` elsewhere.
    pub fn service(&self) -> ProbeService {
        ProbeService {
            probes: self.clone(),
            only: None,
        }
    }
}

/// A tower service answering probe requests; made by [`Probes::service`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), engine_ops_probes::Error> {
/// use engine_ops_probes::{Lifecycle, Probes};
/// use http::{Method, Request, StatusCode};
/// use tower::ServiceExt;
///
/// let probes = Probes::builder(Lifecycle::new()).build()?;
/// let res = probes.service().oneshot(Request::get("/health/live").body(()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), StatusCode::OK);
///
/// let head = Request::builder().method(Method::HEAD).uri("/health/startup").body(()).unwrap();
/// let res = probes.service().oneshot(head).await.unwrap();
/// assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
///
/// let res = probes.service().oneshot(Request::get("/elsewhere").body(()).unwrap()).await.unwrap();
/// assert_eq!(res.status(), StatusCode::NOT_FOUND);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ProbeService {
    probes: Probes,
    /// Set when mounted on one route by the router: the path was matched already (and may
    /// have been rewritten by `nest`).
    only: Option<Probe>,
}

impl fmt::Debug for ProbeService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeService")
            .field("probes", &self.probes)
            .field("only", &self.only)
            .finish()
    }
}

impl<B> Service<Request<B>> for ProbeService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let probe = match self.only {
            Some(p) => p,
            None => match self.probes.probe_for_path(req.uri().path()) {
                Some(p) => p,
                None => return ResponseFuture::ready(empty(StatusCode::NOT_FOUND)),
            },
        };
        let head = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                let mut res = empty(StatusCode::METHOD_NOT_ALLOWED);
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
                return ResponseFuture::ready(res);
            }
        };
        let verbose = self.probes.detail().shows(req.uri().query());
        // Fast path: every result is cached (or the lifecycle decides): no allocation of a
        // future, no task.
        if verbose {
            if let Some(report) = self.probes.cached_report(probe) {
                return ResponseFuture::ready(render_report(&report, head));
            }
        } else if let Some(status) = self.probes.cached_status(probe) {
            return ResponseFuture::ready(render_status(status, head));
        }
        let probes = self.probes.clone();
        ResponseFuture {
            kind: Kind::Pending(Box::pin(async move {
                let report = probes.report(probe).await;
                if verbose {
                    render_report(&report, head)
                } else {
                    render_status(report.status, head)
                }
            })),
        }
    }
}

/// The response future of [`ProbeService`]: ready at once when every result is cached.
#[must_use = "futures do nothing unless awaited"]
pub struct ResponseFuture {
    kind: Kind,
}

enum Kind {
    Ready(Option<Response<Body>>),
    Pending(Pin<Box<dyn Future<Output = Response<Body>> + Send + 'static>>),
}

impl ResponseFuture {
    fn ready(res: Response<Body>) -> Self {
        Self {
            kind: Kind::Ready(Some(res)),
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.kind {
            Kind::Ready(res) => match res.take() {
                Some(res) => Poll::Ready(Ok(res)),
                // Polled after completion: answer rather than panic.
                None => Poll::Ready(Ok(empty(StatusCode::INTERNAL_SERVER_ERROR))),
            },
            Kind::Pending(fut) => fut.as_mut().poll(cx).map(Ok),
        }
    }
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    res
}

fn render_status(status: Status, head: bool) -> Response<Body> {
    render(status, Bytes::from_static(status.minimal_body()), head)
}

fn render_report(report: &HealthReport, head: bool) -> Response<Body> {
    render(report.status, Bytes::from(report.to_json()), head)
}

fn render(status: Status, body: Bytes, head: bool) -> Response<Body> {
    let len = body.len();
    let mut res = Response::new(if head {
        Body::empty()
    } else {
        Body::from(body)
    });
    *res.status_mut() = status.http_status();
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if head {
        // The length a GET would have, as RFC 9110 allows for HEAD.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    res
}
