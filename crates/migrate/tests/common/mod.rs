//! Shared test support: a fresh, empty database per test on each backend, migration fixture
//! directories, and schema dumps.
//!
//! SQLite tests use a file in a temporary directory. PostgreSQL and MariaDB tests create a
//! database of their own (`eo_<random>`) on the servers named by `ENGINE_OPS_PG_URL` and
//! `ENGINE_OPS_MYSQL_URL`, and drop it afterwards, so tests run in parallel without stepping
//! on each other. When a variable is unset the test prints a skip notice and passes (a new
//! user's `cargo test`); `.ci/run` sets both, so CI never skips them.
#![allow(dead_code, unreachable_pub, clippy::print_stderr)]

use engine_ops_migrate::{Database, DbConn, Dialect};
use sqlx::Connection;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn dialect(self) -> Dialect {
        match self {
            Self::Sqlite => Dialect::Sqlite,
            Self::Postgres => Dialect::Postgres,
            Self::MySql => Dialect::MySql,
        }
    }
}

/// A fresh database for one test.
pub struct TestDb {
    pub backend: Backend,
    /// URL of the fresh database.
    pub url: String,
    /// A scratch directory (holds the SQLite file; use it for migration fixtures too).
    pub dir: tempfile::TempDir,
    admin_url: Option<String>,
    name: String,
}

impl TestDb {
    /// Opens a new dedicated connection to the test database.
    pub async fn connect(&self) -> Database {
        Database::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{:?}: connecting to {}: {e}", self.backend, self.url))
    }

    /// A directory for migration files, created empty.
    pub fn migrations_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn dialect(&self) -> Dialect {
        self.backend.dialect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin) = self.admin_url.clone() else {
            return;
        };
        let name = self.name.clone();
        let backend = self.backend;
        // Drop the database from a separate thread: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let sql = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                let _ = admin_execute(backend, &admin, &sql).await;
            });
        })
        .join();
    }
}

async fn admin_execute(backend: Backend, admin: &str, sql: &str) -> Result<(), sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(admin).await?;
            sqlx::raw_sql(sql).execute(&mut c).await?;
            c.close().await
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(admin).await?;
            sqlx::raw_sql(sql).execute(&mut c).await?;
            c.close().await
        }
        Backend::Sqlite => Ok(()),
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "eo_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Replaces the database name (the path) of a server URL, keeping any query string.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A fresh database on `backend`, or `None` (with a skip notice) when its server URL is unset.
pub async fn fresh(backend: Backend) -> Option<TestDb> {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name();
    let (var, admin) = match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            return Some(TestDb {
                backend,
                url,
                dir,
                admin_url: None,
                name,
            });
        }
        Backend::Postgres => ("ENGINE_OPS_PG_URL", std::env::var("ENGINE_OPS_PG_URL")),
        Backend::MySql => (
            "ENGINE_OPS_MYSQL_URL",
            std::env::var("ENGINE_OPS_MYSQL_URL"),
        ),
    };
    let Ok(admin) = admin else {
        eprintln!(
            "skipped: {var} is not set, so this {backend:?} test did not run (.ci/run sets it)"
        );
        return None;
    };
    admin_execute(backend, &admin, &format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("{var}={admin}: cannot create a test database: {e}"));
    Some(TestDb {
        backend,
        url: with_database(&admin, &name),
        dir,
        admin_url: Some(admin),
        name,
    })
}

/// Runs `scenario` on a fresh database of `backend` (skipped when the server is not configured).
pub async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(db) = fresh(backend).await {
        scenario(db).await;
    }
}

/// Declares one `#[tokio::test]` per backend for an `async fn scenario(db: TestDb)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::common::run($crate::common::Backend::Sqlite, super::$scenario).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::common::run($crate::common::Backend::Postgres, super::$scenario).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    $crate::common::run($crate::common::Backend::MySql, super::$scenario).await
                }
            }
        )*
    };
}

/// Writes a file (creating parent directories).
pub fn write(dir: &Path, file: &str, contents: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), contents).unwrap();
}

/// Runs `$body` with `$c` bound to the test database's concrete sqlx connection.
macro_rules! on_conn {
    ($db:expr, $c:ident => $body:expr) => {
        match $db.conn() {
            DbConn::Sqlite($c) => $body,
            DbConn::Postgres($c) => $body,
            DbConn::MySql($c) => $body,
            _ => unreachable!("every backend is enabled in tests"),
        }
    };
}

/// Runs a scalar query returning an integer.
pub async fn scalar_i64(db: &mut Database, sql: &str) -> i64 {
    let text = sql.to_owned();
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    on_conn!(db, c => sqlx::query_scalar::<_, i64>(sql).fetch_one(c).await)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Whether a table exists.
pub async fn table_exists(db: &mut Database, table: &str) -> bool {
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
        }
        Dialect::Postgres => format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        Dialect::MySql => format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{table}'"
        ),
    };
    scalar_i64(db, &sql).await > 0
}

/// The user tables and their columns (name, type, nullability), sorted: equal dumps mean equal
/// schemas. The ledger table is left out.
pub async fn schema_dump(db: &mut Database) -> Vec<String> {
    let sql = match db.dialect() {
        Dialect::Sqlite => "SELECT m.name || '.' || p.name || ' ' || p.type || ' ' || p.\"notnull\" \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'engine_ops%' AND m.name NOT LIKE 'sqlite_%' \
             UNION ALL SELECT 'index ' || name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
            .to_owned(),
        Dialect::Postgres => "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name NOT LIKE 'engine_ops%' \
             UNION ALL SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename NOT LIKE 'engine_ops%'"
            .to_owned(),
        Dialect::MySql => "SELECT CONCAT(table_name, '.', column_name, ' ', column_type, ' ', is_nullable) \
             FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name NOT LIKE 'engine_ops%' \
             UNION ALL SELECT DISTINCT CONCAT('index ', table_name, '.', index_name) FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name NOT LIKE 'engine_ops%'"
            .to_owned(),
    };
    let sql = sqlx::AssertSqlSafe(sql);
    let mut rows: Vec<String> =
        on_conn!(db, c => sqlx::query_scalar(sql).fetch_all(c).await).unwrap();
    rows.sort();
    rows
}

/// The ledger rows as (version, name, completed), by version.
pub async fn ledger(db: &mut Database) -> Vec<(i64, String, bool)> {
    let sql = "SELECT version, name, completed FROM engine_ops_migrations ORDER BY version";
    on_conn!(db, c => sqlx::query_as(sql).fetch_all(c).await).unwrap()
}

/// A path to the `migrate` binary built for these tests.
pub fn migrate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_migrate")
}
