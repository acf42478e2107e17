//! Graceful shutdown end to end over loopback: zero failed requests under a steady load,
//! readiness turning 503 at once, in-flight requests finishing, `Connection: close` during
//! the drain, idle keep-alive connections closed, the deadline, repeated signals, and a
//! signal during startup.

// Tests report what they measured on stderr (shown with --nocapture).
#![allow(clippy::print_stderr)]

mod common;

use common::{Conn, Server, get, ms};
use engine_ops_probes::{
    Error, Lifecycle, LifecycleState, Probes, ServePhase, Shutdown, ShutdownEnd, serve,
};
use http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

fn probes() -> Probes {
    Probes::builder(Lifecycle::new()).build().unwrap()
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    closed_by_server: AtomicUsize,
}

/// A keep-alive client: sends requests back to back on one connection, reconnects when a
/// response says `Connection: close`, and stops opening connections once the load balancer
/// has taken the instance out (`lb_removed`), as a real one does after the drain delay.
async fn steady_client(addr: std::net::SocketAddr, lb_removed: Arc<AtomicBool>, tally: Arc<Tally>) {
    while !lb_removed.load(Ordering::SeqCst) {
        let mut conn = match Conn::open(addr).await {
            Ok(c) => c,
            Err(e) => panic!("connection refused while the instance was in rotation: {e}"),
        };
        loop {
            match conn.get("/work").await {
                Ok(r) if r.status == StatusCode::OK && &r.body[..] == b"ok" => {
                    tally.ok.fetch_add(1, Ordering::SeqCst);
                    if r.closes() {
                        tally.closed_by_server.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                }
                Ok(r) => panic!("unexpected response {r:?}"),
                Err(e) => {
                    eprintln!("request failed: {e}");
                    tally.failed.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
            if lb_removed.load(Ordering::SeqCst) {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_failed_requests_across_a_graceful_shutdown() {
    let drain = ms(800);
    let mut server = Server::start(probes(), drain, Duration::from_secs(10)).await;
    let addr = server.addr;
    server.lifecycle.mark_started();
    assert_eq!(get(addr, "/health/ready").await.status, StatusCode::OK);

    // Steady load on keep-alive connections, and a request that takes 2 s.
    let lb_removed = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..8)
        .map(|_| tokio::spawn(steady_client(addr, lb_removed.clone(), tally.clone())))
        .collect();
    let slow = tokio::spawn(async move {
        let mut conn = Conn::open(addr).await.unwrap();
        conn.get("/slow?ms=2000").await
    });
    common::eventually(ms(2000), "steady traffic", || {
        let t = tally.clone();
        async move { t.ok.load(Ordering::SeqCst) >= 200 }
    })
    .await;
    let ok_before = tally.ok.load(Ordering::SeqCst);
    assert_eq!(
        tally.closed_by_server.load(Ordering::SeqCst),
        0,
        "keep-alive before shutdown"
    );

    // Shutdown: readiness must turn 503 within 50 ms.
    let signal = Instant::now();
    server.shutdown.trigger();
    loop {
        let r = get(addr, "/health/ready").await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            signal.elapsed() < ms(50),
            "readiness still 200 after {:?}",
            signal.elapsed()
        );
    }
    let readiness_after = signal.elapsed();
    assert!(
        readiness_after < ms(50),
        "readiness turned 503 after {readiness_after:?}"
    );
    // Liveness keeps passing, and new connections are still served during the drain.
    let live = get(addr, "/health/live").await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(
        live.closes(),
        "responses during the drain carry Connection: close"
    );
    let fresh = get(addr, "/work").await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert!(fresh.closes());

    // Half-way through the drain, the load balancer has caught up: no new connections.
    tokio::time::sleep(drain / 2).await;
    lb_removed.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    server.reached(ServePhase::Closing, ms(3000)).await;
    assert!(
        signal.elapsed() >= drain,
        "the listener closed after the drain delay"
    );
    // The listener is closed: a new connection is refused.
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still open"
    );

    // The 2 s request completes.
    let r = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"slept 2000 ms");

    let lifecycle = server.lifecycle.clone();
    let report = server.stopped(ms(5000)).await;
    let (ok, failed) = (
        tally.ok.load(Ordering::SeqCst),
        tally.failed.load(Ordering::SeqCst),
    );
    eprintln!("ok={ok} failed={failed} report={report:?}");
    assert_eq!(failed, 0, "every accepted request got a complete response");
    assert!(ok > ok_before, "requests were served during the drain");
    assert!(
        tally.closed_by_server.load(Ordering::SeqCst) >= 8,
        "each client was told to reconnect"
    );
    assert_eq!(report.end, ShutdownEnd::Completed);
    assert_eq!(report.aborted_requests, 0);
    assert!(!report.drain_skipped);
    assert!(report.drain >= drain);
    assert!(
        report.open_at_close >= 1,
        "the slow request's connection was open"
    );
    assert!(
        report.elapsed >= ms(1900),
        "waited for the slow request: {:?}",
        report.elapsed
    );
    assert_eq!(lifecycle.state(), LifecycleState::Stopped);
}

/// Sends one request on a raw connection and reads the whole response (it has a
/// Content-Length), leaving the connection open.
async fn raw_request(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a complete response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

/// Waits (bounded) until the server closes `stream`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    let mut byte = [0u8; 1];
    match tokio::time::timeout(within, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => start.elapsed(),
        Ok(Ok(_)) => panic!("unexpected bytes from the server"),
        Err(_) => panic!("the server did not close the connection within {within:?}"),
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_close_promptly_when_the_listener_closes() {
    let mut server = Server::start(probes(), ms(300), Duration::from_secs(10)).await;
    server.lifecycle.mark_started();
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let response = raw_request(&mut idle, "/work").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(!response.to_ascii_lowercase().contains("connection: close"));

    server.shutdown.trigger();
    // During the drain the idle connection stays open (it may still send a request).
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(ms(150), idle.read(&mut byte))
            .await
            .is_err(),
        "an idle connection was closed during the drain"
    );
    server.reached(ServePhase::Closing, ms(2000)).await;
    let took = closed_within(&mut idle, ms(500)).await;
    eprintln!("idle connection closed {took:?} after the listener");
    let report = server.stopped(ms(1000)).await;
    assert_eq!(report.end, ShutdownEnd::Completed);
    assert_eq!(report.aborted_connections, 0);
}

#[tokio::test]
async fn keep_alive_requests_during_the_drain_get_connection_close() {
    let mut server = Server::start(probes(), Duration::from_secs(5), Duration::from_secs(10)).await;
    server.lifecycle.mark_started();
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    raw_request(&mut conn, "/work").await;

    server.shutdown.trigger();
    server.reached(ServePhase::Draining, ms(1000)).await;
    let response = raw_request(&mut conn, "/work").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    // The server closes the connection right after that response.
    closed_within(&mut conn, ms(500)).await;

    // A second signal skips the rest of the drain delay.
    let second = Instant::now();
    server.shutdown.trigger();
    server.reached(ServePhase::Closing, ms(1000)).await;
    assert!(second.elapsed() < ms(100), "{:?}", second.elapsed());
    let report = server.stopped(ms(2000)).await;
    assert!(report.drain_skipped);
    assert!(report.drain < Duration::from_secs(5));
    assert_eq!(report.end, ShutdownEnd::Completed);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_gets_a_short_grace() {
    let mut server = Server::start(probes(), ms(0), Duration::from_secs(10)).await;
    server.lifecycle.mark_started();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut late = TcpStream::connect(server.addr).await.unwrap();
    // Let the server accept both.
    get(server.addr, "/work").await;

    server.shutdown.trigger();
    server.reached(ServePhase::Closing, ms(1000)).await;
    // A request sent shortly after the listener closed, on a connection accepted before,
    // is still answered (and the connection closed after it).
    tokio::time::sleep(ms(100)).await;
    let response = raw_request(&mut late, "/work").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.to_ascii_lowercase().contains("connection: close"));
    // The silent one is closed after the grace (1 s), long before the deadline.
    let took = closed_within(&mut silent, ms(2000)).await;
    assert!(took >= ms(700), "closed after {took:?}");
    let report = server.stopped(ms(1000)).await;
    assert_eq!(report.end, ShutdownEnd::Completed);
}

#[tokio::test]
async fn the_deadline_ends_a_request_that_outlives_it() {
    let server = Server::start(probes(), ms(100), ms(600)).await;
    server.lifecycle.mark_started();
    let addr = server.addr;
    let hanging = tokio::spawn(async move {
        let mut conn = Conn::open(addr).await.unwrap();
        conn.get("/slow?ms=30000").await
    });
    let quick = tokio::spawn(async move {
        let mut conn = Conn::open(addr).await.unwrap();
        conn.get("/slow?ms=300").await
    });
    tokio::time::sleep(ms(50)).await;
    let signal = Instant::now();
    server.shutdown.trigger();

    let r = quick
        .await
        .unwrap()
        .expect("a request that fits in the deadline completes");
    assert_eq!(r.status, StatusCode::OK);
    let cut = hanging.await.unwrap();
    assert!(cut.is_err(), "the hanging request got a response: {cut:?}");
    let report = server.stopped(ms(2000)).await;
    let took = signal.elapsed();
    assert!(
        took >= ms(600) && took < ms(1500),
        "stopped {took:?} after the signal"
    );
    assert_eq!(report.end, ShutdownEnd::Deadline);
    assert_eq!(report.aborted_requests, 1, "{report:?}");
    assert_eq!(report.aborted_connections, 1, "{report:?}");
}

#[tokio::test]
async fn each_signal_skips_a_phase() {
    let mut server =
        Server::start(probes(), Duration::from_secs(20), Duration::from_secs(25)).await;
    server.lifecycle.mark_started();
    let addr = server.addr;
    let hanging = tokio::spawn(async move {
        let mut conn = Conn::open(addr).await.unwrap();
        conn.get("/slow?ms=30000").await
    });
    tokio::time::sleep(ms(50)).await;
    let start = Instant::now();
    server.shutdown.trigger();
    server.reached(ServePhase::Draining, ms(500)).await;
    server.shutdown.trigger(); // skips the 20 s drain
    server.reached(ServePhase::Closing, ms(500)).await;
    server.shutdown.trigger(); // ends the in-flight request now
    let report = server.stopped(ms(1000)).await;
    assert!(start.elapsed() < ms(1000));
    assert!(report.drain_skipped);
    assert_eq!(report.end, ShutdownEnd::Signal);
    assert_eq!(report.aborted_requests, 1);
    assert!(hanging.await.unwrap().is_err());
}

#[tokio::test]
async fn three_quick_signals_end_everything() {
    let server = Server::start(probes(), Duration::from_secs(20), Duration::from_secs(25)).await;
    server.lifecycle.mark_started();
    let addr = server.addr;
    let hanging = tokio::spawn(async move {
        let mut conn = Conn::open(addr).await.unwrap();
        conn.get("/slow?ms=30000").await
    });
    tokio::time::sleep(ms(50)).await;
    for _ in 0..3 {
        server.shutdown.trigger();
    }
    let report = server.stopped(ms(1000)).await;
    assert_eq!(report.end, ShutdownEnd::Signal);
    assert_eq!(report.aborted_requests, 1);
    assert!(hanging.await.unwrap().is_err());
}

#[tokio::test]
async fn a_signal_during_startup_cancels_it_and_readiness_never_passes() {
    let lifecycle = Lifecycle::new();
    let probes = Probes::builder(lifecycle.clone()).build().unwrap();
    // A long drain delay: it must be skipped, since no load balancer ever routed here.
    let server = Server::start(probes, Duration::from_secs(20), Duration::from_secs(25)).await;
    let addr = server.addr;

    let seen_ready = Arc::new(AtomicBool::new(false));
    let watch_readiness = tokio::spawn({
        let seen_ready = seen_ready.clone();
        async move {
            for _ in 0..40 {
                match Conn::open(addr).await {
                    Ok(mut c) => match c.get("/health/ready").await {
                        Ok(r) if r.status == StatusCode::OK => {
                            seen_ready.store(true, Ordering::SeqCst)
                        }
                        _ => {}
                    },
                    Err(_) => return,
                }
                tokio::time::sleep(ms(10)).await;
            }
        }
    });

    let startup_steps = Arc::new(AtomicUsize::new(0));
    let startup = {
        let steps = startup_steps.clone();
        async move {
            for _ in 0..100 {
                tokio::time::sleep(ms(20)).await; // a migration step
                steps.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let watcher = server.watcher();
    let trigger_after = async {
        tokio::time::sleep(ms(150)).await;
        server.shutdown.trigger();
    };
    let (result, ()) = tokio::join!(lifecycle.startup(&watcher, startup), trigger_after);
    assert!(
        matches!(result, Err(Error::ShutdownRequested)),
        "{result:?}"
    );
    let steps = startup_steps.load(Ordering::SeqCst);
    assert!(steps < 100, "startup was cancelled after {steps} steps");
    // Draining at once, whatever the server task is doing: readiness can never pass now.
    assert_eq!(lifecycle.state(), LifecycleState::Draining);
    assert!(!lifecycle.mark_started());

    let report = server.stopped(ms(2000)).await;
    assert!(report.drain_skipped);
    assert_eq!(report.end, ShutdownEnd::Completed);
    watch_readiness.await.unwrap();
    assert!(
        !seen_ready.load(Ordering::SeqCst),
        "readiness passed during a cancelled startup"
    );
    assert!(!lifecycle.has_started());
}

#[tokio::test]
async fn a_deadline_shorter_than_the_drain_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probes = probes();
    let shutdown = Shutdown::new();
    let r = serve(
        listener,
        probes.router::<()>(),
        probes.lifecycle().clone(),
        shutdown.watcher(),
    )
    .drain_delay(Duration::from_secs(15))
    .deadline(Duration::from_secs(10))
    .await;
    let e = r.unwrap_err();
    assert!(matches!(e, Error::InvalidShutdownTimings { .. }));
    assert!(
        e.to_string().contains("terminationGracePeriodSeconds"),
        "{e}"
    );
}

#[tokio::test]
async fn handlers_see_the_client_address() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/who",
        axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
            peer.ip().to_string()
        }),
    );
    let shutdown = Shutdown::new();
    let task = tokio::spawn(
        serve(listener, app, Lifecycle::new(), shutdown.watcher())
            .drain_delay(ms(0))
            .deadline(ms(1000))
            .into_future(),
    );
    let r = get(addr, "/who").await;
    assert_eq!(&r.body[..], b"127.0.0.1");
    shutdown.trigger();
    task.await.unwrap().unwrap();
}
