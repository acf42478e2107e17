//! `cargo bench -p benches --bench switch_overhead`: requests per second and p50/p99 latency
//! through the local platform's traffic switch against the same handler called directly, in
//! the same run.
//!
//! Both targets serve the same axum router; the switch sits in front of one in-process
//! instance of it. A closed-loop load (`CONNECTIONS` keep-alive connections, each sending
//! the next request when the last one is answered) runs `SECONDS` against each, alternating
//! `ROUNDS` times so that drift of the machine hits both alike; the medians are reported.
//! Targets (issue 5): at least 70% of direct throughput, under 100 µs added at p50.
//!
//! Environment: `ROUNDS` (default 5), `SECONDS` (default 3), `CONNECTIONS` (default 8).
#![allow(missing_docs, clippy::print_stdout)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use engine_ops_rollout::load::{LoadGenerator, LoadReport};
use engine_ops_rollout::{LocalPlatform, Platform, Routing, Slot};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello from the backend" }))
        .route("/health/ready", get(|| async { "ready" }))
}

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn run(url: &str, seconds: u64, connections: usize) -> Run {
    let load = LoadGenerator::new(url)
        .rate(0)
        .connections(connections)
        .start();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let report: LoadReport = load.stop().await;
    assert_eq!(report.failed(), 0, "{:?}", report.failures().next());
    Run {
        rps: report.throughput(),
        p50: report.latency_quantile(0.5).unwrap_or_default(),
        p99: report.latency_quantile(0.99).unwrap_or_default(),
    }
}

fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    values[values.len() / 2]
}

fn summarize(runs: &[Run]) -> (f64, Duration, Duration) {
    (
        median(runs.iter().map(|r| r.rps).collect()),
        median(runs.iter().map(|r| r.p50).collect()),
        median(runs.iter().map(|r| r.p99).collect()),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and should not
    // spend a minute here.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let rounds = env("ROUNDS", 5);
    let seconds = env("SECONDS", 3);
    let connections = env("CONNECTIONS", 8) as usize;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let direct = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app()).await });

    let platform = LocalPlatform::builder()
        .app(|_version: &str| Ok(app()))
        .build()
        .await?;
    platform.deploy(Slot::Blue, "v1", 1).await?;
    platform
        .wait_ready(Slot::Blue, Duration::from_secs(5))
        .await?;
    platform.route(Routing::All { slot: Slot::Blue }).await?;
    let switched = format!("http://{}/", platform.front_addr());

    // Warm both paths (connection pools, allocator).
    run(&direct, 1, connections).await;
    run(&switched, 1, connections).await;

    let (mut direct_runs, mut switch_runs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first.
        if round % 2 == 0 {
            direct_runs.push(run(&direct, seconds, connections).await);
            switch_runs.push(run(&switched, seconds, connections).await);
        } else {
            switch_runs.push(run(&switched, seconds, connections).await);
            direct_runs.push(run(&direct, seconds, connections).await);
        }
    }
    let (d_rps, d_p50, d_p99) = summarize(&direct_runs);
    let (s_rps, s_p50, s_p99) = summarize(&switch_runs);
    println!(
        "{rounds} rounds × {seconds} s, {connections} keep-alive connections, medians:\n\
         | target          | req/s   | p50       | p99       |\n\
         |-----------------|---------|-----------|-----------|\n\
         | direct          | {d_rps:>7.0} | {d_p50:>9.1?} | {d_p99:>9.1?} |\n\
         | through switch  | {s_rps:>7.0} | {s_p50:>9.1?} | {s_p99:>9.1?} |\n\
         throughput ratio {:.2} (target ≥ 0.70); p50 added {:?} (target < 100 µs)",
        s_rps / d_rps,
        s_p50.saturating_sub(d_p50),
    );
    platform.shutdown().await;
    Ok(())
}
