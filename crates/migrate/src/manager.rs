//! [`MigrationManager`]: the set of migrations and every operation on a database.
//!
//! Each operation follows the same shape: take the migration lock, read the ledger, let the
//! pure planner decide, carry the plan out one migration at a time, release the lock whatever
//! happened. Status, verify and lint take no lock and write nothing.

use crate::Dialect;
use crate::backend::{Database, LedgerRow};
use crate::error::{BoxError, Error, FailedStatement};
use crate::lint::lint_script;
use crate::migration::{Body, CodeMigration, Direction, Migration, MigrationOptions, Phase};
use crate::plan::{Analysis, plan_down, plan_up};
use crate::report::{
    AdoptReport, AppliedStep, DownReport, LintFinding, LintReport, MigrationState, PlannedStep,
    Problem, RepairAction, RepairReport, RevertedStep, StatusEntry, StatusReport, UpReport,
    VerifyReport,
};
use crate::source::{self, EmbeddedMigrations, valid_name};
use crate::sql::{split_statements, transaction_control};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Options of [`MigrationManager::up`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpOptions {
    /// Apply pending migrations up to and including this version only.
    pub target: Option<u64>,
    /// `Expand`: apply pending migrations up to the first contract step, refusing statements
    /// that break the previous release (before the deploy). `Contract`: apply the rest (after
    /// the deploy). `None`: apply everything.
    pub phase: Option<Phase>,
    /// Decide and report, execute nothing.
    pub dry_run: bool,
    /// Apply pending migrations older than the newest applied one instead of refusing.
    pub allow_out_of_order: bool,
}

impl UpOptions {
    /// Sets [`target`](Self::target).
    pub fn target(mut self, version: u64) -> Self {
        self.target = Some(version);
        self
    }

    /// Sets [`phase`](Self::phase).
    pub fn phase(mut self, phase: Phase) -> Self {
        self.phase = Some(phase);
        self
    }

    /// Sets [`dry_run`](Self::dry_run).
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Sets [`allow_out_of_order`](Self::allow_out_of_order).
    pub fn allow_out_of_order(mut self, allow: bool) -> Self {
        self.allow_out_of_order = allow;
        self
    }
}

/// How far [`MigrationManager::down`] reverts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTarget {
    /// The newest N applied migrations (`down N`; `rollback` is `Count(1)`).
    Count(usize),
    /// Every applied migration with a version above this one (`down --to V`; `To(0)` reverts
    /// everything).
    To(u64),
}

/// A migration step that failed, before it is turned into an [`Error`].
struct StepFailure {
    statement: Option<Box<FailedStatement>>,
    lock_timeout: bool,
    source: BoxError,
}

/// One statement on one line, whitespace collapsed, cut to 100 characters.
fn excerpt(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 100 {
        format!("{}…", one_line.chars().take(99).collect::<String>())
    } else {
        one_line
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The set of migrations of a service, and the operations on its database.
///
/// ```no_run
/// use engine_ops_migrate::{Database, DownTarget, MigrationManager, UpOptions};
///
/// # async fn run() -> Result<(), engine_ops_migrate::Error> {
/// let manager = MigrationManager::new("schemas/migrations")?;
/// let mut db = Database::connect("sqlite://app.db").await?;
/// manager.up(&mut db, &UpOptions::default()).await?;
/// let status = manager.status(&mut db).await?;
/// println!("{} applied, {} pending", status.applied_count(), status.pending_count());
/// manager.down(&mut db, DownTarget::Count(1), false).await?;
/// assert!(manager.verify(&mut db).await?.is_ok());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MigrationManager {
    migrations: Vec<Migration>,
    source: Option<PathBuf>,
    table: String,
    lock_timeout: Duration,
    ddl_lock_timeout: Duration,
    ddl_attempts: u32,
    retry_pause: Duration,
}

impl MigrationManager {
    /// The default ledger table.
    pub const DEFAULT_TABLE: &'static str = "engine_ops_migrations";

    fn with(migrations: Vec<Migration>, source: Option<PathBuf>) -> Self {
        Self {
            migrations,
            source,
            table: Self::DEFAULT_TABLE.to_owned(),
            lock_timeout: Duration::from_secs(300),
            ddl_lock_timeout: Duration::from_secs(5),
            ddl_attempts: 10,
            retry_pause: Duration::from_millis(250),
        }
    }

    /// Reads the SQL migrations of a directory.
    ///
    /// Errors name the file: a malformed name, a duplicate version, a `.down.sql` without its
    /// `.up.sql`, a bad directive; a missing directory is [`Error::SourceMissing`] and one
    /// without migrations [`Error::SourceEmpty`].
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        let migrations = source::assemble(source::read_dir(dir)?)?;
        if migrations.is_empty() {
            return Err(Error::SourceEmpty {
                dir: dir.to_path_buf(),
            });
        }
        Ok(Self::with(migrations, Some(dir.to_path_buf())))
    }

    /// Uses migrations embedded at compile time by `embed_migrations!` (feature `embed`).
    pub fn embedded(migrations: EmbeddedMigrations) -> Result<Self, Error> {
        let assembled = source::assemble(migrations.files())?;
        if assembled.is_empty() {
            return Err(Error::SourceEmpty {
                dir: PathBuf::from(migrations.dir()),
            });
        }
        Ok(Self::with(assembled, Some(PathBuf::from(migrations.dir()))))
    }

    /// A manager without SQL files, for code migrations only.
    pub fn empty() -> Self {
        Self::with(Vec::new(), None)
    }

    /// Adds a Rust code migration; it is ordered by version among the SQL ones.
    pub fn register_migration(
        mut self,
        version: u64,
        name: &str,
        migration: impl CodeMigration,
    ) -> Result<Self, Error> {
        if !valid_name(name) {
            return Err(Error::InvalidName {
                name: name.to_owned(),
            });
        }
        if version > i64::MAX as u64 {
            return Err(Error::UnknownVersion { version });
        }
        if let Some(existing) = self.migrations.iter().find(|m| m.version == version) {
            return Err(Error::DuplicateVersion {
                version,
                first: existing.origin(),
                second: format!("code migration {name}"),
            });
        }
        let options: MigrationOptions = migration.options();
        let m = Migration {
            version,
            name: name.to_owned(),
            checksum: crate::checksum::checksum(&format!("code:{version}:{name}")),
            options,
            path: None,
            body: Body::Code(Arc::new(migration)),
        };
        let at = self.migrations.partition_point(|x| x.version < version);
        self.migrations.insert(at, m);
        Ok(self)
    }

    /// Uses another ledger table than `engine_ops_migrations` (letters, digits and `_`).
    pub fn ledger_table(mut self, table: &str) -> Result<Self, Error> {
        let ok = !table.is_empty()
            && !table.starts_with(|c: char| c.is_ascii_digit())
            && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Error::InvalidName {
                name: table.to_owned(),
            });
        }
        self.table = table.to_owned();
        Ok(self)
    }

    /// How long a runner waits for another runner's lock before giving up with
    /// [`Error::LockTimeout`]. Default 5 minutes.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long one DDL statement may wait for a table lock before it is retried (PostgreSQL
    /// `lock_timeout`, MySQL `lock_wait_timeout`, whole seconds). Default 5 s: a migration
    /// stuck behind a long transaction gives way instead of queueing the application's
    /// queries behind it.
    pub fn ddl_lock_timeout(mut self, timeout: Duration) -> Self {
        self.ddl_lock_timeout = timeout;
        self
    }

    /// How many times a migration whose DDL hit the DDL lock timeout is tried, with a pause
    /// doubling from 250 ms (at most 10 s) between tries. Default 10.
    pub fn ddl_attempts(mut self, attempts: u32) -> Self {
        self.ddl_attempts = attempts.max(1);
        self
    }

    /// The migrations, by version.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// The directory the SQL migrations came from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The ledger table.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn pause(&self, attempt: u32) -> Duration {
        (self.retry_pause * 2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(Duration::from_secs(10))
    }

    // ----- up ---------------------------------------------------------------------------

    /// Applies pending migrations, in version order, each in its own transaction where the
    /// database allows it.
    ///
    /// Refuses (before running anything) when a migration is recorded as failed, an applied
    /// migration's file changed or is missing, pending migrations are older than the newest
    /// applied one (unless [`UpOptions::allow_out_of_order`]), or a transactional migration
    /// contains `BEGIN`/`COMMIT`. A database ahead of this binary is not an error: the report
    /// warns and nothing older than its newest version is applied.
    pub async fn up(&self, db: &mut Database, options: &UpOptions) -> Result<UpReport, Error> {
        if options.dry_run {
            let ledger = db.read_ledger(&self.table).await?;
            return self
                .up_planned(db.dialect(), &ledger, options)
                .map(|(report, _)| report);
        }
        db.lock(&self.table, self.lock_timeout).await?;
        let result = self.up_locked(db, options).await;
        self.release(db).await;
        result
    }

    async fn release(&self, db: &mut Database) {
        if let Err(e) = db.unlock().await {
            tracing::warn!(error = %e, "releasing the migration lock failed; it is released when the connection closes");
        }
    }

    /// Plans `up` and checks the pending scripts; returns the report skeleton and the
    /// migrations to run.
    fn up_planned<'a>(
        &'a self,
        dialect: Dialect,
        ledger: &'a [LedgerRow],
        options: &UpOptions,
    ) -> Result<(UpReport, Vec<&'a Migration>), Error> {
        let analysis = Analysis::new(&self.migrations, ledger);
        let plan = plan_up(&analysis, &self.migrations, options)?;
        let mut lint = Vec::new();
        let mut planned = Vec::new();
        for m in &plan.run {
            let transactional = m.options.transactional && dialect.transactional_ddl();
            let mut statements = Vec::new();
            if let Some(scripts) = m.sql() {
                for s in split_statements(&scripts.up, dialect) {
                    if transactional && let Some(keyword) = transaction_control(s.text, dialect) {
                        return Err(Error::TransactionControl {
                            version: m.version,
                            name: m.name.clone(),
                            line: s.line,
                            keyword: keyword.to_owned(),
                        });
                    }
                    statements.push(s.text.to_owned());
                }
            }
            lint.extend(self.lint_one(m, Some(dialect)));
            planned.push(PlannedStep {
                version: m.version,
                name: m.name.clone(),
                phase: m.options.phase,
                transactional,
                statements,
            });
        }
        if options.phase == Some(Phase::Expand) && !lint.is_empty() {
            return Err(Error::UnsafeExpand { findings: lint });
        }
        let mut warnings = plan.warnings;
        warnings.extend(lint.iter().map(|f| format!("lint: {f}")));
        let report = UpReport {
            dry_run: options.dry_run,
            applied: Vec::new(),
            planned: if options.dry_run { planned } else { Vec::new() },
            held_back: plan.held_back,
            unknown_applied: analysis.unknown_applied(),
            lint,
            warnings,
        };
        Ok((report, plan.run))
    }

    async fn up_locked(&self, db: &mut Database, options: &UpOptions) -> Result<UpReport, Error> {
        // Plan (and refuse bad input) before writing anything, the ledger table included.
        let ledger = db.read_ledger(&self.table).await?;
        let (mut report, run) = self.up_planned(db.dialect(), &ledger, options)?;
        for w in &report.warnings {
            tracing::warn!("{w}");
        }
        if run.is_empty() {
            tracing::info!("database is up to date");
            return Ok(report);
        }
        db.ensure_ledger(&self.table).await?;
        db.set_ddl_lock_timeout(self.ddl_lock_timeout).await?;
        let mut rank = ledger.iter().map(|r| r.installed_rank).max().unwrap_or(0);
        let total = run.len();
        for (i, m) in run.into_iter().enumerate() {
            rank += 1;
            tracing::info!(version = m.version, name = %m.name, "applying migration {}/{total}", i + 1);
            let completed: Vec<u64> = report.applied.iter().map(|s| s.version).collect();
            let step = self.apply(db, m, rank, completed).await?;
            tracing::info!(version = m.version, name = %m.name, duration_ms = step.duration_ms, "applied");
            report.applied.push(step);
        }
        Ok(report)
    }

    /// Runs a migration's up or down body: its statements one at a time, or its hook.
    /// `retry_statements`: retry a statement that hit the DDL lock timeout (outside a
    /// transaction; inside one the whole migration is retried instead).
    async fn run_body(
        &self,
        db: &mut Database,
        m: &Migration,
        direction: Direction,
        retry_statements: bool,
    ) -> Result<(), StepFailure> {
        match &m.body {
            Body::Sql(scripts) => {
                let script = match direction {
                    Direction::Up => scripts.up.as_str(),
                    Direction::Down => scripts.down.as_deref().unwrap_or_default(),
                };
                for (i, s) in split_statements(script, db.dialect())
                    .into_iter()
                    .enumerate()
                {
                    let mut attempt = 1;
                    loop {
                        match db.execute(s.text).await {
                            Ok(_) => break,
                            Err(e) => {
                                let lock_timeout = db.is_lock_timeout(&e);
                                if lock_timeout && retry_statements && attempt < self.ddl_attempts {
                                    tracing::warn!(
                                        version = m.version,
                                        line = s.line,
                                        attempt,
                                        "statement waited too long for a lock; retrying"
                                    );
                                    tokio::time::sleep(self.pause(attempt)).await;
                                    attempt += 1;
                                    continue;
                                }
                                return Err(StepFailure {
                                    statement: Some(Box::new(FailedStatement {
                                        index: i + 1,
                                        line: s.line,
                                        excerpt: excerpt(s.text),
                                    })),
                                    lock_timeout,
                                    source: Box::new(e),
                                });
                            }
                        }
                    }
                }
                Ok(())
            }
            Body::Code(code) => {
                let result = match direction {
                    Direction::Up => code.up(&mut db.conn()).await,
                    Direction::Down => code.down(&mut db.conn()).await,
                };
                result.map_err(|source| StepFailure {
                    statement: None,
                    lock_timeout: source
                        .downcast_ref::<sqlx::Error>()
                        .is_some_and(|e| db.is_lock_timeout(e)),
                    source,
                })
            }
        }
    }

    /// Runs a migration in one transaction: its body, its validation, the ledger change and
    /// the commit. Returns how many attempts it took: a body that hit the DDL lock timeout is
    /// rolled back and tried again after a pause.
    ///
    /// A SQL migration without a validate step goes to the database in one round trip
    /// (`BEGIN; statements; ledger change; COMMIT`), as cheap as running its SQL alone; the
    /// failing statement is known from how many statements completed (or, for a PostgreSQL
    /// syntax error, from the error's position).
    async fn run_transactional(
        &self,
        db: &mut Database,
        m: &Migration,
        direction: Direction,
        rank: i64,
        completed: &[u64],
    ) -> Result<u32, Error> {
        let fail = |failure| Self::failed(m, direction, failure, false, completed.to_vec());
        let mut attempt = 1;
        loop {
            let ledger_change = match direction {
                Direction::Up => db.insert_row_sql(&self.table, m, rank, SystemTime::now()),
                Direction::Down => db.delete_row_sql(&self.table, m.version),
            };
            let ran = match &m.body {
                Body::Sql(scripts)
                    if direction == Direction::Down || scripts.validate.is_none() =>
                {
                    let script = match direction {
                        Direction::Up => scripts.up.as_str(),
                        Direction::Down => scripts.down.as_deref().unwrap_or_default(),
                    };
                    let statements = split_statements(script, db.dialect());
                    let mut batch = vec![db.begin_sql()];
                    batch.extend(statements.iter().map(|s| s.text));
                    batch.extend([ledger_change.as_str(), "COMMIT"]);
                    db.execute_batch(&batch)
                        .await
                        .map_err(|(failed, e)| StepFailure {
                            lock_timeout: db.is_lock_timeout(&e),
                            // Index 0 is the BEGIN; after the statements come the ledger change
                            // and the COMMIT.
                            statement: failed
                                .checked_sub(1)
                                .and_then(|i| statements.get(i).map(|s| (i, s)))
                                .map(|(i, s)| {
                                    Box::new(FailedStatement {
                                        index: i + 1,
                                        line: s.line,
                                        excerpt: excerpt(s.text),
                                    })
                                }),
                            source: Box::new(e),
                        })
                }
                _ => {
                    let ran = async {
                        db.begin().await.map_err(Self::database_failure)?;
                        self.run_body(db, m, direction, false).await
                    }
                    .await;
                    if ran.is_ok()
                        && let Some(detail) = self.validate(db, m, direction).await
                    {
                        db.rollback().await;
                        return Err(Error::Validation {
                            direction,
                            version: m.version,
                            name: m.name.clone(),
                            detail,
                            rolled_back: true,
                            completed: completed.to_vec(),
                        });
                    }
                    match ran {
                        Ok(()) => db
                            .execute_batch(&[ledger_change.as_str(), "COMMIT"])
                            .await
                            .map_err(|(_, e)| Self::database_failure(e)),
                        Err(failure) => Err(failure),
                    }
                }
            };
            match ran {
                Ok(()) => return Ok(attempt),
                Err(failure) => {
                    db.rollback().await;
                    if failure.lock_timeout && attempt < self.ddl_attempts {
                        tracing::warn!(
                            version = m.version,
                            attempt,
                            "migration waited too long for a lock; rolled back, retrying"
                        );
                        tokio::time::sleep(self.pause(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(fail(failure));
                }
            }
        }
    }

    /// Runs the validate step; `Ok(None)` when it passed, `Ok(Some(detail))` when not.
    async fn validate(
        &self,
        db: &mut Database,
        m: &Migration,
        direction: Direction,
    ) -> Option<String> {
        let outcome = match (&m.body, direction) {
            (Body::Sql(scripts), Direction::Up) => match &scripts.validate {
                Some(query) => db
                    .conn()
                    .query_truth(query)
                    .await
                    .map_err(|e| Box::new(e) as BoxError),
                None => Ok(true),
            },
            (Body::Sql(_), Direction::Down) => Ok(true),
            (Body::Code(code), Direction::Up) => code.validate_up(&mut db.conn()).await,
            (Body::Code(code), Direction::Down) => code.validate_down(&mut db.conn()).await,
        };
        let what = match &m.body {
            Body::Sql(_) => format!("{}_{}.validate.sql", m.version, m.name),
            Body::Code(_) => format!(
                "validate_{}",
                if direction == Direction::Up {
                    "up"
                } else {
                    "down"
                }
            ),
        };
        match outcome {
            Ok(true) => None,
            Ok(false) => Some(format!("{what} returned false")),
            Err(e) => Some(format!("{what} failed: {e}")),
        }
    }

    fn failed(
        m: &Migration,
        direction: Direction,
        failure: StepFailure,
        recorded_as_failed: bool,
        completed: Vec<u64>,
    ) -> Error {
        Error::Migration {
            direction,
            version: m.version,
            name: m.name.clone(),
            origin: m.origin(),
            statement: failure.statement,
            recorded_as_failed,
            completed,
            source: failure.source,
        }
    }

    fn database_failure(e: sqlx::Error) -> StepFailure {
        StepFailure {
            statement: None,
            lock_timeout: false,
            source: Box::new(e),
        }
    }

    /// Applies one migration and records it.
    async fn apply(
        &self,
        db: &mut Database,
        m: &Migration,
        rank: i64,
        completed: Vec<u64>,
    ) -> Result<AppliedStep, Error> {
        let row = |execution_ms, done| LedgerRow {
            version: m.version,
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            applied_at: None,
            execution_ms,
            completed: done,
            installed_rank: rank,
            failure: None,
        };
        let started = Instant::now();
        let step = |attempts| AppliedStep {
            version: m.version,
            name: m.name.clone(),
            phase: m.options.phase,
            duration_ms: millis(started.elapsed()),
            attempts,
        };

        if m.options.transactional && db.dialect().transactional_ddl() {
            let attempts = self
                .run_transactional(db, m, Direction::Up, rank, &completed)
                .await?;
            return Ok(step(attempts));
        }

        // No transaction: record first, so a crash or failure leaves a trace.
        db.insert_row(&self.table, &row(0, false))
            .await
            .map_err(Error::db(format!(
                "recording migration {} in the ledger",
                m.version
            )))?;
        if let Err(failure) = self.run_body(db, m, Direction::Up, true).await {
            self.record_failure(db, m.version, &failure.source.to_string())
                .await;
            return Err(Self::failed(m, Direction::Up, failure, true, completed));
        }
        if let Some(detail) = self.validate(db, m, Direction::Up).await {
            let undone =
                m.is_reversible() && self.run_body(db, m, Direction::Down, true).await.is_ok();
            if undone {
                db.delete_row(&self.table, m.version)
                    .await
                    .map_err(Error::db(format!(
                        "removing migration {} from the ledger",
                        m.version
                    )))?;
            } else {
                self.record_failure(db, m.version, &detail).await;
            }
            return Err(Error::Validation {
                direction: Direction::Up,
                version: m.version,
                name: m.name.clone(),
                detail,
                rolled_back: undone,
                completed,
            });
        }
        db.update_row(
            &self.table,
            m.version,
            true,
            millis(started.elapsed()),
            None,
        )
        .await
        .map_err(Error::db(format!(
            "marking migration {} completed",
            m.version
        )))?;
        Ok(step(1))
    }

    async fn record_failure(&self, db: &mut Database, version: u64, failure: &str) {
        if let Err(e) = db
            .update_row(&self.table, version, false, 0, Some(failure.to_owned()))
            .await
        {
            tracing::error!(version, error = %e, "could not record the failure in the ledger; the record stays marked as not completed");
        }
    }

    // ----- down -------------------------------------------------------------------------

    /// Reverts applied migrations, newest applied first. Everything is checked before the
    /// first revert runs: `N` above the number applied, a migration without a down step, a
    /// changed or missing file.
    pub async fn down(
        &self,
        db: &mut Database,
        target: DownTarget,
        dry_run: bool,
    ) -> Result<DownReport, Error> {
        if dry_run {
            let ledger = db.read_ledger(&self.table).await?;
            let analysis = Analysis::new(&self.migrations, &ledger);
            let run = plan_down(&analysis, &self.migrations, &ledger, target)?;
            let dialect = db.dialect();
            return Ok(DownReport {
                dry_run: true,
                reverted: Vec::new(),
                planned: run
                    .iter()
                    .map(|m| PlannedStep {
                        version: m.version,
                        name: m.name.clone(),
                        phase: m.options.phase,
                        transactional: m.options.transactional && dialect.transactional_ddl(),
                        statements: m
                            .sql()
                            .and_then(|s| s.down.as_deref())
                            .map(|down| {
                                split_statements(down, dialect)
                                    .iter()
                                    .map(|s| s.text.to_owned())
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                    .collect(),
            });
        }
        db.lock(&self.table, self.lock_timeout).await?;
        let result = self.down_locked(db, target).await;
        self.release(db).await;
        result
    }

    async fn down_locked(
        &self,
        db: &mut Database,
        target: DownTarget,
    ) -> Result<DownReport, Error> {
        let ledger = db.read_ledger(&self.table).await?;
        let analysis = Analysis::new(&self.migrations, &ledger);
        let run = plan_down(&analysis, &self.migrations, &ledger, target)?;
        let mut report = DownReport::default();
        db.set_ddl_lock_timeout(self.ddl_lock_timeout).await?;
        let total = run.len();
        for (i, m) in run.into_iter().enumerate() {
            tracing::info!(version = m.version, name = %m.name, "reverting migration {}/{total}", i + 1);
            let completed = report.reverted.iter().map(|s| s.version).collect();
            let started = Instant::now();
            self.revert(db, m, completed).await?;
            let duration_ms = millis(started.elapsed());
            tracing::info!(version = m.version, name = %m.name, duration_ms, "reverted");
            report.reverted.push(RevertedStep {
                version: m.version,
                name: m.name.clone(),
                duration_ms,
            });
        }
        Ok(report)
    }

    async fn revert(
        &self,
        db: &mut Database,
        m: &Migration,
        completed: Vec<u64>,
    ) -> Result<(), Error> {
        if m.options.transactional && db.dialect().transactional_ddl() {
            return self
                .run_transactional(db, m, Direction::Down, 0, &completed)
                .await
                .map(drop);
        }
        // No transaction: mark the record incomplete first, so a failure leaves a trace.
        db.update_row(
            &self.table,
            m.version,
            false,
            0,
            Some("revert in progress".to_owned()),
        )
        .await
        .map_err(Error::db(format!(
            "marking migration {} as being reverted",
            m.version
        )))?;
        if let Err(failure) = self.run_body(db, m, Direction::Down, true).await {
            self.record_failure(db, m.version, &format!("revert failed: {}", failure.source))
                .await;
            return Err(Self::failed(m, Direction::Down, failure, true, completed));
        }
        if let Some(detail) = self.validate(db, m, Direction::Down).await {
            self.record_failure(db, m.version, &format!("revert did not validate: {detail}"))
                .await;
            return Err(Error::Validation {
                direction: Direction::Down,
                version: m.version,
                name: m.name.clone(),
                detail,
                rolled_back: false,
                completed,
            });
        }
        db.delete_row(&self.table, m.version)
            .await
            .map_err(Error::db(format!(
                "removing migration {} from the ledger",
                m.version
            )))
    }

    // ----- status, verify ---------------------------------------------------------------

    /// Every known migration with its state, applied versions this binary does not know, and
    /// (PostgreSQL) INVALID indexes. Takes no lock and writes nothing.
    pub async fn status(&self, db: &mut Database) -> Result<StatusReport, Error> {
        let ledger = db.read_ledger(&self.table).await?;
        let analysis = Analysis::new(&self.migrations, &ledger);
        let by_version: std::collections::HashMap<u64, &LedgerRow> =
            ledger.iter().map(|r| (r.version, r)).collect();
        let migrations = self
            .migrations
            .iter()
            .map(|m| {
                let row = by_version.get(&m.version);
                let state = match row {
                    None => MigrationState::Pending,
                    Some(r) if !r.completed => MigrationState::Failed,
                    Some(r) if r.checksum != m.checksum => MigrationState::ChecksumMismatch,
                    Some(_) => MigrationState::Applied,
                };
                StatusEntry {
                    version: m.version,
                    name: m.name.clone(),
                    phase: m.options.phase,
                    state,
                    applied_at: row.and_then(|r| r.applied_at),
                    duration_ms: row.filter(|r| r.completed).map(|r| r.execution_ms),
                    failure: row.and_then(|r| r.failure.clone()),
                }
            })
            .collect();
        Ok(StatusReport {
            dialect: Some(db.dialect()),
            migrations,
            unknown_applied: analysis.unknown_applied(),
            invalid_indexes: db.invalid_indexes().await?,
        })
    }

    /// Checks that every applied migration still exists with the same checksum, that no
    /// pending migration is older than an applied one, that nothing is recorded as failed,
    /// that the database is not ahead of this binary, and (PostgreSQL) that no index is
    /// INVALID. Takes no lock and writes nothing.
    pub async fn verify(&self, db: &mut Database) -> Result<VerifyReport, Error> {
        let ledger = db.read_ledger(&self.table).await?;
        let analysis = Analysis::new(&self.migrations, &ledger);
        let mut problems = Vec::new();
        for row in &analysis.failed {
            problems.push(Problem::Failed {
                version: row.version,
                name: row.name.clone(),
            });
        }
        for (m, _) in &analysis.mismatched {
            problems.push(Problem::ChecksumMismatch {
                version: m.version,
                name: m.name.clone(),
            });
        }
        for u in analysis.unknown_applied() {
            problems.push(if u.ahead {
                Problem::DatabaseAhead {
                    version: u.version,
                    name: u.name,
                }
            } else {
                Problem::MissingSource {
                    version: u.version,
                    name: u.name,
                }
            });
        }
        for m in analysis.gaps() {
            problems.push(Problem::Gap {
                version: m.version,
                name: m.name.clone(),
            });
        }
        for index in db.invalid_indexes().await? {
            problems.push(Problem::InvalidIndex { index });
        }
        Ok(VerifyReport {
            checked: ledger.len(),
            problems,
        })
    }

    // ----- repair, adopt ----------------------------------------------------------------

    /// Clears what blocks `up` once an operator has fixed the database by hand: deletes the
    /// records of failed migrations (the next `up` runs them again from the start) and records
    /// the current checksum of applied migrations whose file changed. With `dry_run`, only
    /// reports what it would do.
    pub async fn repair(&self, db: &mut Database, dry_run: bool) -> Result<RepairReport, Error> {
        if dry_run {
            let ledger = db.read_ledger(&self.table).await?;
            return Ok(RepairReport {
                dry_run,
                actions: self.repair_actions(&ledger),
            });
        }
        db.lock(&self.table, self.lock_timeout).await?;
        let result = async {
            let ledger = db.read_ledger(&self.table).await?;
            let actions = self.repair_actions(&ledger);
            for action in &actions {
                tracing::info!("repair: {action}");
                match action {
                    RepairAction::RemoveFailed { version, .. } => db
                        .delete_row(&self.table, *version)
                        .await
                        .map_err(Error::db(format!(
                            "removing the failed record of {version}"
                        )))?,
                    RepairAction::RealignChecksum {
                        version, name, to, ..
                    } => db
                        .set_checksum(&self.table, *version, name, to)
                        .await
                        .map_err(Error::db(format!(
                            "recording the new checksum of {version}"
                        )))?,
                }
            }
            Ok(RepairReport { dry_run, actions })
        }
        .await;
        self.release(db).await;
        result
    }

    fn repair_actions(&self, ledger: &[LedgerRow]) -> Vec<RepairAction> {
        let analysis = Analysis::new(&self.migrations, ledger);
        let mut actions: Vec<RepairAction> = analysis
            .failed
            .iter()
            .map(|r| RepairAction::RemoveFailed {
                version: r.version,
                name: r.name.clone(),
            })
            .collect();
        actions.extend(
            analysis
                .mismatched
                .iter()
                .map(|(m, r)| RepairAction::RealignChecksum {
                    version: m.version,
                    name: m.name.clone(),
                    from: r.checksum.clone(),
                    to: m.checksum.clone(),
                }),
        );
        actions
    }

    /// Imports sqlx-cli's `_sqlx_migrations` ledger, so a team switches over without running
    /// anything again. Each sqlx row must match a SQL migration of this manager (same version,
    /// the file sqlx applied, not failed); otherwise nothing is imported. Importing twice is
    /// harmless. `_sqlx_migrations` is left as it is.
    pub async fn adopt(&self, db: &mut Database) -> Result<AdoptReport, Error> {
        db.lock(&self.table, self.lock_timeout).await?;
        let result = self.adopt_locked(db).await;
        self.release(db).await;
        result
    }

    async fn adopt_locked(&self, db: &mut Database) -> Result<AdoptReport, Error> {
        let sqlx_rows = db.read_sqlx_ledger().await?.ok_or(Error::NoSqlxLedger)?;
        db.ensure_ledger(&self.table).await?;
        let ledger = db.read_ledger(&self.table).await?;
        let ours: std::collections::HashMap<u64, &LedgerRow> =
            ledger.iter().map(|r| (r.version, r)).collect();
        let mut problems = Vec::new();
        let mut report = AdoptReport::default();
        let mut to_import = Vec::new();
        for row in &sqlx_rows {
            let Some(m) = self.migrations.iter().find(|m| m.version == row.version) else {
                problems.push(format!(
                    "version {} ({}) is in _sqlx_migrations but no file has it",
                    row.version, row.description
                ));
                continue;
            };
            if !row.success {
                problems.push(format!(
                    "version {} ({}) failed under sqlx-cli (success = false): repair it with sqlx-cli first",
                    row.version, row.description
                ));
                continue;
            }
            let Some(scripts) = m.sql() else {
                problems.push(format!(
                    "version {} is a code migration here, a SQL file for sqlx-cli",
                    row.version
                ));
                continue;
            };
            let normalized = crate::checksum::sqlx_checksum(&scripts.up);
            if row.checksum != scripts.sqlx_checksum && row.checksum != normalized {
                problems.push(format!(
                    "{}: the file changed since sqlx-cli applied it (checksum mismatch)",
                    m.origin()
                ));
                continue;
            }
            match ours.get(&row.version) {
                Some(existing) if existing.checksum == m.checksum => {
                    report.already_present.push(row.version)
                }
                Some(_) => problems.push(format!(
                    "version {} is already in {} with another checksum",
                    row.version, self.table
                )),
                None => to_import.push(m),
            }
        }
        if !problems.is_empty() {
            return Err(Error::AdoptMismatch { problems });
        }
        let mut rank = ledger.iter().map(|r| r.installed_rank).max().unwrap_or(0);
        let imported = async {
            db.begin().await?;
            for m in &to_import {
                rank += 1;
                db.adopt_row(&self.table, m.version, &m.name, &m.checksum, rank)
                    .await?;
            }
            db.commit().await
        }
        .await;
        if let Err(e) = imported {
            db.rollback().await;
            return Err(Error::db("importing the sqlx-cli ledger")(e));
        }
        report.imported = to_import.iter().map(|m| m.version).collect();
        tracing::info!(
            imported = report.imported.len(),
            already = report.already_present.len(),
            "adopted the sqlx-cli ledger"
        );
        Ok(report)
    }

    // ----- lint -------------------------------------------------------------------------

    fn lint_one(&self, m: &Migration, dialect: Option<Dialect>) -> Vec<LintFinding> {
        let Some(scripts) = m.sql() else {
            return Vec::new();
        };
        if m.options.phase == Phase::Contract {
            return Vec::new();
        }
        lint_script(&scripts.up, dialect)
            .into_iter()
            .map(|f| LintFinding {
                version: m.version,
                name: m.name.clone(),
                file: m.origin(),
                line: f.line,
                rule: f.rule,
                statement: f.excerpt,
                advice: f.rule.advice().to_owned(),
            })
            .collect()
    }

    /// Finds statements in expand migrations that break the previous release's code (drop or
    /// rename a column or table, change a type, `NOT NULL` without a default, a
    /// non-concurrent index build on PostgreSQL). Contract migrations are not checked; code
    /// migrations cannot be. `dialect` `None` skips the dialect-specific rules.
    pub fn lint(&self, dialect: Option<Dialect>) -> LintReport {
        let mut report = LintReport {
            dialect,
            ..LintReport::default()
        };
        for m in &self.migrations {
            match (&m.body, m.options.phase) {
                (Body::Code(_), _) => report.code += 1,
                (_, Phase::Contract) => report.contract += 1,
                _ => {
                    report.checked += 1;
                    report.findings.extend(self.lint_one(m, dialect));
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(
            excerpt("CREATE TABLE t (\n    id INT\n)"),
            "CREATE TABLE t ( id INT )"
        );
        let long = "SELECT ".to_owned() + &"x, ".repeat(60);
        assert_eq!(excerpt(&long).chars().count(), 100);
        assert!(excerpt(&long).ends_with('…'));
    }

    #[test]
    fn ledger_table_names_are_checked() {
        assert!(MigrationManager::empty().ledger_table("my_ledger").is_ok());
        for bad in ["", "1abc", "drop table x", "a;b", "a.b"] {
            assert!(
                MigrationManager::empty().ledger_table(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn retry_pause_doubles_and_is_capped() {
        let m = MigrationManager::empty();
        assert_eq!(m.pause(1), Duration::from_millis(250));
        assert_eq!(m.pause(3), Duration::from_millis(1000));
        assert_eq!(m.pause(20), Duration::from_secs(10));
    }
}
