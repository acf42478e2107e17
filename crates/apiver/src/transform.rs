//! Version changes: how a request body moves up to the latest format and a response body back
//! down to the client's.
//!
//! A [`VersionChange`] describes what changed between two adjacent versions, over
//! [`serde_json::Value`]. Register changes with
//! [`ApiVersioningBuilder::change`](crate::ApiVersioningBuilder::change); the handler then
//! only ever sees the latest format:
//!
//! ```text
//!            upgrade_request             upgrade_request
//!   v1 body ────────────────► v2 body ────────────────► v3 body ──► handler (latest: v3)
//!   v1 body ◄──────────────── v2 body ◄──────────────── v3 body ◄── handler
//!            downgrade_response          downgrade_response
//! ```
//!
//! # What is transformed
//!
//! - Only requests at a version older than the latest, and only when changes are registered:
//!   a request at the latest version is never buffered or parsed.
//! - Only JSON bodies: `Content-Type` `application/json` or any `…/…+json` (so problem
//!   details from the handler are transformed too, with the status available to the change).
//!   Other bodies, empty bodies, `HEAD` responses and `1xx`/`204`/`304` responses pass
//!   through unchanged.
//! - Not compressed bodies: a body with a `Content-Encoding` (other than `identity`) passes
//!   through untouched, in the handler's format. Put a compression layer *outside* this one
//!   (and decompression of requests outside it too) so that it sees plain JSON.
//! - Bodies are read whole, up to a limit
//!   ([`request_body_limit`](crate::ApiVersioningBuilder::request_body_limit), default 2 MiB:
//!   `413` beyond it;
//!   [`response_body_limit`](crate::ApiVersioningBuilder::response_body_limit), default
//!   8 MiB: `500` beyond it). A request body that is not JSON gets `400`.
//! - After a transform `Content-Length` is set to the new length (and `Transfer-Encoding`
//!   removed), object keys come out in sorted order (serde_json's default map), trailers are
//!   dropped, and a handler's `ETag` gets the version as a suffix (`"abc"` becomes
//!   `"abc-v1"`). Such a tag in `If-None-Match` or `If-Match` is given back to the handler
//!   without the suffix, so conditional requests keep working at old versions.

use crate::version::Version;
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use std::fmt;

/// What changed between two adjacent versions.
///
/// Both methods default to "no change", so a change implements only the direction it needs.
/// They run synchronously on the request's task; keep them to moving JSON around.
///
/// ```
/// use engine_ops_apiver::{RequestContext, ResponseContext, TransformError, VersionChange};
/// use serde_json::{Value, json};
///
/// /// v2 renamed `name` to `full_name` in `/users` bodies.
/// struct RenameName;
///
/// impl VersionChange for RenameName {
///     fn upgrade_request(&self, body: &mut Value, cx: &RequestContext<'_>) -> Result<(), TransformError> {
///         if cx.path().starts_with("/users") {
///             if let Some(obj) = body.as_object_mut() {
///                 let name = obj.remove("name").ok_or_else(|| TransformError::new("`name` is required"))?;
///                 obj.insert("full_name".into(), name);
///             }
///         }
///         Ok(())
///     }
///
///     fn downgrade_response(&self, body: &mut Value, cx: &ResponseContext<'_>) -> Result<(), TransformError> {
///         if cx.path().starts_with("/users") && cx.status().is_success() {
///             if let Some(obj) = body.as_object_mut() {
///                 if let Some(name) = obj.remove("full_name") {
///                     obj.insert("name".into(), name);
///                 }
///             }
///         }
///         Ok(())
///     }
/// }
/// # let _ = json!({});
/// ```
pub trait VersionChange: Send + Sync + 'static {
    /// Rewrites a request body from the change's older version to its newer one.
    ///
    /// An error answers the request with a problem (`400` unless
    /// [`TransformError::with_status`] says otherwise); the handler is not called.
    fn upgrade_request(
        &self,
        body: &mut Value,
        cx: &RequestContext<'_>,
    ) -> Result<(), TransformError> {
        let _ = (body, cx);
        Ok(())
    }

    /// Rewrites a response body from the change's newer version to its older one.
    ///
    /// An error replaces the response with a `500` problem (the client cannot read the newer
    /// format), and is logged.
    fn downgrade_response(
        &self,
        body: &mut Value,
        cx: &ResponseContext<'_>,
    ) -> Result<(), TransformError> {
        let _ = (body, cx);
        Ok(())
    }
}

/// A change that changes nothing: for two adjacent versions that share one body format (a
/// version that only added an endpoint, say).
///
/// Once any change is registered, every pair of adjacent versions needs one, so that a
/// forgotten change is an error when the layer is built rather than a wrong body at run time.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoChange;

impl VersionChange for NoChange {}

/// The request a [`VersionChange::upgrade_request`] works on.
#[derive(Debug)]
pub struct RequestContext<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) requested: Version,
    pub(crate) from: Version,
    pub(crate) to: Version,
}

impl RequestContext<'_> {
    /// The request method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The request path without its version segment (`/api/optimize` for
    /// `/api/v1/optimize`), whether or not the layer strips it for the handler.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The version the client asked for.
    pub fn requested_version(&self) -> Version {
        self.requested
    }

    /// The older version of this step.
    pub fn from(&self) -> Version {
        self.from
    }

    /// The newer version of this step.
    pub fn to(&self) -> Version {
        self.to
    }
}

/// The response a [`VersionChange::downgrade_response`] works on.
#[derive(Debug)]
pub struct ResponseContext<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) status: StatusCode,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) requested: Version,
    pub(crate) from: Version,
    pub(crate) to: Version,
}

impl ResponseContext<'_> {
    /// The request method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The request path without its version segment.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The response status: error bodies go through the chain too.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers, as the handler (or the previous change) left them.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The version the client asked for.
    pub fn requested_version(&self) -> Version {
        self.requested
    }

    /// The newer version of this step (the body's format before this change).
    pub fn from(&self) -> Version {
        self.from
    }

    /// The older version of this step (the body's format after this change).
    pub fn to(&self) -> Version {
        self.to
    }
}

/// A body a [`VersionChange`] cannot transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformError {
    detail: String,
    status: Option<StatusCode>,
}

impl TransformError {
    /// An error whose `detail` is sent to the client in the problem body.
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            status: None,
        }
    }

    /// The status of the problem response for a request body (`422`, say); only client
    /// error statuses (`4xx`) are used, others fall back to `400`. Ignored for responses,
    /// which always answer `500`.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// The detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub(crate) fn request_status(&self) -> StatusCode {
        self.status
            .filter(StatusCode::is_client_error)
            .unwrap_or(StatusCode::BAD_REQUEST)
    }
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for TransformError {}

/// The changes of one step, from `versions[i]` to `versions[i + 1]`.
pub(crate) struct Step {
    pub(crate) from: Version,
    pub(crate) to: Version,
    pub(crate) changes: Vec<Box<dyn VersionChange>>,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} ({} changes)",
            self.from,
            self.to,
            self.changes.len()
        )
    }
}

/// The whole chain: `steps[i]` goes from `versions[i]` to `versions[i + 1]`. Empty when no
/// change is registered.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    pub(crate) steps: Vec<Step>,
}

/// Where a transform failed: which step, and why.
#[derive(Debug)]
pub(crate) struct StepError {
    pub(crate) from: Version,
    pub(crate) to: Version,
    pub(crate) error: TransformError,
}

impl Chain {
    /// Whether a request at `versions[index]` goes through any change.
    pub(crate) fn applies_to(&self, index: usize) -> bool {
        index < self.steps.len()
    }

    /// Upgrades a request body from `versions[index]` to the latest version.
    pub(crate) fn upgrade(
        &self,
        index: usize,
        body: &mut Value,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(), StepError> {
        let requested = self.steps.get(index).map(|s| s.from);
        for step in self.steps.iter().skip(index) {
            let cx = RequestContext {
                method,
                path,
                headers,
                requested: requested.unwrap_or(step.from),
                from: step.from,
                to: step.to,
            };
            for change in &step.changes {
                change
                    .upgrade_request(body, &cx)
                    .map_err(|error| StepError {
                        from: step.from,
                        to: step.to,
                        error,
                    })?;
            }
        }
        Ok(())
    }

    /// Downgrades a response body from the latest version to `versions[index]`.
    pub(crate) fn downgrade(
        &self,
        index: usize,
        body: &mut Value,
        method: &Method,
        path: &str,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<(), StepError> {
        let requested = self.steps.get(index).map(|s| s.from);
        for step in self.steps.iter().skip(index).rev() {
            let cx = ResponseContext {
                method,
                path,
                status,
                headers,
                requested: requested.unwrap_or(step.from),
                from: step.to,
                to: step.from,
            };
            for change in step.changes.iter().rev() {
                change
                    .downgrade_response(body, &cx)
                    .map_err(|error| StepError {
                        from: step.to,
                        to: step.from,
                        error,
                    })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    /// Records the order changes run in.
    struct Trace(&'static str, Arc<Mutex<Vec<String>>>);

    impl VersionChange for Trace {
        fn upgrade_request(
            &self,
            _: &mut Value,
            cx: &RequestContext<'_>,
        ) -> Result<(), TransformError> {
            self.1
                .lock()
                .unwrap()
                .push(format!("up {} {}->{}", self.0, cx.from(), cx.to()));
            Ok(())
        }
        fn downgrade_response(
            &self,
            _: &mut Value,
            cx: &ResponseContext<'_>,
        ) -> Result<(), TransformError> {
            self.1
                .lock()
                .unwrap()
                .push(format!("down {} {}->{}", self.0, cx.from(), cx.to()));
            Ok(())
        }
    }

    #[test]
    fn order_of_changes() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let v = |m| Version::new(m, 0);
        let chain = Chain {
            steps: vec![
                Step {
                    from: v(1),
                    to: v(2),
                    changes: vec![
                        Box::new(Trace("a", log.clone())),
                        Box::new(Trace("b", log.clone())),
                    ],
                },
                Step {
                    from: v(2),
                    to: v(3),
                    changes: vec![Box::new(Trace("c", log.clone()))],
                },
            ],
        };
        let h = HeaderMap::new();
        let mut body = json!({});
        chain
            .upgrade(0, &mut body, &Method::POST, "/x", &h)
            .unwrap();
        chain
            .downgrade(0, &mut body, &Method::POST, "/x", StatusCode::OK, &h)
            .unwrap();
        chain
            .upgrade(1, &mut body, &Method::POST, "/x", &h)
            .unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                "up a v1->v2",
                "up b v1->v2",
                "up c v2->v3",
                "down c v3->v2",
                "down b v2->v1",
                "down a v2->v1",
                "up c v2->v3",
            ]
        );
        assert!(chain.applies_to(1));
        assert!(!chain.applies_to(2));
    }

    #[test]
    fn transform_error_status() {
        assert_eq!(
            TransformError::new("x").request_status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            TransformError::new("x")
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                .request_status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            TransformError::new("x")
                .with_status(StatusCode::OK)
                .request_status(),
            StatusCode::BAD_REQUEST
        );
    }
}
