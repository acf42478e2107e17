//! `cargo run --example api_versioning`: one `optimize` handler serving three API versions.
//!
//! - **v2** is the handler's own format: it takes `{"type", "tasks", "version", "metadata"}`
//!   and answers `{"result", "version": "2.0", "metadata"}`.
//! - **v1** takes `{"type": "scheduling", "tasks": [...]}` and answers `{"result": ...}`; a
//!   version change upgrades its requests and downgrades its responses, and its responses
//!   carry `Deprecation`, `Sunset` (180 days from now), a successor `Link` and a `Warning`.
//! - **v0** is past its sunset: `410 Gone` with a problem body naming v2.
//!
//! The version comes from the path (`/api/v1/optimize`), the `X-API-Version` header or the
//! `api_version` query parameter (on `/api/optimize`); no version means v2. `/metrics` shows
//! the per-version request counts in the Prometheus text format. Listens on
//! `127.0.0.1:$PORT` (default 3000); Ctrl-C stops it cleanly.

// An example talks to its user on stdout.
#![allow(clippy::print_stdout)]

use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use engine_ops_apiver::{
    ApiVersion, ApiVersioning, Deprecation, NoChange, RequestContext, ResponseContext,
    TransformError, Usage, VersionChange,
};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// v1 -> v2: v2 requests carry `version` and `metadata`; v2 responses add them too.
struct AddVersionAndMetadata;

impl VersionChange for AddVersionAndMetadata {
    fn upgrade_request(
        &self,
        body: &mut Value,
        cx: &RequestContext<'_>,
    ) -> Result<(), TransformError> {
        if cx.path() == "/api/optimize"
            && let Some(request) = body.as_object_mut()
        {
            request.insert("version".into(), json!("2.0"));
            request.insert("metadata".into(), json!({ "upgraded_from": "v1" }));
        }
        Ok(())
    }

    fn downgrade_response(
        &self,
        body: &mut Value,
        cx: &ResponseContext<'_>,
    ) -> Result<(), TransformError> {
        if cx.path() == "/api/optimize"
            && let Some(response) = body.as_object_mut()
        {
            response.remove("version");
            response.remove("metadata");
        }
        Ok(())
    }
}

/// The v2 handler: orders tasks by priority (highest first) and gives each a start time.
async fn optimize(
    version: ApiVersion,
    body: Result<Json<Value>, JsonRejection>,
) -> impl IntoResponse {
    let bad = |detail: &str| {
        let problem = json!({ "type": "about:blank", "title": "Unprocessable Content", "status": 422, "detail": detail });
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            [(header::CONTENT_TYPE, "application/problem+json")],
            problem.to_string(),
        )
            .into_response()
    };
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return bad(&rejection.body_text()),
    };
    if request["type"] != "scheduling" {
        return bad("`type` must be \"scheduling\"");
    }
    let Some(input) = request["tasks"].as_array() else {
        return bad("`tasks` must be an array");
    };
    let mut tasks: Vec<(String, u64, i64)> = Vec::with_capacity(input.len());
    for task in input {
        match (task["id"].as_str(), task["duration"].as_u64()) {
            (Some(id), Some(duration)) => {
                tasks.push((
                    id.to_owned(),
                    duration,
                    task["priority"].as_i64().unwrap_or(0),
                ));
            }
            _ => return bad("each task needs an `id` (string) and a `duration` (integer)"),
        }
    }
    tasks.sort_by_key(|task| std::cmp::Reverse(task.2));
    let mut start = 0;
    let schedule: Vec<Value> = tasks
        .iter()
        .map(|(id, duration, _)| {
            let slot = json!({ "id": id, "start": start, "end": start + duration });
            start += duration;
            slot
        })
        .collect();
    Json(json!({
        "result": { "schedule": schedule, "makespan": start },
        "version": "2.0",
        "metadata": {
            "algorithm": "priority-first",
            "task_count": tasks.len(),
            "requested_version": version.version,
            "client": request["metadata"].clone(),
        },
    }))
    .into_response()
}

async fn metrics(usage: Usage) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        usage.render_prometheus(),
    )
}

/// Midnight UTC, `days` from today.
fn midnight_in(days: i64) -> SystemTime {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400 * 86_400);
    let secs = today.saturating_add_signed(days * 86_400);
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port:?} is not a port number"))?,
        Err(_) => 3000,
    };
    let versioning = ApiVersioning::builder()
        .versions(["v0", "v1", "v2"])
        .strip_version_from_path(true)
        // v0 has v1's format; its requests never get this far, as v0 is sunset.
        .change("v0", "v1", NoChange)
        .change("v1", "v2", AddVersionAndMetadata)
        .deprecate(
            "v0",
            Deprecation::since(midnight_in(-365)).sunset(midnight_in(-30)),
        )
        .deprecate(
            "v1",
            Deprecation::since(midnight_in(-1))
                .sunset(midnight_in(180))
                .successor_link(format!("http://127.0.0.1:{port}/api/v2/optimize")),
        )
        .advertise_versions(true)
        .build()?;
    let usage = versioning.usage();

    // The versioned API: one router, every version; the layer wraps it so that it sees
    // `/api/optimize` whatever version the client named.
    let api = versioning.layer(Router::new().route("/api/optimize", post(optimize)));
    let app = Router::new()
        .route("/metrics", get(move || metrics(usage.clone())))
        .fallback_service(api);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let v1 = r#"{"type": "scheduling", "tasks": [{"id": "a", "duration": 3, "priority": 1}, {"id": "b", "duration": 2, "priority": 5}]}"#;
    let v2 = r#"{"type": "scheduling", "tasks": [{"id": "a", "duration": 3, "priority": 1}], "version": "2.0", "metadata": {"team": "ops"}}"#;
    println!("API versioning example on {base}  (Ctrl-C to stop)\n");
    println!("  v2  {base}/api/v2/optimize   the handler's own format");
    println!("  v1  {base}/api/v1/optimize   deprecated, sunset in 180 days");
    println!("  v0  {base}/api/v0/optimize   sunset: 410 Gone");
    println!("      {base}/metrics           requests per version (Prometheus)\n");
    println!("Try:");
    println!("  curl -i {base}/api/v1/optimize -H 'content-type: application/json' -d '{v1}'");
    println!("  curl -i {base}/api/v2/optimize -H 'content-type: application/json' -d '{v2}'");
    println!(
        "  curl -i {base}/api/optimize -H 'X-API-Version: 1' -H 'content-type: application/json' -d '{v1}'"
    );
    println!(
        "  curl -i '{base}/api/optimize?api_version=2' -H 'content-type: application/json' -d '{v2}'"
    );
    println!("  curl -i {base}/api/v0/optimize -H 'content-type: application/json' -d '{v1}'");
    println!("  curl -i {base}/api/v7/optimize");
    println!("  curl {base}/metrics");

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            println!("\nCtrl-C: finishing in-flight requests, then stopping");
        })
        .await?;
    println!("stopped");
    Ok(())
}
