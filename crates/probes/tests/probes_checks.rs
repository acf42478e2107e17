//! How checks run: single flight and caching under a burst of probe requests, timeouts of
//! hanging checks, panicking checks, criticality.

mod common;

use common::{Conn, axum_server, get, ms};
use engine_ops_probes::{Check, Detail, Lifecycle, Outcome, Probe, Probes, Status};
use http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

fn ready_probes(checks: Vec<Check>) -> Probes {
    let lifecycle = Lifecycle::new();
    lifecycle.mark_started();
    checks
        .into_iter()
        .fold(Probes::builder(lifecycle), |b, c| b.check(c))
        .detail(Detail::Always)
        .build()
        .unwrap()
}

/// A check that counts its runs and takes `takes` to pass.
fn counting(name: &str, takes: Duration) -> (Check, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let check = Check::from_fn(name, move || {
        let r = r.clone();
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(takes).await;
            true
        }
    });
    (check, runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_probe_requests_runs_a_cached_check_once() {
    let (check, runs) = counting("db", ms(300));
    let probes = ready_probes(vec![check.cache_for(Duration::from_secs(60))]);
    let addr = axum_server(probes.router()).await;

    let burst = || async {
        let tasks: Vec<_> = (0..200)
            .map(|_| tokio::spawn(async move { get(addr, "/health/ready").await }))
            .collect();
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.json()["checks"]["db"][0]["status"], "pass");
        }
    };
    burst().await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "200 concurrent requests, one run"
    );
    burst().await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the result is cached for the interval"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_share_the_run_in_flight_even_without_caching() {
    let (check, runs) = counting("db", Duration::from_secs(1));
    let probes = ready_probes(vec![
        check
            .cache_for(Duration::ZERO)
            .timeout(Duration::from_secs(5)),
    ]);
    let start = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let probes = probes.clone();
            tokio::spawn(async move {
                // Arrive while the run is in flight.
                tokio::time::sleep(ms(i * 4)).await;
                probes.report(Probe::Readiness).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().status, Status::Pass);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "all answered when the run completed"
    );
    // Nothing is cached: the next request runs the check again.
    probes.report(Probe::Readiness).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_check_runs_at_most_once_per_interval() {
    let (check, runs) = counting("db", ms(10));
    let probes = ready_probes(vec![check.cache_for(Duration::from_secs(1))]);
    // A request every 50 ms for 3 s.
    for _ in 0..60 {
        probes.report(Probe::Readiness).await;
        tokio::time::sleep(ms(50)).await;
    }
    // Runs at 0 s, then when the result is 1 s old (~1.05 s, ~2.1 s).
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn checks_of_a_probe_run_concurrently() {
    let (a, _) = counting("a", ms(300));
    let (b, _) = counting("b", ms(300));
    let probes = ready_probes(vec![a, b]);
    let start = Instant::now();
    probes.report(Probe::Readiness).await;
    assert_eq!(start.elapsed(), ms(300));
}

#[tokio::test]
async fn a_hanging_check_fails_after_its_timeout() {
    let probes = ready_probes(vec![
        Check::from_fn("hangs", std::future::pending::<bool>).timeout(ms(200)),
    ]);
    let addr = axum_server(probes.router()).await;

    let start = Instant::now();
    let r = get(addr, "/health/ready").await;
    let took = start.elapsed();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json()["checks"]["hangs"][0]["output"],
        "timed out after 200ms"
    );
    assert!(took >= ms(200), "{took:?}");
    assert!(
        took < ms(200 + 250),
        "answered {took:?} after the request: timeout 200 ms"
    );
    // Meanwhile and afterwards the server answers everything else.
    assert_eq!(get(addr, "/health/live").await.status, StatusCode::OK);
}

#[tokio::test]
async fn readiness_does_not_wait_for_checks_once_draining() {
    let lifecycle = Lifecycle::new();
    lifecycle.mark_started();
    let probes = Probes::builder(lifecycle.clone())
        .check(
            Check::from_fn("hangs", std::future::pending::<bool>).timeout(Duration::from_secs(10)),
        )
        .build()
        .unwrap();
    let addr = axum_server(probes.router()).await;
    let pending = tokio::spawn(async move { get(addr, "/health/ready").await });
    tokio::time::sleep(ms(50)).await;
    lifecycle.start_draining();
    let start = Instant::now();
    assert_eq!(
        get(addr, "/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(start.elapsed() < ms(50), "{:?}", start.elapsed());
    pending.abort();
}

#[tokio::test]
async fn a_panicking_check_fails_and_the_server_keeps_serving() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let probes = ready_probes(vec![
        Check::from_fn("boom", move || {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 100 {
                    panic!("invariant broken (run {n})");
                }
                true
            }
        })
        .cache_for(Duration::ZERO),
    ]);
    let addr = axum_server(probes.router()).await;
    let mut conn = Conn::open(addr).await.unwrap();
    for i in 0..3 {
        let r = conn.get("/health/ready").await.unwrap();
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.json()["checks"]["boom"][0]["output"],
            format!("check panicked: invariant broken (run {i})")
        );
        // Same connection, other endpoint: nothing else was affected.
        assert_eq!(
            conn.get("/health/live").await.unwrap().status,
            StatusCode::OK
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn criticality_decides_between_warn_and_fail() {
    let fail = || async { Err::<(), _>("unreachable") };
    let warn_only = ready_probes(vec![
        Check::from_fn("db", || async { true }),
        Check::from_fn("search", fail).non_critical(),
    ]);
    let addr = axum_server(warn_only.router()).await;
    let r = get(addr, "/health/ready").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "warn");
    assert_eq!(r.json()["checks"]["db"][0]["status"], "pass");
    assert_eq!(r.json()["checks"]["search"][0]["status"], "warn");
    assert_eq!(r.json()["checks"]["search"][0]["output"], "unreachable");

    let failing = ready_probes(vec![
        Check::from_fn("db", fail),
        Check::from_fn("search", fail).non_critical(),
    ]);
    let addr = axum_server(failing.router()).await;
    let r = get(addr, "/health/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["status"], "fail");

    // A check may warn by itself.
    let degraded = ready_probes(vec![Check::from_fn("queue", || async {
        Outcome::warn("queue depth 120")
    })]);
    let report = degraded.report(Probe::Readiness).await;
    assert_eq!(report.status, Status::Warn);
    assert_eq!(
        report.check("queue").unwrap().output.as_deref(),
        Some("queue depth 120")
    );
}

#[tokio::test]
async fn liveness_ignores_readiness_checks() {
    // A dependency down: readiness fails, liveness does not (no restart storm).
    let probes = ready_probes(vec![Check::from_fn("db", || async { false })]);
    assert_eq!(probes.report(Probe::Readiness).await.status, Status::Fail);
    let live = probes.report(Probe::Liveness).await;
    assert_eq!(live.status, Status::Pass);
    assert!(live.checks.is_empty());
}
