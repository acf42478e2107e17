//! The `ApiVersion` extractor and `Router::layer` placement (issue 3): the extractor reads the
//! detected version, `Option<ApiVersion>` is `None` without the layer, and plain
//! `ApiVersion` without the layer answers a 500 problem.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{Harness, Req, TRANSPORTS};
use engine_ops_apiver::{ApiVersion, ApiVersioning, Source, VersionSource};
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn hello(version: ApiVersion) -> String {
    format!("{} from {}", version.version, version.source)
}

async fn maybe(version: Option<ApiVersion>) -> String {
    version.map_or("none".to_owned(), |v| v.version.to_string())
}

#[tokio::test]
async fn extractor_inside_the_router() {
    // `Router::layer`: the layer runs after routing, so it reads headers and the query, and
    // the route carries the version segment itself.
    let layer = ApiVersioning::builder()
        .versions([1, 2])
        .detect([Source::path(), Source::header("X-API-Version")])
        .build()
        .unwrap();
    let router = Router::new()
        .route("/hello", get(hello))
        .route("/{version}/hello", get(hello))
        .layer(layer.clone());
    let h = Harness::inside(layer, router).await;
    for t in TRANSPORTS {
        let reply = h
            .send(t, &Req::get("/hello").header("X-API-Version", "1"))
            .await;
        assert_eq!(reply.body, "v1 from header");
        let reply = h.send(t, &Req::get("/v2/hello")).await;
        assert_eq!(reply.body, "v2 from path");
        let reply = h.send(t, &Req::get("/hello")).await;
        assert_eq!(reply.body, "v2 from default");
        h.send(t, &Req::get("/hello").header("X-API-Version", "3"))
            .await
            .problem(400);
    }
    assert_eq!(
        h.layer.usage().requests(1),
        Some(2),
        "counted once per request"
    );
}

#[tokio::test]
async fn extractor_without_the_layer() {
    let router = Router::new()
        .route("/hello", get(hello))
        .route("/maybe", get(maybe));
    let response = router
        .clone()
        .oneshot(Request::get("/hello").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("install the ApiVersioningLayer")
    );
    let response = router
        .oneshot(Request::get("/maybe").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "none");
    assert_eq!(
        ApiVersion::new(engine_ops_apiver::Version::new(1, 0), VersionSource::Header).source,
        VersionSource::Header
    );
}
