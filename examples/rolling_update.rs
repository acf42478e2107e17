//! `cargo run --example rolling_update`: a rolling update of 4 instances under load, on this
//! machine. Loopback only; finishes in seconds.
//!
//! The demo service (see `support/demo_service.rs`) runs release v1 on 4 instances. The
//! expand migration of v2 runs while v1 serves; then v2 replaces v1 one instance at a time
//! with `maxSurge: 1, maxUnavailable: 0`, Kubernetes' safest setting: a new instance is
//! started, and only once it is ready is an old one drained and stopped. Never fewer than 4
//! ready instances serve, never more than 5 run. The switch pools every ready instance of
//! both versions meanwhile, as a Kubernetes Service does.
//!
//! Ends with a summary; exits 1 if any request failed, 130 on Ctrl-C.

// An example talks to its user on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "support/cli.rs"]
mod cli;
#[path = "support/demo_service.rs"]
mod demo_service;
#[path = "support/progress.rs"]
mod progress;

use std::time::{Duration, Instant};

use engine_ops_rollout::load::LoadGenerator;
use engine_ops_rollout::{BlueGreen, Platform, Rolling};

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let options = cli::parse(
        "rolling_update",
        "Runs a rolling update (maxSurge 1, maxUnavailable 0) of 4 instances under load on 127.0.0.1.",
    );
    let started = Instant::now();
    let (demo, platform, rollouts) = progress::demo_on_local_platform(options.port).await?;

    println!("1. release v1 on 4 instances");
    let first = BlueGreen::builder().replicas(4).build()?;
    rollouts.start(first, "v1")?.await?;
    println!(
        "2. load: {} requests/s to {}/api/v1/jobs",
        options.requests_per_second,
        platform.front_url()
    );
    let load = LoadGenerator::new(format!("{}/api/v1/jobs", platform.front_url()))
        .rate(options.requests_per_second)
        .start();

    let release = async {
        println!(
            "3. expand migration for v2: applied {:?}",
            demo.expand().await?
        );
        let strategy = Rolling::builder()
            .replicas(4)
            .max_surge(1)
            .max_unavailable(0)
            .build()?;
        println!(
            "4. rolling update to v2 ({} steps)",
            strategy.plan_steps().len()
        );
        let report = progress::follow(rollouts.start(strategy, "v2")?).await?;
        println!("    {}", report.outcome);
        Ok::<_, Box<dyn std::error::Error>>(report)
    };
    let report = tokio::select! {
        report = release => report,
        _ = tokio::signal::ctrl_c() => {
            println!("\nCtrl-C: aborting, stopping every instance");
            platform.shutdown().await;
            std::process::exit(130);
        }
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let load = load.stop().await;
    let status = platform.status().await;
    platform.shutdown().await;
    let report = report?;

    println!("\nsummary ({:.1?})", started.elapsed());
    if let Ok(status) = status {
        println!("    live             {}", status.routing);
    }
    println!(
        "    rollout          {:.1?}, {}",
        report.duration, report.outcome
    );
    let failed = progress::summary(&load);
    if failed > 0 || !report.promoted() {
        eprintln!(
            "error: {failed} requests failed; outcome: {}",
            report.outcome
        );
        std::process::exit(1);
    }
    Ok(())
}
