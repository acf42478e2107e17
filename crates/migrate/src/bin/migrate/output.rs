//! Text rendering of the reports. JSON needs nothing here: the reports are `Serialize`.

use engine_ops_migrate::{
    AdoptReport, DownReport, LintReport, PlannedStep, RepairReport, StatusReport, UpReport,
    VerifyReport,
};
use std::fmt::Write;

fn planned(out: &mut String, steps: &[PlannedStep]) {
    for s in steps {
        let _ = writeln!(
            out,
            "  {} {} [{}, {}]",
            s.version,
            s.name,
            s.phase,
            if s.transactional {
                "in a transaction"
            } else {
                "no transaction"
            }
        );
        for statement in &s.statements {
            let _ = writeln!(out, "      {};", statement.replace('\n', "\n      "));
        }
    }
}

pub(crate) fn up(r: &UpReport) -> String {
    let mut out = String::new();
    if r.dry_run {
        if r.planned.is_empty() {
            out.push_str("Dry run: nothing to apply.\n");
        } else {
            let _ = writeln!(
                out,
                "Dry run: would apply {} migration(s):",
                r.planned.len()
            );
            planned(&mut out, &r.planned);
        }
    } else if r.applied.is_empty() {
        out.push_str("Nothing to apply: the database is up to date.\n");
    } else {
        let _ = writeln!(out, "Applied {} migration(s):", r.applied.len());
        for s in &r.applied {
            let retried = if s.attempts > 1 {
                format!(", {} attempts", s.attempts)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {} {} [{}] {} ms{retried}",
                s.version, s.name, s.phase, s.duration_ms
            );
        }
    }
    if !r.held_back.is_empty() {
        let _ = writeln!(out, "Not applied now ({}):", r.held_back.len());
        for h in &r.held_back {
            let _ = writeln!(out, "  {} {}: {}", h.version, h.name, h.reason);
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

pub(crate) fn down(r: &DownReport) -> String {
    let mut out = String::new();
    if r.dry_run {
        let _ = writeln!(
            out,
            "Dry run: would revert {} migration(s):",
            r.planned.len()
        );
        planned(&mut out, &r.planned);
    } else if r.reverted.is_empty() {
        out.push_str("Nothing to revert.\n");
    } else {
        let _ = writeln!(out, "Reverted {} migration(s):", r.reverted.len());
        for s in &r.reverted {
            let _ = writeln!(out, "  {} {} {} ms", s.version, s.name, s.duration_ms);
        }
    }
    out
}

pub(crate) fn status(r: &StatusReport) -> String {
    let mut out = String::new();
    let width = r
        .migrations
        .iter()
        .map(|m| m.name.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let vwidth = r
        .migrations
        .iter()
        .map(|m| m.version.to_string().len())
        .chain([7])
        .max()
        .unwrap_or(7);
    let _ = writeln!(
        out,
        "{:<vwidth$}  {:<width$}  {:<8}  {:<17}  {:<24}  DURATION",
        "VERSION", "NAME", "PHASE", "STATE", "APPLIED AT"
    );
    for m in &r.migrations {
        let applied_at = m.applied_at_rfc3339().unwrap_or_else(|| "-".to_owned());
        let duration = m
            .duration_ms
            .map(|d| format!("{d} ms"))
            .unwrap_or_else(|| "-".to_owned());
        let _ = writeln!(
            out,
            "{:<vwidth$}  {:<width$}  {:<8}  {:<17}  {:<24}  {duration}",
            m.version,
            m.name,
            m.phase.to_string(),
            m.state.to_string(),
            applied_at
        );
        if let Some(f) = &m.failure {
            let _ = writeln!(out, "{:vwidth$}  error: {f}", "");
        }
    }
    let _ = writeln!(
        out,
        "{} applied, {} pending",
        r.applied_count(),
        r.pending_count()
    );
    for u in &r.unknown_applied {
        let _ = writeln!(
            out,
            "warning: {} {} is applied but {}",
            u.version,
            u.name,
            if u.ahead {
                "unknown to this binary (the database is ahead: a newer release applied it)"
            } else {
                "its file is missing"
            }
        );
    }
    for index in &r.invalid_indexes {
        let _ = writeln!(
            out,
            "warning: index {index} is INVALID (an interrupted CREATE INDEX CONCURRENTLY): drop it and create it again"
        );
    }
    out
}

pub(crate) fn verify(r: &VerifyReport) -> String {
    if r.is_ok() {
        return format!("verify: OK ({} applied migration(s) checked)\n", r.checked);
    }
    let mut out = format!("verify: {} problem(s):\n", r.problems.len());
    for p in &r.problems {
        let _ = writeln!(out, "  {p}");
    }
    out
}

pub(crate) fn lint(r: &LintReport) -> String {
    let mut out = String::new();
    for f in &r.findings {
        let _ = writeln!(out, "{f}");
    }
    let dialect = match r.dialect {
        Some(d) => d.to_string(),
        None => "unknown dialect (pass --database-url for PostgreSQL-only rules)".to_owned(),
    };
    let _ = writeln!(
        out,
        "lint: {} finding(s) in {} expand migration(s) ({} contract, {} code migration(s) not checked; {dialect})",
        r.findings.len(),
        r.checked,
        r.contract,
        r.code
    );
    out
}

pub(crate) fn repair(r: &RepairReport) -> String {
    if r.actions.is_empty() {
        return "repair: nothing to repair.\n".to_owned();
    }
    let mut out = format!(
        "repair: {} {} action(s):\n",
        if r.dry_run { "would take" } else { "took" },
        r.actions.len()
    );
    for a in &r.actions {
        let _ = writeln!(out, "  {a}");
    }
    out
}

pub(crate) fn adopt(r: &AdoptReport) -> String {
    format!(
        "adopt: imported {} migration(s) from _sqlx_migrations{}; {} already present\n",
        r.imported.len(),
        if r.imported.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                r.imported
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        r.already_present.len()
    )
}
