//! Deprecation and sunset (issue 3): each header's exact syntax, the sunset boundary to the
//! second with an injected clock, `410 Gone` after it, the advertised version lists, and
//! `Vary`/`Link` appended to the handler's own.

mod common;

use common::{Harness, Req, TRANSPORTS, TestClock};
use engine_ops_apiver::{ApiVersioning, ApiVersioningBuilder, Deprecation, Source};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2026-01-01T00:00:00Z.
const V0_SUNSET: u64 = 1_767_225_600;
/// 2026-06-01T00:00:00Z.
const V1_DEPRECATED: u64 = 1_780_272_000;
/// 2027-01-01T00:00:00Z.
const V1_SUNSET: u64 = 1_798_761_600;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn builder(clock: &TestClock) -> ApiVersioningBuilder {
    ApiVersioning::builder()
        .versions(["v0", "v1", "v2"])
        .strip_version_from_path(true)
        .deprecate(
            "v0",
            Deprecation::since(at(V0_SUNSET - 86_400 * 90)).sunset(at(V0_SUNSET)),
        )
        .deprecate(
            "v1",
            Deprecation::since(at(V1_DEPRECATED))
                .sunset(at(V1_SUNSET))
                .successor_link("https://api.example.com/docs/v2")
                .deprecation_link("https://api.example.com/docs/deprecations")
                .sunset_link("https://api.example.com/docs/sunset"),
        )
        .advertise_versions(true)
        .clock(clock.as_fn())
}

#[tokio::test]
async fn deprecation_headers_have_exact_syntax() {
    let clock = TestClock::at(V1_DEPRECATED + 10);
    let h = Harness::with(builder(&clock)).await;
    for t in TRANSPORTS {
        let reply = h.send(t, &Req::get("/api/v1/info")).await;
        assert_eq!(reply.status, 200, "{t:?}");
        assert_eq!(reply.all("deprecation"), ["@1780272000"], "{t:?}");
        assert_eq!(
            reply.all("sunset"),
            ["Fri, 01 Jan 2027 00:00:00 GMT"],
            "{t:?}"
        );
        assert_eq!(
            reply.all("link"),
            [
                "</handler>; rel=\"help\"",
                "<https://api.example.com/docs/v2>; rel=\"successor-version\"",
                "<https://api.example.com/docs/deprecations>; rel=\"deprecation\"",
                "<https://api.example.com/docs/sunset>; rel=\"sunset\"",
            ],
            "{t:?}: the handler's Link stays first"
        );
        assert_eq!(
            reply.all("warning"),
            [
                "299 - \"API version v1 is deprecated and will be removed on Fri, 01 Jan 2027 00:00:00 GMT; use v2\""
            ],
            "{t:?}"
        );
        assert_eq!(reply.all("vary"), ["Origin", "x-api-version"], "{t:?}");
        assert_eq!(reply.header("api-supported-versions"), Some("v1, v2"));
        assert_eq!(reply.header("api-deprecated-versions"), Some("v1"));

        // The latest version carries none of it.
        let reply = h.send(t, &Req::get("/api/v2/info")).await;
        assert_eq!(reply.status, 200);
        for name in ["deprecation", "sunset", "warning"] {
            assert_eq!(reply.header(name), None, "{t:?} {name}");
        }
        assert_eq!(reply.all("link"), ["</handler>; rel=\"help\""]);
        assert_eq!(reply.header("api-supported-versions"), Some("v1, v2"));
    }
}

#[tokio::test]
async fn an_announced_deprecation_and_a_custom_warning() {
    let clock = TestClock::at(V1_DEPRECATED - 86_400);
    let h = Harness::with(
        ApiVersioning::builder()
            .versions([1, 2])
            .detect([Source::header("X-API-Version"), Source::media_type()])
            .deprecate(
                1,
                Deprecation::since(at(V1_DEPRECATED))
                    .message("v1 goes away next year: \"see the docs\""),
            )
            .clock(clock.as_fn()),
    )
    .await;
    for t in TRANSPORTS {
        let reply = h
            .send(t, &Req::get("/api/info").header("X-API-Version", "1"))
            .await;
        // A deprecation date in the future is announced as it is (RFC 9745).
        assert_eq!(reply.all("deprecation"), ["@1780272000"]);
        assert_eq!(reply.header("sunset"), None);
        assert_eq!(reply.header("link"), Some("</handler>; rel=\"help\""));
        assert_eq!(
            reply.all("warning"),
            [r#"299 - "v1 goes away next year: \"see the docs\"""#]
        );
        assert_eq!(reply.all("vary"), ["Origin", "x-api-version, accept"]);
        assert_eq!(
            reply.header("api-supported-versions"),
            None,
            "not advertised"
        );
    }
}

#[tokio::test]
async fn sunset_boundary_to_the_second() {
    let clock = TestClock::at(V1_SUNSET - 1);
    let h = Harness::with(builder(&clock)).await;
    let instants = [
        (at(V1_SUNSET - 1), 200),
        (at(V1_SUNSET) - Duration::from_nanos(1), 200),
        (at(V1_SUNSET), 410),
        (at(V1_SUNSET) + Duration::from_millis(1), 410),
        (at(V1_SUNSET + 86_400 * 365), 410),
    ];
    for (now, status) in instants {
        clock.set(now);
        for t in TRANSPORTS {
            let reply = h.send(t, &Req::get("/api/v1/info")).await;
            assert_eq!(reply.status, status, "{t:?} at {now:?}");
        }
    }
}

#[tokio::test]
async fn gone_after_the_sunset() {
    let clock = TestClock::at(V1_SUNSET);
    let h = Harness::with(builder(&clock)).await;
    for t in TRANSPORTS {
        for req in [
            Req::get("/api/v1/info"),
            Req::get("/api/info").header("X-API-Version", "v1"),
            Req::get("/api/info?api_version=1.0"),
        ] {
            let reply = h.send(t, &req).await;
            let problem = reply.problem(410);
            assert_eq!(problem["successor_version"], "v2");
            assert_eq!(problem["successor_link"], "https://api.example.com/docs/v2");
            assert_eq!(problem["sunset"], "Fri, 01 Jan 2027 00:00:00 GMT");
            assert_eq!(problem["supported_versions"], serde_json::json!(["v2"]));
            assert_eq!(
                problem["detail"],
                "API version v1 was sunset on Fri, 01 Jan 2027 00:00:00 GMT; use v2 (https://api.example.com/docs/v2)"
            );
            // The headers still say where to go.
            assert_eq!(
                reply.header("sunset"),
                Some("Fri, 01 Jan 2027 00:00:00 GMT")
            );
            assert_eq!(
                reply.all("link")[0],
                "<https://api.example.com/docs/v2>; rel=\"successor-version\""
            );
            assert_eq!(reply.header("api-supported-versions"), Some("v2"));
            assert_eq!(reply.header("api-deprecated-versions"), None);
            // "will be removed" is no longer true: no `Warning` on a 410.
            assert_eq!(reply.header("warning"), None);
        }
        // v0 was gone long before.
        let problem = h.send(t, &Req::get("/api/v0/info")).await.problem(410);
        assert_eq!(
            problem["detail"],
            "API version v0 was sunset on Thu, 01 Jan 2026 00:00:00 GMT; use v2"
        );
        // The latest version is served, and unknown versions are still unknown.
        assert_eq!(h.send(t, &Req::get("/api/v2/info")).await.status, 200);
        h.send(t, &Req::get("/api/v3/info")).await.problem(404);
    }
    // 410s are counted: the operator sees who still calls v1.
    assert_eq!(h.layer.usage().requests(1), Some(6));
}

#[tokio::test]
async fn problem_types_with_a_base() {
    let clock = TestClock::at(V1_SUNSET);
    let h =
        Harness::with(builder(&clock).problem_type_base("https://api.example.com/problems/")).await;
    for t in TRANSPORTS {
        let problem = h.send(t, &Req::get("/api/v1/info")).await.problem(410);
        assert_eq!(
            problem["type"],
            "https://api.example.com/problems/version-gone"
        );
        assert_eq!(problem["title"], "API version sunset");
        let problem = h
            .send(t, &Req::get("/api/info").header("X-API-Version", "x"))
            .await
            .problem(400);
        assert_eq!(
            problem["type"],
            "https://api.example.com/problems/malformed-version"
        );
    }
}

#[tokio::test]
async fn handler_headers_are_kept() {
    use axum::Router;
    use axum::routing::get;
    let clock = TestClock::at(V1_DEPRECATED);
    let router = Router::new().route(
        "/api/endpoint",
        get(|| async {
            (
                [
                    ("deprecation", "@1700000000"),
                    ("vary", "accept-encoding, X-API-Version"),
                ],
                "old endpoint",
            )
        }),
    );
    let h = Harness::new(builder(&clock).build().unwrap(), router).await;
    for t in TRANSPORTS {
        let reply = h.send(t, &Req::get("/api/v1/endpoint")).await;
        // An endpoint deprecated earlier than its version keeps its own date.
        assert_eq!(reply.all("deprecation"), ["@1700000000"]);
        // `Vary` already names the header: nothing is added.
        assert_eq!(reply.all("vary"), ["accept-encoding, X-API-Version"]);
        assert_eq!(reply.all("warning").len(), 1);
    }
}
