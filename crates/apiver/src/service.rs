//! The [`ApiVersioning`] service: detection, sunset, usage, path rewrite, then the inner
//! service, with transforms only for older versions.

use crate::body::{content_length, is_encoded, is_json};
use crate::detect::{VersionSource, strip_segment};
use crate::extract::{ApiVersion, OriginalUri};
use crate::future::{Post, ResponseFuture, TransformCx, strip_etag_suffix};
use crate::layer::Config;
use crate::problem::ProblemKind;
use bytes::Bytes;
use http::header::ACCESS_CONTROL_REQUEST_METHOD;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use std::fmt::{self, Display};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// The middleware: wraps a service with the configuration of an
/// [`ApiVersioningLayer`](crate::ApiVersioningLayer).
///
/// For each request, in order:
///
/// 1. detect the version (`400`/`404` problem when it is malformed, ambiguous or unknown;
///    a CORS preflight whose version cannot be told passes through untouched);
/// 2. answer `410 Gone` if the version is past its sunset;
/// 3. count the request in [`Usage`](crate::Usage);
/// 4. strip the version segment from the path, if configured (keeping
///    [`OriginalUri`](crate::OriginalUri));
/// 5. insert [`ApiVersion`](crate::ApiVersion) as a request extension;
/// 6. for a version older than the latest, with changes registered: upgrade a JSON request
///    body (read whole, up to the limit) — a request at the latest version is not touched;
/// 7. call the inner service;
/// 8. downgrade a JSON response body for an older version; add the deprecation headers,
///    `Vary`, a version-specific `ETag`, and `API-Supported-Versions` /
///    `API-Deprecated-Versions` if configured.
///
/// Every outcome of the layer itself is a response; the error type is the inner service's.
///
/// Both body types must implement `From<Bytes>` (axum's `Body` and `Full<Bytes>` do): the
/// layer answers in the inner service's own response type, so it fits `axum::serve` and
/// `Router::layer` without conversions, and a request or response that is not transformed
/// keeps its body as it is.
#[derive(Clone)]
pub struct ApiVersioning<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for ApiVersioning<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiVersioning")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S> ApiVersioning<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

fn is_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ApiVersioning<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    ReqB: Body + From<Bytes>,
    ReqB::Error: Display,
    ResB: Body + From<Bytes>,
    ResB::Error: Display,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S, ReqB, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let config = &*self.config;
        let preflight = is_preflight(&req);
        let now = config.has_sunset.then(|| config.now());

        let detected = match config.detect(req.uri().path(), req.uri().query(), req.headers()) {
            Ok(detected) => detected,
            Err(_) if preflight => return ResponseFuture::passthrough(self.inner.call(req)),
            Err(error) => {
                config.usage.record_rejected();
                let post = Post::new(self.config.clone(), None, now, None, false);
                return ResponseFuture::early(post.reject(error));
            }
        };
        let index = detected.index;
        let version = config.versions[index];
        let post_for = |transform| {
            Post::new(
                self.config.clone(),
                Some(index),
                now,
                transform,
                req.method() == Method::HEAD,
            )
        };

        if !preflight {
            config
                .usage
                .record(index, detected.source == VersionSource::Default);
            if let (Some(policy), Some(now)) = (&config.policies[index], now)
                && policy.is_sunset(now)
            {
                return ResponseFuture::early(post_for(None).gone(version, policy));
            }
        }

        let transform = (!preflight && config.chain.applies_to(index)).then(|| {
            let path = req.uri().path();
            let path = match &detected.segment {
                Some(seg) => {
                    let mut p = String::with_capacity(path.len());
                    p.push_str(&path[..seg.start]);
                    p.push_str(&path[seg.end..]);
                    if p.is_empty() {
                        p.push('/');
                    }
                    p
                }
                None => path.to_owned(),
            };
            TransformCx {
                method: req.method().clone(),
                path,
            }
        });
        let post = post_for(transform);

        let (mut parts, body) = req.into_parts();
        if config.strip_path
            && let Some(segment) = detected.segment
            && let Some(stripped) = strip_segment(&parts.uri, segment)
        {
            let original = std::mem::replace(&mut parts.uri, stripped);
            parts.extensions.insert(OriginalUri(original));
        }
        parts.extensions.insert(ApiVersion {
            version,
            source: detected.source,
        });

        if post.transforms() {
            strip_etag_suffix(&mut parts.headers, &config.etag_suffixes[index]);
            if is_json(&parts.headers) && !is_encoded(&parts.headers) && !body.is_end_stream() {
                let limit = config.request_body_limit;
                let declared = content_length(&parts.headers).unwrap_or(0);
                if declared > limit as u64 || body.size_hint().lower() > limit as u64 {
                    return ResponseFuture::early(post.problem(
                        ProblemKind::BodyTooLarge,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "the request body is larger than {limit} bytes, the limit for API version {version}"
                        ),
                    ));
                }
                // The ready service goes into the future, which calls it once the body is
                // read; this service keeps a clone, made ready by the next `poll_ready`.
                let clone = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, clone);
                return ResponseFuture::read_request(body, parts, service, post);
            }
        }

        ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)), post)
    }
}

#[cfg(test)]
mod tests {
    use crate::ApiVersioning;
    use crate::detect::Source;
    use crate::layer::DetectError;

    #[test]
    fn builder_infers_its_type() {
        // `ApiVersioning::builder()` needs no turbofish.
        let layer = ApiVersioning::builder().version(1).build().unwrap();
        assert_eq!(layer.latest(), crate::Version::new(1, 0));
    }

    #[test]
    fn detection_rules() {
        let layer = ApiVersioning::builder()
            .versions([1, 2])
            .detect([Source::path(), Source::header("x-api-version")])
            .build()
            .unwrap();
        let config = &layer.config;
        let mut headers = http::HeaderMap::new();
        assert_eq!(config.detect("/x", None, &headers).unwrap().index, 1);
        headers.insert("x-api-version", "1".parse().unwrap());
        let d = config.detect("/api/v1/x", None, &headers).unwrap();
        assert_eq!((d.index, d.segment), (0, Some(4..7)));
        assert!(matches!(
            config.detect("/api/v2/x", None, &headers),
            Err(DetectError::Conflict { .. })
        ));
        headers.clear();
        assert!(matches!(
            config.detect("/api/v3/x", None, &headers),
            Err(DetectError::Unknown {
                from_path: true,
                ..
            })
        ));
    }
}
