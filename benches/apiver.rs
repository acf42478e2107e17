//! The cost of `engine-ops-apiver` per request, in process through `tower::ServiceExt::oneshot`:
//!
//! - `request/*`: a bare axum handler; the same behind the layer with detection (path,
//!   header and query sources, path stripping); and with detection plus a deprecated version
//!   (Deprecation, Sunset, three Links, Warning, advertised version lists, a sunset check).
//!   Target: detection + deprecation add under 1 µs per request.
//! - `transform/{1KB,64KB}/*`: an echo handler posted a JSON body at the latest version (no
//!   transform: the floor), at the previous version (request upgraded and response
//!   downgraded by one change), and, as the reference, a plain serde_json parse + serialize
//!   of the same body done twice (once per direction, as the layer does).
//!   Target: the transform's cost (v1 minus latest) at most 1.3x the reference.
//!
//! After criterion, `cargo bench` prints an interleaved summary: the contenders run in turn,
//! round after round, and the medians of the rounds are compared. On a shared machine whose
//! load drifts during a criterion run, that comparison is the one to read for the targets.
//!
//! ```sh
//! cargo bench -p benches --bench apiver
//! ROUNDS=61 cargo bench -p benches --bench apiver     # a longer interleaved summary
//! ```

// A benchmark is a binary that reports to its user; criterion's macros generate undocumented
// items.
#![allow(missing_docs, clippy::print_stdout)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use engine_ops_apiver::{
    ApiVersioning, ApiVersioningLayer, Deprecation, RequestContext, ResponseContext,
    TransformError, VersionChange,
};
use http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};
use tower::ServiceExt;

fn router() -> Router {
    Router::new()
        .route("/api/status", get(|| async { "ok" }))
        .route(
            "/api/echo",
            post(|body: Bytes| async move { ([("content-type", "application/json")], body) }),
        )
}

/// v1 -> v2 renamed the top-level `items` to `entries`.
struct RenameItems;

impl VersionChange for RenameItems {
    fn upgrade_request(
        &self,
        body: &mut Value,
        _: &RequestContext<'_>,
    ) -> Result<(), TransformError> {
        if let Some(items) = body.as_object_mut().and_then(|o| o.remove("items")) {
            body["entries"] = items;
        }
        Ok(())
    }

    fn downgrade_response(
        &self,
        body: &mut Value,
        _: &ResponseContext<'_>,
    ) -> Result<(), TransformError> {
        if let Some(entries) = body.as_object_mut().and_then(|o| o.remove("entries")) {
            body["items"] = entries;
        }
        Ok(())
    }
}

fn detection_only() -> ApiVersioningLayer {
    ApiVersioning::builder()
        .versions(["v1", "v2"])
        .strip_version_from_path(true)
        .build()
        .unwrap()
}

fn with_deprecation() -> ApiVersioningLayer {
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    ApiVersioning::builder()
        .versions(["v1", "v2"])
        .strip_version_from_path(true)
        .deprecate(
            "v1",
            Deprecation::since(now - day)
                .sunset(now + 180 * day)
                .successor_link("https://api.example.com/docs/v2")
                .deprecation_link("https://api.example.com/docs/deprecations")
                .sunset_link("https://api.example.com/docs/sunset"),
        )
        .advertise_versions(true)
        .build()
        .unwrap()
}

fn with_change() -> ApiVersioningLayer {
    ApiVersioning::builder()
        .versions(["v1", "v2"])
        .strip_version_from_path(true)
        .change("v1", "v2", RenameItems)
        .build()
        .unwrap()
}

/// A JSON object of about `size` bytes: `{"items": [{"id", "name", "price", "tags"}...]}`.
fn body_of(size: usize) -> Bytes {
    let mut items = Vec::new();
    let mut len = 12;
    let mut i = 0u64;
    while len < size {
        let item = json!({
            "id": i,
            "name": format!("item number {i}"),
            "price": 12.5 + i as f64,
            "tags": ["a", "bb", "ccc"],
            "in_stock": i.is_multiple_of(2),
        });
        len += item.to_string().len() + 1;
        items.push(item);
        i += 1;
    }
    Bytes::from(serde_json::to_vec(&json!({ "items": items })).unwrap())
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post_json(path: &str, body: &Bytes) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.clone()))
        .unwrap()
}

fn requests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("request");
    let bare = router();
    group.bench_function("bare handler", |b| {
        b.to_async(&rt).iter(|| async {
            let response = bare.clone().oneshot(get_req("/api/status")).await.unwrap();
            black_box(response.into_body().collect().await.unwrap());
        })
    });
    let detected = detection_only().layer(router());
    group.bench_function("detection", |b| {
        b.to_async(&rt).iter(|| async {
            let response = detected
                .clone()
                .oneshot(get_req("/api/v2/status"))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            black_box(response.into_body().collect().await.unwrap());
        })
    });
    let deprecated = with_deprecation().layer(router());
    group.bench_function("detection + deprecation", |b| {
        b.to_async(&rt).iter(|| async {
            let response = deprecated
                .clone()
                .oneshot(get_req("/api/v1/status"))
                .await
                .unwrap();
            assert!(response.headers().contains_key("sunset"));
            black_box(response.into_body().collect().await.unwrap());
        })
    });
    group.finish();
}

fn transforms(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let app = with_change().layer(router());
    for (label, size) in [("1KB", 1024), ("64KB", 64 * 1024)] {
        let body = body_of(size);
        let mut group = c.benchmark_group(format!("transform/{label}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(BenchmarkId::from_parameter("latest (no transform)"), |b| {
            b.to_async(&rt).iter(|| async {
                let response = app
                    .clone()
                    .oneshot(post_json("/api/v2/echo", &body))
                    .await
                    .unwrap();
                black_box(response.into_body().collect().await.unwrap());
            })
        });
        group.bench_function(
            BenchmarkId::from_parameter("v1 (upgrade + downgrade)"),
            |b| {
                b.to_async(&rt).iter(|| async {
                    let response = app
                        .clone()
                        .oneshot(post_json("/api/v1/echo", &body))
                        .await
                        .unwrap();
                    black_box(response.into_body().collect().await.unwrap());
                })
            },
        );
        group.bench_function(
            BenchmarkId::from_parameter("serde_json parse + serialize x2"),
            |b| {
                b.iter(|| {
                    for _ in 0..2 {
                        let value: Value = serde_json::from_slice(black_box(&body)).unwrap();
                        black_box(serde_json::to_vec(&value).unwrap());
                    }
                })
            },
        );
        group.finish();
    }
}

/// Runs `f` `n` times on `rt` and returns the time per run.
fn per_run<F, Fut>(rt: &tokio::runtime::Runtime, n: u32, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            f().await;
        }
    });
    start.elapsed() / n
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The contenders in turn, `rounds` times; prints the median of each and the comparisons.
fn interleaved_summary() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(31);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bare = router();
    let detected = detection_only().layer(router());
    let deprecated = with_deprecation().layer(router());
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..rounds {
        times[0].push(per_run(&rt, 2000, || async {
            let r = bare.clone().oneshot(get_req("/api/status")).await.unwrap();
            black_box(r.into_body().collect().await.unwrap());
        }));
        times[1].push(per_run(&rt, 2000, || async {
            let r = detected
                .clone()
                .oneshot(get_req("/api/v2/status"))
                .await
                .unwrap();
            black_box(r.into_body().collect().await.unwrap());
        }));
        times[2].push(per_run(&rt, 2000, || async {
            let r = deprecated
                .clone()
                .oneshot(get_req("/api/v1/status"))
                .await
                .unwrap();
            black_box(r.into_body().collect().await.unwrap());
        }));
    }
    let [bare_t, detect_t, deprecate_t] = times.map(median);
    println!("\ninterleaved summary ({rounds} rounds, medians)");
    println!("  bare handler               {bare_t:>10.2?}");
    println!(
        "  detection                  {detect_t:>10.2?}  (+{:.2?})",
        detect_t.saturating_sub(bare_t)
    );
    println!(
        "  detection + deprecation    {deprecate_t:>10.2?}  (+{:.2?}; target: under 1 µs added)",
        deprecate_t.saturating_sub(bare_t)
    );

    let app = with_change().layer(router());
    for (label, size, n) in [("1KB", 1024, 200), ("64KB", 64 * 1024, 4)] {
        let body = body_of(size);
        let mut times: [Vec<Duration>; 3] = Default::default();
        for _ in 0..rounds {
            times[0].push(per_run(&rt, n, || async {
                let r = app
                    .clone()
                    .oneshot(post_json("/api/v2/echo", &body))
                    .await
                    .unwrap();
                black_box(r.into_body().collect().await.unwrap());
            }));
            times[1].push(per_run(&rt, n, || async {
                let r = app
                    .clone()
                    .oneshot(post_json("/api/v1/echo", &body))
                    .await
                    .unwrap();
                black_box(r.into_body().collect().await.unwrap());
            }));
            times[2].push(per_run(&rt, n, || async {
                for _ in 0..2 {
                    let value: Value = serde_json::from_slice(black_box(&body)).unwrap();
                    black_box(serde_json::to_vec(&value).unwrap());
                }
            }));
        }
        let [latest, v1, reference] = times.map(median);
        let transform = v1.saturating_sub(latest);
        println!(
            "  {label:<5} latest {latest:>9.2?}  v1 {v1:>9.2?}  transform {transform:>9.2?}  \
             parse+serialize x2 {reference:>9.2?}  ratio {:.2} (target: at most 1.3)",
            transform.as_secs_f64() / reference.as_secs_f64()
        );
    }
}

criterion_group!(benches, requests, transforms);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench` (not when `cargo test --benches` runs each benchmark once).
    if std::env::args().any(|a| a == "--bench") {
        interleaved_summary();
    }
}
