//! Runs a rollout while printing its events as progress lines, and the summary shared by
//! the rollout examples.

// Shared by several examples through `#[path]`; each uses a part of it.
#![allow(dead_code)]

use engine_ops_rollout::load::LoadReport;
use engine_ops_rollout::{Error, RolloutHandle, RolloutReport, Slot};

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
