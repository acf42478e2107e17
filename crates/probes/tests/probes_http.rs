//! The probe endpoints over real HTTP: status codes, bodies and headers through the
//! lifecycle, detail rules, HEAD, paths, and the plain tower service.

mod common;

use axum::Router;
use common::{Conn, Reply, axum_server, get, ms};
use engine_ops_probes::{Check, Detail, Lifecycle, Probe, Probes, Shutdown, Status, serve};
use http::StatusCode;
use tokio::net::TcpListener;

fn assert_probe_headers(r: &Reply) {
    assert_eq!(r.headers["content-type"], "application/health+json");
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[track_caller]
fn assert_probe(r: &Reply, status: StatusCode, health: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_probe_headers(r);
    assert_eq!(r.json()["status"], health, "{:?}", r.body);
}

#[tokio::test]
async fn each_probe_through_the_lifecycle() {
    let lifecycle = Lifecycle::new();
    let probes = Probes::builder(lifecycle.clone())
        .check(Check::from_fn("migrations", || async { true }).startup())
        .check(Check::from_fn("worker", || async { true }).liveness())
        .check(Check::from_fn("db", || async {
            Ok::<_, std::io::Error>(())
        }))
        .detail(Detail::Always)
        .build()
        .unwrap();
    let addr = axum_server(probes.router()).await;

    // Starting: only liveness passes; the lifecycle decides without running checks.
    let r = get(addr, "/health/startup").await;
    assert_probe(&r, StatusCode::SERVICE_UNAVAILABLE, "fail");
    assert_eq!(r.json()["output"], "starting: startup has not completed");
    assert!(r.json().get("checks").is_none());
    let r = get(addr, "/health/live").await;
    assert_probe(&r, StatusCode::OK, "pass");
    assert_eq!(r.json()["checks"]["worker"][0]["status"], "pass");
    assert!(
        r.json()["checks"].get("db").is_none(),
        "db is not a liveness check"
    );
    let r = get(addr, "/health/ready").await;
    assert_probe(&r, StatusCode::SERVICE_UNAVAILABLE, "fail");
    assert_eq!(r.json()["output"], "starting: startup has not completed");

    // Ready: everything passes, each probe with its own checks.
    assert!(lifecycle.mark_started());
    let r = get(addr, "/health/startup").await;
    assert_probe(&r, StatusCode::OK, "pass");
    assert_eq!(
        r.json()["checks"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["migrations"]
    );
    assert_probe(&get(addr, "/health/live").await, StatusCode::OK, "pass");
    let r = get(addr, "/health/ready").await;
    assert_probe(&r, StatusCode::OK, "pass");
    let db = &r.json()["checks"]["db"];
    assert!(db.is_array(), "health+json: each check is an array: {db}");
    assert_eq!(db[0]["status"], "pass");
    assert_eq!(db[0]["observedUnit"], "ms");
    assert!(db[0]["observedValue"].as_f64().unwrap() >= 0.0);
    let time = db[0]["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.len() == 24,
        "RFC 3339 UTC with ms: {time}"
    );
    assert!(db[0].get("output").is_none(), "no output when passing");
    // The report parses back into the crate's types.
    let report: engine_ops_probes::HealthReport = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(report.status, Status::Pass);
    assert_eq!(report.check("db").unwrap().status, Status::Pass);

    // Draining: readiness fails at once; startup and liveness still pass.
    assert!(lifecycle.start_draining());
    let r = get(addr, "/health/ready").await;
    assert_probe(&r, StatusCode::SERVICE_UNAVAILABLE, "fail");
    assert_eq!(r.json()["output"], "draining: the service is shutting down");
    assert_probe(&get(addr, "/health/startup").await, StatusCode::OK, "pass");
    assert_probe(&get(addr, "/health/live").await, StatusCode::OK, "pass");

    // Stopped.
    assert!(lifecycle.mark_stopped());
    let r = get(addr, "/health/ready").await;
    assert_probe(&r, StatusCode::SERVICE_UNAVAILABLE, "fail");
    assert_eq!(r.json()["output"], "stopped");
    assert_probe(&get(addr, "/health/live").await, StatusCode::OK, "pass");
}

#[tokio::test]
async fn startup_never_passes_when_shutdown_came_first() {
    let lifecycle = Lifecycle::new();
    let probes = Probes::builder(lifecycle.clone())
        .detail(Detail::Always)
        .build()
        .unwrap();
    let addr = axum_server(probes.router()).await;
    lifecycle.start_draining();
    assert!(!lifecycle.mark_started());
    let r = get(addr, "/health/startup").await;
    assert_probe(&r, StatusCode::SERVICE_UNAVAILABLE, "fail");
    assert_eq!(
        r.json()["output"],
        "startup did not complete: the service is shutting down"
    );
    assert_probe(
        &get(addr, "/health/ready").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "fail",
    );
}

fn failing_probes(detail: Detail) -> Probes {
    let lifecycle = Lifecycle::new();
    lifecycle.mark_started();
    Probes::builder(lifecycle)
        .check(Check::from_fn("db", || async {
            Err::<(), _>("password authentication failed for user app at 10.0.0.7")
        }))
        .detail(detail)
        .build()
        .unwrap()
}

#[tokio::test]
async fn detail_is_hidden_by_default() {
    let addr = axum_server(failing_probes(Detail::default()).router()).await;
    for path in [
        "/health/ready",
        "/health/ready?verbose",
        "/health/ready?verbose=true",
    ] {
        let r = get(addr, path).await;
        assert_probe(&r, StatusCode::SERVICE_UNAVAILABLE, "fail");
        assert_eq!(&r.body[..], br#"{"status":"fail"}"#, "{path}");
    }
}

#[tokio::test]
async fn verbose_shows_detail_when_allowed() {
    let addr = axum_server(failing_probes(Detail::OnRequest).router()).await;
    for path in [
        "/health/ready",
        "/health/ready?verbose=false",
        "/health/ready?verbose=0",
    ] {
        let r = get(addr, path).await;
        assert_eq!(&r.body[..], br#"{"status":"fail"}"#, "{path}");
    }
    for path in ["/health/ready?verbose", "/health/ready?x=1&verbose=1"] {
        let r = get(addr, path).await;
        assert_probe(&r, StatusCode::SERVICE_UNAVAILABLE, "fail");
        let check = &r.json()["checks"]["db"][0];
        assert_eq!(check["status"], "fail", "{path}");
        assert_eq!(
            check["output"],
            "password authentication failed for user app at 10.0.0.7"
        );
    }
}

#[tokio::test]
async fn head_and_other_methods() {
    let probes = failing_probes(Detail::Always);
    let addr = axum_server(probes.router()).await;
    let mut conn = Conn::open(addr).await.unwrap();
    let got = conn.get("/health/ready").await.unwrap();
    let head = conn.request("HEAD", "/health/ready").await.unwrap();
    assert_eq!(head.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_probe_headers(&head);
    assert!(head.body.is_empty());
    assert_eq!(
        head.headers["content-length"],
        got.body.len().to_string().as_str(),
        "HEAD announces the length of the GET body"
    );
    // The connection is still usable after HEAD (no stray body bytes).
    let live = conn.request("HEAD", "/health/live").await.unwrap();
    assert_eq!(live.status, StatusCode::OK);
    let r = conn.request("POST", "/health/live").await.unwrap();
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "GET, HEAD");
}

#[tokio::test]
async fn custom_paths_and_nesting() {
    let lifecycle = Lifecycle::new();
    let probes = Probes::builder(lifecycle)
        .path(Probe::Startup, "/startz")
        .path(Probe::Liveness, "/livez")
        .path(Probe::Readiness, "/readyz")
        .build()
        .unwrap();
    let router = Router::new()
        .merge(probes.router())
        .nest("/internal", probes.router());
    let addr = axum_server(router).await;
    assert_eq!(get(addr, "/livez").await.status, StatusCode::OK);
    assert_eq!(
        get(addr, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(addr, "/startz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(addr, "/internal/livez").await.status, StatusCode::OK);
    assert_eq!(
        get(addr, "/health/live").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn plain_tower_service_over_http() {
    // ProbeService is an ordinary tower service: serve it on its own port, no router.
    let lifecycle = Lifecycle::new();
    let probes = Probes::builder(lifecycle.clone()).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let server = serve(
        listener,
        probes.service(),
        lifecycle.clone(),
        shutdown.watcher(),
    )
    .drain_delay(ms(0))
    .deadline(ms(2000));
    let task = tokio::spawn(server.into_future());

    assert_eq!(get(addr, "/health/live").await.status, StatusCode::OK);
    assert_eq!(
        get(addr, "/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(addr, "/nope").await.status, StatusCode::NOT_FOUND);
    lifecycle.mark_started();
    let r = get(addr, "/health/ready").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], br#"{"status":"pass"}"#);

    shutdown.trigger();
    let report = task.await.unwrap().unwrap();
    assert_eq!(report.aborted_requests, 0);
}
