//! `cargo run --example graceful_shutdown`: health probes and a graceful shutdown.
//!
//! Serves a small app on `127.0.0.1:$PORT` (default 3000): `/` answers at once,
//! `/slow?ms=N` after N milliseconds, and the three probes `/health/startup`,
//! `/health/live` and `/health/ready` (add `?verbose` for the detail) check a SQLite pool.
//! Startup applies the example service's migrations, then marks the service started.
//!
//! Stop it with Ctrl-C or `kill -TERM <pid>`: readiness fails at once, the server keeps
//! serving for the drain delay (responses now carry `Connection: close`), then closes its
//! listener, lets in-flight requests finish, and ends whatever remains at the deadline.
//! A second signal skips the rest of the drain; a third ends in-flight requests.
//!
//! ```text
//! cargo run --example graceful_shutdown -- --drain-delay 5 --deadline 20
//! curl -i localhost:3000/health/ready
//! curl 'localhost:3000/slow?ms=8000' &   # then press Ctrl-C in the server's terminal
//! ```

// An example talks to its user on stdout.
#![allow(clippy::print_stdout)]

use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};
use engine_ops_migrate::{Database, MigrationManager, UpOptions, embed_migrations};
use engine_ops_probes::checks::PoolCheck;
use engine_ops_probes::{Check, Detail, Lifecycle, Probes, ServePhase, Shutdown, serve};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (drain_delay, deadline) = parse_args()?;
    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |p| p.parse())?;

    let db_path =
        std::env::temp_dir().join(format!("engine-ops-graceful-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", db_path.display());
    let pool = sqlx::SqlitePool::connect_lazy(&url)?;

    let lifecycle = Lifecycle::new();
    let probes = Probes::builder(lifecycle.clone())
        .check(
            Check::new("sqlite", PoolCheck::new(pool.clone())).timeout(Duration::from_millis(500)),
        )
        .detail(Detail::OnRequest)
        .build()?;

    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/slow", get(slow))
        // Stands in for auth, rate limiting and load shedding: it wraps the routes above...
        .layer(middleware::from_fn(shed_load))
        // ...but not the probes, merged after it: an overloaded app still answers liveness.
        .merge(probes.router());

    let shutdown = Shutdown::with_signals()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("drain delay {drain_delay:?}, deadline {deadline:?}; stop with Ctrl-C or SIGTERM");
    let server = serve(listener, app, lifecycle.clone(), shutdown.watcher())
        .drain_delay(drain_delay)
        .deadline(deadline);
    let mut phases = server.phases();
    let server = tokio::spawn(server.into_future());
    tokio::spawn(async move {
        while phases.changed().await.is_ok() {
            match *phases.borrow_and_update() {
                ServePhase::Draining => println!(
                    "draining: readiness now fails; still serving new requests, with `Connection: close` (signal again to skip)"
                ),
                ServePhase::Closing => println!(
                    "closing: listener closed; idle connections closed; waiting for in-flight requests"
                ),
                _ => {}
            }
        }
    });

    // Startup: migrations; a signal meanwhile cancels it and readiness never passes.
    println!("starting: applying migrations to {}", db_path.display());
    let migrate = async {
        let manager = MigrationManager::embedded(embed_migrations!("../schemas/migrations"))?;
        let mut db = Database::connect(&url).await?;
        manager.up(&mut db, &UpOptions::default()).await
    };
    match lifecycle.startup(&shutdown.watcher(), migrate).await {
        Ok(report) => println!(
            "ready: {} migration(s) applied; /health/ready passes",
            report?.applied.len()
        ),
        Err(e) => println!("startup cancelled: {e}"),
    }

    let report = server.await??;
    println!(
        "stopped after {:?}: drained {:?}{}, {} connection(s) open at close, {} request(s) cut by the deadline",
        report.elapsed,
        report.drain,
        if report.drain_skipped {
            " (skipped)"
        } else {
            ""
        },
        report.open_at_close,
        report.aborted_requests,
    );
    pool.close().await;
    let _ = std::fs::remove_file(&db_path);
    Ok(())
}

/// `GET /slow?ms=N`: answers after N milliseconds.
async fn slow(uri: Uri) -> String {
    let ms: u64 = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ms=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms\n")
}

/// Refuses work beyond 64 requests in flight: a stand-in for the layers that the probes
/// must not sit behind.
async fn shed_load(req: Request, next: Next) -> Response {
    static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
    if IN_FLIGHT.fetch_add(1, Ordering::SeqCst) >= 64 {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "overloaded\n").into_response();
    }
    let res = next.run(req).await;
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    res
}

/// `--drain-delay SECS` and `--deadline SECS` (fractions allowed).
fn parse_args() -> Result<(Duration, Duration), String> {
    let (mut drain, mut deadline) = (Duration::from_secs(15), Duration::from_secs(25));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let target = match flag.as_str() {
            "--drain-delay" => &mut drain,
            "--deadline" => &mut deadline,
            _ => {
                return Err(format!(
                    "unknown argument `{flag}`; usage: graceful_shutdown [--drain-delay SECS] [--deadline SECS]"
                ));
            }
        };
        let value = args
            .next()
            .ok_or(format!("{flag} needs a number of seconds"))?;
        *target = value
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or(format!("{flag}: `{value}` is not a number of seconds"))?;
    }
    Ok((drain, deadline))
}
