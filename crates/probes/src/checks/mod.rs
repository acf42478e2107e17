//! Ready-made checks for common dependencies.
//!
//! - `PoolCheck` (feature `sqlx`): acquires a connection from a sqlx pool and pings it;
//!   PostgreSQL, MySQL/MariaDB, SQLite, any `sqlx::Database`.
//! - `HttpCheck` (feature `http-check`): `GET`s a URL and expects a 2xx status.
//!
//! Register them like any check; they are readiness checks unless you say otherwise:
//!
//! ```no_run
//! # #[cfg(all(feature = "sqlx", feature = "http-check"))]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use engine_ops_probes::checks::{HttpCheck, PoolCheck};
//! use engine_ops_probes::{Check, Lifecycle, Probes};
//!
//! let pool = sqlx::PgPool::connect("postgres://app@db/app").await?;
//! let probes = Probes::builder(Lifecycle::new())
//!     .check(Check::new("postgres", PoolCheck::new(pool)))
//!     .check(Check::new("search", HttpCheck::new("http://search:9200/_cluster/health")?).non_critical())
//!     .build()?;
//! # let _ = probes;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "http-check")]
mod http;
#[cfg(feature = "sqlx")]
mod sqlx;

#[cfg(feature = "http-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-check")))]
pub use self::http::HttpCheck;
#[cfg(feature = "sqlx")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub use self::sqlx::PoolCheck;
