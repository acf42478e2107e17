//! The demo service that the rollout examples release: one axum app composed of the other
//! crates, built for a given release version.
//!
//! - **API** (engine-ops-apiver): `GET /api/v1/jobs`, the route every old client calls.
//!   Release `v1` knows API v1 only; release `v2` adds API v2 (`/api/v2/jobs`, with the
//!   jobs' highest priority) and marks v1 deprecated (`Deprecation`, `Sunset` in 180 days),
//!   while still serving it unchanged.
//! - **Probes** (engine-ops-probes): `/health/startup`, `/health/live`, `/health/ready` with a
//!   check of the database pool; each instance becomes ready after a short warm-up, so the
//!   readiness gate has something to wait for.
//! - **Database** (engine-ops-migrate): a SQLite file in a temporary directory. Release v1
//!   needs migrations 001–002; v2 reads `jobs.priority`, added by the expand migration 003,
//!   which is applied while v1 still serves (v1 never reads the column, and its inserts get
//!   the default). Release v1 still reads the legacy `jobs.payload` column, which v2 no
//!   longer uses: the contract migration 004 drops it, once no v1 instance is left (API v1
//!   clients are served by release v2 by then).
//!
//! Release names the examples use: `v1`, `v2`, and two faulty ones for the failure paths:
//! `v2-broken` (half of its API responses are `500`) and `v2-unready` (never becomes ready).
//!
//! The examples serve each instance in-process ([`DemoService::app`]); the soak test
//! (`tests/soak.rs`) runs each as a child process that opens the same database
//! ([`DemoService::open`]) and serves with engine-ops-probes' graceful server
//! ([`DemoService::instance`] also returns the lifecycle that server drives).

// Shared by several examples through `#[path]`; each uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use engine_ops_apiver::{ApiVersion, ApiVersioning, Deprecation, NoChange};
use engine_ops_migrate::{Database, MigrationManager, Phase, UpOptions, embed_migrations};
use engine_ops_probes::checks::PoolCheck;
use engine_ops_probes::{Check, Lifecycle, Probes};
use serde_json::json;
use sqlx::SqlitePool;
use sqlx::sqlite::SqlitePoolOptions;

/// How long a new instance takes to become ready (connection warm-up, caches).
pub(crate) const WARM_UP: Duration = Duration::from_millis(150);

/// The service's database and what the releases share.
pub(crate) struct DemoService {
    /// Keeps the temporary directory (and the SQLite file in it) alive; `None` for a
    /// database opened by [`DemoService::open`], which another process owns.
    _dir: Option<tempfile::TempDir>,
    url: String,
    pool: SqlitePool,
    manager: MigrationManager,
}

impl DemoService {
    /// Creates the database and applies what release v1 needs (migrations 001–002).
    pub(crate) async fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
        let manager = MigrationManager::embedded(embed_migrations!("../schemas/migrations"))?;
        let mut db = Database::connect(&url).await?;
        manager.up(&mut db, &UpOptions::default().target(2)).await?;
        let pool = SqlitePool::connect(&url).await?;
        sqlx::query("INSERT INTO jobs (name, payload, created_at) VALUES ('nightly-report', '{}', '2026-11-27'), ('reindex', '{}', '2026-11-27')")
            .execute(&pool)
            .await?;
        Ok(Self {
            _dir: Some(dir),
            url,
            pool,
            manager,
        })
    }

    /// Opens the database that [`DemoService::new`] created in another process (given its
    /// [`url`](Self::url)), without migrating anything: what a child-process instance does.
    pub(crate) async fn open(url: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let manager = MigrationManager::embedded(embed_migrations!("../schemas/migrations"))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await?;
        Ok(Self {
            _dir: None,
            url: url.to_owned(),
            pool,
            manager,
        })
    }

    /// The database URL (`sqlite:///tmp/…/jobs.db`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The migrations of the service (`schemas/migrations`, embedded).
    pub(crate) fn manager(&self) -> &MigrationManager {
        &self.manager
    }

    /// The expand step of release v2: applies the pending migrations up to the first
    /// contract step, refusing anything that would break v1 (the lint). Returns the
    /// versions applied.
    pub(crate) async fn expand(&self) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
        let mut db = Database::connect(&self.url).await?;
        let report = self
            .manager
            .up(&mut db, &UpOptions::default().phase(Phase::Expand))
            .await?;
        Ok(report.applied.iter().map(|m| m.version).collect())
    }

    /// The contract step of release v2, once no v1 instance is left: applies the pending
    /// contract migrations (and any expand step after them). Returns the versions applied.
    pub(crate) async fn contract(&self) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
        let mut db = Database::connect(&self.url).await?;
        let report = self
            .manager
            .up(&mut db, &UpOptions::default().phase(Phase::Contract))
            .await?;
        Ok(report.applied.iter().map(|m| m.version).collect())
    }

    /// Whether `jobs.priority` exists (the expand step's effect).
    pub(crate) async fn has_priority_column(&self) -> Result<bool, sqlx::Error> {
        self.has_column("jobs", "priority").await
    }

    /// Whether `table` has a column named `column`.
    pub(crate) async fn has_column(&self, table: &str, column: &str) -> Result<bool, sqlx::Error> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?")
                .bind(table)
                .bind(column)
                .fetch_one(&self.pool)
                .await?;
        Ok(count == 1)
    }

    /// Builds the app of one release: what the local platform's factory calls for each
    /// instance.
    pub(crate) fn app(&self, release: &str) -> Result<Router, String> {
        self.instance(release).map(|(app, _lifecycle)| app)
    }

    /// Builds the app of one release and returns it with its lifecycle, which becomes
    /// ready after [`WARM_UP`] (never for `v2-unready`); a graceful server
    /// (`engine_ops_probes::serve`) moves it to draining on shutdown.
    pub(crate) fn instance(&self, release: &str) -> Result<(Router, Lifecycle), String> {
        let faults = match release {
            "v1" | "v2" => Faults::None,
            "v2-broken" => Faults::HalfErrors(Arc::new(AtomicU64::new(0))),
            "v2-unready" => Faults::NeverReady,
            other => {
                return Err(format!(
                    "unknown release `{other}`: the demo service has v1, v2, v2-broken and v2-unready"
                ));
            }
        };
        let v2 = release.starts_with("v2");
        let lifecycle = Lifecycle::new();
        let probes = Probes::builder(lifecycle.clone())
            .check(Check::new("sqlite", PoolCheck::new(self.pool.clone())))
            .build()
            .map_err(|e| e.to_string())?;
        if !matches!(faults, Faults::NeverReady) {
            let lifecycle = lifecycle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(WARM_UP).await;
                lifecycle.mark_started();
            });
        }

        let mut versioning = ApiVersioning::builder().strip_version_from_path(true);
        versioning = if v2 {
            let sunset = SystemTime::now() + Duration::from_secs(180 * 86_400);
            versioning
                .versions(["v1", "v2"])
                .change("v1", "v2", NoChange)
                .deprecate("v1", Deprecation::since(SystemTime::now()).sunset(sunset))
        } else {
            versioning.versions(["v1"])
        };
        let versioning = versioning.build().map_err(|e| e.to_string())?;
        let state = AppState {
            release: release.to_owned(),
            pool: self.pool.clone(),
            faults,
            reads_payload: release == "v1",
        };
        let api = versioning.layer(
            Router::new()
                .route("/api/jobs", get(jobs))
                .with_state(state),
        );
        Ok((
            Router::new().merge(probes.router()).fallback_service(api),
            lifecycle,
        ))
    }
}

#[derive(Clone)]
enum Faults {
    None,
    HalfErrors(Arc<AtomicU64>),
    NeverReady,
}

#[derive(Clone)]
struct AppState {
    release: String,
    pool: SqlitePool,
    faults: Faults,
    /// Release v1 counts its jobs by their legacy `payload` (dropped by migration 004).
    reads_payload: bool,
}

/// `GET /api/{v1,v2}/jobs`: the job count; API v2 adds the highest priority (which needs
/// the expand migration). Release v1's code counts the jobs by their legacy `payload`, so it
/// breaks once the contract migration has dropped it; release v2 serves API v1 without it.
async fn jobs(State(state): State<AppState>, version: ApiVersion) -> Response {
    if let Faults::HalfErrors(counter) = &state.faults
        && counter.fetch_add(1, Ordering::Relaxed) % 2 == 0
    {
        return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
    }
    let result = if version.version.major() == 2 {
        sqlx::query_as::<_, (i64, i64)>("SELECT COUNT(*), COALESCE(MAX(priority), 0) FROM jobs")
            .fetch_one(&state.pool)
            .await
            .map(|(count, top)| json!({ "release": state.release, "jobs": count, "top_priority": top }))
    } else {
        let count = if state.reads_payload {
            "SELECT COUNT(payload) FROM jobs"
        } else {
            "SELECT COUNT(*) FROM jobs"
        };
        sqlx::query_scalar::<_, i64>(count)
            .fetch_one(&state.pool)
            .await
            .map(|count| json!({ "release": state.release, "jobs": count }))
    };
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
