//! `cargo bench -p benches --bench probes`: `/health/ready` with five cached checks against a bare axum handler on the same path, in
//! the same run: in process (router `oneshot`, isolating the probe's own cost) and over a
//! loopback keep-alive HTTP/1.1 connection (what a prober sees). Target: at least 90% of the
//! bare handler's requests per second.
#![allow(missing_docs)]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine_ops_probes::{Check, Lifecycle, Probe, Probes};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::hint::black_box;
use std::time::Duration;
use tower::ServiceExt;

fn bare() -> Router {
    Router::new().route("/health/ready", get(|| async { r#"{"status":"pass"}"# }))
}

fn probes(rt: &tokio::runtime::Runtime) -> Router {
    let lifecycle = Lifecycle::new();
    lifecycle.mark_started();
    let probes = (0..5)
        .fold(Probes::builder(lifecycle), |b, i| {
            b.check(
                Check::from_fn(format!("check-{i}"), || async { true })
                    .cache_for(Duration::from_secs(3600)),
            )
        })
        .build()
        .unwrap();
    // Fill the caches.
    rt.block_on(probes.report(Probe::Readiness));
    probes.router()
}

async fn in_process(router: &Router) {
    let req = Request::get("/health/ready").body(Body::empty()).unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    black_box(res.into_body().collect().await.unwrap().to_bytes());
}

async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn connect(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn over_http(sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) {
    sender.ready().await.unwrap();
    let req = Request::get("/health/ready")
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    black_box(res.into_body().collect().await.unwrap().to_bytes());
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (bare, probes) = (bare(), probes(&rt));

    let mut group = c.benchmark_group("ready_in_process");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare_axum_handler", |b| {
        b.to_async(&rt).iter(|| in_process(&bare))
    });
    group.bench_function("probes_5_cached_checks", |b| {
        b.to_async(&rt).iter(|| in_process(&probes))
    });
    group.finish();

    let (bare_addr, probes_addr) = rt.block_on(async { (serve(bare).await, serve(probes).await) });
    let mut group = c.benchmark_group("ready_loopback_http");
    group.throughput(Throughput::Elements(1));
    // The order of the contenders rotates with `PROBES_BENCH_ORDER=reversed`, to expose
    // order effects (a warmer CPU, a busier machine) rather than mistake them for overhead.
    let mut contenders = [
        ("bare_axum_handler", bare_addr),
        ("probes_5_cached_checks", probes_addr),
    ];
    if std::env::var("PROBES_BENCH_ORDER").is_ok_and(|v| v == "reversed") {
        contenders.reverse();
    }
    for (name, addr) in contenders {
        let mut sender = rt.block_on(connect(addr));
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(over_http(&mut sender)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
