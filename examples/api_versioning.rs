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

#[path = "support/optimize.rs"]
mod optimize;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use engine_ops_apiver::{ApiVersion, Usage};

async fn metrics(usage: Usage) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        usage.render_prometheus(),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port:?} is not a port number"))?,
        Err(_) => 3000,
    };
    let versioning = optimize::versioning(port)?;
    let usage = versioning.usage();

    // The versioned API: one router, every version; the layer wraps it so that it sees
    // `/api/optimize` whatever version the client named.
    let api =
        versioning.layer(Router::new().route(
            "/api/optimize",
            post(|version: ApiVersion, body| async move {
                optimize::optimize(Some(version.version), body)
            }),
        ));
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
