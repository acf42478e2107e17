//! Deciding what to run, from plain data: the known migrations and the ledger rows. No I/O,
//! so every rule (dirty state, drift, missing files, a database ahead of the binary, out of
//! order, target, phase) is decided here once and unit-tested.

use crate::backend::LedgerRow;
use crate::error::Error;
use crate::manager::{DownTarget, UpOptions};
use crate::migration::{Migration, Phase};
use crate::report::{HeldBack, UnknownApplied};
use std::collections::BTreeMap;

/// Shortened checksum for messages.
pub(crate) fn short(checksum: &str) -> String {
    checksum[..checksum.len().min(12)].to_owned()
}

/// How the ledger relates to the known migrations.
pub(crate) struct Analysis<'a> {
    /// Applied and completed rows of known migrations, by version.
    pub(crate) applied: BTreeMap<u64, (&'a Migration, &'a LedgerRow)>,
    /// Rows recorded as not completed (a failure without a transaction).
    pub(crate) failed: Vec<&'a LedgerRow>,
    /// Applied migrations whose checksum differs from their file's.
    pub(crate) mismatched: Vec<(&'a Migration, &'a LedgerRow)>,
    /// Applied versions without a file, older than the newest known migration.
    pub(crate) missing: Vec<&'a LedgerRow>,
    /// Applied versions newer than every known migration (the database is ahead).
    pub(crate) ahead: Vec<&'a LedgerRow>,
    /// Known migrations not in the ledger, by version.
    pub(crate) pending: Vec<&'a Migration>,
    /// The newest applied known version.
    pub(crate) highest_applied: Option<u64>,
}

impl<'a> Analysis<'a> {
    /// Relates `migrations` (sorted by version) to `ledger`.
    pub(crate) fn new(migrations: &'a [Migration], ledger: &'a [LedgerRow]) -> Self {
        let known: BTreeMap<u64, &Migration> = migrations.iter().map(|m| (m.version, m)).collect();
        let max_known = known.keys().next_back().copied();
        let recorded: BTreeMap<u64, &LedgerRow> = ledger.iter().map(|r| (r.version, r)).collect();
        let mut analysis = Analysis {
            applied: BTreeMap::new(),
            failed: Vec::new(),
            mismatched: Vec::new(),
            missing: Vec::new(),
            ahead: Vec::new(),
            pending: Vec::new(),
            highest_applied: None,
        };
        for row in ledger {
            if !row.completed {
                analysis.failed.push(row);
                continue;
            }
            match known.get(&row.version) {
                Some(m) => {
                    if m.checksum != row.checksum {
                        analysis.mismatched.push((m, row));
                    }
                    analysis.applied.insert(row.version, (m, row));
                }
                None if max_known.is_none_or(|max| row.version > max) => analysis.ahead.push(row),
                None => analysis.missing.push(row),
            }
        }
        analysis.highest_applied = analysis.applied.keys().next_back().copied();
        analysis.pending = migrations
            .iter()
            .filter(|m| !recorded.contains_key(&m.version))
            .collect();
        analysis
    }

    /// Pending migrations older than the newest applied one.
    pub(crate) fn gaps(&self) -> Vec<&'a Migration> {
        match self.highest_applied {
            Some(high) => self
                .pending
                .iter()
                .copied()
                .filter(|m| m.version < high)
                .collect(),
            None => Vec::new(),
        }
    }

    /// The applied versions this binary does not know.
    pub(crate) fn unknown_applied(&self) -> Vec<UnknownApplied> {
        let mut out: Vec<UnknownApplied> = self
            .missing
            .iter()
            .map(|r| (r, false))
            .chain(self.ahead.iter().map(|r| (r, true)))
            .map(|(r, ahead)| UnknownApplied {
                version: r.version,
                name: r.name.clone(),
                ahead,
            })
            .collect();
        out.sort_by_key(|u| u.version);
        out
    }

    /// Refuses a dirty ledger: a failed record blocks every run until repaired.
    pub(crate) fn refuse_failed(&self) -> Result<(), Error> {
        match self.failed.first() {
            Some(row) => Err(Error::Dirty {
                version: row.version,
                name: row.name.clone(),
                failure: row.failure.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses drift: changed or missing files of applied migrations.
    pub(crate) fn refuse_drift(&self) -> Result<(), Error> {
        if let Some((m, row)) = self.mismatched.first() {
            return Err(Error::ChecksumMismatch {
                version: m.version,
                name: m.name.clone(),
                applied: short(&row.checksum),
                current: short(&m.checksum),
            });
        }
        if !self.missing.is_empty() {
            return Err(Error::MissingSource {
                missing: self
                    .missing
                    .iter()
                    .map(|r| (r.version, r.name.clone()))
                    .collect(),
            });
        }
        Ok(())
    }
}

/// What `up` runs, and what it leaves.
pub(crate) struct UpPlan<'a> {
    pub(crate) run: Vec<&'a Migration>,
    pub(crate) held_back: Vec<HeldBack>,
    pub(crate) warnings: Vec<String>,
}

/// Decides what `up` applies.
pub(crate) fn plan_up<'a>(
    analysis: &Analysis<'a>,
    migrations: &'a [Migration],
    options: &UpOptions,
) -> Result<UpPlan<'a>, Error> {
    analysis.refuse_failed()?;
    analysis.refuse_drift()?;
    let gaps = analysis.gaps();
    if !gaps.is_empty() && !options.allow_out_of_order {
        return Err(Error::OutOfOrder {
            pending: gaps.iter().map(|m| (m.version, m.name.clone())).collect(),
            highest_applied: analysis.highest_applied.unwrap_or_default(),
        });
    }
    if let Some(target) = options.target
        && !migrations.iter().any(|m| m.version == target)
    {
        return Err(Error::UnknownVersion { version: target });
    }

    let mut plan = UpPlan {
        run: Vec::new(),
        held_back: Vec::new(),
        warnings: Vec::new(),
    };
    let newest_ahead = analysis.ahead.iter().map(|r| r.version).max();
    if let Some(newest) = newest_ahead {
        plan.warnings.push(format!(
            "the database is ahead of this binary: it has applied {} that this binary does not know (a newer release migrated it); applying nothing older than {newest}",
            analysis
                .ahead
                .iter()
                .map(|r| format!("{} ({})", r.version, r.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut contract_seen: Option<&Migration> = None;
    for &m in &analysis.pending {
        let reason = if newest_ahead.is_some_and(|newest| m.version < newest) {
            Some(format!(
                "older than {}, which a newer release applied",
                newest_ahead.unwrap_or_default()
            ))
        } else if options.target.is_some_and(|t| m.version > t) {
            Some(format!(
                "above the target {}",
                options.target.unwrap_or_default()
            ))
        } else if options.phase == Some(Phase::Expand) {
            if contract_seen.is_none() && m.options.phase == Phase::Contract {
                contract_seen = Some(m);
            }
            contract_seen.map(|c| {
                format!(
                    "at or after contract migration {} ({}): run `up --phase contract` after the deploy",
                    c.version, c.name
                )
            })
        } else {
            None
        };
        match reason {
            Some(reason) => plan.held_back.push(HeldBack {
                version: m.version,
                name: m.name.clone(),
                reason,
            }),
            None => plan.run.push(m),
        }
    }
    // Contract runs after the deploy: an expand step still pending before the contract
    // steps means the expand phase was skipped.
    if options.phase == Some(Phase::Contract)
        && let Some(m) = plan
            .run
            .first()
            .filter(|m| m.options.phase == Phase::Expand)
    {
        return Err(Error::ExpandPending {
            version: m.version,
            name: m.name.clone(),
        });
    }
    Ok(plan)
}

/// Decides what `down` reverts, newest applied first; refuses before anything runs.
pub(crate) fn plan_down<'a>(
    analysis: &Analysis<'a>,
    migrations: &'a [Migration],
    ledger: &'a [LedgerRow],
    target: DownTarget,
) -> Result<Vec<&'a Migration>, Error> {
    analysis.refuse_failed()?;
    let mut applied: Vec<&LedgerRow> = ledger.iter().filter(|r| r.completed).collect();
    applied.sort_by_key(|r| std::cmp::Reverse((r.installed_rank, r.version)));
    let chosen: Vec<&LedgerRow> = match target {
        DownTarget::Count(n) => {
            if n > applied.len() {
                return Err(Error::TooManyToRevert {
                    requested: n,
                    applied: applied.len(),
                });
            }
            applied.into_iter().take(n).collect()
        }
        DownTarget::To(version) => {
            if version != 0
                && !migrations.iter().any(|m| m.version == version)
                && !ledger.iter().any(|r| r.version == version)
            {
                return Err(Error::UnknownVersion { version });
            }
            applied
                .into_iter()
                .filter(|r| r.version > version)
                .collect()
        }
    };
    let mut run = Vec::with_capacity(chosen.len());
    let mut missing = Vec::new();
    for row in chosen {
        let Some((m, _)) = analysis.applied.get(&row.version) else {
            missing.push((row.version, row.name.clone()));
            continue;
        };
        if m.checksum != row.checksum {
            return Err(Error::ChecksumMismatch {
                version: m.version,
                name: m.name.clone(),
                applied: short(&row.checksum),
                current: short(&m.checksum),
            });
        }
        run.push(*m);
    }
    if !missing.is_empty() {
        return Err(Error::MissingSource { missing });
    }
    if let Some(m) = run.iter().find(|m| !m.is_reversible()) {
        let fix = match &m.path {
            Some(up) => {
                let file = up.file_name().and_then(|f| f.to_str()).unwrap_or_default();
                let down = file
                    .strip_suffix(".up.sql")
                    .or_else(|| file.strip_suffix(".sql"))
                    .unwrap_or(file);
                let hint = if file.ends_with(".up.sql") {
                    String::new()
                } else {
                    format!(" (and rename {file} to {down}.up.sql)")
                };
                format!(
                    "add {}{hint}",
                    up.with_file_name(format!("{down}.down.sql")).display()
                )
            }
            None => "implement `down` and return true from `reversible()`".to_owned(),
        };
        return Err(Error::Irreversible {
            version: m.version,
            name: m.name.clone(),
            fix,
        });
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::{Body, MigrationOptions, SqlScripts};

    fn mig(version: u64, phase: Phase, reversible: bool) -> Migration {
        Migration {
            version,
            name: format!("m{version}"),
            checksum: format!("c{version}"),
            options: MigrationOptions {
                phase,
                ..MigrationOptions::default()
            },
            path: None,
            body: Body::Sql(SqlScripts {
                up: String::new(),
                down: reversible.then(String::new),
                validate: None,
                sqlx_checksum: Vec::new(),
            }),
        }
    }

    fn row(version: u64, rank: i64) -> LedgerRow {
        LedgerRow {
            version,
            name: format!("m{version}"),
            checksum: format!("c{version}"),
            applied_at: Some(0),
            execution_ms: 1,
            completed: true,
            installed_rank: rank,
            failure: None,
        }
    }

    fn versions(ms: &[&Migration]) -> Vec<u64> {
        ms.iter().map(|m| m.version).collect()
    }

    fn expand(versions: &[u64]) -> Vec<Migration> {
        versions
            .iter()
            .map(|&v| mig(v, Phase::Expand, true))
            .collect()
    }

    #[test]
    fn fresh_database_runs_everything_in_order() {
        let ms = expand(&[1, 2, 3]);
        let a = Analysis::new(&ms, &[]);
        let plan = plan_up(&a, &ms, &UpOptions::default()).unwrap();
        assert_eq!(versions(&plan.run), [1, 2, 3]);
    }

    #[test]
    fn target_holds_back_later_versions_and_must_exist() {
        let ms = expand(&[1, 2, 3]);
        let a = Analysis::new(&ms, &[]);
        let plan = plan_up(&a, &ms, &UpOptions::default().target(2)).unwrap();
        assert_eq!(versions(&plan.run), [1, 2]);
        assert_eq!(plan.held_back[0].version, 3);
        assert!(matches!(
            plan_up(&a, &ms, &UpOptions::default().target(9)),
            Err(Error::UnknownVersion { version: 9 })
        ));
    }

    #[test]
    fn database_ahead_warns_and_applies_nothing_older() {
        let ms = expand(&[1, 2, 3, 4, 5]);
        let ledger: Vec<_> = (1..=6).map(|v| row(v, v as i64)).collect();
        let a = Analysis::new(&ms, &ledger);
        let plan = plan_up(&a, &ms, &UpOptions::default()).unwrap();
        assert!(plan.run.is_empty());
        assert_eq!(plan.warnings.len(), 1);
        assert_eq!(a.unknown_applied()[0].version, 6);
        assert!(a.unknown_applied()[0].ahead);
    }

    #[test]
    fn missing_file_in_the_middle_is_an_error() {
        let ms = expand(&[1, 3]);
        let ledger = vec![row(1, 1), row(2, 2), row(3, 3)];
        let a = Analysis::new(&ms, &ledger);
        assert!(matches!(
            plan_up(&a, &ms, &UpOptions::default()),
            Err(Error::MissingSource { .. })
        ));
    }

    #[test]
    fn out_of_order_is_refused_unless_allowed() {
        let ms = expand(&[1, 2, 3]);
        let ledger = vec![row(1, 1), row(3, 2)];
        let a = Analysis::new(&ms, &ledger);
        match plan_up(&a, &ms, &UpOptions::default()) {
            Err(Error::OutOfOrder {
                pending,
                highest_applied: 3,
            }) => assert_eq!(pending[0].0, 2),
            _ => panic!("expected OutOfOrder"),
        }
        let plan = plan_up(&a, &ms, &UpOptions::default().allow_out_of_order(true)).unwrap();
        assert_eq!(versions(&plan.run), [2]);
    }

    #[test]
    fn checksum_drift_and_failed_rows_refuse() {
        let ms = expand(&[1, 2]);
        let mut changed = row(1, 1);
        changed.checksum = "other".into();
        let a = Analysis::new(&ms, std::slice::from_ref(&changed));
        assert!(matches!(
            plan_up(&a, &ms, &UpOptions::default()),
            Err(Error::ChecksumMismatch { version: 1, .. })
        ));
        let mut failed = row(1, 1);
        failed.completed = false;
        let ledger = [failed];
        let a = Analysis::new(&ms, &ledger);
        assert!(matches!(
            plan_up(&a, &ms, &UpOptions::default()),
            Err(Error::Dirty { version: 1, .. })
        ));
    }

    #[test]
    fn phases_split_at_the_first_contract_step() {
        let ms = vec![
            mig(1, Phase::Expand, true),
            mig(2, Phase::Contract, true),
            mig(3, Phase::Expand, true),
        ];
        let a = Analysis::new(&ms, &[]);
        let plan = plan_up(&a, &ms, &UpOptions::default().phase(Phase::Expand)).unwrap();
        assert_eq!(versions(&plan.run), [1]);
        assert_eq!(plan.held_back.len(), 2);
        assert!(matches!(
            plan_up(&a, &ms, &UpOptions::default().phase(Phase::Contract)),
            Err(Error::ExpandPending { version: 1, .. })
        ));
        let ledger = [row(1, 1)];
        let a = Analysis::new(&ms, &ledger);
        let plan = plan_up(&a, &ms, &UpOptions::default().phase(Phase::Contract)).unwrap();
        assert_eq!(versions(&plan.run), [2, 3]);
    }

    #[test]
    fn down_reverts_in_applied_order_and_refuses_early() {
        let mut ms = expand(&[1, 2, 3]);
        // Applied out of order: 1, 3, then 2.
        let ledger = vec![row(1, 1), row(2, 3), row(3, 2)];
        let a = Analysis::new(&ms, &ledger);
        let run = plan_down(&a, &ms, &ledger, DownTarget::Count(2)).unwrap();
        assert_eq!(versions(&run), [2, 3]);
        let run = plan_down(&a, &ms, &ledger, DownTarget::To(1)).unwrap();
        assert_eq!(versions(&run), [2, 3]);
        assert!(matches!(
            plan_down(&a, &ms, &ledger, DownTarget::Count(4)),
            Err(Error::TooManyToRevert {
                requested: 4,
                applied: 3
            })
        ));
        assert!(matches!(
            plan_down(&a, &ms, &ledger, DownTarget::To(7)),
            Err(Error::UnknownVersion { version: 7 })
        ));
        ms[2] = mig(3, Phase::Expand, false);
        let a = Analysis::new(&ms, &ledger);
        assert!(matches!(
            plan_down(&a, &ms, &ledger, DownTarget::Count(3)),
            Err(Error::Irreversible { version: 3, .. })
        ));
        assert_eq!(
            versions(&plan_down(&a, &ms, &ledger, DownTarget::Count(1)).unwrap()),
            [2]
        );
    }
}
