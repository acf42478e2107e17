//! The database side: one dedicated connection per [`Database`], the migration lock, the
//! ledger table, and statement execution.
//!
//! Backends only carry out building blocks (lock, read the ledger, write a row, run a
//! statement); every rule (checksums, dirty state, order, retries) lives once in the manager.
//! The three connection types sit behind one enum, and [`dispatch!`] writes a building block
//! once for all of them. Dialect-specific SQL (lock functions, timestamps, DDL) lives in
//! `sqlite.rs`, `postgres.rs` and `mysql.rs`.
//!
//! The connection is never pooled: a pooled connection returned while it holds a session lock
//! would keep the lock. Dropping a [`Database`] closes its connection, which releases a
//! PostgreSQL or MySQL session lock on the server even if the process is killed.

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use crate::Dialect;
use crate::error::Error;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};
use std::time::Duration;

/// How long connecting may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// One connection of whichever backend.
pub(crate) enum AnyConn {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqliteConnection),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgConnection),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlConnection),
}

/// Runs `$body` with `$c` bound to the concrete `&mut` connection, for every backend.
macro_rules! dispatch {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            #[cfg(feature = "sqlite")]
            AnyConn::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            AnyConn::Postgres($c) => $body,
            #[cfg(feature = "mysql")]
            AnyConn::MySql($c) => $body,
        }
    };
}

/// The runner's connection, as handed to [`CodeMigration`](crate::CodeMigration) hooks.
///
/// Match on it for typed sqlx queries on the concrete connection, or use
/// [`execute`](Self::execute) and [`query_truth`](Self::query_truth) for SQL that runs on
/// every backend.
#[non_exhaustive]
pub enum DbConn<'c> {
    /// A SQLite connection.
    #[cfg(feature = "sqlite")]
    Sqlite(&'c mut sqlx::SqliteConnection),
    /// A PostgreSQL connection.
    #[cfg(feature = "postgres")]
    Postgres(&'c mut sqlx::PgConnection),
    /// A MySQL or MariaDB connection.
    #[cfg(feature = "mysql")]
    MySql(&'c mut sqlx::MySqlConnection),
}

macro_rules! dispatch_ref {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            #[cfg(feature = "sqlite")]
            DbConn::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            DbConn::Postgres($c) => $body,
            #[cfg(feature = "mysql")]
            DbConn::MySql($c) => $body,
        }
    };
}

impl DbConn<'_> {
    /// The backend's dialect.
    pub fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            Self::MySql(_) => Dialect::MySql,
        }
    }

    /// Runs SQL without parameters (several statements allowed) and returns the rows affected.
    pub async fn execute(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        dispatch_ref!(self, c => Ok(sqlx::raw_sql(sql).execute(&mut **c).await?.rows_affected()))
    }

    /// Runs a query and reads its first column of its first row as a truth value: a boolean,
    /// a non-zero number, or the text `t`/`true`/`1`/`yes`. No row or `NULL` is false.
    pub async fn query_truth(&mut self, sql: &str) -> Result<bool, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        dispatch_ref!(self, c => {
            let row = sqlx::raw_sql(sql).fetch_optional(&mut **c).await?;
            Ok(match row {
                None => false,
                Some(row) => {
                    if let Ok(v) = row.try_get::<Option<bool>, _>(0) {
                        v.unwrap_or(false)
                    } else if let Ok(v) = row.try_get::<Option<i64>, _>(0) {
                        v.is_some_and(|v| v != 0)
                    } else if let Ok(v) = row.try_get::<Option<String>, _>(0) {
                        v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "t" | "true" | "1" | "yes" | "y"))
                    } else {
                        return Err(sqlx::Error::Decode(
                            "the validate query's first column is not a boolean, number or text".into(),
                        ));
                    }
                }
            })
        })
    }
}

/// A row of the ledger table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LedgerRow {
    pub(crate) version: u64,
    pub(crate) name: String,
    pub(crate) checksum: String,
    /// Microseconds since the Unix epoch.
    pub(crate) applied_at: Option<i64>,
    pub(crate) execution_ms: u64,
    /// `false` while a migration without a transaction runs, and after it failed.
    pub(crate) completed: bool,
    /// Order of application (1, 2, …), so `down` reverts in applied order.
    pub(crate) installed_rank: i64,
    pub(crate) failure: Option<String>,
}

/// A row of sqlx-cli's `_sqlx_migrations`.
#[derive(Debug, Clone)]
pub(crate) struct SqlxRow {
    pub(crate) version: u64,
    pub(crate) description: String,
    pub(crate) success: bool,
    pub(crate) checksum: Vec<u8>,
}

/// Which of `statements` (joined with `;\n` into `joined`) holds the character at 1-based
/// position `pos`.
#[cfg(feature = "postgres")]
fn statement_at(statements: &[&str], joined: &str, pos: usize) -> Option<usize> {
    let byte = joined.char_indices().nth(pos.checked_sub(1)?)?.0;
    let mut end = 0;
    for (i, s) in statements.iter().enumerate() {
        end += s.len();
        if byte < end {
            return Some(i);
        }
        end += 2; // ";\n"
    }
    None
}

/// Lock state held by a [`Database`].
pub(crate) enum Held {
    None,
    /// PostgreSQL advisory lock key.
    #[cfg(feature = "postgres")]
    Advisory(i64),
    /// MySQL `GET_LOCK` name.
    #[cfg(feature = "mysql")]
    Named(String),
    /// SQLite: an OS lock on a file beside the database.
    #[cfg(feature = "sqlite")]
    File(std::fs::File),
}

/// A dedicated connection to the database being migrated.
///
/// ```no_run
/// # async fn run() -> Result<(), engine_ops_migrate::Error> {
/// use engine_ops_migrate::Database;
/// let db = Database::connect("postgres://postgres@127.0.0.1:5432/app").await?;
/// assert_eq!(db.dialect(), engine_ops_migrate::Dialect::Postgres);
/// # Ok(()) }
/// ```
pub struct Database {
    pub(crate) conn: AnyConn,
    url: String,
    pub(crate) held: Held,
    /// SQLite: the lock file path (`None` for an in-memory database).
    #[cfg(feature = "sqlite")]
    lock_path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.url)
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

/// `scheme://user:secret@host/db` with the secret replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn unsupported(url: &str, reason: impl Into<String>) -> Error {
    Error::UnsupportedUrl {
        url: redact(url),
        reason: reason.into(),
    }
}

async fn connect_within<C, F>(url: &str, fut: F) -> Result<C, Error>
where
    F: std::future::Future<Output = Result<C, sqlx::Error>>,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(source)) => Err(Error::Connect {
            url: redact(url),
            source,
        }),
        Err(_) => Err(Error::Connect {
            url: redact(url),
            source: sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {CONNECT_TIMEOUT:?}"),
            )),
        }),
    }
}

impl Database {
    /// Opens a dedicated connection.
    ///
    /// Accepted URLs: `sqlite://path/app.db` (created if missing), `sqlite::memory:`,
    /// `postgres://` or `postgresql://`, `mysql://` or `mariadb://`. A scheme whose backend
    /// feature is off, or a malformed URL, is [`Error::UnsupportedUrl`]; a server that does
    /// not answer (within 15 s) or refuses the login is [`Error::Connect`].
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::open(url, true).await
    }

    /// Like [`connect`](Self::connect), but a SQLite file that does not exist is
    /// [`Error::NoDatabase`] instead of being created: for commands that only read (`status`,
    /// `verify`) or that need what an earlier run wrote (`down`, `repair`, `adopt`), so that a
    /// mistyped path is reported rather than answered from a new empty database.
    pub async fn connect_existing(url: &str) -> Result<Self, Error> {
        Self::open(url, false).await
    }

    /// Whether `url` names a SQLite file that does not exist (in-memory databases exist).
    pub fn sqlite_file_missing(url: &str) -> bool {
        #[cfg(feature = "sqlite")]
        if Dialect::from_url(url) == Some(Dialect::Sqlite) {
            let url_for_sqlx = url.replacen("sqlite://", "sqlite:", 1);
            if let Ok(options) = url_for_sqlx.parse::<sqlx::sqlite::SqliteConnectOptions>() {
                return sqlite::lock_path(&options).is_some() && !options.get_filename().exists();
            }
        }
        let _ = url;
        false
    }

    async fn open(url: &str, create: bool) -> Result<Self, Error> {
        let dialect = Dialect::from_url(url).ok_or_else(|| {
            unsupported(
                url,
                "expected sqlite://, postgres:// or mysql:// (e.g. sqlite://app.db)",
            )
        })?;
        let bad = |e: sqlx::Error| unsupported(url, e.to_string());
        let (conn, lock_path): (AnyConn, Option<std::path::PathBuf>) = match dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => {
                let url_for_sqlx = url.replacen("sqlite://", "sqlite:", 1);
                let options: sqlx::sqlite::SqliteConnectOptions =
                    url_for_sqlx.parse().map_err(bad)?;
                if !create && Self::sqlite_file_missing(url) {
                    return Err(Error::NoDatabase {
                        path: options.get_filename().display().to_string(),
                    });
                }
                let options = options
                    .create_if_missing(create)
                    .busy_timeout(Duration::from_secs(10))
                    .disable_statement_logging();
                let lock_path = sqlite::lock_path(&options);
                let conn = connect_within(url, options.connect()).await?;
                (AnyConn::Sqlite(conn), lock_path)
            }
            #[cfg(feature = "postgres")]
            Dialect::Postgres => {
                let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(bad)?;
                let options = options
                    .application_name("engine-ops-migrate")
                    .disable_statement_logging();
                // The session is prepared when it takes the lock: read-only commands
                // (`status`, `verify`) need no setting and save the round trip.
                let conn = connect_within(url, options.connect()).await?;
                (AnyConn::Postgres(conn), None)
            }
            #[cfg(feature = "mysql")]
            Dialect::MySql => {
                let url_for_sqlx = url.replacen("mariadb://", "mysql://", 1);
                let options: sqlx::mysql::MySqlConnectOptions =
                    url_for_sqlx.parse().map_err(bad)?;
                let options = options.disable_statement_logging();
                let mut conn = connect_within(url, options.connect()).await?;
                mysql::prepare_session(&mut conn)
                    .await
                    .map_err(Error::db("preparing the MySQL session"))?;
                (AnyConn::MySql(conn), None)
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(unsupported(
                    url,
                    format!(
                        "this build has no {other} backend; enable the `{}` feature of engine-ops-migrate",
                        match other {
                            Dialect::Sqlite => "sqlite",
                            Dialect::Postgres => "postgres",
                            Dialect::MySql => "mysql",
                        }
                    ),
                ));
            }
        };
        #[cfg(not(feature = "sqlite"))]
        let _ = lock_path;
        Ok(Self {
            conn,
            url: redact(url),
            held: Held::None,
            #[cfg(feature = "sqlite")]
            lock_path,
        })
    }

    /// The backend's dialect.
    pub fn dialect(&self) -> Dialect {
        match self.conn {
            #[cfg(feature = "sqlite")]
            AnyConn::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            AnyConn::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            AnyConn::MySql(_) => Dialect::MySql,
        }
    }

    /// The URL it was opened with, password removed.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connection, for running your own queries (e.g. a check after `up`).
    pub fn conn(&mut self) -> DbConn<'_> {
        match &mut self.conn {
            #[cfg(feature = "sqlite")]
            AnyConn::Sqlite(c) => DbConn::Sqlite(c),
            #[cfg(feature = "postgres")]
            AnyConn::Postgres(c) => DbConn::Postgres(c),
            #[cfg(feature = "mysql")]
            AnyConn::MySql(c) => DbConn::MySql(c),
        }
    }

    /// Closes the connection cleanly (releasing any lock).
    pub async fn close(self) -> Result<(), Error> {
        dispatch!(self.conn, c => c.close().await).map_err(Error::db("closing the connection"))
    }

    // ----- the migration lock -------------------------------------------------------------

    /// Takes the migration lock for `table`, waiting at most `timeout`.
    pub(crate) async fn lock(&mut self, table: &str, timeout: Duration) -> Result<(), Error> {
        if !matches!(self.held, Held::None) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let timed_out = || Error::LockTimeout {
            waited: started.elapsed(),
        };
        self.held = match &mut self.conn {
            #[cfg(feature = "sqlite")]
            AnyConn::Sqlite(_) => match &self.lock_path {
                Some(path) => Held::File(
                    sqlite::lock_file(path, timeout)
                        .await?
                        .ok_or_else(timed_out)?,
                ),
                None => Held::None,
            },
            #[cfg(feature = "postgres")]
            AnyConn::Postgres(c) => Held::Advisory(
                postgres::lock(c, table, timeout)
                    .await?
                    .ok_or_else(timed_out)?,
            ),
            #[cfg(feature = "mysql")]
            AnyConn::MySql(c) => Held::Named(
                mysql::lock(c, table, timeout)
                    .await?
                    .ok_or_else(timed_out)?,
            ),
        };
        tracing::debug!(table, waited = ?started.elapsed(), "migration lock taken");
        Ok(())
    }

    /// Releases the migration lock, if held.
    pub(crate) async fn unlock(&mut self) -> Result<(), Error> {
        let held = std::mem::replace(&mut self.held, Held::None);
        match (held, &mut self.conn) {
            (Held::None, _) => Ok(()),
            #[cfg(feature = "sqlite")]
            (Held::File(file), _) => {
                drop(file);
                Ok(())
            }
            #[cfg(feature = "postgres")]
            (Held::Advisory(key), AnyConn::Postgres(c)) => postgres::unlock(c, key).await,
            #[cfg(feature = "mysql")]
            (Held::Named(name), AnyConn::MySql(c)) => mysql::unlock(c, &name).await,
            #[allow(unreachable_patterns)]
            _ => Ok(()),
        }
    }

    /// Sets how long one DDL statement may wait for a table lock (PostgreSQL `lock_timeout`,
    /// MySQL `lock_wait_timeout`); SQLite has none.
    pub(crate) async fn set_ddl_lock_timeout(&mut self, timeout: Duration) -> Result<(), Error> {
        match &mut self.conn {
            #[cfg(feature = "postgres")]
            AnyConn::Postgres(c) => postgres::set_lock_timeout(c, timeout).await,
            #[cfg(feature = "mysql")]
            AnyConn::MySql(c) => mysql::set_lock_timeout(c, timeout).await,
            #[allow(unreachable_patterns)]
            _ => {
                let _ = timeout;
                Ok(())
            }
        }
    }

    /// Whether an error is a lock wait that timed out (worth retrying after a pause).
    pub(crate) fn is_lock_timeout(&self, err: &sqlx::Error) -> bool {
        let Some(db) = err.as_database_error() else {
            return false;
        };
        let code = db.code();
        match self.dialect() {
            // lock_not_available
            Dialect::Postgres => code.as_deref() == Some("55P03"),
            // ER_LOCK_WAIT_TIMEOUT
            Dialect::MySql => {
                code.as_deref() == Some("HY000") && db.message().contains("Lock wait timeout")
            }
            Dialect::Sqlite => false,
        }
    }

    // ----- transactions and statements ----------------------------------------------------

    /// Starts a transaction (SQLite: `BEGIN IMMEDIATE`, taking the write lock up front).
    pub(crate) async fn begin(&mut self) -> Result<(), sqlx::Error> {
        let sql = self.begin_sql();
        self.execute(sql).await.map(drop)
    }

    /// Commits the open transaction.
    pub(crate) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        self.execute("COMMIT").await.map(drop)
    }

    /// Rolls the open transaction back; errors are logged, not returned (the connection may
    /// already have lost the transaction).
    pub(crate) async fn rollback(&mut self) {
        if let Err(e) = self.execute("ROLLBACK").await {
            tracing::warn!(error = %e, "rollback failed");
        }
    }

    /// Runs statements in one round trip, in order, stopping at the first error; the error
    /// comes with the index of the statement that failed. The statements must not contain
    /// transaction control of their own (the manager checks that first).
    pub(crate) async fn execute_batch(
        &mut self,
        statements: &[&str],
    ) -> Result<(), (usize, sqlx::Error)> {
        use futures_util::StreamExt;
        let joined = statements.join(";\n");
        let sql = AssertSqlSafe(joined.clone());
        let outcome: Result<(), (usize, sqlx::Error)> = dispatch!(&mut self.conn, c => async {
            let mut results = sqlx::raw_sql(sql).execute_many(&mut *c);
            let mut done = 0;
            while let Some(result) = results.next().await {
                match result {
                    Ok(_) => done += 1,
                    Err(e) => return Err((done.min(statements.len().saturating_sub(1)), e)),
                }
            }
            Ok(())
        }.await);
        // PostgreSQL parses the whole batch before running any of it, so a syntax error
        // fails it with nothing completed: the error's position says which statement.
        #[cfg(feature = "postgres")]
        if let Err((index, e)) = &outcome
            && let Some(pos) = postgres::error_position(e)
        {
            let failed = statement_at(statements, &joined, pos).unwrap_or(*index);
            return outcome.map_err(|(_, e)| (failed, e));
        }
        outcome
    }

    /// The statement that starts a transaction (SQLite: `BEGIN IMMEDIATE`, taking the write
    /// lock up front).
    pub(crate) fn begin_sql(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            _ => "BEGIN",
        }
    }

    /// Runs one statement (or several, for code hooks) without parameters.
    pub(crate) async fn execute(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        self.conn().execute(sql).await
    }

    // ----- the ledger ---------------------------------------------------------------------

    /// Placeholder `n` (1-based) of this dialect.
    fn ph(&self, n: usize) -> String {
        match self.dialect() {
            Dialect::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        }
    }

    /// Creates the ledger table if it does not exist.
    pub(crate) async fn ensure_ledger(&mut self, table: &str) -> Result<(), Error> {
        let ddl = match self.dialect() {
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    checksum TEXT NOT NULL,
                    applied_at TEXT NOT NULL,
                    execution_ms INTEGER NOT NULL DEFAULT 0,
                    completed BOOLEAN NOT NULL,
                    installed_rank INTEGER NOT NULL,
                    failure TEXT
                )"
            ),
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    version BIGINT PRIMARY KEY,
                    name TEXT NOT NULL,
                    checksum TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL,
                    execution_ms BIGINT NOT NULL DEFAULT 0,
                    completed BOOLEAN NOT NULL,
                    installed_rank BIGINT NOT NULL,
                    failure TEXT
                )"
            ),
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    version BIGINT PRIMARY KEY,
                    name VARCHAR(255) NOT NULL,
                    checksum CHAR(96) NOT NULL,
                    applied_at DATETIME(6) NOT NULL,
                    execution_ms BIGINT NOT NULL DEFAULT 0,
                    completed BOOLEAN NOT NULL,
                    installed_rank BIGINT NOT NULL,
                    failure TEXT
                )"
            ),
        };
        if self.ledger_exists(table).await? {
            return Ok(());
        }
        self.execute(&ddl)
            .await
            .map(drop)
            .map_err(Error::db(format!("creating the ledger table {table}")))
    }

    /// Whether a table exists in the current database/schema.
    pub(crate) async fn table_exists(&mut self, table: &str) -> Result<bool, sqlx::Error> {
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
            }
            Dialect::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
            }
            Dialect::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
            }
        };
        #[cfg(feature = "postgres")]
        if let AnyConn::Postgres(c) = &mut self.conn {
            return postgres::table_exists(c, table).await;
        }
        let table = table.to_owned();
        dispatch!(&mut self.conn, c => {
            let n: i64 = sqlx::query_scalar(sql).bind(table).fetch_one(&mut *c).await?;
            Ok(n > 0)
        })
    }

    /// Whether the ledger table exists.
    pub(crate) async fn ledger_exists(&mut self, table: &str) -> Result<bool, Error> {
        self.table_exists(table)
            .await
            .map_err(Error::db(format!("looking for the ledger table {table}")))
    }

    /// SQL for "now" as stored in `applied_at`.
    fn now_sql(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
            Dialect::Postgres => "clock_timestamp()",
            Dialect::MySql => "UTC_TIMESTAMP(6)",
        }
    }

    /// `applied_at` as microseconds since the epoch (PostgreSQL, MySQL; SQLite reads the
    /// ledger its own way).
    fn applied_at_us(&self) -> &'static str {
        match self.dialect() {
            Dialect::MySql => "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', applied_at)",
            _ => "CAST(EXTRACT(EPOCH FROM applied_at) * 1000000 AS BIGINT)",
        }
    }

    /// Every ledger row, by version; empty when the ledger does not exist yet.
    pub(crate) async fn read_ledger(&mut self, table: &str) -> Result<Vec<LedgerRow>, Error> {
        if !self.ledger_exists(table).await? {
            return Ok(Vec::new());
        }
        // Irrefutable in a SQLite-only build.
        #[cfg(feature = "sqlite")]
        #[allow(irrefutable_let_patterns)]
        if let AnyConn::Sqlite(c) = &mut self.conn {
            return sqlite::read_ledger(c, table)
                .await
                .map_err(Error::db(format!("reading the ledger table {table}")));
        }
        let applied_at = self.applied_at_us();
        let sql = format!(
            "SELECT version, name, checksum, {applied_at}, execution_ms, completed, installed_rank, failure FROM {table} ORDER BY version"
        );
        // PostgreSQL: the simple query protocol, one round trip instead of prepare + execute
        // (the statement has no parameters and runs once per command).
        let simple = self.dialect() == Dialect::Postgres;
        let rows: Result<Vec<LedgerRow>, sqlx::Error> = dispatch!(&mut self.conn, c => async {
            let rows = if simple {
                sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(&mut *c).await?
            } else {
                sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *c).await?
            };
            rows.iter()
                .map(|r| {
                    Ok(LedgerRow {
                        version: r.try_get::<i64, _>(0)? as u64,
                        name: r.try_get(1)?,
                        checksum: r.try_get(2)?,
                        applied_at: r.try_get::<Option<i64>, _>(3)?,
                        execution_ms: r.try_get::<i64, _>(4)?.max(0) as u64,
                        completed: r.try_get(5)?,
                        installed_rank: r.try_get(6)?,
                        failure: r.try_get(7)?,
                    })
                })
                .collect()
        }.await);
        rows.map_err(Error::db(format!("reading the ledger table {table}")))
    }

    /// Inserts a ledger row stamped with the database's current time.
    pub(crate) async fn insert_row(
        &mut self,
        table: &str,
        row: &LedgerRow,
    ) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(format!(
            "INSERT INTO {table} (version, name, checksum, applied_at, execution_ms, completed, installed_rank, failure) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
            self.ph(1),
            self.ph(2),
            self.ph(3),
            self.now_sql(),
            self.ph(4),
            self.ph(5),
            self.ph(6),
            self.ph(7)
        ));
        let row = row.clone();
        dispatch!(&mut self.conn, c => sqlx::query(sql)
            .bind(row.version as i64)
            .bind(row.name)
            .bind(row.checksum)
            .bind(row.execution_ms as i64)
            .bind(row.completed)
            .bind(row.installed_rank)
            .bind(row.failure)
            .execute(&mut *c)
            .await
            .map(drop))
    }

    /// The statement recording `m` as applied at rank `rank`, its execution time measured
    /// from `started` (PostgreSQL: from the start of the transaction) to when the statement
    /// runs. The values are literals, so it can travel in one batch with the migration:
    /// versions, ranks and times are numbers, names are checked when the migration is loaded,
    /// checksums are hex, and quotes are doubled regardless.
    pub(crate) fn insert_row_sql(
        &self,
        table: &str,
        m: &crate::migration::Migration,
        rank: i64,
        started: std::time::SystemTime,
    ) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let started_us = started
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or_default();
        let elapsed_ms = match self.dialect() {
            Dialect::Sqlite => format!(
                "MAX(0, CAST(ROUND((julianday('now') - julianday('{}')) * 86400000) AS INTEGER))",
                crate::report::format_rfc3339(started_us)
            ),
            Dialect::Postgres => {
                "CAST(EXTRACT(EPOCH FROM clock_timestamp() - now()) * 1000 AS BIGINT)".to_owned()
            }
            Dialect::MySql => {
                let now_us = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as i64)
                    .unwrap_or_default();
                ((now_us - started_us).max(0) / 1000).to_string()
            }
        };
        format!(
            "INSERT INTO {table} (version, name, checksum, applied_at, execution_ms, completed, installed_rank) VALUES ({}, {}, {}, {}, {elapsed_ms}, TRUE, {rank})",
            m.version,
            quote(&m.name),
            quote(&m.checksum),
            self.now_sql(),
        )
    }

    /// The statement deleting a ledger row.
    pub(crate) fn delete_row_sql(&self, table: &str, version: u64) -> String {
        format!("DELETE FROM {table} WHERE version = {version}")
    }

    /// Marks a row completed (or not), with its execution time and failure text.
    pub(crate) async fn update_row(
        &mut self,
        table: &str,
        version: u64,
        completed: bool,
        execution_ms: u64,
        failure: Option<String>,
    ) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(format!(
            "UPDATE {table} SET completed = {}, execution_ms = {}, failure = {} WHERE version = {}",
            self.ph(1),
            self.ph(2),
            self.ph(3),
            self.ph(4)
        ));
        dispatch!(&mut self.conn, c => sqlx::query(sql)
            .bind(completed)
            .bind(execution_ms as i64)
            .bind(failure)
            .bind(version as i64)
            .execute(&mut *c)
            .await
            .map(drop))
    }

    /// Records a new checksum (and name) for an applied migration.
    pub(crate) async fn set_checksum(
        &mut self,
        table: &str,
        version: u64,
        name: &str,
        checksum: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(format!(
            "UPDATE {table} SET checksum = {}, name = {} WHERE version = {}",
            self.ph(1),
            self.ph(2),
            self.ph(3)
        ));
        let (name, checksum) = (name.to_owned(), checksum.to_owned());
        dispatch!(&mut self.conn, c => sqlx::query(sql)
            .bind(checksum)
            .bind(name)
            .bind(version as i64)
            .execute(&mut *c)
            .await
            .map(drop))
    }

    /// Deletes a ledger row.
    pub(crate) async fn delete_row(
        &mut self,
        table: &str,
        version: u64,
    ) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE version = {}",
            self.ph(1)
        ));
        dispatch!(&mut self.conn, c => sqlx::query(sql)
            .bind(version as i64)
            .execute(&mut *c)
            .await
            .map(drop))
    }

    // ----- adopting a sqlx-cli ledger -----------------------------------------------------

    /// sqlx-cli's ledger rows, or `None` when it has none.
    pub(crate) async fn read_sqlx_ledger(&mut self) -> Result<Option<Vec<SqlxRow>>, Error> {
        let context = "reading the sqlx-cli ledger _sqlx_migrations";
        if !self
            .table_exists("_sqlx_migrations")
            .await
            .map_err(Error::db(context))?
        {
            return Ok(None);
        }
        let sql =
            "SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version";
        let rows: Result<Vec<SqlxRow>, sqlx::Error> = dispatch!(&mut self.conn, c => async {
            let rows = sqlx::query(sql).fetch_all(&mut *c).await?;
            rows.iter()
                .map(|r| {
                    Ok(SqlxRow {
                        version: r.try_get::<i64, _>(0)? as u64,
                        description: r.try_get(1)?,
                        success: r.try_get(2)?,
                        checksum: r.try_get(3)?,
                    })
                })
                .collect()
        }.await);
        rows.map(Some).map_err(Error::db(context))
    }

    /// Copies one `_sqlx_migrations` row into the ledger, keeping its `installed_on` time.
    pub(crate) async fn adopt_row(
        &mut self,
        table: &str,
        version: u64,
        name: &str,
        checksum: &str,
        installed_rank: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = AssertSqlSafe(format!(
            "INSERT INTO {table} (version, name, checksum, applied_at, execution_ms, completed, installed_rank) \
             SELECT version, {}, {}, installed_on, execution_time / 1000000, {}, {} FROM _sqlx_migrations WHERE version = {}",
            self.ph(1),
            self.ph(2),
            self.ph(3),
            self.ph(4),
            self.ph(5)
        ));
        let (name, checksum) = (name.to_owned(), checksum.to_owned());
        dispatch!(&mut self.conn, c => sqlx::query(sql)
            .bind(name)
            .bind(checksum)
            .bind(true)
            .bind(installed_rank)
            .bind(version as i64)
            .execute(&mut *c)
            .await
            .map(drop))
    }

    // ----- PostgreSQL index health --------------------------------------------------------

    /// Indexes left INVALID by an interrupted `CREATE INDEX CONCURRENTLY` (PostgreSQL only).
    pub(crate) async fn invalid_indexes(&mut self) -> Result<Vec<String>, Error> {
        match &mut self.conn {
            #[cfg(feature = "postgres")]
            AnyConn::Postgres(c) => postgres::invalid_indexes(c)
                .await
                .map_err(Error::db("looking for INVALID indexes")),
            #[allow(unreachable_patterns)]
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[cfg(feature = "postgres")]
    #[test]
    fn maps_error_positions_to_statements() {
        let statements = ["BEGIN", "CREATE TABLE ä (id INT)", "SELEC 1"];
        let joined = statements.join(";\n");
        assert_eq!(super::statement_at(&statements, &joined, 1), Some(0));
        assert_eq!(super::statement_at(&statements, &joined, 8), Some(1));
        let selec = joined.chars().count() - "SELEC 1".chars().count() + 1;
        assert_eq!(super::statement_at(&statements, &joined, selec), Some(2));
        assert_eq!(super::statement_at(&statements, &joined, 10_000), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(redact("sqlite://app.db"), "sqlite://app.db");
        assert_eq!(
            redact("mysql://root:p@ss@127.0.0.1/test"),
            "mysql://root:***@127.0.0.1/test"
        );
    }
}
