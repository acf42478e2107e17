//! What the rollout examples share around the demo service: the local platform it runs on,
//! a rollout followed with progress lines, and the load summary.

// Shared by several examples through `#[path]`; each uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use engine_ops_rollout::load::LoadReport;
use engine_ops_rollout::{Error, LocalPlatform, RolloutHandle, RolloutReport, Rollouts, Slot};

use crate::demo_service::DemoService;

/// The demo service (its database at release v1's schema), a local platform whose instances
/// are its apps, with the front port on `127.0.0.1:port` (0: any), and the rollout driver.
pub(crate) async fn demo_on_local_platform(
    port: u16,
) -> Result<(Arc<DemoService>, LocalPlatform, Rollouts), Box<dyn std::error::Error>> {
    let demo = Arc::new(DemoService::new().await?);
    let factory = Arc::clone(&demo);
    let platform = LocalPlatform::builder()
        .front_addr(([127, 0, 0, 1], port).into())
        .app(move |release: &str| factory.app(release))
        .drain_timeout(Duration::from_secs(5))
        .build()
        .await?;
    let rollouts = Rollouts::new(Arc::new(platform.clone()));
    Ok((demo, platform, rollouts))
}

/// Prints every event of `handle` as it happens and returns the report.
pub(crate) async fn follow(handle: RolloutHandle) -> Result<RolloutReport, Error> {
    let mut events = handle.events();
    let printer = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            println!("    {event}");
        }
    });
    let report = handle.await;
    let _ = printer.await;
    report
}

/// Prints what the load generator saw; returns the number of failed requests.
pub(crate) fn summary(report: &LoadReport) -> usize {
    println!("    requests sent    {}", report.sent());
    println!(
        "    requests failed  {}{}",
        report.failed(),
        report
            .failures()
            .next()
            .and_then(|f| f.error.as_deref())
            .map(|e| format!("  (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "    answered by      blue {}, green {}",
        report.answered_by(Slot::Blue),
        report.answered_by(Slot::Green)
    );
    println!(
        "    latency          p50 {:.1?}, p99 {:.1?}",
        report.latency_quantile(0.5).unwrap_or_default(),
        report.latency_quantile(0.99).unwrap_or_default()
    );
    report.failed()
}
