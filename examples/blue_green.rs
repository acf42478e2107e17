//! `cargo run --example blue_green`: a complete blue-green release on this machine, under
//! load, with a rollback at the end. Loopback only; finishes in seconds.
//!
//! 1. A demo service (axum + engine-ops-apiver + engine-ops-probes, its jobs in SQLite with
//!    engine-ops-migrate) serves release **v1** from the **blue** slot, behind the local
//!    platform's traffic switch.
//! 2. A load generator sends `GET /api/v1/jobs` (an old client) through the switch
//!    throughout, counting every answer.
//! 3. The expand migration of v2 runs while v1 serves.
//! 4. **Green** gets v2; it must become ready and pass two smoke tests on its preview
//!    endpoint; then (after a confirmation, unless `--yes`) traffic switches, and the new
//!    live slot is watched for errors while blue stays on standby.
//! 5. A rollback switches traffic back to blue at once.
//!
//! It ends with a summary: requests sent and failed (must be 0), the switch and rollback
//! times. It exits 1 if any request failed. Ctrl-C aborts the release, stops every
//! instance and exits 130.
//!
//! `--kube --image I [--app A] [--namespace N]` runs the same blue-green strategy against
//! the current kubeconfig context instead: the idle Deployment of `<app>` gets image I, must
//! become available (as `kubectl rollout status` decides), then (after a confirmation,
//! unless `--yes`) the `<app>-active` Service's selector switches to it. Create the objects
//! first with `cargo rollout manifests blue-green --app A --image I | kubectl apply -f -`.
//! This mode compiles everywhere; there is no cluster in CI, so what it runs (`BlueGreen`
//! over `KubePlatform`) is tested against a stand-in API server in `crates/rollout/tests`.

// An example talks to its user on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "support/cli.rs"]
mod cli;
#[path = "support/demo_service.rs"]
mod demo_service;
#[path = "support/progress.rs"]
mod progress;

use std::sync::Arc;
use std::time::{Duration, Instant};

use demo_service::DemoService;
use engine_ops_rollout::load::LoadGenerator;
use engine_ops_rollout::{
    Analysis, BlueGreen, Gate, KubePlatform, LocalPlatform, Outcome, Platform, Rollouts, Slot,
};

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let options = cli::parse(
        "blue_green",
        "Runs a blue-green release of a demo service under load on 127.0.0.1, then rolls it back.",
    );
    if let Some(kube) = options.kube {
        return on_kubernetes(kube, options.yes).await;
    }
    let started = Instant::now();

    println!("1. blue: release v1");
    let (demo, platform, rollouts) = progress::demo_on_local_platform(options.port).await?;
    println!("    database ready (migrations 001-002 applied)");
    let first = BlueGreen::builder().replicas(2).build()?;
    let report = rollouts.start(first, "v1")?.await?;
    println!(
        "    v1 serves from {} on {} ({:.0?})",
        report.to_slot.map_or("?", Slot::as_str),
        platform.front_url(),
        report.duration
    );

    println!(
        "2. load: {} requests/s to {}/api/v1/jobs",
        options.requests_per_second,
        platform.front_url()
    );
    let load = LoadGenerator::new(format!("{}/api/v1/jobs", platform.front_url()))
        .rate(options.requests_per_second)
        .start();

    let outcome = tokio::select! {
        outcome = release(&demo, &rollouts, &platform, options.yes) => outcome,
        _ = tokio::signal::ctrl_c() => {
            println!("\nCtrl-C: aborting, stopping every instance");
            let report = load.stop().await;
            platform.shutdown().await;
            println!("requests sent {}, failed {}", report.sent(), report.failed());
            std::process::exit(130);
        }
    };

    // A moment of traffic on the rolled-back release, then the summary.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = load.stop().await;
    platform.shutdown().await;
    let (switch, rollback) = outcome?;

    println!("\nsummary ({:.1?})", started.elapsed());
    let failed = progress::summary(&report);
    println!("    switch time      {switch:.1?}  (routing change, blue -> green)");
    println!("    rollback time    {rollback:.1?}  (routing change, green -> blue)");
    if failed > 0 {
        eprintln!("error: {failed} requests failed");
        std::process::exit(1);
    }
    Ok(())
}

/// Steps 3 to 5; returns the switch and rollback times.
async fn release(
    demo: &DemoService,
    rollouts: &Rollouts,
    platform: &LocalPlatform,
    yes: bool,
) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    println!("3. expand migration for v2 (v1 keeps serving)");
    let applied = demo.expand().await?;
    println!(
        "    applied {applied:?}; jobs.priority exists: {}",
        demo.has_priority_column().await?
    );

    println!("4. green: release v2");
    let strategy = BlueGreen::builder()
        .replicas(2)
        .ready_deadline(Duration::from_secs(10))
        .smoke(
            Gate::http("api v2 reads the new column", "/api/v2/jobs").body_contains("top_priority"),
        )
        .smoke(Gate::http("api v1 still served", "/api/v1/jobs").body_contains("\"jobs\""))
        .confirm(move |ctx| {
            cli::confirm(
                yes,
                format!("switch all traffic to {} ({})?", ctx.slot, ctx.version),
            )
        })
        .watch(Analysis {
            interval: Duration::from_millis(500),
            count: 2,
            min_requests: 5,
            max_error_rate: 0.0,
            ..Analysis::default()
        })
        .standby(Duration::from_secs(60))
        .build()?;
    let report = progress::follow(rollouts.start(strategy, "v2")?).await?;
    let Outcome::Promoted = report.outcome else {
        return Err(format!("the release did not go through: {}", report.outcome).into());
    };
    let switch = report.switch.map(|s| s.took).unwrap_or_default();
    let status = platform.status().await?;
    println!(
        "    live: {} ({}); standby: {}",
        status.routing,
        status.slot(Slot::Green).version.as_deref().unwrap_or("?"),
        report
            .standby
            .as_ref()
            .map(|s| format!("{} for {:.0?}", s.slot, s.stops_after))
            .unwrap_or_else(|| "none".into())
    );

    // Serve a while on green before the rollback.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("5. rollback to blue (still on standby)");
    let rollback = rollouts.rollback().await?;
    println!("    {rollback}");
    Ok((switch, rollback.switch_took))
}

/// `--kube`: the blue-green release of `kube.image` on the current kubeconfig context.
async fn on_kubernetes(
    kube: cli::KubeOptions,
    yes: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let platform = KubePlatform::try_default(kube.namespace.as_deref(), &kube.app).await?;
    let status = platform.status().await?;
    println!(
        "releasing {} as {} in namespace {}: live now {}",
        kube.image,
        kube.app,
        platform.namespace(),
        status.routing
    );
    let strategy = BlueGreen::builder()
        .replicas(kube.replicas)
        .ready_deadline(Duration::from_secs(300))
        .confirm(move |ctx| {
            cli::confirm(
                yes,
                format!(
                    "switch the active Service to {} ({})?",
                    ctx.slot, ctx.version
                ),
            )
        })
        .build()?;
    let rollouts = Rollouts::new(Arc::new(platform));
    let report = progress::follow(rollouts.start(strategy, kube.image)?).await?;
    println!("{}", report.outcome);
    if !report.promoted() {
        std::process::exit(1);
    }
    Ok(())
}
