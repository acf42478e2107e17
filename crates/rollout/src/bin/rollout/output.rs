//! What the commands print: progress lines on stderr as things happen (text mode only), and
//! the final result as text. JSON needs nothing here: the reports are `Serialize`.

use std::fmt::{Display, Write};
use std::sync::Arc;
use std::time::Instant;

use engine_ops_rollout::{Event, RollingReport, RolloutReport};

use crate::rollback::RollbackSummary;
use crate::status::StatusReport;

/// Progress lines on stderr, `[   1.50s] …` as the rollout events print; silent under
/// `--format json`.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    enabled: bool,
    started: Arc<Instant>,
}

impl Progress {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            started: Arc::new(Instant::now()),
        }
    }

    /// A line stamped with the time since the command started.
    pub(crate) fn line(&self, text: impl Display) {
        if self.enabled {
            eprintln!("[{:>7.2}s] {text}", self.started.elapsed().as_secs_f64());
        }
    }

    /// A rollout event, stamped with its own time since the rollout started.
    pub(crate) fn event(&self, event: &Event) {
        if self.enabled {
            eprintln!("{event}");
        }
    }
}

pub(crate) fn blue_green(report: &RolloutReport, notes: &[String]) -> String {
    let mut out = format!("{report}\n");
    for note in notes {
        let _ = writeln!(out, "  {note}");
    }
    out
}

pub(crate) fn rollback(app: &str, summary: &RollbackSummary) -> String {
    let mut out = String::new();
    if let Some(recovered) = &summary.recovered {
        let _ = writeln!(
            out,
            "finished the interrupted rollout of {app} ({recovered})"
        );
    }
    let _ = writeln!(
        out,
        "{app} rolled back: {} serves {} again ({:.2}s)",
        summary_slot(summary),
        summary.to_image.as_deref().unwrap_or("its release"),
        summary.duration
    );
    for action in &summary.actions {
        let _ = writeln!(out, "  {action}");
    }
    out
}

fn summary_slot(summary: &RollbackSummary) -> String {
    match &summary.plan {
        crate::rollback::Plan::CleanUp { to, .. }
        | crate::rollback::Plan::Switch { to, .. }
        | crate::rollback::Plan::Restore { to, .. } => to.to_string(),
    }
}

pub(crate) fn rolling(report: &RollingReport) -> String {
    let mut out = format!("{report}\n");
    if let Some(undo) = &report.undo {
        let _ = writeln!(
            out,
            "  undone: deployment {:?} runs {} again",
            undo.deployment, undo.to_image
        );
    }
    out
}

pub(crate) fn status(report: &StatusReport) -> String {
    let mut out = String::new();
    let traffic = match (&report.routing, report.live) {
        (Some(_), Some(live)) => format!(", all traffic to {live}"),
        (Some(routing), None) => format!(", traffic: {routing}"),
        (None, _) => String::new(),
    };
    let _ = writeln!(
        out,
        "{} in namespace {}: {} layout{traffic}",
        report.app, report.namespace, report.layout
    );
    let record = &report.record;
    match &record.in_progress {
        Some(description) => {
            let _ = write!(
                out,
                "rollout in progress on {}: {description} (phase {}",
                record.on,
                record.phase.as_deref().unwrap_or("unknown")
            );
            if let Some(at) = &record.started_at {
                let _ = write!(out, ", started {at}");
            }
            out.push_str(")\n");
        }
        None => out.push_str("no rollout in progress\n"),
    }
    if record.previous_slot.is_some() || record.previous_image.is_some() {
        let what = match (&record.previous_slot, &record.previous_image) {
            (Some(slot), Some(image)) => format!("{slot} ({image})"),
            (Some(slot), None) => slot.clone(),
            (None, Some(image)) => image.clone(),
            (None, None) => String::new(),
        };
        let _ = writeln!(out, "previous release: {what}");
    }
    let width =
        |values: &mut dyn Iterator<Item = usize>, min: usize| values.max().unwrap_or(0).max(min);
    let name_w = width(&mut report.deployments.iter().map(|d| d.name.len()), 10);
    let image_w = width(
        &mut report
            .deployments
            .iter()
            .map(|d| d.image.as_deref().unwrap_or("-").len()),
        5,
    );
    let _ = writeln!(
        out,
        "{:<name_w$}  {:<5}  {:<7}  {:<image_w$}  {:<5}  {:<10}  {:<9}  ROLLOUT",
        "DEPLOYMENT", "SLOT", "ROLE", "IMAGE", "READY", "UP-TO-DATE", "AVAILABLE"
    );
    for d in &report.deployments {
        let _ = writeln!(
            out,
            "{:<name_w$}  {:<5}  {:<7}  {:<image_w$}  {:<5}  {:<10}  {:<9}  {}",
            d.name,
            d.slot
                .map_or_else(|| "-".to_owned(), |slot| slot.to_string()),
            d.role,
            d.image.as_deref().unwrap_or("-"),
            format!("{}/{}", d.ready, d.desired),
            d.updated,
            d.available,
            d.rollout
        );
    }
    if report.problems.is_empty() {
        out.push_str("no pod problems\n");
    } else {
        let _ = writeln!(out, "{} pod problem(s):", report.problems.len());
        for problem in &report.problems {
            let _ = writeln!(out, "  warning: {problem}");
        }
    }
    out
}
