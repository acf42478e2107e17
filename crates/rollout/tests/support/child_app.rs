//! The child app of the local platform's process tests: a tiny HTTP service that the test
//! binary runs as a child process by re-executing itself (`current_exe()`) with
//! `ENGINE_OPS_CHILD=1`, so that `cargo test --test local_platform` needs no other target.
//!
//! It listens on `127.0.0.1:$PORT` and answers:
//! - `GET /`: `{CHILD_VERSION} pid={pid}`, and the header `x-child-pid`;
//! - `GET /health/ready`: `200`, or `503` when `CHILD_NEVER_READY=1`;
//! - `GET /crash`: answers, then exits with status 3.
//!
//! With `CHILD_EXIT_AFTER_MS=N` it exits with status 3 after N ms. On `SIGTERM` it stops
//! gracefully and exits 0.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;

/// The exit status of a crash.
pub(crate) const CRASH_STATUS: i32 = 3;

/// Serves when the environment asks for the child app; returns at once otherwise.
pub(crate) fn run_if_child() {
    if std::env::var_os("ENGINE_OPS_CHILD").is_none_or(|v| v != "1") {
        return;
    }
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("child app: PORT is not set to a port number");
            std::process::exit(2)
        });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(serve(port));
    std::process::exit(0);
}

async fn serve(port: u16) {
    let version = std::env::var("CHILD_VERSION").unwrap_or_else(|_| "unknown".to_owned());
    let never_ready = std::env::var_os("CHILD_NEVER_READY").is_some();
    if let Some(ms) = std::env::var("CHILD_EXIT_AFTER_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
    {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            std::process::exit(CRASH_STATUS);
        });
    }
    let pid = std::process::id();
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                (
                    [("x-child-pid", pid.to_string())],
                    format!("{version} pid={pid}"),
                )
            }),
        )
        .route(
            "/health/ready",
            get(move || async move {
                if never_ready {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    "ready".into_response()
                }
            }),
        )
        .route(
            "/crash",
            get(|| async {
                tokio::spawn(async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    std::process::exit(CRASH_STATUS);
                });
                "crashing"
            }),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap_or_else(|error| {
            eprintln!("child app: cannot bind port {port}: {error}");
            std::process::exit(2)
        });
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    let stopped = async move {
        terminate.recv().await;
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        eprintln!("child app: {error}");
    }
}

/// How to run this test binary as a child app serving `version`: it re-executes itself
/// with `ENGINE_OPS_CHILD=1`, running only the binary's (ignored) `child_app_entry` test,
/// which calls [`run_if_child`]. Add `CHILD_NEVER_READY` / `CHILD_EXIT_AFTER_MS` with
/// [`ProcessSpec::env`] for the failure cases.
pub(crate) fn spec(version: &str) -> engine_ops_rollout::ProcessSpec {
    let exe = std::env::current_exe().expect("the test binary's path");
    engine_ops_rollout::ProcessSpec::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_app_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ENGINE_OPS_CHILD", "1")
        .env("CHILD_VERSION", version)
        .discard_output()
}
