//! The crate's one error type. Messages are lowercase, name the file, version or setting
//! involved, and say how to recover.

use crate::migration::Direction;
use crate::report::LintFinding;
use std::path::PathBuf;
use std::time::Duration;

/// A boxed error, as returned by [`CodeMigration`](crate::CodeMigration) hooks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The statement of a SQL migration that failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedStatement {
    /// 1-based position among the script's statements.
    pub index: usize,
    /// 1-based line of the statement in its file.
    pub line: usize,
    /// The statement on one line, shortened.
    pub excerpt: String,
}

fn fmt_list(items: &[(u64, String)]) -> String {
    items
        .iter()
        .map(|(v, n)| format!("{v} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_findings(items: &[LintFinding]) -> String {
    items.iter().map(|f| format!("\n  {f}")).collect::<String>()
}

fn fmt_statement(s: &Option<Box<FailedStatement>>) -> String {
    match s {
        Some(s) => format!(
            " at statement {} (line {}: `{}`)",
            s.index, s.line, s.excerpt
        ),
        None => String::new(),
    }
}

/// Everything that can go wrong.
///
/// [`Error::is_bad_input`] separates mistakes in the input (file names, settings, arguments:
/// the `migrate` CLI exits 2) from failures of a migration or of the database state (exit 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The migrations directory does not exist.
    #[error(
        "migrations directory {} does not exist; create it with `migrate new <name>` or pass --source", dir.display()
    )]
    SourceMissing {
        /// The directory.
        dir: PathBuf,
    },
    /// The migrations directory holds no migration.
    #[error(
        "no migrations found in {}: expected files like 001_create_users.up.sql; create one with `migrate new <name>`", dir.display()
    )]
    SourceEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// A file or directory could not be read or written.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `.sql` file whose name does not follow `<version>_<name>.{up,down,validate}.sql`.
    #[error("malformed migration file name {}: {reason}", path.display())]
    MalformedName {
        /// The file.
        path: PathBuf,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// Two migrations with the same version.
    #[error(
        "duplicate migration version {version}: {first} and {second}; give one of them a new version"
    )]
    DuplicateVersion {
        /// The version.
        version: u64,
        /// The first migration (file or `code`).
        first: String,
        /// The second one.
        second: String,
    },
    /// A `.down.sql` or `.validate.sql` without its `.up.sql`, or whose name differs from it.
    #[error("{}: {reason}", path.display())]
    OrphanFile {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A malformed `-- engine-ops:` directive.
    #[error("{}:{line}: {reason}", path.display())]
    InvalidDirective {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A name given to `new` or `register_migration` that cannot be a file name.
    #[error(
        "invalid migration name `{name}`: use letters, digits, `_` and `-`, e.g. add_users_email"
    )]
    InvalidName {
        /// The name.
        name: String,
    },
    /// A database URL that names no supported database, or a backend this build lacks.
    #[error("unsupported database URL `{url}`: {reason}")]
    UnsupportedUrl {
        /// The URL, password removed.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A SQLite database file that does not exist, opened by a command that must not create it.
    #[error(
        "no SQLite database at {path}: check DATABASE_URL / --database-url (`migrate up` creates the file); nothing was written"
    )]
    NoDatabase {
        /// The file.
        path: String,
    },
    /// The database could not be reached.
    #[error(
        "cannot connect to {url}: {source}; check DATABASE_URL / --database-url and that the server is running"
    )]
    Connect {
        /// The URL, password removed.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A version given as a target that no migration has.
    #[error("no migration has version {version}; `migrate status` lists the versions")]
    UnknownVersion {
        /// The version.
        version: u64,
    },
    /// `down N` with N above the number of applied migrations.
    #[error(
        "cannot revert {requested} migrations: only {applied} are applied; nothing was reverted"
    )]
    TooManyToRevert {
        /// N.
        requested: usize,
        /// How many are applied.
        applied: usize,
    },
    /// `down` over a migration without a down step.
    #[error(
        "migration {version} ({name}) has no down step, so it cannot be reverted; nothing was reverted. To make it reversible, {fix}"
    )]
    Irreversible {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
        /// How to add a down step.
        fix: String,
    },
    /// A `BEGIN`/`COMMIT` inside a migration that runs in a transaction.
    #[error(
        "migration {version} ({name}) contains `{keyword}` at line {line}: it would end the runner's transaction early. Remove it, or mark the migration `-- engine-ops: no-transaction`; nothing was applied"
    )]
    TransactionControl {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
        /// 1-based line of the statement.
        line: usize,
        /// The keyword found.
        keyword: String,
    },
    /// A migration failed part-way without a transaction and is recorded as failed.
    #[error(
        "migration {version} ({name}) failed part-way earlier and the database may hold part of it{failure}. Fix the schema by hand (undo what it did), then run `migrate repair` to clear the record; the next `up` runs it again from the start", failure = failure.as_ref().map(|f| format!(" (error: {f})")).unwrap_or_default()
    )]
    Dirty {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
        /// The recorded error.
        failure: Option<String>,
    },
    /// An applied migration's file changed.
    #[error(
        "migration {version} ({name}) was applied with checksum {applied} but its file now has {current}; restore the file as it was applied (git checkout), or if the change is intentional and harmless run `migrate repair` to record the new checksum"
    )]
    ChecksumMismatch {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
        /// Recorded checksum (shortened).
        applied: String,
        /// Current checksum (shortened).
        current: String,
    },
    /// Applied migrations whose files are gone (and that are older than the newest known file).
    #[error(
        "applied migrations are missing from the source: {}; restore their files", fmt_list(.missing)
    )]
    MissingSource {
        /// Version and recorded name of each.
        missing: Vec<(u64, String)>,
    },
    /// Pending migrations older than the newest applied one.
    #[error(
        "pending migrations are older than the newest applied one ({highest_applied}): {}; give them new versions, or pass --allow-out-of-order to apply them anyway", fmt_list(.pending)
    )]
    OutOfOrder {
        /// Version and name of each.
        pending: Vec<(u64, String)>,
        /// The newest applied version.
        highest_applied: u64,
    },
    /// `up --phase expand` would run statements that break the previous release.
    #[error(
        "expand migrations contain statements that break the previous release:{}\nmove them to a migration marked `-- engine-ops: contract` and run it with `up --phase contract` after the deploy; nothing was applied", fmt_findings(.findings)
    )]
    UnsafeExpand {
        /// The findings.
        findings: Vec<LintFinding>,
    },
    /// `up --phase contract` while an earlier expand migration is still pending.
    #[error(
        "expand migration {version} ({name}) is still pending: run `up --phase expand` (before the deploy) first; nothing was applied"
    )]
    ExpandPending {
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
    },
    /// The migration lock was held by another runner for longer than the lock timeout.
    #[error(
        "another runner held the migration lock for more than {waited:?}; it may still be migrating: wait and retry, or raise the lock timeout"
    )]
    LockTimeout {
        /// How long this runner waited.
        waited: Duration,
    },
    /// A migration failed.
    #[error(
        "while {direction} migration {version} ({name}) from {origin}{stmt}: {source}{after}",
        stmt = fmt_statement(.statement),
        after = if *.recorded_as_failed { "; it ran without a transaction, so it is recorded as failed: fix the database by hand, then run `migrate repair`" } else { "; it was rolled back" }
    )]
    Migration {
        /// Up or down.
        direction: Direction,
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
        /// Its file, or `code`.
        origin: String,
        /// The failed statement, for SQL migrations.
        statement: Option<Box<FailedStatement>>,
        /// Whether the failure is recorded in the ledger (no transaction); otherwise it was
        /// rolled back and left no trace.
        recorded_as_failed: bool,
        /// Versions applied (or reverted) by this run before the failure.
        completed: Vec<u64>,
        /// The cause.
        source: BoxError,
    },
    /// A validate hook or `.validate.sql` query returned false.
    #[error(
        "migration {version} ({name}) did not validate after {direction}: {detail}{after}",
        after = if *.rolled_back { "; it was rolled back" } else { "; it ran without a transaction and has no down step, so it is recorded as failed: fix the database by hand, then run `migrate repair`" }
    )]
    Validation {
        /// Up or down.
        direction: Direction,
        /// Its version.
        version: u64,
        /// Its name.
        name: String,
        /// What the check said.
        detail: String,
        /// Whether its effects were undone.
        rolled_back: bool,
        /// Versions applied (or reverted) by this run before it.
        completed: Vec<u64>,
    },
    /// A query on the ledger or lock failed.
    #[error("while {context}: {source}")]
    Database {
        /// What was being done.
        context: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// `adopt` found no sqlx-cli ledger.
    #[error("no sqlx-cli ledger (`_sqlx_migrations`) in this database: nothing to adopt")]
    NoSqlxLedger,
    /// `adopt` found a sqlx-cli ledger that the files do not match.
    #[error(
        "the files do not match the sqlx-cli ledger, nothing was imported:{}\nrestore the files that were applied, then run `migrate adopt` again",
        .problems.iter().map(|p| format!("\n  {p}")).collect::<String>()
    )]
    AdoptMismatch {
        /// One line per problem.
        problems: Vec<String>,
    },
}

impl Error {
    /// `true` for mistakes in the input (file names, directives, settings, URLs, arguments,
    /// an unreachable database): nothing was written. The CLI exits 2 for these and 1 for the
    /// rest (a failed migration, a verification problem, a lock timeout).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::SourceMissing { .. }
                | Self::SourceEmpty { .. }
                | Self::Io { .. }
                | Self::MalformedName { .. }
                | Self::DuplicateVersion { .. }
                | Self::OrphanFile { .. }
                | Self::InvalidDirective { .. }
                | Self::InvalidName { .. }
                | Self::UnsupportedUrl { .. }
                | Self::Connect { .. }
                | Self::NoDatabase { .. }
                | Self::UnknownVersion { .. }
                | Self::TooManyToRevert { .. }
                | Self::Irreversible { .. }
                | Self::TransactionControl { .. }
        )
    }

    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let context = context.into();
        move |source| Self::Database { context, source }
    }
}
