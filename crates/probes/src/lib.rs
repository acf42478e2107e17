//! Startup, liveness and readiness probes, dependency checks and graceful shutdown for axum
//! and tower services: an orchestrator never routes to a process that is not ready, and a
//! deploy never drops a request.
//!
//! - **Probes**: `/health/startup`, `/health/live`, `/health/ready` (paths configurable) as
//!   an axum router to merge or a plain tower service; `application/health+json` bodies;
//!   `200` when passing, `503` when not.
//! - **Checks**: closures, a sqlx pool ping, an HTTP GET of a dependency; each with a
//!   timeout, a cache interval (single flight: a flood of probe requests runs a check once),
//!   a probe (startup, liveness, readiness) and a criticality (a non-critical failure warns).
//! - **Lifecycle**: `Starting → Ready → Draining → Stopped`; readiness passes only while
//!   `Ready`.
//! - **Graceful shutdown**: on `SIGTERM`/`SIGINT`, readiness fails at once, the server keeps
//!   serving for a drain delay while load balancers catch up, then stops accepting, finishes
//!   in-flight requests, and ends what remains at a deadline.
//!
//! # Quick start
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use engine_ops_probes::{Check, Lifecycle, Probes, Shutdown, serve};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let lifecycle = Lifecycle::new();
//!     let probes = Probes::builder(lifecycle.clone())
//!         .check(Check::from_fn("queue", || async { Ok::<_, std::io::Error>(()) }))
//!         .build()?;
//!     let app = Router::new()
//!         .route("/", get(|| async { "hello" }))
//!         // .layer(auth).layer(rate_limit)  -- before the merge: probes stay outside
//!         .merge(probes.router());
//!
//!     let shutdown = Shutdown::with_signals()?;
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//!     let server = tokio::spawn(
//!         serve(listener, app, lifecycle.clone(), shutdown.watcher()).into_future(),
//!     );
//!
//!     // Startup (migrations, warm-up): a signal meanwhile cancels it and readiness never
//!     // passes; otherwise the lifecycle becomes ready.
//!     lifecycle.startup(&shutdown.watcher(), async { /* migrate */ }).await?;
//!
//!     let report = server.await??;
//!     tracing::info!(?report, "stopped");
//!     Ok(())
//! }
//! ```
//!
//! # Contents
//!
//! - [`Lifecycle`], [`LifecycleState`]: the state machine the probes read;
//!   [`Lifecycle::startup`] runs startup and marks the service started.
//! - [`Probes`], [`ProbesBuilder`]: the checks and the probes; [`Probes::router`],
//!   [`ProbeService`]: serving them.
//! - [`Check`], [`HealthCheck`], [`Outcome`], [`Probe`]: checks and how they run.
//! - [`HealthReport`], [`CheckReport`], [`Status`], [`Detail`]: the response format.
//! - [`Shutdown`], [`ShutdownWatcher`]: the shutdown trigger (signals or programmatic).
//! - [`serve`], [`Serve`], [`ServePhase`], [`ShutdownReport`]: the graceful server.
//! - [`checks`]: ready-made checks (`checks::PoolCheck` with feature `sqlx`,
//!   `checks::HttpCheck` with feature `http-check`).
//! - [`Error`].
//!
//! # What each probe means
//!
//! | probe     | fails when                                          | the orchestrator then |
//! |-----------|-----------------------------------------------------|-----------------------|
//! | startup   | [`Lifecycle::mark_started`] not called yet, or a startup check fails | waits (restarts after its failure threshold) |
//! | liveness  | a liveness check fails (none by default)            | restarts the process  |
//! | readiness | not `Ready` (starting, draining), or a readiness check fails | stops routing traffic here |
//!
//! **Liveness never depends on external dependencies by default.** A check is a readiness
//! check unless you add it to liveness explicitly. When a database goes down, failing
//! readiness takes the instances out of rotation until it returns; failing liveness would
//! restart every instance at once, which cannot fix the database and turns a partial outage
//! into a full one (and a thundering herd of reconnects when it comes back).
//!
//! # Features
//!
//! | feature      | default | what it adds                                               |
//! |--------------|---------|------------------------------------------------------------|
//! | `sqlx`       |         | `checks::PoolCheck`: ping a sqlx pool (any backend)       |
//! | `http-check` |         | `checks::HttpCheck`: GET an HTTP dependency               |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod check;
pub mod checks;
mod error;
mod lifecycle;
mod registry;
mod report;
mod router;
mod serve;
mod shutdown;

pub use check::{
    Check, CheckFn, DEFAULT_CACHE_INTERVAL, DEFAULT_TIMEOUT, HealthCheck, Outcome, Probe, check_fn,
    validate_check_name,
};
pub use error::Error;
pub use lifecycle::{Lifecycle, LifecycleState};
pub use registry::{DEFAULT_PATHS, Probes, ProbesBuilder};
pub use report::{CheckReport, Detail, HEALTH_JSON, HealthReport, Status};
pub use router::{ProbeService, ResponseFuture};
pub use serve::{
    DEFAULT_DEADLINE, DEFAULT_DRAIN_DELAY, Serve, ServeFuture, ServePhase, ShutdownEnd,
    ShutdownReport, serve,
};
pub use shutdown::{CancelOnShutdown, Shutdown, ShutdownWatcher, Triggered};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
