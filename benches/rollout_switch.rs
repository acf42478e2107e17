//! `cargo bench -p benches --bench rollout_switch`: the local platform's switch time and
//! rollback time.
//!
//! - **switch**: from the `route` call until the first request served by the new release
//!   (a request sent right after `route` returns, over a warm keep-alive connection).
//! - **rollback**: `Rollouts::rollback()` after a blue-green release, until the first
//!   request served by the old release again.
//!
//! Target (issue 5): both under 1 ms.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use engine_ops_rollout::load::SLOT_HEADER;
use engine_ops_rollout::{LocalPlatform, Platform, Routing, Slot};
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
    let slot = response.headers()[SLOT_HEADER].to_str().unwrap().to_owned();
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

criterion_group!(benches, switch);
criterion_main!(benches);
