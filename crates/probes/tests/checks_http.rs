//! `HttpCheck` against real loopback servers: healthy, unhealthy, refused and hung.

mod common;

use axum::Router;
use axum::http::StatusCode as AxumStatus;
use axum::routing::get;
use common::{axum_server, ms};
use engine_ops_probes::checks::HttpCheck;
use engine_ops_probes::{Check, Lifecycle, Probe, Probes, Status};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio::time::Instant;

async fn readiness_with(check: HttpCheck) -> engine_ops_probes::HealthReport {
    let lifecycle = Lifecycle::new();
    lifecycle.mark_started();
    let probes = Probes::builder(lifecycle)
        .check(Check::new("dep", check).timeout(ms(500)))
        .build()
        .unwrap();
    probes.report(Probe::Readiness).await
}

#[tokio::test]
async fn passes_on_2xx_and_fails_otherwise() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let dependency = Router::new()
        .route(
            "/ok",
            get(move || {
                h.fetch_add(1, Ordering::SeqCst);
                async { "fine" }
            }),
        )
        .route(
            "/broken",
            get(|| async { (AxumStatus::INTERNAL_SERVER_ERROR, "no") }),
        )
        .route(
            "/busy",
            get(|| async { (AxumStatus::TOO_MANY_REQUESTS, "later") }),
        );
    let addr = axum_server(dependency).await;

    let ok = HttpCheck::new(&format!("http://{addr}/ok?token=secret")).unwrap();
    let report = readiness_with(ok).await;
    assert_eq!(report.status, Status::Pass, "{report:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let broken = HttpCheck::new(&format!("http://user:pw@{addr}/broken?token=secret")).unwrap();
    let report = readiness_with(broken).await;
    assert_eq!(report.status, Status::Fail);
    let output = report.check("dep").unwrap().output.clone().unwrap();
    assert_eq!(
        output,
        format!("GET http://{addr}/broken: status 500 Internal Server Error")
    );

    let busy = HttpCheck::new(&format!("http://{addr}/busy")).unwrap();
    assert_eq!(readiness_with(busy).await.status, Status::Fail);
    let busy_ok = HttpCheck::new(&format!("http://{addr}/busy"))
        .unwrap()
        .expect_status(|s| s.is_success() || s.as_u16() == 429);
    assert_eq!(readiness_with(busy_ok).await.status, Status::Pass);
}

#[tokio::test]
async fn fails_when_the_dependency_is_down_or_hangs() {
    // Nothing listens: connection refused.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let report = readiness_with(HttpCheck::new(&format!("http://{dead}/health")).unwrap()).await;
    assert_eq!(report.status, Status::Fail);
    let output = report.check("dep").unwrap().output.clone().unwrap();
    assert!(
        output.starts_with(&format!("GET http://{dead}/health: ")),
        "{output}"
    );
    assert!(output.to_lowercase().contains("refused"), "{output}");

    // Accepts and never answers: the check's timeout ends it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let start = Instant::now();
    let report = readiness_with(HttpCheck::new(&format!("http://{hung}/health")).unwrap()).await;
    assert!(start.elapsed() < ms(800), "{:?}", start.elapsed());
    assert_eq!(
        report.check("dep").unwrap().output.as_deref(),
        Some("timed out after 500ms")
    );
}
