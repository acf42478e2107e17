//! One instance of the demo service as a child process, for the soak test: the test binary
//! re-executes itself (`current_exe()`, running only its ignored entry test) with
//! [`INSTANCE_ENV`] set, so that the local platform runs real processes that stop on
//! `SIGTERM` the way a deployed service does, and no other build target is needed.
//!
//! The child opens the soak's SQLite database (`SOAK_DATABASE_URL`), builds the app of
//! release `SOAK_RELEASE` with [`DemoService::instance`], and serves it on `127.0.0.1:$PORT`
//! with engine-ops-probes' graceful server: on `SIGTERM` readiness fails at once, requests
//! are still served for [`DRAIN_DELAY`] (with `Connection: close`), then the listener closes,
//! in-flight requests finish, and the process exits 0.

use std::net::SocketAddr;
use std::time::Duration;

use engine_ops_probes::{Shutdown, serve};

use crate::demo_service::DemoService;

/// Set to `1` in the environment of a child instance.
pub(crate) const INSTANCE_ENV: &str = "ENGINE_OPS_SOAK_INSTANCE";
/// The database the child opens.
pub(crate) const DATABASE_URL_ENV: &str = "SOAK_DATABASE_URL";
/// The release the child serves (`v1`, `v2`, `v2-broken`).
pub(crate) const RELEASE_ENV: &str = "SOAK_RELEASE";

/// How long a child keeps serving after `SIGTERM` with readiness failing: long enough for
/// the soak's watcher to see it, short enough to keep the test quick. (A real service uses
/// the time its load balancers take to notice, 15 s by default.)
pub(crate) const DRAIN_DELAY: Duration = Duration::from_millis(400);
/// When a child ends what remains, counted from `SIGTERM`.
const DEADLINE: Duration = Duration::from_secs(5);

/// Serves when the environment asks for a child instance, then exits; returns at once
/// otherwise.
pub(crate) fn run_if_child() {
    if std::env::var_os(INSTANCE_ENV).is_none_or(|v| v != "1") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(serve_instance()) {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("soak instance: {error}");
            std::process::exit(1)
        }
    }
}

async fn serve_instance() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let port: u16 = var("PORT")?.parse()?;
    let (url, release) = (var(DATABASE_URL_ENV)?, var(RELEASE_ENV)?);
    // Signals first: a SIGTERM during start-up must not kill the process half-way.
    let shutdown = Shutdown::with_signals()?;
    let demo = DemoService::open(&url).await?;
    let (app, lifecycle) = demo.instance(&release)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let report = serve(listener, app, lifecycle, shutdown.watcher())
        .drain_delay(DRAIN_DELAY)
        .deadline(DEADLINE)
        .await?;
    if report.aborted_requests > 0 {
        return Err(format!(
            "the deadline cut {} request(s) short",
            report.aborted_requests
        )
        .into());
    }
    Ok(())
}
