//! One migration: its identity (version, name, checksum), how it runs (options), and what it
//! runs (SQL scripts or Rust hooks).

use crate::backend::DbConn;
use crate::error::BoxError;
use async_trait::async_trait;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a migration sits in an expand/contract release.
///
/// An **expand** step (the default) only adds: the previous release's code keeps working
/// against the database after it ran, so it is applied *before* the deploy. A **contract**
/// step removes or changes what the previous release still uses (dropping a column, adding a
/// `NOT NULL`), so it is applied *after* the previous release is gone. Mark a SQL migration as
/// contract with a leading `-- engine-ops: contract` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Backward compatible: safe while the previous release runs.
    #[default]
    Expand,
    /// Breaks the previous release: run after the deploy.
    Contract,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Expand => "expand",
            Self::Contract => "contract",
        })
    }
}

impl std::str::FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "expand" => Ok(Self::Expand),
            "contract" => Ok(Self::Contract),
            other => Err(format!(
                "unknown phase `{other}`: use `expand` or `contract`"
            )),
        }
    }
}

/// Which way a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Applying (`up`).
    Up,
    /// Reverting (`down`).
    Down,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Up => "applying",
            Self::Down => "reverting",
        })
    }
}

/// How a migration runs.
///
/// SQL migrations set these with directives in a leading comment of the `.up.sql` file:
///
/// ```sql
/// -- engine-ops: no-transaction, contract
/// DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;
/// ```
///
/// sqlx-cli's `-- no-transaction` first line is understood too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub struct MigrationOptions {
    /// Run inside one transaction (default `true`). Turn it off for statements that cannot run
    /// in a transaction (`CREATE INDEX CONCURRENTLY`); a failure then leaves the migration
    /// recorded as failed until it is repaired.
    pub transactional: bool,
    /// Expand (default) or contract.
    pub phase: Phase,
}

impl Default for MigrationOptions {
    fn default() -> Self {
        Self {
            transactional: true,
            phase: Phase::Expand,
        }
    }
}

impl MigrationOptions {
    /// Runs the migration outside a transaction.
    pub fn no_transaction(mut self) -> Self {
        self.transactional = false;
        self
    }

    /// Marks the migration as a contract step.
    pub fn contract(mut self) -> Self {
        self.phase = Phase::Contract;
        self
    }
}

/// A migration written in Rust, registered with
/// [`MigrationManager::register_migration`](crate::MigrationManager::register_migration).
///
/// Hooks receive the runner's connection ([`DbConn`]); in a transactional migration they run
/// inside its transaction, so an error (or `validate_up` returning `false`) undoes everything
/// `up` did.
///
/// ```
/// use engine_ops_migrate::{BoxError, CodeMigration, DbConn};
///
/// struct BackfillDisplayNames;
///
/// #[async_trait::async_trait]
/// impl CodeMigration for BackfillDisplayNames {
///     async fn up(&self, db: &mut DbConn<'_>) -> Result<(), BoxError> {
///         db.execute("UPDATE users SET display_name = name WHERE display_name IS NULL").await?;
///         Ok(())
///     }
///
///     fn reversible(&self) -> bool {
///         true
///     }
///
///     async fn down(&self, db: &mut DbConn<'_>) -> Result<(), BoxError> {
///         db.execute("UPDATE users SET display_name = NULL").await?;
///         Ok(())
///     }
///
///     async fn validate_up(&self, db: &mut DbConn<'_>) -> Result<bool, BoxError> {
///         Ok(db.query_truth("SELECT COUNT(*) = 0 FROM users WHERE display_name IS NULL").await?)
///     }
/// }
/// ```
#[async_trait]
pub trait CodeMigration: Send + Sync + 'static {
    /// Applies the migration.
    async fn up(&self, db: &mut DbConn<'_>) -> Result<(), BoxError>;

    /// Whether [`down`](Self::down) is implemented. `down` of a migration that returns `false`
    /// is refused before anything runs. Default `false`.
    fn reversible(&self) -> bool {
        false
    }

    /// Reverts the migration. Only called when [`reversible`](Self::reversible) is `true`.
    async fn down(&self, _db: &mut DbConn<'_>) -> Result<(), BoxError> {
        Err("this migration has no down step".into())
    }

    /// Runs after `up`, in the same transaction: `false` (or an error) rolls the migration
    /// back and fails the run. Default: passes.
    async fn validate_up(&self, _db: &mut DbConn<'_>) -> Result<bool, BoxError> {
        Ok(true)
    }

    /// Runs after `down`, in the same transaction: `false` (or an error) rolls the revert back
    /// and fails the run. Default: passes.
    async fn validate_down(&self, _db: &mut DbConn<'_>) -> Result<bool, BoxError> {
        Ok(true)
    }

    /// How the migration runs. Default: in a transaction, expand phase.
    fn options(&self) -> MigrationOptions {
        MigrationOptions::default()
    }
}

/// The SQL scripts of a file migration, normalised (see the checksum module).
#[derive(Debug, Clone)]
pub(crate) struct SqlScripts {
    pub(crate) up: String,
    pub(crate) down: Option<String>,
    pub(crate) validate: Option<String>,
    /// sqlx-cli's checksum of the up file as it is on disk (for `adopt`).
    pub(crate) sqlx_checksum: Vec<u8>,
}

/// What a migration runs.
#[derive(Clone)]
pub(crate) enum Body {
    Sql(SqlScripts),
    Code(Arc<dyn CodeMigration>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sql(s) => f.debug_tuple("Sql").field(s).finish(),
            Self::Code(_) => f.write_str("Code(..)"),
        }
    }
}

/// One migration of a [`MigrationManager`](crate::MigrationManager).
#[derive(Debug, Clone)]
pub struct Migration {
    pub(crate) version: u64,
    pub(crate) name: String,
    pub(crate) checksum: String,
    pub(crate) options: MigrationOptions,
    /// The `.up.sql` file (or the embedded file name); `None` for code migrations.
    pub(crate) path: Option<PathBuf>,
    pub(crate) body: Body,
}

impl Migration {
    /// The version (the file name's number prefix).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The name (the file name between the version and `.up.sql`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex SHA-384 of the normalised up script (for a code migration, of its version and name).
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// How it runs.
    pub fn options(&self) -> MigrationOptions {
        self.options
    }

    /// Whether it has a down step.
    pub fn is_reversible(&self) -> bool {
        match &self.body {
            Body::Sql(s) => s.down.is_some(),
            Body::Code(c) => c.reversible(),
        }
    }

    /// Whether it is a Rust code migration (otherwise a SQL file).
    pub fn is_code(&self) -> bool {
        matches!(self.body, Body::Code(_))
    }

    /// Where it comes from: the `.up.sql` path, or `code` for a code migration.
    pub fn origin(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "code".to_owned(),
        }
    }

    /// The SQL scripts, for SQL migrations.
    pub(crate) fn sql(&self) -> Option<&SqlScripts> {
        match &self.body {
            Body::Sql(s) => Some(s),
            Body::Code(_) => None,
        }
    }
}
