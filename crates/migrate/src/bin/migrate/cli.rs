//! The command line, as clap types. Nothing here touches a database: `main.rs` resolves these
//! into library calls.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Database migrations that are safe during a rolling deploy.
///
/// Exit codes: 0 success, 1 a failed migration or verification, 2 bad usage or bad input.
#[derive(Debug, Parser)]
#[command(name = "migrate", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Database URL: sqlite://app.db, postgres://user@host/db, mysql://user@host/db.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub(crate) database_url: Option<String>,

    /// Directory of the SQL migrations.
    #[arg(long, default_value = "schemas/migrations", global = true)]
    pub(crate) source: PathBuf,

    /// Output format: human text, or one JSON document on stdout for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub(crate) format: Format,

    /// Ledger table name.
    #[arg(long, default_value = "engine_ops_migrations", global = true)]
    pub(crate) ledger_table: String,

    /// Seconds to wait for another runner's migration lock before giving up.
    #[arg(long, default_value_t = 300, global = true)]
    pub(crate) lock_timeout: u64,

    /// Seconds one DDL statement may wait for a table lock before it is retried
    /// (PostgreSQL lock_timeout, MySQL lock_wait_timeout).
    #[arg(long, default_value_t = 5, global = true)]
    pub(crate) ddl_lock_timeout: u64,

    /// Print warnings and errors only (progress goes to stderr otherwise).
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Phase argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PhaseArg {
    /// Before the deploy: backward-compatible steps only.
    Expand,
    /// After the deploy: the rest.
    Contract,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Apply pending migrations.
    Up(UpArgs),
    /// List migrations with their state.
    Status,
    /// Revert the newest applied migration (= down 1).
    Rollback {
        /// Show what would be reverted; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert the newest N applied migrations, or all above a version with --to.
    Down(DownArgs),
    /// Check applied migrations against the files (checksums, missing files, gaps).
    Verify,
    /// Find statements in expand migrations that break the previous release.
    Lint,
    /// Create <version>_<name>.up.sql and .down.sql in the source directory.
    New {
        /// Migration name: letters, digits, `_` and `-`.
        name: String,
    },
    /// Clear failed records and record changed checksums, after fixing the database by hand.
    Repair {
        /// Show what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Import an existing sqlx-cli ledger (_sqlx_migrations) without running anything.
    Adopt,
}

/// Arguments of `up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Apply up to and including this version only.
    #[arg(long)]
    pub(crate) target: Option<u64>,
    /// expand: steps up to the first contract step (before the deploy); contract: the rest.
    #[arg(long, value_enum)]
    pub(crate) phase: Option<PhaseArg>,
    /// Show what would be applied; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Apply pending migrations older than the newest applied one.
    #[arg(long)]
    pub(crate) allow_out_of_order: bool,
}

/// Arguments of `down`.
// The group holds N and --to only: a struct-level `#[group]` would also put --dry-run in it,
// which made `down 1 --dry-run` a usage error.
#[derive(Debug, Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("how_far").required(true).multiple(false)))]
pub(crate) struct DownArgs {
    /// How many migrations to revert.
    #[arg(group = "how_far")]
    pub(crate) count: Option<usize>,
    /// Revert every applied migration above this version (0: all).
    #[arg(long, group = "how_far")]
    pub(crate) to: Option<u64>,
    /// Show what would be reverted; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}
