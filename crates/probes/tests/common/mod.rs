//! Shared test support: a test app served over loopback with [`serve`], HTTP/1.1 clients
//! with explicit control over connections, and bounded polling.
#![allow(dead_code, unreachable_pub, clippy::print_stderr)]

use axum::Router;
use axum::routing;
use bytes::Bytes;
use engine_ops_probes::{
    Lifecycle, Probes, ServePhase, Shutdown, ShutdownReport, ShutdownWatcher, serve,
};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A response, read completely.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    pub fn closes(&self) -> bool {
        self.headers
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
    }
}

/// One HTTP/1.1 connection, kept alive until the server closes it.
pub struct Conn {
    sender: SendRequest<Empty<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { sender })
    }

    pub async fn request(&mut self, method: &str, path: &str) -> Result<Reply, hyper::Error> {
        self.sender.ready().await?;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .body(Empty::new())
            .expect("valid request");
        let res = self.sender.send_request(req).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply, hyper::Error> {
        self.request("GET", path).await
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// GET on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut conn = Conn::open(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    conn.get(path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The test app: `/work` answers at once, `/slow?ms=N` after N ms, plus the probes.
pub fn app(probes: &Probes) -> Router {
    Router::new()
        .route("/work", routing::get(|| async { "ok" }))
        .route("/slow", routing::get(slow))
        .merge(probes.router())
}

async fn slow(uri: Uri) -> String {
    let ms = uri
        .query()
        .and_then(|q| q.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms")
}

/// A running [`serve`] server.
pub struct Server {
    pub addr: SocketAddr,
    pub lifecycle: Lifecycle,
    pub shutdown: Shutdown,
    pub phases: watch::Receiver<ServePhase>,
    pub task: JoinHandle<Result<ShutdownReport, engine_ops_probes::Error>>,
}

impl Server {
    pub async fn start(probes: Probes, drain: Duration, deadline: Duration) -> Self {
        let shutdown = Shutdown::new();
        Self::start_with(probes, drain, deadline, shutdown).await
    }

    pub async fn start_with(
        probes: Probes,
        drain: Duration,
        deadline: Duration,
        shutdown: Shutdown,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let lifecycle = probes.lifecycle().clone();
        let server = serve(
            listener,
            app(&probes),
            lifecycle.clone(),
            shutdown.watcher(),
        )
        .drain_delay(drain)
        .deadline(deadline);
        let phases = server.phases();
        let task = tokio::spawn(server.into_future());
        Self {
            addr,
            lifecycle,
            shutdown,
            phases,
            task,
        }
    }

    pub fn watcher(&self) -> ShutdownWatcher {
        self.shutdown.watcher()
    }

    /// Waits (bounded) until the server reaches `phase`.
    pub async fn reached(&mut self, phase: ServePhase, within: Duration) {
        let r = tokio::time::timeout(within, self.phases.wait_for(|p| *p >= phase))
            .await
            .map(|r| r.is_ok());
        assert!(
            matches!(r, Ok(true)),
            "server did not reach {phase:?} within {within:?} (now {:?})",
            *self.phases.borrow()
        );
    }

    /// Waits (bounded) for the server to stop and returns its report.
    pub async fn stopped(self, within: Duration) -> ShutdownReport {
        tokio::time::timeout(within, self.task)
            .await
            .unwrap_or_else(|_| panic!("server did not stop within {within:?}"))
            .expect("server task")
            .expect("server result")
    }
}

/// Serves `router` with plain `axum::serve`: the probe router needs nothing special.
pub async fn axum_server(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Polls `cond` every 5 ms until it holds; panics after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
