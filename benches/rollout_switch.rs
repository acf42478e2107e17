//! `cargo bench -p benches --bench rollout_switch`: the local platform's switch time and
//! rollback time.
//!
//! - **switch**: from the `route` call until the first request served by the new release
//!   (a request sent right after `route` returns, over a warm keep-alive connection).
//! - **rollback**: `Rollouts::rollback()` after a blue-green release (the old slot on
//!   standby), from the call until the first request served by the old release again. A
//!   rollback also stops the abandoned slot; that part is not in the rollback time (traffic
//!   is back before it starts) and is reported apart. Each rollback needs a fresh release,
//!   so this part is a plain loop of `ROLLBACKS` (default 30) timed runs, median reported.
//!
//! Target (issue 5): both under 1 ms.
#![allow(missing_docs, clippy::print_stdout)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use engine_ops_rollout::{BlueGreen, LocalPlatform, Platform, Rollouts, Routing, Slot};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/health/ready", get(|| async { "ready" }))
}

async fn answered_by(client: &Client<HttpConnector, Empty<Bytes>>, url: &http::Uri) -> String {
    let response = client
        .request(http::Request::get(url.clone()).body(Empty::new()).unwrap())
        .await
        .unwrap();
    let slot = response.headers()[LocalPlatform::SLOT_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    response.into_body().collect().await.unwrap();
    slot
}

fn switch(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (platform, url, client) = rt.block_on(async {
        let platform = LocalPlatform::builder()
            .app(|_version: &str| Ok(app()))
            .build()
            .await
            .unwrap();
        for slot in Slot::ALL {
            platform.deploy(slot, slot.as_str(), 1).await.unwrap();
            platform
                .wait_ready(slot, Duration::from_secs(5))
                .await
                .unwrap();
        }
        platform
            .route(Routing::All { slot: Slot::Blue })
            .await
            .unwrap();
        let url: http::Uri = format!("http://{}/", platform.front_addr())
            .parse()
            .unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http();
        (platform, url, client)
    });
    // The live slot carries over from one batch of iterations to the next.
    let live = std::cell::Cell::new(Slot::Blue);
    c.bench_function("switch: route call to first request on the new slot", |b| {
        b.to_async(&rt).iter_custom(|iterations| {
            let (platform, url, client, live) = (&platform, &url, &client, &live);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let target = live.get().other();
                    let started = Instant::now();
                    platform.route(Routing::All { slot: target }).await.unwrap();
                    let slot = answered_by(client, url).await;
                    total += started.elapsed();
                    assert_eq!(slot, target.as_str());
                    live.set(target);
                }
                total
            }
        });
    });
    rt.block_on(platform.shutdown());
}

/// Releases v2 over v1 with blue on standby, then times `rollback()`.
fn rollback() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let runs: usize = std::env::var("ROLLBACKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let platform = LocalPlatform::builder()
            .app(|_version: &str| Ok(app()))
            .build()
            .await
            .unwrap();
        let rollouts = Rollouts::new(std::sync::Arc::new(platform.clone()));
        let url: http::Uri = format!("http://{}/", platform.front_addr()).parse().unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http();
        let (mut to_first_request, mut switch_took, mut whole) = (vec![], vec![], vec![]);
        let mut version = 0;
        for _ in 0..runs {
            for _ in 0..2 {
                version += 1;
                let strategy = BlueGreen::builder()
                    .standby(Duration::from_secs(600))
                    .build()
                    .unwrap();
                let report = rollouts.start(strategy, format!("v{version}")).unwrap().await.unwrap();
                assert!(report.promoted());
            }
            let standby = platform.status().await.unwrap().live_slot().unwrap().other();
            // A client polls through the switch on a warm keep-alive connection until the
            // old release answers; the first such answer ends the rollback time.
            answered_by(&client, &url).await;
            let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Instant>();
            let poller = {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let started = started_rx.await.unwrap();
                    loop {
                        if answered_by(&client, &url).await == standby.as_str() {
                            return started.elapsed();
                        }
                    }
                })
            };
            let started = Instant::now();
            started_tx.send(started).unwrap();
            let report = rollouts.rollback().await.unwrap();
            to_first_request.push(poller.await.unwrap());
            switch_took.push(report.switch_took);
            whole.push(report.duration);
        }
        for values in [&mut to_first_request, &mut switch_took, &mut whole] {
            values.sort();
        }
        println!(
            "rollback ({runs} runs, medians): call to first request on the old release {:?}; \
             routing change {:?}; whole rollback including draining and stopping the abandoned slot {:?}",
            to_first_request[runs / 2],
            switch_took[runs / 2],
            whole[runs / 2]
        );
        platform.shutdown().await;
    });
}

criterion_group!(benches, switch);

fn main() {
    benches();
    rollback();
    Criterion::default().configure_from_args().final_summary();
}
