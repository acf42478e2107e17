//! `cargo bench -p benches --bench api_load`: requests per second and p50/p99 latency of the
//! `api_versioning` example's `optimize` handler over loopback HTTP, behind the
//! `engine-ops-apiver` layers against the same handler without them, in the same run.
//!
//! The in-process criterion bench (`--bench apiver`) prices the layers per request without a
//! socket; this one answers the user's question "what do the layers cost my service under
//! load": a real HTTP/1.1 server (axum on loopback) and a closed-loop load generator
//! (`CONNECTIONS` keep-alive connections, each POSTing the next JSON request when the last
//! one is answered, on its own thread and single-threaded runtime, as `wrk -t1` would).
//!
//! Three targets, each measured `SECONDS` per round, `ROUNDS` rounds, the order rotated every
//! round so that drift of a shared machine hits all alike; the medians of the rounds are
//! reported:
//!
//! - `bare handler`: `POST /api/optimize` with a v2 body, straight to the handler (no layer);
//! - `layers, v2`: `POST /api/v2/optimize` with the same v2 body through the versioning layer
//!   configured as in the example (detection from path/header/query, path stripping, version
//!   headers advertised, usage counted; the latest version needs no transform);
//! - `layers, v1`: `POST /api/v1/optimize` with the example's v1 body: detected, upgraded to
//!   v2, handled, the response downgraded, and the deprecation headers (`Deprecation`,
//!   `Sunset`, `Link`, `Warning`) added.
//!
//! The handler, the version change and the versioning configuration are the example's own
//! (`examples/support/optimize.rs`, included by path); the handler reads the version as
//! `Option<Extension<ApiVersion>>` (the request extension the layer inserts; `None` without
//! the layer), so that the very same function serves the bare router.
//!
//! Environment: `ROUNDS` (default 5), `SECONDS` (default 3), `CONNECTIONS` (default 8).
//! `cargo test --benches` passes no `--bench` argument, and then this returns at once.

// A benchmark reports to its user.
#![allow(missing_docs, clippy::print_stdout)]

#[path = "../examples/support/optimize.rs"]
mod optimize;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use engine_ops_apiver::ApiVersion;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The example's v1 request body.
const V1_BODY: &str = r#"{"type": "scheduling", "tasks": [{"id": "a", "duration": 3, "priority": 1}, {"id": "b", "duration": 2, "priority": 5}]}"#;
/// The same request in v2's format (what the v1 body becomes after the upgrade).
const V2_BODY: &str = r#"{"type": "scheduling", "tasks": [{"id": "a", "duration": 3, "priority": 1}, {"id": "b", "duration": 2, "priority": 5}], "version": "2.0", "metadata": {"upgraded_from": "v1"}}"#;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The example's router behind the example's versioning configuration.
fn versioned(port: u16) -> Result<Router, Box<dyn std::error::Error>> {
    let api =
        optimize::versioning(port)?.layer(Router::new().route("/api/optimize", post(handler)));
    Ok(Router::new().fallback_service(api))
}

/// The example's handler, reading the version from the request extension the layer inserts
/// (`None` without the layer, so that the same function serves the bare router).
async fn handler(
    version: Option<Extension<ApiVersion>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    optimize::optimize(version.map(|Extension(v)| v.version), body)
}

/// The same handler, no layer.
fn bare() -> Router {
    Router::new().route("/api/optimize", post(handler))
}

/// One target of the load: where to POST what.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    path: &'static str,
    body: &'static str,
    runs: Vec<Run>,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

/// One keep-alive connection sending requests back to back until `until`; the latency of
/// every answered request, in nanoseconds.
async fn connection(
    addr: SocketAddr,
    path: &'static str,
    body: &'static str,
    until: Instant,
) -> Result<Vec<u64>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {addr}: {e}"))?;
    let driver = tokio::spawn(conn);
    let mut latencies = Vec::with_capacity(100_000);
    let body = Bytes::from_static(body.as_bytes());
    while Instant::now() < until {
        let request = http::Request::post(path)
            .header(header::HOST, addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer to POST {path}: {e}"))?
            .to_bytes();
        latencies.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        if status != StatusCode::OK {
            return Err(format!(
                "POST {path} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
    }
    drop(sender);
    driver.abort();
    Ok(latencies)
}

/// A closed-loop run of `connections` connections for `seconds`, on a thread of its own with
/// a single-threaded runtime (the server keeps the multi-threaded one).
fn run(
    target: &Target,
    seconds: f64,
    connections: usize,
) -> Result<Run, Box<dyn std::error::Error>> {
    let (addr, path, body) = (target.addr, target.path, target.body);
    let latencies = std::thread::spawn(move || -> Result<Vec<u64>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let until = Instant::now() + Duration::from_secs_f64(seconds);
            let tasks: Vec<_> = (0..connections)
                .map(|_| tokio::spawn(connection(addr, path, body, until)))
                .collect();
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.map_err(|e| e.to_string())??);
            }
            Ok(all)
        })
    })
    .join()
    .map_err(|_| "the load thread panicked")??;
    let mut latencies = latencies;
    latencies.sort_unstable();
    let quantile = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        Duration::from_nanos(latencies[index])
    };
    if latencies.is_empty() {
        return Err(format!("no request to {} was answered", target.name).into());
    }
    Ok(Run {
        rps: latencies.len() as f64 / seconds,
        p50: quantile(0.50),
        p99: quantile(0.99),
    })
}

fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

/// One request, to check that each target answers what it should before it is measured.
async fn check(target: &Target) -> Result<(), Box<dyn std::error::Error>> {
    let stream = tokio::net::TcpStream::connect(target.addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let request = http::Request::post(target.path)
        .header(header::HOST, target.addr.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(target.body.as_bytes())))?;
    let response = sender.send_request(request).await?;
    let deprecated = response.headers().contains_key("deprecation");
    let status = response.status();
    let body: Value = serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
    driver.abort();
    let v1 = target.path.contains("/v1/");
    let ok = status == StatusCode::OK
        && body["result"]["makespan"] == 5
        && body["result"]["schedule"][0]["id"] == "b"
        && deprecated == v1
        && body.get("version").is_none() == v1;
    if !ok {
        return Err(format!(
            "{} answered {status} (deprecation header: {deprecated}): {body}",
            target.name
        )
        .into());
    }
    Ok(())
}

async fn serve(app: Router) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let rounds = env("ROUNDS", 5).max(1);
    let seconds = env("SECONDS", 3).max(1) as f64;
    let connections = env("CONNECTIONS", 8).max(1) as usize;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let versioned_addr = listener.local_addr()?;
    let app = versioned(versioned_addr.port())?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let bare_addr = serve(bare()).await?;

    let mut targets = vec![
        Target {
            name: "bare handler",
            addr: bare_addr,
            path: "/api/optimize",
            body: V2_BODY,
            runs: Vec::new(),
        },
        Target {
            name: "layers, v2",
            addr: versioned_addr,
            path: "/api/v2/optimize",
            body: V2_BODY,
            runs: Vec::new(),
        },
        Target {
            name: "layers, v1",
            addr: versioned_addr,
            path: "/api/v1/optimize",
            body: V1_BODY,
            runs: Vec::new(),
        },
    ];
    for target in &targets {
        check(target).await?;
    }
    // Warm every path (allocator, connection setup, caches).
    for target in &targets {
        run(target, 1.0, connections)?;
    }
    for round in 0..rounds as usize {
        for i in 0..targets.len() {
            let index = (round + i) % targets.len();
            let result = run(&targets[index], seconds, connections)?;
            targets[index].runs.push(result);
        }
    }

    let summary = |runs: &[Run]| {
        (
            median(runs.iter().map(|r| r.rps).collect()),
            median(runs.iter().map(|r| r.p50).collect()),
            median(runs.iter().map(|r| r.p99).collect()),
        )
    };
    let (bare_rps, bare_p50, _) = summary(&targets[0].runs);
    println!(
        "{rounds} rounds × {seconds} s, {connections} keep-alive connections, closed loop, POST JSON, medians:\n\
         | target         | req/s   | ratio | p50       | p99       | p50 added |\n\
         |----------------|---------|-------|-----------|-----------|-----------|"
    );
    for target in &targets {
        let (rps, p50, p99) = summary(&target.runs);
        println!(
            "| {:<14} | {rps:>7.0} | {:>5.2} | {p50:>9.1?} | {p99:>9.1?} | {:>9.1?} |",
            target.name,
            rps / bare_rps,
            p50.saturating_sub(bare_p50)
        );
    }
    println!(
        "every round (req/s): {}",
        targets
            .iter()
            .map(|t| format!(
                "{}: {}",
                t.name,
                t.runs
                    .iter()
                    .map(|r| format!("{:.0}", r.rps))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(())
}
