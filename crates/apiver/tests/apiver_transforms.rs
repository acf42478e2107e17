//! Transforms (issue 3): a two-step change chain (v1 -> v2 -> v3) both ways, non-JSON and
//! empty bodies, HEAD/204/304, body limits, invalid JSON, Content-Length after a transform,
//! compressed bodies, error responses, ETags, and the untouched latest version.

mod common;

use axum::body::Body;
use bytes::Bytes;
use common::{Harness, Req, TRANSPORTS, chain_builder, router};
use http::{Method, Request};
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::ServiceExt;

/// What the handler received.
fn seen(reply: &common::Reply) -> Value {
    serde_json::from_str(reply.header("x-seen-body").unwrap()).unwrap()
}

fn assert_length_is_right(reply: &common::Reply) {
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str()),
        "Content-Length matches the body"
    );
}

#[tokio::test]
async fn two_step_chain_both_ways() {
    let h = Harness::with(chain_builder()).await;
    for t in TRANSPORTS {
        // v1 -> v2 -> v3 for the handler, and back.
        let reply = h
            .send(
                t,
                &Req::post_json("/api/v1/echo", &json!({"name": "Ada", "amount": 1250})),
            )
            .await;
        assert_eq!(reply.status, 200, "{t:?}");
        assert_eq!(
            seen(&reply),
            json!({"full_name": "Ada", "amount": {"value": 1250, "currency": "EUR"}}),
            "{t:?}"
        );
        assert_eq!(
            reply.json(),
            json!({"name": "Ada", "amount": 1250}),
            "{t:?}"
        );
        assert_length_is_right(&reply);
        // The handler saw a Content-Length that fits the upgraded body.
        assert_eq!(
            reply.header("x-seen-content-length"),
            reply.header("x-seen-length")
        );

        // v2 -> v3 only.
        let reply = h
            .send(
                t,
                &Req::post_json("/api/v2/echo", &json!({"full_name": "Ada", "amount": 5})),
            )
            .await;
        assert_eq!(
            seen(&reply),
            json!({"full_name": "Ada", "amount": {"value": 5, "currency": "EUR"}})
        );
        assert_eq!(reply.json(), json!({"full_name": "Ada", "amount": 5}));
        assert_length_is_right(&reply);

        // Responses the handler makes on its own go down the chain too.
        let reply = h.send(t, &Req::get("/api/v1/account")).await;
        assert_eq!(
            reply.json(),
            json!({"name": "Ada", "amount": 1250}),
            "{t:?}"
        );
        assert_length_is_right(&reply);
        let reply = h.send(t, &Req::get("/api/v2/account")).await;
        assert_eq!(
            reply.json(),
            json!({"full_name": "Ada", "amount": 1250}),
            "{t:?}"
        );
        let reply = h
            .send(t, &Req::get("/api/account").header("X-API-Version", "1"))
            .await;
        assert_eq!(
            reply.json(),
            json!({"name": "Ada", "amount": 1250}),
            "{t:?}"
        );
    }
}

#[tokio::test]
async fn the_latest_version_is_not_touched() {
    let h = Harness::with(chain_builder().request_body_limit(16)).await;
    // Odd spacing and key order survive: the body is neither parsed nor re-serialized, and
    // the body limit (16 bytes) does not apply.
    let raw = "{ \"zeta\": 1,   \"alpha\": [1, 2, 3], \"name\": \"not renamed\" }";
    for t in TRANSPORTS {
        let req = Req::new(Method::POST, "/api/v3/echo")
            .header("content-type", "application/json")
            .body(raw);
        let reply = h.send(t, &req).await;
        assert_eq!(reply.status, 200, "{t:?}");
        assert_eq!(reply.body, raw.as_bytes(), "{t:?}");
        assert_eq!(reply.header("x-seen-body"), Some(raw));
        // Invalid JSON is the handler's business at the latest version.
        let req = Req::new(Method::POST, "/api/echo")
            .header("content-type", "application/json")
            .body("{oops");
        let reply = h.send(t, &req).await;
        assert_eq!(reply.status, 200, "{t:?}");
        assert_eq!(reply.body, "{oops");
        // ETags stay as the handler made them.
        let reply = h.send(t, &Req::get("/api/v3/account")).await;
        assert_eq!(reply.header("etag"), Some("\"acct-7\""));
    }
}

/// A request body that never ends.
struct Endless;

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Pending
    }
}

#[tokio::test]
async fn the_latest_version_does_not_wait_for_the_body() {
    let app = chain_builder().build().unwrap().layer(router());
    let request = |path: &str| {
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::new(Endless))
            .unwrap()
    };
    // The handler ignores the body: at v3 it answers at once.
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        app.clone().oneshot(request("/api/v3/info")),
    )
    .await
    .expect("a v3 request is not buffered")
    .unwrap();
    assert_eq!(response.status(), 200);
    // At v1 the layer reads the body first, so it is still waiting.
    let waiting = tokio::time::timeout(
        Duration::from_millis(200),
        app.oneshot(request("/api/v1/info")),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a v1 request is read whole before the handler"
    );
}

#[tokio::test]
async fn non_json_and_empty_bodies_pass() {
    let h = Harness::with(chain_builder()).await;
    for t in TRANSPORTS {
        let req = Req::new(Method::POST, "/api/v1/text")
            .header("content-type", "text/plain")
            .body("name: Ada");
        let reply = h.send(t, &req).await;
        assert_eq!(reply.status, 200, "{t:?}");
        assert_eq!(reply.header("x-seen-body"), Some("name: Ada"));
        assert_eq!(reply.body, "name: Ada");

        let reply = h.send(t, &Req::get("/api/v1/text")).await;
        assert_eq!(reply.body, "full_name: plain text", "{t:?}");

        // A JSON request without a body.
        let req = Req::new(Method::POST, "/api/v1/echo").header("content-type", "application/json");
        let reply = h.send(t, &req).await;
        assert_eq!(reply.status, 200, "{t:?}");
        assert_eq!(reply.header("x-seen-length"), Some("0"));
        assert!(reply.body.is_empty());

        // A JSON response without a body.
        let reply = h.send(t, &Req::get("/api/v1/empty-json")).await;
        assert_eq!(reply.status, 200, "{t:?}");
        assert!(reply.body.is_empty());
    }
}

#[tokio::test]
async fn head_204_and_304() {
    let h = Harness::with(chain_builder()).await;
    for t in TRANSPORTS {
        let reply = h.send(t, &Req::new(Method::HEAD, "/api/v1/account")).await;
        assert_eq!(reply.status, 200, "{t:?}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header("etag"), Some("\"acct-7-v1\""), "{t:?}");
        // The handler's length is that of the v3 body, not of the v1 body a GET would get:
        // it is removed (HEAD may omit it).
        assert_eq!(reply.header("content-length"), None, "{t:?}");
        let reply = h.send(t, &Req::new(Method::HEAD, "/api/v3/account")).await;
        assert_eq!(reply.header("content-length"), Some("60"), "{t:?}");
        assert_eq!(reply.header("etag"), Some("\"acct-7\""), "{t:?}");

        let reply = h.send(t, &Req::get("/api/v1/no-content")).await;
        assert_eq!(reply.status, 204, "{t:?}");
        assert!(reply.body.is_empty());
        let reply = h
            .send(t, &Req::new(Method::DELETE, "/api/v1/no-content"))
            .await;
        assert_eq!(reply.status, 204, "{t:?}");

        // Conditional requests: the client holds the v1 tag; the handler sees its own.
        let reply = h.send(t, &Req::get("/api/v1/conditional")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json(), json!({"name": "Ada"}));
        let tag = reply.header("etag").unwrap().to_owned();
        assert_eq!(tag, "\"acct-7-v1\"");
        let reply = h
            .send(
                t,
                &Req::get("/api/v1/conditional").header("If-None-Match", &tag),
            )
            .await;
        assert_eq!(reply.status, 304, "{t:?}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header("etag"), Some("\"acct-7-v1\""), "{t:?}");
        // The v3 tag is not valid for v1.
        let reply = h
            .send(
                t,
                &Req::get("/api/v1/conditional").header("If-None-Match", "\"acct-7-v2\""),
            )
            .await;
        assert_eq!(reply.status, 200, "{t:?}");
    }
}

/// A body in several chunks with no length known in advance.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn chunked(text: &str, size: usize) -> Body {
    let chunks = text
        .as_bytes()
        .chunks(size)
        .map(Bytes::copy_from_slice)
        .collect();
    Body::new(Chunks(chunks))
}

#[tokio::test]
async fn request_body_limit() {
    let h = Harness::with(chain_builder().request_body_limit(64)).await;
    let small = json!({"name": "Ada"});
    let large = json!({"name": "x".repeat(100)});
    for t in TRANSPORTS {
        let reply = h.send(t, &Req::post_json("/api/v1/echo", &small)).await;
        assert_eq!(reply.status, 200, "{t:?}");
        let reply = h.send(t, &Req::post_json("/api/v1/echo", &large)).await;
        let problem = reply.problem(413);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("larger than 64 bytes")
        );
    }
    // Without a Content-Length, in chunks: the limit holds while reading.
    let app = h.app.clone();
    for (text, status) in [(small.to_string(), 200), (large.to_string(), 413)] {
        let request = Request::post("/api/v1/echo")
            .header("content-type", "application/json")
            .body(chunked(&text, 7))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status);
        if status == 200 {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), small);
        }
    }
}

#[tokio::test]
async fn response_body_limit() {
    let h = Harness::with(chain_builder().response_body_limit(1024)).await;
    for t in TRANSPORTS {
        let reply = h.send(t, &Req::get("/api/v1/big")).await;
        let problem = reply.problem(500);
        assert_eq!(
            problem["detail"],
            "the response could not be converted to API version v1"
        );
        // At the latest version the handler's body goes out whatever its size.
        let reply = h.send(t, &Req::get("/api/v3/big")).await;
        assert_eq!(reply.status, 200);
    }
}

#[tokio::test]
async fn invalid_json_and_refused_bodies() {
    let h = Harness::with(chain_builder()).await;
    for t in TRANSPORTS {
        let req = Req::new(Method::POST, "/api/v1/echo")
            .header("content-type", "application/json")
            .body("{\"name\": ");
        let problem = h.send(t, &req).await.problem(400);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("the request body is not valid JSON"),
            "{problem}"
        );
        let req = Req::new(Method::POST, "/api/v1/echo")
            .header("content-type", "application/json")
            .body(vec![0xff, 0xfe, 0x00]);
        h.send(t, &req).await.problem(400);

        // A change refuses a body, with its own status.
        let problem = h
            .send(
                t,
                &Req::post_json("/api/v1/echo", &json!({"full_name": "Ada"})),
            )
            .await
            .problem(422);
        assert_eq!(
            problem["detail"],
            "the request body could not be converted from API version v1 to v2: `full_name` is not part of v1; send `name`"
        );
        let problem = h
            .send(
                t,
                &Req::post_json("/api/v2/echo", &json!({"amount": "12.50"})),
            )
            .await
            .problem(400);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("from API version v2 to v3")
        );

        // A failing downgrade is a server error, not a wrong body.
        let problem = h
            .send(t, &Req::get("/api/v1/fail-downgrade"))
            .await
            .problem(500);
        assert_eq!(
            problem["detail"],
            "the response could not be converted from API version v3 to v2"
        );

        // A handler's invalid JSON goes out as it is.
        let reply = h.send(t, &Req::get("/api/v1/bad-json")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "{not json");
    }
}

#[tokio::test]
async fn compressed_bodies_pass_untouched() {
    let h = Harness::with(chain_builder()).await;
    for t in TRANSPORTS {
        let reply = h.send(t, &Req::get("/api/v1/gzip")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-encoding"), Some("gzip"));
        assert_eq!(
            reply.json(),
            json!({"full_name": "Ada"}),
            "handler's format, untouched"
        );

        let req = Req::post_json("/api/v1/echo", &json!({"name": "Ada"}))
            .header("content-encoding", "gzip");
        let reply = h.send(t, &req).await;
        assert_eq!(seen(&reply), json!({"name": "Ada"}), "request untouched");
    }
}

#[tokio::test]
async fn error_responses_are_transformed() {
    let h = Harness::with(chain_builder()).await;
    for t in TRANSPORTS {
        let reply = h.send(t, &Req::get("/api/v1/problem")).await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(
            reply.json(),
            json!({"type": "about:blank", "status": 422, "name": "Ada", "amount": 5})
        );
        assert_length_is_right(&reply);
    }
}

#[tokio::test]
async fn etags_are_version_specific() {
    let h = Harness::with(chain_builder()).await;
    for t in TRANSPORTS {
        let tag = |path: &'static str| {
            let h = &h;
            async move {
                h.send(t, &Req::get(path))
                    .await
                    .header("etag")
                    .map(str::to_owned)
            }
        };
        assert_eq!(
            tag("/api/v1/account").await.as_deref(),
            Some("\"acct-7-v1\"")
        );
        assert_eq!(
            tag("/api/v2/account").await.as_deref(),
            Some("\"acct-7-v2\"")
        );
        assert_eq!(tag("/api/v3/account").await.as_deref(), Some("\"acct-7\""));
    }
}
