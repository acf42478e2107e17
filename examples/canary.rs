//! `cargo run --example canary`: two canary releases under load, on this machine. Loopback
//! only; finishes in seconds.
//!
//! 1. **v2 goes through**: 10% of requests, analysis of the canary's error rate, 50%,
//!    analysis, 100%: promoted.
//! 2. **v2-broken is stopped**: a release whose API answers `500` to every other request
//!    gets 10% of the traffic; the first analysis sees a 50% error rate above the 1%
//!    threshold, aborts, and the platform rolls back to v2 automatically.
//!
//! The load generator counts every answer. Requests that the broken canary failed are
//! expected (that is what a canary risks: a share of requests for the duration of one
//! analysis window) and reported apart; any other failure makes the example exit 1.

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
use engine_ops_rollout::{Analysis, BlueGreen, Canary, CanaryStep, Outcome};

fn canary() -> Result<Canary, engine_ops_rollout::Error> {
    let analysis = Analysis {
        interval: Duration::from_millis(500),
        count: 1,
        max_error_rate: 0.01,
        min_requests: 5,
        ..Analysis::default()
    };
    Canary::builder()
        .replicas(2)
        .canary_replicas(1)
        .steps([
            CanaryStep::SetWeight(10),
            CanaryStep::Analysis(analysis.clone()),
            CanaryStep::SetWeight(50),
            CanaryStep::Analysis(analysis),
            CanaryStep::SetWeight(100),
        ])
        .build()
}

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let options = cli::parse(
        "canary",
        "Runs a canary release that is promoted, then one that fails its analysis and is rolled back.",
    );
    let started = Instant::now();
    let (demo, platform, rollouts) = progress::demo_on_local_platform(options.port).await?;
    rollouts
        .start(BlueGreen::builder().replicas(2).build()?, "v1")?
        .await?;
    demo.expand().await?;
    println!(
        "load: {} requests/s to {}/api/v1/jobs",
        options.requests_per_second,
        platform.front_url()
    );
    let load = LoadGenerator::new(format!("{}/api/v1/jobs", platform.front_url()))
        .rate(options.requests_per_second)
        .start();

    let releases = async {
        println!("1. canary of v2 (10% -> 50% -> 100%)");
        let good = progress::follow(rollouts.start(canary()?, "v2")?).await?;
        println!("2. canary of v2-broken (every other API response is 500)");
        let broken_started = Instant::now();
        let broken = progress::follow(rollouts.start(canary()?, "v2-broken")?).await?;
        Ok::<_, Box<dyn std::error::Error>>((good, broken, broken_started))
    };
    let outcome = tokio::select! {
        outcome = releases => outcome,
        _ = tokio::signal::ctrl_c() => {
            println!("\nCtrl-C: aborting, stopping every instance");
            platform.shutdown().await;
            std::process::exit(130);
        }
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let load = load.stop().await;
    platform.shutdown().await;
    let (good, broken, broken_started) = outcome?;

    println!("\nsummary ({:.1?})", started.elapsed());
    println!("    v2          {}", good.outcome);
    println!("    v2-broken   {}", broken.outcome);
    progress::summary(&load);
    // The broken canary's own 500s are what the analysis caught; anything else is a bug.
    let injected = load
        .failures()
        .filter(|f| f.sent_at >= broken_started && f.error.as_deref() == Some("injected failure"))
        .count();
    let other = load.failed() - injected;
    println!("    of which    {injected} from the broken canary before its abort, {other} other");
    let rolled_back = matches!(broken.outcome, Outcome::RolledBack { .. });
    if !good.promoted() || !rolled_back || other > 0 {
        eprintln!("error: expected v2 promoted, v2-broken rolled back and no other failure");
        std::process::exit(1);
    }
    Ok(())
}
