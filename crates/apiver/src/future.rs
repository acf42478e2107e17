//! The response future of [`ApiVersioning`](crate::ApiVersioning), and what the layer does to
//! responses.

use crate::body::{CollectError, Collector, content_length, is_encoded, is_json};
use crate::deprecation::{Policy, http_date};
use crate::detect::SourceError;
use crate::layer::{API_DEPRECATED_VERSIONS, API_SUPPORTED_VERSIONS, Config, DetectError};
use crate::problem::{Problem, ProblemKind};
use crate::version::Version;
use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, ETAG, HeaderValue, IF_MATCH, IF_NONE_MATCH, LINK, TRANSFER_ENCODING, VARY,
    WARNING,
};
use http::{HeaderMap, Method, Request, Response, StatusCode, request, response};
use http_body::Body;
use pin_project_lite::pin_project;
use serde_json::Value;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;
use tower_service::Service;

pin_project! {
    /// The response future of [`ApiVersioning`](crate::ApiVersioning).
    ///
    /// One named type for every path: an early answer of the layer, the inner service's
    /// future, and the reading of bodies for transforms. Nothing is boxed.
    pub struct ResponseFuture<F, S, ReqB, ResB> {
        #[pin]
        state: State<F, S, ReqB, ResB>,
        // `None`: the response passes through untouched (a CORS preflight).
        post: Option<Post>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, ReqB, ResB> {
        Early {
            response: Option<Response<ResB>>,
        },
        ReadRequest {
            #[pin]
            body: ReqB,
            collector: Collector,
            parts: Option<request::Parts>,
            service: Option<S>,
        },
        Inner {
            #[pin]
            future: F,
        },
        ReadResponse {
            #[pin]
            body: ResB,
            collector: Collector,
            parts: Option<response::Parts>,
        },
    }
}

impl<F, S, ReqB, ResB> ResponseFuture<F, S, ReqB, ResB> {
    pub(crate) fn early(response: Response<ResB>) -> Self {
        Self {
            state: State::Early {
                response: Some(response),
            },
            post: None,
        }
    }

    pub(crate) fn passthrough(future: F) -> Self {
        Self {
            state: State::Inner { future },
            post: None,
        }
    }

    pub(crate) fn inner(future: F, post: Post) -> Self {
        Self {
            state: State::Inner { future },
            post: Some(post),
        }
    }

    pub(crate) fn read_request(body: ReqB, parts: request::Parts, service: S, post: Post) -> Self {
        Self {
            state: State::ReadRequest {
                body,
                collector: Collector::new(post.config.request_body_limit),
                parts: Some(parts),
                service: Some(service),
            },
            post: Some(post),
        }
    }
}

const COMPLETED: &str = "ResponseFuture polled after completion";

impl<F, S, ReqB, ResB, E> Future for ResponseFuture<F, S, ReqB, ResB>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    S: Service<Request<ReqB>, Response = Response<ResB>, Error = E, Future = F>,
    ReqB: Body + From<Bytes>,
    ReqB::Error: Display,
    ResB: Body + From<Bytes>,
    ResB::Error: Display,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Early { response } => {
                    return Poll::Ready(Ok(response.take().expect(COMPLETED)));
                }
                StateProj::ReadRequest {
                    body,
                    collector,
                    parts,
                    service,
                } => {
                    let read = ready!(collector.poll_collect(body, cx));
                    let post = this.post.as_ref().expect(COMPLETED);
                    let parts = parts.take().expect(COMPLETED);
                    let mut service = service.take().expect(COMPLETED);
                    let request = match read {
                        Ok(bytes) => post.upgrade(parts, bytes),
                        Err(error) => Err(post.unreadable_request(error)),
                    };
                    match request {
                        Ok(request) => {
                            let future = service.call(request);
                            this.state.set(State::Inner { future });
                        }
                        Err(response) => return Poll::Ready(Ok(response)),
                    }
                }
                StateProj::Inner { future } => {
                    let response = ready!(future.poll(cx))?;
                    let Some(post) = this.post.as_ref() else {
                        return Poll::Ready(Ok(response));
                    };
                    if !post.should_downgrade(&response) {
                        return Poll::Ready(Ok(post.finish(response, false)));
                    }
                    let limit = post.config.response_body_limit;
                    let (parts, body) = response.into_parts();
                    if content_length(&parts.headers).is_some_and(|n| n > limit as u64)
                        || body.size_hint().lower() > limit as u64
                    {
                        return Poll::Ready(Ok(post.unreadable_response(CollectError::TooLarge)));
                    }
                    this.state.set(State::ReadResponse {
                        body,
                        collector: Collector::new(limit),
                        parts: Some(parts),
                    });
                }
                StateProj::ReadResponse {
                    body,
                    collector,
                    parts,
                } => {
                    let read = ready!(collector.poll_collect(body, cx));
                    let post = this.post.as_ref().expect(COMPLETED);
                    let parts = parts.take().expect(COMPLETED);
                    return Poll::Ready(Ok(match read {
                        Ok(bytes) => post.downgrade(parts, bytes),
                        Err(error) => post.unreadable_response(error),
                    }));
                }
            }
        }
    }
}

/// The request data that transforms need after the request is gone.
#[derive(Debug)]
pub(crate) struct TransformCx {
    pub(crate) method: Method,
    /// The path without its version segment.
    pub(crate) path: String,
}

/// What the layer does to a response: the version's headers, `Vary`, transforms.
#[derive(Debug)]
pub(crate) struct Post {
    pub(crate) config: Arc<Config>,
    /// The version's index; `None` when no version could be determined.
    index: Option<usize>,
    now: Option<SystemTime>,
    /// Present when the version goes through changes.
    transform: Option<TransformCx>,
    head: bool,
}

impl Post {
    pub(crate) fn new(
        config: Arc<Config>,
        index: Option<usize>,
        now: Option<SystemTime>,
        transform: Option<TransformCx>,
        head: bool,
    ) -> Self {
        Self {
            config,
            index,
            now,
            transform,
            head,
        }
    }

    pub(crate) fn transforms(&self) -> bool {
        self.transform.is_some()
    }

    fn version(&self) -> Option<Version> {
        self.index.map(|i| self.config.versions[i])
    }

    fn supported(&self) -> Vec<Version> {
        self.config.epoch(self.now).supported.clone()
    }

    /// A finished problem response of the layer.
    pub(crate) fn problem<B: From<Bytes>>(
        &self,
        kind: ProblemKind,
        status: StatusCode,
        detail: String,
    ) -> Response<B> {
        let problem = Problem::new(
            kind,
            status,
            detail,
            self.supported(),
            self.config.problem_type_base.as_deref(),
        );
        self.finish(problem.into_response(), false)
    }

    fn supported_list(&self) -> String {
        let list: Vec<String> = self.supported().iter().map(ToString::to_string).collect();
        list.join(", ")
    }

    /// The answer to a request without a usable version.
    pub(crate) fn reject<B: From<Bytes>>(&self, error: DetectError) -> Response<B> {
        let supported = self.supported_list();
        let (kind, status, detail) = match error {
            DetectError::Source {
                place,
                error: SourceError::Malformed { value, error },
            } => (
                ProblemKind::MalformedVersion,
                StatusCode::BAD_REQUEST,
                format!(
                    "{value:?} in {place} is not an API version: {error}; supported versions: {supported}"
                ),
            ),
            DetectError::Source {
                place,
                error: SourceError::Ambiguous { first, second },
            } => (
                ProblemKind::AmbiguousVersion,
                StatusCode::BAD_REQUEST,
                format!("{place} names two API versions, {first} and {second}; send one"),
            ),
            DetectError::Conflict { first, second } => (
                ProblemKind::AmbiguousVersion,
                StatusCode::BAD_REQUEST,
                format!(
                    "{} asks for API version {} but {} asks for {}; send one version",
                    first.0, first.1, second.0, second.1
                ),
            ),
            DetectError::Unknown {
                version,
                place,
                from_path,
            } => (
                ProblemKind::UnknownVersion,
                if from_path {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::BAD_REQUEST
                },
                format!(
                    "API version {version} (from {place}) does not exist; supported versions: {supported}"
                ),
            ),
            DetectError::Required => {
                let places: Vec<String> =
                    self.config.detectors.iter().map(|d| d.describe()).collect();
                (
                    ProblemKind::VersionRequired,
                    StatusCode::BAD_REQUEST,
                    format!(
                        "this API needs a version, in {}; supported versions: {supported}",
                        places.join(" or ")
                    ),
                )
            }
        };
        self.problem(kind, status, detail)
    }

    /// `410 Gone` for a version past its sunset.
    pub(crate) fn gone<B: From<Bytes>>(&self, version: Version, policy: &Policy) -> Response<B> {
        let sunset = policy.sunset.map(http_date);
        let mut detail = format!("API version {version} was sunset");
        if let Some(date) = &sunset {
            detail.push_str(" on ");
            detail.push_str(date);
        }
        detail.push_str(&format!("; use {}", policy.successor));
        if let Some(link) = &policy.successor_link {
            detail.push_str(&format!(" ({link})"));
        }
        let problem = Problem::new(
            ProblemKind::VersionGone,
            StatusCode::GONE,
            detail,
            self.supported(),
            self.config.problem_type_base.as_deref(),
        )
        .with_successor(policy.successor, policy.successor_link.clone(), sunset);
        let mut response = self.finish(problem.into_response(), false);
        // "will be removed" no longer holds: the problem body says what happened.
        response.headers_mut().remove(WARNING);
        response
    }

    /// `413` or `400` for a request body that could not be read.
    pub(crate) fn unreadable_request<B: From<Bytes>>(&self, error: CollectError) -> Response<B> {
        let version = self.version().map(|v| v.to_string()).unwrap_or_default();
        match error {
            CollectError::TooLarge => self.problem(
                ProblemKind::BodyTooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is larger than {} bytes, the limit for API version {version}",
                    self.config.request_body_limit
                ),
            ),
            CollectError::Body(error) => {
                tracing::debug!(%error, "could not read a request body to upgrade it");
                self.problem(
                    ProblemKind::InvalidJson,
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read".to_owned(),
                )
            }
        }
    }

    /// `500` for a response that could not be read for its downgrade.
    pub(crate) fn unreadable_response<B: From<Bytes>>(&self, error: CollectError) -> Response<B> {
        let version = self.version().map(|v| v.to_string()).unwrap_or_default();
        let reason = match error {
            CollectError::TooLarge => format!(
                "is larger than {} bytes, the response body limit",
                self.config.response_body_limit
            ),
            CollectError::Body(error) => format!("could not be read: {error}"),
        };
        tracing::error!(%version, "the response body {reason}; answering 500");
        self.problem(
            ProblemKind::ResponseTransformFailed,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the response could not be converted to API version {version}"),
        )
    }

    /// The request with its body upgraded to the latest version, or the problem response.
    pub(crate) fn upgrade<ReqB, ResB>(
        &self,
        mut parts: request::Parts,
        bytes: Bytes,
    ) -> Result<Request<ReqB>, Response<ResB>>
    where
        ReqB: From<Bytes>,
        ResB: From<Bytes>,
    {
        let (Some(index), Some(cx)) = (self.index, &self.transform) else {
            return Ok(Request::from_parts(parts, ReqB::from(bytes)));
        };
        if bytes.is_empty() {
            return Ok(Request::from_parts(parts, ReqB::from(bytes)));
        }
        let mut value: Value = serde_json::from_slice(&bytes).map_err(|error| {
            self.problem(
                ProblemKind::InvalidJson,
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {error}"),
            )
        })?;
        self.config
            .chain
            .upgrade(index, &mut value, &cx.method, &cx.path, &parts.headers)
            .map_err(|e| {
                self.problem(
                    ProblemKind::RequestTransformFailed,
                    e.error.request_status(),
                    format!(
                        "the request body could not be converted from API version {} to {}: {}",
                        e.from, e.to, e.error
                    ),
                )
            })?;
        let bytes = to_bytes(&value, bytes.len());
        set_length(&mut parts.headers, bytes.len());
        Ok(Request::from_parts(parts, ReqB::from(bytes)))
    }

    /// Whether `response` goes down the change chain.
    pub(crate) fn should_downgrade<B: Body>(&self, response: &Response<B>) -> bool {
        let status = response.status();
        self.transform.is_some()
            && !self.head
            && !status.is_informational()
            && status != StatusCode::NO_CONTENT
            && status != StatusCode::NOT_MODIFIED
            && is_json(response.headers())
            && !is_encoded(response.headers())
            && !response.body().is_end_stream()
    }

    /// The response with its body downgraded to the client's version.
    pub(crate) fn downgrade<B: From<Bytes>>(
        &self,
        mut parts: response::Parts,
        bytes: Bytes,
    ) -> Response<B> {
        let (Some(index), Some(cx)) = (self.index, &self.transform) else {
            return self.finish(Response::from_parts(parts, B::from(bytes)), false);
        };
        if bytes.is_empty() {
            return self.finish(Response::from_parts(parts, B::from(bytes)), false);
        }
        let mut value: Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(error) => {
                // The handler's own bug; its bytes go out as they are.
                tracing::warn!(%error, path = %cx.path, "a JSON response is not valid JSON; sent without transform");
                return self.finish(Response::from_parts(parts, B::from(bytes)), false);
            }
        };
        let result = self.config.chain.downgrade(
            index,
            &mut value,
            &cx.method,
            &cx.path,
            parts.status,
            &parts.headers,
        );
        if let Err(e) = result {
            tracing::error!(
                from = %e.from, to = %e.to, path = %cx.path, error = %e.error,
                "a version change failed on a response; answering 500"
            );
            return self.problem(
                ProblemKind::ResponseTransformFailed,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "the response could not be converted from API version {} to {}",
                    e.from, e.to
                ),
            );
        }
        let bytes = to_bytes(&value, bytes.len());
        set_length(&mut parts.headers, bytes.len());
        self.finish(Response::from_parts(parts, B::from(bytes)), true)
    }

    /// Adds the version's headers to a response.
    pub(crate) fn finish<B>(&self, mut response: Response<B>, transformed: bool) -> Response<B> {
        let config = &*self.config;
        let status = response.status();
        let headers = response.headers_mut();
        if let Some(index) = self.index {
            if let Some(policy) = &config.policies[index] {
                // One growth of the map rather than one per header.
                headers.reserve(policy.headers.len() + 3);
                for (name, value) in &policy.headers {
                    if name == LINK || name == WARNING {
                        headers.append(name, value.clone());
                    } else if !headers.contains_key(name) {
                        headers.insert(name, value.clone());
                    }
                }
            }
            if self.transform.is_some() {
                // What the body is (or, for HEAD and 304, would be) at this version differs
                // from the handler's: its tag and length do too.
                let unsent = self.head || status == StatusCode::NOT_MODIFIED;
                let would_transform = unsent && is_json(headers) && !is_encoded(headers);
                if transformed || would_transform || status == StatusCode::NOT_MODIFIED {
                    add_etag_suffix(headers, &config.etag_suffixes[index]);
                }
                if self.head && would_transform {
                    headers.remove(CONTENT_LENGTH);
                }
            }
        }
        if let Some(value) = &config.vary_value {
            append_vary(headers, &config.vary_tokens, value);
        }
        if config.advertise {
            let epoch = config.epoch(self.now);
            if let Some(v) = &epoch.supported_header {
                headers.insert(API_SUPPORTED_VERSIONS, v.clone());
            }
            if let Some(v) = &epoch.deprecated_header {
                headers.insert(API_DEPRECATED_VERSIONS, v.clone());
            }
        }
        response
    }
}

fn to_bytes(value: &Value, hint: usize) -> Bytes {
    let mut out = Vec::with_capacity(hint + hint / 8 + 16);
    // Writing a `Value` to a `Vec` cannot fail: its keys are strings and the writer is memory.
    let _ = serde_json::to_writer(&mut out, value);
    Bytes::from(out)
}

fn set_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(TRANSFER_ENCODING);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
}

/// Appends to `Vary` the tokens it does not list yet (all of them, as one value, when there
/// is no `Vary`; none when it is `*`).
fn append_vary(headers: &mut HeaderMap, tokens: &[String], all: &HeaderValue) {
    if !headers.contains_key(VARY) {
        headers.insert(VARY, all.clone());
        return;
    }
    let listed = |token: &str| {
        headers.get_all(VARY).iter().any(|v| {
            v.as_bytes().split(|&b| b == b',').any(|t| {
                let t = t.trim_ascii();
                t == b"*" || t.eq_ignore_ascii_case(token.as_bytes())
            })
        })
    };
    let missing: Vec<&str> = tokens
        .iter()
        .map(String::as_str)
        .filter(|t| !listed(t))
        .collect();
    if missing.len() == tokens.len() {
        headers.append(VARY, all.clone());
    } else if !missing.is_empty()
        && let Ok(value) = HeaderValue::try_from(missing.join(", "))
    {
        headers.append(VARY, value);
    }
}

/// Splits an entity-tag list (`"a", W/"b"`) into `(weak, opaque)` pairs; `None` if it is not
/// one (`*`, or malformed).
fn entity_tags(value: &[u8]) -> Option<Vec<(bool, &[u8])>> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        while let [b' ' | b'\t' | b',', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            return Some(tags);
        }
        let weak = rest.starts_with(b"W/");
        if weak {
            rest = &rest[2..];
        }
        let [b'"', tail @ ..] = rest else {
            return None;
        };
        let end = tail.iter().position(|&b| b == b'"')?;
        tags.push((weak, &tail[..end]));
        rest = &tail[end + 1..];
    }
}

fn render_tags(tags: &[(bool, Vec<u8>)]) -> Option<HeaderValue> {
    let mut out = Vec::new();
    for (i, (weak, opaque)) in tags.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        if *weak {
            out.extend_from_slice(b"W/");
        }
        out.push(b'"');
        out.extend_from_slice(opaque);
        out.push(b'"');
    }
    HeaderValue::from_bytes(&out).ok()
}

/// `"abc"` becomes `"abc-v1"`.
fn add_etag_suffix(headers: &mut HeaderMap, suffix: &str) {
    let Some(value) = headers.get(ETAG) else {
        return;
    };
    let Some(tags) = entity_tags(value.as_bytes()) else {
        return;
    };
    let [(weak, opaque)] = tags[..] else {
        return;
    };
    let mut tagged = opaque.to_vec();
    tagged.extend_from_slice(suffix.as_bytes());
    if let Some(value) = render_tags(&[(weak, tagged)]) {
        headers.insert(ETAG, value);
    }
}

/// `If-None-Match: "abc-v1"` becomes `"abc"`, so the handler recognises its own tags.
pub(crate) fn strip_etag_suffix(headers: &mut HeaderMap, suffix: &str) {
    for name in [IF_NONE_MATCH, IF_MATCH] {
        let Some(value) = headers.get(&name) else {
            continue;
        };
        let Some(tags) = entity_tags(value.as_bytes()) else {
            continue;
        };
        let suffix = suffix.as_bytes();
        if !tags.iter().any(|(_, t)| t.ends_with(suffix)) {
            continue;
        }
        let stripped: Vec<(bool, Vec<u8>)> = tags
            .iter()
            .map(|&(weak, t)| (weak, t.strip_suffix(suffix).unwrap_or(t).to_vec()))
            .collect();
        if let Some(value) = render_tags(&stripped) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(http::header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(n, HeaderValue::from_static(v));
        }
        h
    }

    fn all(h: &HeaderMap, name: http::header::HeaderName) -> Vec<&str> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn vary_is_appended_once() {
        let tokens = vec!["x-api-version".to_owned(), "accept".to_owned()];
        let value = HeaderValue::from_static("x-api-version, accept");
        let mut h = HeaderMap::new();
        append_vary(&mut h, &tokens, &value);
        assert_eq!(all(&h, VARY), ["x-api-version, accept"]);
        let mut h = map(&[(VARY, "Origin")]);
        append_vary(&mut h, &tokens, &value);
        assert_eq!(all(&h, VARY), ["Origin", "x-api-version, accept"]);
        let mut h = map(&[(VARY, "Accept, Origin")]);
        append_vary(&mut h, &tokens, &value);
        assert_eq!(all(&h, VARY), ["Accept, Origin", "x-api-version"]);
        let mut h = map(&[(VARY, "*")]);
        append_vary(&mut h, &tokens, &value);
        assert_eq!(all(&h, VARY), ["*"]);
    }

    #[test]
    fn etags() {
        let mut h = map(&[(ETAG, "\"abc\"")]);
        add_etag_suffix(&mut h, "-v1");
        assert_eq!(all(&h, ETAG), ["\"abc-v1\""]);
        let mut h = map(&[(ETAG, "W/\"abc\"")]);
        add_etag_suffix(&mut h, "-v1.1");
        assert_eq!(all(&h, ETAG), ["W/\"abc-v1.1\""]);
        let mut h = map(&[(ETAG, "abc")]);
        add_etag_suffix(&mut h, "-v1");
        assert_eq!(all(&h, ETAG), ["abc"]);

        let mut h = map(&[
            (IF_NONE_MATCH, "\"a-v1\", W/\"b,c-v1\", \"d\""),
            (IF_MATCH, "*"),
        ]);
        strip_etag_suffix(&mut h, "-v1");
        assert_eq!(all(&h, IF_NONE_MATCH), ["\"a\", W/\"b,c\", \"d\""]);
        assert_eq!(all(&h, IF_MATCH), ["*"]);
    }
}
