//! [`PoolCheck`]: is a sqlx pool able to hand out a working connection?

use crate::check::{HealthCheck, Outcome};
use sqlx::{ConnectOptions, Connection, Database, Pool};
use std::fmt;

/// Acquires a connection from a sqlx [`Pool`] and pings it (PostgreSQL: an empty query;
/// MySQL/MariaDB: `COM_PING`; SQLite: a round trip to the connection's worker).
///
/// Works with every sqlx database: enable the backend in your own `sqlx` dependency.
/// The pool's `acquire_timeout` is cut short by the check's timeout. When the pool holds no
/// connection at all, the check first connects directly with the pool's options, so that a
/// failure says why (`connection refused`, `password authentication failed`) rather than
/// only that the pool timed out.
///
/// Worth knowing: when the application holds every connection of the pool, the check
/// waits for one like any query would, and times out if none frees up in time: readiness
/// then fails, which sheds load from a saturated instance. If that is not what you want,
/// give the check a longer timeout or make it [non-critical](crate::Check::non_critical).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use engine_ops_probes::{Check, Lifecycle, Probes, checks::PoolCheck};
///
/// let pool = sqlx::SqlitePool::connect("sqlite://app.db").await?;
/// let probes = Probes::builder(Lifecycle::new())
///     .check(Check::new("sqlite", PoolCheck::new(pool)))
///     .build()?;
/// # let _ = probes;
/// # Ok(())
/// # }
/// ```
pub struct PoolCheck<DB: Database> {
    pool: Pool<DB>,
}

impl<DB: Database> PoolCheck<DB> {
    /// A check of `pool` (a clone of the pool: they share connections).
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

impl<DB: Database> Clone for PoolCheck<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Database> fmt::Debug for PoolCheck<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolCheck")
            .field("database", &DB::NAME)
            .field("size", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .finish()
    }
}

#[async_trait::async_trait]
impl<DB: Database> HealthCheck for PoolCheck<DB> {
    async fn check(&self) -> Outcome {
        if self.pool.is_closed() {
            return Outcome::fail(format!("the {} pool is closed", DB::NAME));
        }
        if self.pool.size() == 0 {
            // An empty pool (lazy, or every connection failed): `acquire` would retry until
            // its timeout and say only "timed out". Connect once directly to learn why.
            match self.pool.connect_options().connect().await {
                Ok(conn) => {
                    let _ = conn.close().await;
                }
                Err(e) => return Outcome::fail(format!("cannot connect to {}: {e}", DB::NAME)),
            }
        }
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                return Outcome::fail(format!(
                    "cannot get a {} connection from the pool: {e}",
                    DB::NAME
                ));
            }
        };
        match conn.ping().await {
            Ok(()) => Outcome::Pass,
            Err(e) => Outcome::fail(format!("{} ping failed: {e}", DB::NAME)),
        }
    }
}
