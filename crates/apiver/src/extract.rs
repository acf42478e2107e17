//! What the layer tells the handler: the [`ApiVersion`] of the request and, when the path
//! was rewritten, its [`OriginalUri`]. Both are request extensions; with the `axum` feature
//! `ApiVersion` is also an extractor.

use crate::detect::VersionSource;
use crate::version::Version;
use http::Uri;

/// The version a request is served at, inserted as a request extension by the layer.
///
/// With the `axum` feature it is an extractor; `Option<ApiVersion>` extracts `None` where the
/// layer is not installed, and plain `ApiVersion` answers `500` with a problem body there.
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use engine_ops_apiver::ApiVersion;
///
/// async fn handler(version: ApiVersion) -> String {
///     format!("served at {} (from the {})", version.version, version.source)
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ApiVersion {
    /// The version.
    pub version: Version,
    /// Where it came from ([`VersionSource::Default`] when the request named none).
    pub source: VersionSource,
}

impl ApiVersion {
    /// An `ApiVersion`, for handler tests that build requests by hand.
    pub fn new(version: Version, source: VersionSource) -> Self {
        Self { version, source }
    }
}

/// The request URI before the layer removed its version segment, inserted as a request
/// extension when [`strip_version_from_path`](crate::ApiVersioningBuilder::strip_version_from_path)
/// is on and the path had one.
///
/// When the layer wraps an axum `Router`, axum's own `OriginalUri` is the *stripped* URI
/// (the router only sees that one); this one is the URI as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalUri(pub Uri);

#[cfg(feature = "axum")]
mod axum_impls {
    use super::ApiVersion;
    use crate::problem::{Problem, ProblemKind};
    use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum_core::response::{IntoResponse, Response};
    use http::StatusCode;
    use http::request::Parts;
    use std::convert::Infallible;
    use std::fmt;

    /// The rejection of the [`ApiVersion`] extractor: the request did not go through an
    /// [`ApiVersioningLayer`](crate::ApiVersioningLayer). Answers `500` with a problem body
    /// (a server configuration error, as axum's `Extension` does).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    #[non_exhaustive]
    pub struct MissingApiVersion;

    impl fmt::Display for MissingApiVersion {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(
                "no API version on this request: install the ApiVersioningLayer in front of this route",
            )
        }
    }

    impl std::error::Error for MissingApiVersion {}

    impl IntoResponse for MissingApiVersion {
        fn into_response(self) -> Response {
            Problem::new(
                ProblemKind::LayerMissing,
                StatusCode::INTERNAL_SERVER_ERROR,
                self.to_string(),
                Vec::new(),
                None,
            )
            .into_response()
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
        type Rejection = MissingApiVersion;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            parts
                .extensions
                .get::<ApiVersion>()
                .copied()
                .ok_or(MissingApiVersion)
        }
    }

    impl<S: Send + Sync> OptionalFromRequestParts<S> for ApiVersion {
        type Rejection = Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts.extensions.get::<ApiVersion>().copied())
        }
    }
}

#[cfg(feature = "axum")]
pub use axum_impls::MissingApiVersion;
