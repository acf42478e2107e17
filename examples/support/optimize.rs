//! The `api_versioning` example's service: one `optimize` handler (API v2's format), the
//! v1 → v2 version change, and the versioning configuration (v0 sunset, v1 deprecated, v2
//! current). Shared by `examples/api_versioning.rs` and `benches/api_load.rs` (through
//! `#[path]`: an example is a binary, so it cannot be imported), so that the bench measures
//! exactly what the example serves.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine_ops_apiver::{
    ApiVersioning, ApiVersioningLayer, Deprecation, NoChange, RequestContext, ResponseContext,
    TransformError, Version, VersionChange,
};
use serde_json::{Value, json};

/// v1 -> v2: v2 requests carry `version` and `metadata`; v2 responses add them too.
pub(crate) struct AddVersionAndMetadata;

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

/// The v2 handler's work: orders tasks by priority (highest first) and gives each a start
/// time. `requested` is the version the client asked for (`None` when no versioning layer
/// runs in front, as in the bench's bare router).
pub(crate) fn optimize(
    requested: Option<Version>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
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
            "requested_version": requested,
            "client": request["metadata"].clone(),
        },
    }))
    .into_response()
}

/// Midnight UTC, `days` from today.
pub(crate) fn midnight_in(days: i64) -> SystemTime {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400 * 86_400);
    let secs = today.saturating_add_signed(days * 86_400);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The example's versioning: v0 sunset 30 days ago (410), v1 deprecated with a sunset in
/// 180 days and a successor link on `port`, v2 current; detection from the path (stripped),
/// the `X-API-Version` header and the `api_version` query; supported versions advertised.
pub(crate) fn versioning(port: u16) -> Result<ApiVersioningLayer, engine_ops_apiver::Error> {
    ApiVersioning::builder()
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
        .build()
}
