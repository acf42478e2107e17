//! Version detection (issue 3): every source, precedence, conflicts, malformed and unknown
//! versions, the default, path stripping and CORS preflight, in process and over HTTP.

mod common;

use common::{Harness, Req, TRANSPORTS};
use engine_ops_apiver::{ApiVersioning, ApiVersioningBuilder, OnConflict, Source};
use http::Method;

/// v1, v2, v3 and v10 (default v3), from path, header, query and `Accept`, path stripped.
fn builder() -> ApiVersioningBuilder {
    ApiVersioning::builder()
        .versions(["v1", "v2", "v3", "v10"])
        .default_version("v3")
        .detect([
            Source::path(),
            Source::header("X-API-Version"),
            Source::query("api_version"),
            Source::vendor_media_type("acme"),
        ])
        .strip_version_from_path(true)
}

/// Asserts that `req` reached the handler at `version` from `source`; returns what it saw.
async fn served(h: &Harness, req: &Req, version: &str, source: &str) -> serde_json::Value {
    let mut seen = None;
    for t in TRANSPORTS {
        let reply = h.send(t, req).await;
        assert_eq!(reply.status, 200, "{t:?} {req:?}: {:?}", reply.body);
        let json = reply.json();
        assert_eq!(json["version"], version, "{t:?} {req:?}");
        assert_eq!(json["source"], source, "{t:?} {req:?}");
        if let Some(previous) = &seen {
            assert_eq!(previous, &json, "both transports see the same");
        }
        seen = Some(json);
    }
    seen.unwrap()
}

/// Asserts a problem response with `status` whose detail contains `needle`.
async fn rejected(h: &Harness, req: &Req, status: u16, needle: &str) {
    for t in TRANSPORTS {
        let reply = h.send(t, req).await;
        let problem = reply.problem(status);
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{t:?} {req:?}: {detail}");
        assert_eq!(
            problem["supported_versions"],
            serde_json::json!(["v1", "v2", "v3", "v10"]),
            "{t:?} {req:?}"
        );
    }
}

#[tokio::test]
async fn each_source_alone() {
    let h = Harness::with(builder()).await;
    let json = served(&h, &Req::get("/api/v1/info"), "v1", "path").await;
    assert_eq!(json["uri"], "/api/info");
    assert_eq!(json["original"], "/api/v1/info");
    served(&h, &Req::get("/v2/info"), "v2", "path").await;
    served(
        &h,
        &Req::get("/api/info").header("X-API-Version", "v2"),
        "v2",
        "header",
    )
    .await;
    served(
        &h,
        &Req::get("/api/info").header("x-api-version", " 1 "),
        "v1",
        "header",
    )
    .await;
    let json = served(&h, &Req::get("/api/info?x=1&api_version=v1"), "v1", "query").await;
    assert_eq!(json["uri"], "/api/info?x=1&api_version=v1");
    assert_eq!(json["original"], serde_json::Value::Null);
    served(
        &h,
        &Req::get("/api/info").header("Accept", "application/vnd.acme.v2+json"),
        "v2",
        "media type",
    )
    .await;
    served(
        &h,
        &Req::get("/api/info").header("Accept", "text/html, application/json; version=1"),
        "v1",
        "media type",
    )
    .await;
}

#[tokio::test]
async fn spellings_and_numeric_versions() {
    let h = Harness::with(builder()).await;
    for spelling in ["v2", "V2", "2", "2.0", "v2.0"] {
        served(
            &h,
            &Req::get("/api/info").header("X-API-Version", spelling),
            "v2",
            "header",
        )
        .await;
    }
    served(&h, &Req::get("/api/V2/info"), "v2", "path").await;
    served(&h, &Req::get("/api/v2.0/info"), "v2", "path").await;
    // `/api/v10` is version 10, not version 1.
    let json = served(&h, &Req::get("/api/v10/info"), "v10", "path").await;
    assert_eq!(json["uri"], "/api/info");
}

#[tokio::test]
async fn not_a_version_in_the_path() {
    let h = Harness::with(builder()).await;
    // `v1beta` is a resource name, not a version: default version, path untouched.
    let json = served(&h, &Req::get("/api/v1beta/info"), "v3", "default").await;
    assert_eq!(json["uri"], "/api/v1beta/info");
    for path in [
        "/api/version/info",
        "/api/2/info",
        "/api/v/info",
        "/api/v-1/info",
    ] {
        let json = served(&h, &Req::get(path), "v3", "default").await;
        assert_eq!(json["uri"], path);
    }
}

#[tokio::test]
async fn default_version() {
    let h = Harness::with(builder()).await;
    let json = served(&h, &Req::get("/api/info"), "v3", "default").await;
    assert_eq!(json["uri"], "/api/info");
    // Without `default_version`, the latest.
    let h = Harness::with(ApiVersioning::builder().versions([1, 2])).await;
    served(&h, &Req::get("/api/info"), "v2", "default").await;
}

#[tokio::test]
async fn agreeing_sources_are_fine() {
    let h = Harness::with(builder()).await;
    let req = Req::get("/api/v2/info?api_version=2.0")
        .header("X-API-Version", "V2")
        .header("Accept", "application/vnd.acme.v2+json");
    let json = served(&h, &req, "v2", "path").await;
    assert_eq!(json["uri"], "/api/info?api_version=2.0");
}

#[tokio::test]
async fn disagreeing_sources_are_rejected() {
    let h = Harness::with(builder()).await;
    rejected(
        &h,
        &Req::get("/api/v1/info").header("X-API-Version", "v2"),
        400,
        "the path asks for API version v1 but header `x-api-version` asks for v2",
    )
    .await;
    rejected(
        &h,
        &Req::get("/api/info?api_version=1").header("X-API-Version", "v2"),
        400,
        "asks for v1",
    )
    .await;
    rejected(
        &h,
        &Req::get("/api/info")
            .header("Accept", "application/json; version=3")
            .header("X-API-Version", "1"),
        400,
        "the `Accept` media type asks for v3",
    )
    .await;
}

#[tokio::test]
async fn repeated_values_must_agree() {
    let h = Harness::with(builder()).await;
    served(
        &h,
        &Req::get("/api/info")
            .header("X-API-Version", "1")
            .header("X-API-Version", "v1.0"),
        "v1",
        "header",
    )
    .await;
    rejected(
        &h,
        &Req::get("/api/info")
            .header("X-API-Version", "1")
            .header("X-API-Version", "2"),
        400,
        "header `x-api-version` names two API versions, v1 and v2",
    )
    .await;
    rejected(
        &h,
        &Req::get("/api/info").header("X-API-Version", "1, 2"),
        400,
        "names two API versions",
    )
    .await;
    served(
        &h,
        &Req::get("/api/info?api_version=2&api_version=v2"),
        "v2",
        "query",
    )
    .await;
    rejected(
        &h,
        &Req::get("/api/info?api_version=2&api_version=3"),
        400,
        "query parameter `api_version` names two API versions, v2 and v3",
    )
    .await;
    rejected(
        &h,
        &Req::get("/api/info")
            .header("Accept", "application/vnd.acme.v1+json")
            .header("Accept", "application/vnd.acme.v2+json"),
        400,
        "names two API versions",
    )
    .await;
}

#[tokio::test]
async fn malformed_versions_are_400() {
    let h = Harness::with(builder()).await;
    let cases: [(&[u8], &str); 7] = [
        (b"", "empty"),
        (b"v", "no number"),
        (b"v-1", "not an ASCII digit"),
        (b"v1.", "ends with `.`"),
        (b"99999999999", "too large"),
        ("v\u{661}".as_bytes(), "not an ASCII digit"),
        (b"1.2.3", "more than two components"),
    ];
    for (value, why) in cases {
        rejected(
            &h,
            &Req::get("/api/info").header("X-API-Version", value),
            400,
            why,
        )
        .await;
    }
    for (query, why) in [
        ("api_version=", "empty"),
        ("api_version", "empty"),
        ("api_version=v", "no number"),
        ("api_version=v-1", "not an ASCII digit"),
        ("api_version=v1.", "ends with `.`"),
        ("api_version=99999999999", "too large"),
        ("api_version=v%D9%A1", "not an ASCII digit"),
    ] {
        rejected(&h, &Req::get(&format!("/api/info?{query}")), 400, why).await;
    }
    rejected(&h, &Req::get("/api/v1./info"), 400, "\"v1.\" in the path").await;
    rejected(&h, &Req::get("/api/v99999999999/info"), 400, "too large").await;
    rejected(
        &h,
        &Req::get("/api/info").header("Accept", "application/json; version=v-1"),
        400,
        "not an ASCII digit",
    )
    .await;
}

#[tokio::test]
async fn unknown_versions() {
    let h = Harness::with(builder()).await;
    rejected(
        &h,
        &Req::get("/api/v7/info"),
        404,
        "API version v7 (from the path) does not exist",
    )
    .await;
    rejected(&h, &Req::get("/api/v1.1/info"), 404, "v1.1").await;
    rejected(
        &h,
        &Req::get("/api/info").header("X-API-Version", "7"),
        400,
        "does not exist",
    )
    .await;
    rejected(
        &h,
        &Req::get("/api/info?api_version=0"),
        400,
        "API version v0",
    )
    .await;
    rejected(
        &h,
        &Req::get("/api/info").header("Accept", "application/vnd.acme.v4+json"),
        400,
        "does not exist",
    )
    .await;
    // Another vendor's media type is not ours to read.
    served(
        &h,
        &Req::get("/api/info").header("Accept", "application/vnd.other.v4+json"),
        "v3",
        "default",
    )
    .await;
}

#[tokio::test]
async fn precedence_instead_of_rejection() {
    let h = Harness::with(
        builder()
            .detect([
                Source::header("X-API-Version"),
                Source::query("api_version"),
                Source::path(),
            ])
            .on_conflict(OnConflict::Precedence),
    )
    .await;
    served(
        &h,
        &Req::get("/api/v2/info?api_version=3").header("X-API-Version", "1"),
        "v1",
        "header",
    )
    .await;
    let json = served(&h, &Req::get("/api/v2/info?api_version=3"), "v3", "query").await;
    // The path did not decide the version, so it is left as it is.
    assert_eq!(json["uri"], "/api/v2/info?api_version=3");
    served(&h, &Req::get("/api/v2/info"), "v2", "path").await;
    // A malformed value in a source that wins is still an error; a lower one is not read.
    rejected(
        &h,
        &Req::get("/api/v2/info").header("X-API-Version", "v-1"),
        400,
        "not an ASCII digit",
    )
    .await;
    served(
        &h,
        &Req::get("/api/info?api_version=v-1").header("X-API-Version", "2"),
        "v2",
        "header",
    )
    .await;
}

#[tokio::test]
async fn path_after_a_prefix_and_no_stripping() {
    let h = Harness::with(
        builder()
            .detect([Source::path_after("/api/")])
            .strip_version_from_path(false),
    )
    .await;
    let json = served(&h, &Req::get("/api/v1/info"), "v1", "path").await;
    assert_eq!(json["uri"], "/api/v1/info", "not stripped");
    served(&h, &Req::get("/other/v1/info"), "v3", "default").await;
    served(&h, &Req::get("/api/x/v1"), "v3", "default").await;
    // Other sources are off: the header is not read.
    served(
        &h,
        &Req::get("/api/info").header("X-API-Version", "nonsense"),
        "v3",
        "default",
    )
    .await;
}

#[tokio::test]
async fn required_version_and_cors_preflight() {
    let h = Harness::with(builder().require_version()).await;
    rejected(&h, &Req::get("/api/info"), 400, "this API needs a version").await;
    served(&h, &Req::get("/api/v1/info"), "v1", "path").await;
    // A preflight names no version (browsers never send custom headers in one): it passes.
    let preflight = Req::new(Method::OPTIONS, "/api/info")
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-api-version");
    for t in TRANSPORTS {
        let reply = h.send(t, &preflight).await;
        assert_eq!(reply.status, 200, "{t:?}");
        assert_eq!(reply.json()["version"], serde_json::Value::Null, "{t:?}");
    }
    // A preflight to a versioned path is detected (and stripped) as usual.
    let preflight =
        Req::new(Method::OPTIONS, "/api/v2/info").header("Access-Control-Request-Method", "GET");
    served(&h, &preflight, "v2", "path").await;
    // A plain OPTIONS is not a preflight.
    for t in TRANSPORTS {
        h.send(t, &Req::new(Method::OPTIONS, "/api/info"))
            .await
            .problem(400);
    }
    // Preflights are not counted; the two plain GETs at v1 are.
    assert_eq!(h.layer.usage().requests(1), Some(2));
    assert_eq!(h.layer.usage().requests(2), Some(0));
}
