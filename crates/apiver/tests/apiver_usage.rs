//! Usage counters (issue 3): per-version counts under concurrent load over HTTP and in
//! process, requests that got the default, rejections, and the Prometheus rendering.

mod common;

use common::{Harness, Req, TRANSPORTS, Transport};
use engine_ops_apiver::{ApiVersioning, Version, VersionUsage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_under_concurrent_load() {
    let h = std::sync::Arc::new(
        Harness::with(ApiVersioning::builder().versions(["v1", "v2", "v2.1"])).await,
    );
    let usage = h.layer.usage();
    let mut tasks = Vec::new();
    for i in 0..120 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let t = if i % 2 == 0 {
                Transport::Oneshot
            } else {
                Transport::Http
            };
            let req = match i % 4 {
                0 => Req::get("/api/v1/info"),
                1 => Req::get("/api/info").header("X-API-Version", "2.1"),
                2 => Req::get("/api/info"),
                _ => Req::get("/api/info?api_version=v9"),
            };
            h.send(t, &req).await.status.as_u16()
        }));
    }
    for task in tasks {
        let status = task.await.unwrap();
        assert!(status == 200 || status == 400, "{status}");
    }
    assert_eq!(usage.requests(Version::new(1, 0)), Some(30));
    assert_eq!(usage.requests(Version::new(2, 0)), Some(0));
    assert_eq!(usage.requests(Version::new(2, 1)), Some(60));
    assert_eq!(usage.defaulted(Version::new(2, 1)), Some(30));
    assert_eq!(usage.defaulted(Version::new(1, 0)), Some(0));
    assert_eq!(usage.rejected(), 30);
    assert_eq!(usage.requests(Version::new(3, 0)), None);
    assert_eq!(
        usage.snapshot()[0],
        h.layer.usage().snapshot()[0],
        "every handle reads the same counters"
    );
    let VersionUsage {
        version,
        requests,
        defaulted,
        ..
    } = usage.snapshot()[2];
    assert_eq!((version, requests, defaulted), (Version::new(2, 1), 60, 30));
}

#[tokio::test]
async fn prometheus_text() {
    let h = Harness::with(ApiVersioning::builder().versions(["v1", "v2"])).await;
    for t in TRANSPORTS {
        h.send(t, &Req::get("/api/v1/info")).await;
        h.send(t, &Req::get("/api/info")).await;
        h.send(t, &Req::get("/api/info").header("X-API-Version", "v-1"))
            .await;
    }
    assert_eq!(
        h.layer.usage().render_prometheus(),
        "\
# HELP api_version_requests_total Requests per API version, including those answered 410 Gone.
# TYPE api_version_requests_total counter
api_version_requests_total{version=\"v1\"} 2
api_version_requests_total{version=\"v2\"} 2
# HELP api_version_default_requests_total Requests that named no version and were served the default.
# TYPE api_version_default_requests_total counter
api_version_default_requests_total{version=\"v1\"} 0
api_version_default_requests_total{version=\"v2\"} 2
# HELP api_version_rejected_requests_total Requests rejected for a malformed, ambiguous, unknown or missing version.
# TYPE api_version_rejected_requests_total counter
api_version_rejected_requests_total 2
"
    );
}
