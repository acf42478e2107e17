//! Database migrations that are safe to run while the previous release still serves traffic.
//!
//! `engine-ops-migrate` applies plain SQL files (the layout sqlx-cli uses, so an existing sqlx
//! directory works unchanged) and Rust code migrations to SQLite, PostgreSQL and MySQL/MariaDB
//! through [sqlx], and keeps a ledger of what it applied. It is built for rolling deploys:
//!
//! - **one runner at a time**: a database-level lock makes N processes starting at once apply
//!   each migration exactly once; the others wait, then find nothing to do;
//! - **nothing half-applied**: every migration runs in its own transaction where the database
//!   has transactional DDL; elsewhere (MySQL, or a `no-transaction` migration) a failure is
//!   recorded and further runs refuse until an operator [repairs](MigrationManager::repair) it;
//! - **validated**: an optional `validate` query or hook runs after `up`; if it fails the
//!   migration is rolled back;
//! - **no silent drift**: a changed checksum, a missing file, a duplicate version or a
//!   malformed file name is an error that names the file;
//! - **expand/contract**: a [lint](MigrationManager::lint) flags statements that break the
//!   previous release's code, and [`up --phase`](UpOptions::phase) splits a release into the
//!   steps before and after the deploy.
//!
//! # Quick start
//!
//! ```no_run
//! use engine_ops_migrate::{Database, MigrationManager, UpOptions};
//!
//! # async fn run() -> Result<(), engine_ops_migrate::Error> {
//! let manager = MigrationManager::new("schemas/migrations")?;
//! let mut db = Database::connect("sqlite://app.db").await?;
//! let report = manager.up(&mut db, &UpOptions::default()).await?;
//! for step in &report.applied {
//!     println!("applied {} {} in {} ms", step.version, step.name, step.duration_ms);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Contents
//!
//! - [`MigrationManager`]: the set of migrations and every operation (`up`, `down`, `status`,
//!   `verify`, `repair`, `adopt`, `lint`).
//! - [`Database`]: a dedicated connection to the database being migrated.
//! - [`CodeMigration`]: a migration written in Rust, registered with
//!   [`MigrationManager::register_migration`].
//! - [`Migration`], [`MigrationOptions`], [`Phase`]: one migration and how it runs.
//! - the reports ([`UpReport`], [`DownReport`], [`StatusReport`], [`VerifyReport`],
//!   [`RepairReport`], [`AdoptReport`], [`LintReport`]) and [`Error`].
//! - `embed_migrations!` (feature `embed`): migrations compiled into the binary.
//!
//! # Features
//!
//! | feature    | default | what it adds                                             |
//! |------------|---------|----------------------------------------------------------|
//! | `sqlite`   | yes     | the SQLite backend (bundled SQLite)                      |
//! | `postgres` |         | the PostgreSQL backend                                   |
//! | `mysql`    |         | the MySQL / MariaDB backend                              |
//! | `embed`    |         | `embed_migrations!`                                      |
//! | `tls`      |         | TLS (rustls) for PostgreSQL and MySQL connections        |
//! | `cli`      |         | the `migrate` binary, with every backend                 |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!(
    "engine-ops-migrate needs at least one backend: enable the `sqlite`, `postgres` or `mysql` feature"
);

mod backend;
mod checksum;
mod error;
mod lint;
mod manager;
mod migration;
mod plan;
mod report;
mod source;
mod sql;

pub use backend::{Database, DbConn};
pub use error::{BoxError, Error, FailedStatement};
pub use lint::LintRule;
pub use manager::{DownTarget, MigrationManager, UpOptions};
pub use migration::{CodeMigration, Direction, Migration, MigrationOptions, Phase};
pub use report::{
    AdoptReport, AppliedStep, DownReport, HeldBack, LintFinding, LintReport, MigrationState,
    PlannedStep, Problem, RepairAction, RepairReport, RevertedStep, StatusEntry, StatusReport,
    UnknownApplied, UpReport, VerifyReport,
};
pub use source::{EmbeddedMigrations, new_migration_files};

/// Re-export of the sqlx version this crate uses, for code migrations that run typed queries.
pub use sqlx;

/// Builds a [`EmbeddedMigrations`] from a directory at compile time.
///
/// The path is relative to the `Cargo.toml` of the crate that calls the macro. Every `*.sql`
/// file of the directory is compiled into the binary with `include_str!`, so editing a file
/// rebuilds the crate; to pick up files that are *added*, put
/// `println!("cargo:rerun-if-changed=<dir>")` in a build script. File names and checksums are
/// checked by the same code as at run time ([`MigrationManager::embedded`]), so an embedded
/// migration and the same file read from disk have the same checksum.
///
/// ```
/// use engine_ops_migrate::{MigrationManager, embed_migrations};
///
/// // The path is relative to the Cargo.toml of the crate that calls the macro.
/// let manager = MigrationManager::embedded(embed_migrations!("../../schemas/migrations"))?;
/// assert!(!manager.migrations().is_empty());
/// # Ok::<(), engine_ops_migrate::Error>(())
/// ```
#[cfg(feature = "embed")]
pub use engine_ops_migrate_macros::embed_migrations;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The SQL dialect of a database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// SQLite 3.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Dialect {
    /// The dialect a database URL names (`sqlite:`, `postgres:`/`postgresql:`,
    /// `mysql:`/`mariadb:`), or `None` for any other scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    /// Whether DDL statements take part in transactions (PostgreSQL, SQLite), so that a
    /// failed migration leaves no trace.
    pub fn transactional_ddl(self) -> bool {
        !matches!(self, Self::MySql)
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::MySql => "MySQL",
        })
    }
}
