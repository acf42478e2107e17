//! Typed results of every operation. The CLI only formats these (as text, or as JSON through
//! their `Serialize` impls), so a library caller sees the same facts as a CLI user.

use crate::lint::LintRule;
use crate::migration::Phase;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Serialises a ledger timestamp (microseconds since the Unix epoch) as RFC 3339 UTC.
fn rfc3339<S: serde::Serializer>(micros: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match micros {
        Some(m) => s.serialize_str(&format_rfc3339(*m)),
        None => s.serialize_none(),
    }
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A civil date to days since 1970-01-01 (the inverse of `civil_from_days`).
#[cfg(feature = "sqlite")]
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses SQLite's UTC timestamps, `YYYY-MM-DD HH:MM:SS[.fff]` (a `T` instead of the space and
/// a trailing `Z` are accepted), into microseconds since the Unix epoch.
#[cfg(feature = "sqlite")]
pub(crate) fn parse_sqlite_timestamp(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut date = date.splitn(3, '-');
    let y: i64 = date.next()?.parse().ok()?;
    let mo: u32 = date.next()?.parse().ok()?;
    let d: u32 = date.next()?.parse().ok()?;
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = hms.splitn(3, ':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = hms.next()?.parse().ok()?;
    let digits: String = fraction.chars().take(6).collect();
    let micros: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<6}").parse().ok()?
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
    Some(secs * 1_000_000 + micros)
}

fn civil(secs: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    (y, mo, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Formats microseconds since the Unix epoch as `2026-11-26T12:00:00.123Z`.
pub(crate) fn format_rfc3339(micros: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(micros.div_euclid(1_000_000));
    let ms = micros.rem_euclid(1_000_000) / 1000;
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// The UTC time as a `YYYYMMDDHHMMSS` number (timestamp-style migration versions).
pub(crate) fn utc_timestamp_version(now: SystemTime) -> u64 {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
        .parse()
        .unwrap_or(0)
}

/// A migration applied by `up`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppliedStep {
    /// Its version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// How many attempts it took (PostgreSQL retries a migration whose DDL hit `lock_timeout`).
    pub attempts: u32,
}

/// A migration that `up` or `down` would run (dry run), in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedStep {
    /// Its version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// Whether it runs in a transaction on this database.
    pub transactional: bool,
    /// The SQL statements it would run, in order (empty for code migrations).
    pub statements: Vec<String>,
}

/// A pending migration that `up` left for later, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldBack {
    /// Its version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Why it was not applied.
    pub reason: String,
}

/// What `up` did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpReport {
    /// Whether this was a dry run (nothing executed).
    pub dry_run: bool,
    /// Migrations applied, in order (empty for a dry run).
    pub applied: Vec<AppliedStep>,
    /// For a dry run: what would be applied, in order.
    pub planned: Vec<PlannedStep>,
    /// Pending migrations not applied by this run (target, phase, database ahead).
    pub held_back: Vec<HeldBack>,
    /// Applied versions this binary does not know, newer than all it knows (the database is
    /// ahead: an older release is running against a newer schema).
    pub unknown_applied: Vec<UnknownApplied>,
    /// Lint findings in the migrations applied (a plain `up` warns; `--phase expand` refuses).
    pub lint: Vec<LintFinding>,
    /// Human-readable warnings.
    pub warnings: Vec<String>,
}

/// A migration reverted by `down`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevertedStep {
    /// Its version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// What `down` did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DownReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Migrations reverted, newest applied first.
    pub reverted: Vec<RevertedStep>,
    /// For a dry run: what would be reverted, in order.
    pub planned: Vec<PlannedStep>,
}

/// The state of one migration in [`StatusReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationState {
    /// Applied, checksum matches.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but its file changed since.
    ChecksumMismatch,
    /// Started without a transaction and did not complete: needs `repair`.
    Failed,
}

impl fmt::Display for MigrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Applied => "applied",
            Self::Pending => "pending",
            Self::ChecksumMismatch => "CHECKSUM MISMATCH",
            Self::Failed => "FAILED",
        })
    }
}

/// One known migration in [`StatusReport`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusEntry {
    /// Its version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// Its state.
    pub state: MigrationState,
    /// When it was applied (RFC 3339 UTC in JSON; microseconds since the epoch here).
    #[serde(serialize_with = "rfc3339")]
    pub applied_at: Option<i64>,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// The error recorded for a failed migration.
    pub failure: Option<String>,
}

impl StatusEntry {
    /// [`applied_at`](Self::applied_at) as RFC 3339 UTC (`2026-11-26T12:00:00.123Z`).
    pub fn applied_at_rfc3339(&self) -> Option<String> {
        self.applied_at.map(format_rfc3339)
    }
}

/// An applied migration that this binary does not know.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnknownApplied {
    /// Its version.
    pub version: u64,
    /// The name recorded when it was applied.
    pub name: String,
    /// `true` when it is newer than every migration this binary knows (the database is ahead);
    /// `false` when its file is missing.
    pub ahead: bool,
}

/// What `status` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusReport {
    /// The database's dialect.
    pub dialect: Option<crate::Dialect>,
    /// Every migration this binary knows, by version.
    pub migrations: Vec<StatusEntry>,
    /// Applied versions this binary does not know.
    pub unknown_applied: Vec<UnknownApplied>,
    /// PostgreSQL indexes left INVALID (a killed `CREATE INDEX CONCURRENTLY`).
    pub invalid_indexes: Vec<String>,
}

impl StatusReport {
    /// How many are applied.
    pub fn applied_count(&self) -> usize {
        self.migrations
            .iter()
            .filter(|m| m.state != MigrationState::Pending)
            .count()
    }

    /// How many are pending.
    pub fn pending_count(&self) -> usize {
        self.migrations
            .iter()
            .filter(|m| m.state == MigrationState::Pending)
            .count()
    }
}

/// A problem found by `verify`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Problem {
    /// An applied migration's file changed.
    ChecksumMismatch {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
    },
    /// An applied migration's file is gone.
    MissingSource {
        /// Its version.
        version: u64,
        /// The recorded name.
        name: String,
    },
    /// Applied versions newer than every file: the database is ahead of this binary.
    DatabaseAhead {
        /// Its version.
        version: u64,
        /// The recorded name.
        name: String,
    },
    /// A pending migration older than the newest applied one.
    Gap {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
    },
    /// A migration recorded as failed.
    Failed {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
    },
    /// An INVALID PostgreSQL index.
    InvalidIndex {
        /// Schema-qualified index name.
        index: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChecksumMismatch { version, name } => write!(
                f,
                "migration {version} ({name}): file changed since it was applied (checksum mismatch)"
            ),
            Self::MissingSource { version, name } => write!(
                f,
                "migration {version} ({name}): applied, but its file is missing"
            ),
            Self::DatabaseAhead { version, name } => write!(
                f,
                "migration {version} ({name}): applied by a newer release; this binary does not know it"
            ),
            Self::Gap { version, name } => write!(
                f,
                "migration {version} ({name}): pending, but older than the newest applied migration"
            ),
            Self::Failed { version, name } => write!(
                f,
                "migration {version} ({name}): recorded as failed; fix the database, then `migrate repair`"
            ),
            Self::InvalidIndex { index } => write!(
                f,
                "index {index} is INVALID (an interrupted CREATE INDEX CONCURRENTLY): DROP INDEX CONCURRENTLY it and create it again"
            ),
        }
    }
}

/// What `verify` found: it passes when `problems` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// How many applied migrations were checked.
    pub checked: usize,
    /// What is wrong.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing `repair` does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RepairAction {
    /// Deletes the record of a failed migration, so the next `up` runs it again.
    RemoveFailed {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
    },
    /// Records the current checksum of an applied migration whose file changed.
    RealignChecksum {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
        /// The recorded checksum.
        from: String,
        /// The file's checksum.
        to: String,
    },
}

impl fmt::Display for RepairAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemoveFailed { version, name } => write!(
                f,
                "remove the failed record of migration {version} ({name}); the next `up` runs it again from the start"
            ),
            Self::RealignChecksum {
                version,
                name,
                from,
                to,
            } => write!(
                f,
                "record the new checksum of migration {version} ({name}): {}… -> {}…",
                &from[..from.len().min(12)],
                &to[..to.len().min(12)]
            ),
        }
    }
}

/// What `repair` did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The actions, in order.
    pub actions: Vec<RepairAction>,
}

/// What `adopt` imported from a sqlx-cli ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AdoptReport {
    /// Versions imported now.
    pub imported: Vec<u64>,
    /// Versions already in the ledger (an earlier adopt).
    pub already_present: Vec<u64>,
}

/// A breaking statement in an expand migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LintFinding {
    /// The migration's version.
    pub version: u64,
    /// The migration's name.
    pub name: String,
    /// The file.
    pub file: String,
    /// 1-based line of the statement.
    pub line: usize,
    /// What it does.
    pub rule: LintRule,
    /// The statement, shortened.
    pub statement: String,
    /// Why it breaks the previous release and what to do.
    pub advice: String,
}

impl fmt::Display for LintFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} [{}] `{}`: {}",
            self.file,
            self.line,
            self.rule,
            self.rule.code(),
            self.statement,
            self.advice
        )
    }
}

/// What `lint` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LintReport {
    /// The dialect linted for (`None`: unknown, dialect-specific rules skipped).
    pub dialect: Option<crate::Dialect>,
    /// Expand migrations checked.
    pub checked: usize,
    /// Contract migrations (not checked: they may break the previous release).
    pub contract: usize,
    /// Code migrations (cannot be checked).
    pub code: usize,
    /// The findings.
    pub findings: Vec<LintFinding>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[test]
    fn parses_sqlite_timestamps() {
        assert_eq!(parse_sqlite_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_sqlite_timestamp("2026-11-26 12:34:56.789"),
            Some(1_795_696_496_789_000)
        );
        assert_eq!(
            parse_sqlite_timestamp("2026-11-26T12:34:56.789Z"),
            Some(1_795_696_496_789_000)
        );
        assert_eq!(
            parse_sqlite_timestamp("2000-02-29 00:00:00"),
            Some(951_782_400_000_000)
        );
        assert_eq!(parse_sqlite_timestamp("garbage"), None);
        assert_eq!(parse_sqlite_timestamp("2026-13-01 00:00:00"), None);
        for micros in [
            0,
            951_782_400_000_000,
            1_795_696_496_789_000,
            4_102_444_800_123_000,
        ] {
            let text = format_rfc3339(micros);
            assert_eq!(parse_sqlite_timestamp(&text), Some(micros), "{text}");
        }
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        // 2026-11-26T12:34:56.789Z
        assert_eq!(
            format_rfc3339(1_795_696_496_789_000),
            "2026-11-26T12:34:56.789Z"
        );
        assert_eq!(
            format_rfc3339(951_782_400_000_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            utc_timestamp_version(UNIX_EPOCH + Duration::from_secs(1_795_696_496)),
            20261126123456
        );
    }
}
