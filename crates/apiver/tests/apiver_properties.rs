//! Properties (issue 3): detection never panics on arbitrary paths, headers and queries, and
//! always answers with a served version or a problem; a lossless change chain round-trips
//! any JSON body; versions print and parse back.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use common::router;
use engine_ops_apiver::{
    ApiVersioning, RequestContext, ResponseContext, Source, TransformError, Version, VersionChange,
};
use http::{HeaderValue, Request, Uri};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Map, Value};
use tower::ServiceExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Path and query text made of URI characters, biased towards version-like pieces.
fn uri_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("/api".to_owned()),
        Just("/v".to_owned()),
        Just("/V".to_owned()),
        Just(".".to_owned()),
        Just("?".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("api_version".to_owned()),
        Just("%".to_owned()),
        "[0-9]{1,12}",
        "[a-zA-Z_+%-]{1,4}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| format!("/{}", pieces.concat()))
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[vV]?[0-9]{0,12}(\\.[0-9]{0,12}){0,2}".prop_map(String::into_bytes),
        "[ -~]{0,16}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn accept_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "application/vnd\\.acme\\.[vV]?[0-9.]{0,6}(\\+json)?",
        "application/json; ?version=\"?[vV0-9.-]{0,6}\"?",
        "[ -~]{0,24}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn detection_never_panics(
        path in uri_text(),
        header in proptest::option::of(proptest::collection::vec(header_bytes(), 1..3)),
        accept in proptest::option::of(accept_text()),
        precedence in any::<bool>(),
    ) {
        let Ok(uri) = path.parse::<Uri>() else { return Ok(()); };
        let builder = ApiVersioning::builder()
            .versions(["v1", "v2", "v2.1", "v10"])
            .detect([
                Source::path(),
                Source::header("X-API-Version"),
                Source::query("api_version"),
                Source::vendor_media_type("acme"),
            ])
            .strip_version_from_path(true);
        let builder = if precedence {
            builder.on_conflict(engine_ops_apiver::OnConflict::Precedence)
        } else {
            builder
        };
        let app = builder.build().unwrap().layer(router());
        let mut request = Request::get(uri).body(Body::empty()).unwrap();
        for value in header.into_iter().flatten() {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                request.headers_mut().append("x-api-version", value);
            }
        }
        if let Some(accept) = accept.and_then(|a| HeaderValue::try_from(a).ok()) {
            request.headers_mut().insert("accept", accept);
        }
        let (status, content_type, body) = runtime().block_on(async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let content_type = response.headers().get("content-type").cloned();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, content_type, body)
        });
        let json: Value = serde_json::from_slice(&body).unwrap();
        match status {
            200 => {
                let version: Version = json["version"].as_str().unwrap().parse().unwrap();
                prop_assert!(["v1", "v2", "v2.1", "v10"].contains(&version.to_string().as_str()));
            }
            400 | 404 => {
                prop_assert_eq!(content_type.unwrap(), "application/problem+json");
                prop_assert_eq!(json["status"].as_u64(), Some(u64::from(status)));
            }
            other => prop_assert!(false, "unexpected status {other}"),
        }
    }

    #[test]
    fn versions_print_and_parse_back(major in any::<u32>(), minor in any::<u32>(), text in "\\PC{0,12}") {
        let v = Version::new(major, minor);
        prop_assert_eq!(v.to_string().parse::<Version>(), Ok(v));
        prop_assert_eq!(format!("{major}.{minor}").parse::<Version>(), Ok(v));
        // Any text parses or fails, without panicking; what parses prints back the same.
        if let Ok(parsed) = text.parse::<Version>() {
            prop_assert_eq!(parsed.to_string().parse::<Version>(), Ok(parsed));
        }
    }
}

/// v1 -> v2: every key `k` of the top-level object becomes `k_v2` (and back).
struct SuffixKeys;

/// v2 -> v3: the object is wrapped as `{"data": ...}` (and unwrapped).
struct Wrap;

impl VersionChange for SuffixKeys {
    fn upgrade_request(
        &self,
        body: &mut Value,
        _: &RequestContext<'_>,
    ) -> Result<(), TransformError> {
        if let Value::Object(map) = body {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(k, v)| (format!("{k}_v2"), v))
                .collect();
        }
        Ok(())
    }

    fn downgrade_response(
        &self,
        body: &mut Value,
        _: &ResponseContext<'_>,
    ) -> Result<(), TransformError> {
        if let Value::Object(map) = body {
            let mut out = Map::new();
            for (k, v) in std::mem::take(map) {
                let k = k
                    .strip_suffix("_v2")
                    .map(str::to_owned)
                    .ok_or_else(|| TransformError::new("unexpected key"))?;
                out.insert(k, v);
            }
            *map = out;
        }
        Ok(())
    }
}

impl VersionChange for Wrap {
    fn upgrade_request(
        &self,
        body: &mut Value,
        _: &RequestContext<'_>,
    ) -> Result<(), TransformError> {
        *body = serde_json::json!({ "data": body.take() });
        Ok(())
    }

    fn downgrade_response(
        &self,
        body: &mut Value,
        _: &ResponseContext<'_>,
    ) -> Result<(), TransformError> {
        *body = body
            .get_mut("data")
            .map(Value::take)
            .ok_or_else(|| TransformError::new("no data"))?;
        Ok(())
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e300f64..1.0e300).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn lossless_chain_round_trips(body in json_value()) {
        let layer = ApiVersioning::builder()
            .versions([1, 2, 3])
            .change(1, 2, SuffixKeys)
            .change(2, 3, Wrap)
            .build()
            .unwrap();
        // The handler echoes what it received: the v3 form of the v1 body.
        let echo = Router::new().route("/echo", post(|body: String| async move {
            ([("content-type", "application/json")], body)
        }));
        let app = layer.layer(echo);
        let bytes = serde_json::to_vec(&body).unwrap();
        let request = Request::post("/echo")
            .header("X-API-Version", "1")
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .unwrap();
        let (status, out) = runtime().block_on(async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            (status, response.into_body().collect().await.unwrap().to_bytes())
        });
        prop_assert_eq!(status, 200);
        let out: Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(out, body);
    }
}
