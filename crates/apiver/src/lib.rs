//! Tower layers for HTTP API versioning: find the version a client asks for, serve old
//! versions from one handler through body transforms, and retire versions with deprecation
//! headers, a sunset date and `410 Gone`.
//!
//! `engine-ops-apiver` is one tower [`Layer`](tower_layer::Layer), usable from axum, hyper,
//! tonic-web or any tower stack:
//!
//! - **detection**: the version comes from the path (`/api/v2/orders`), a header
//!   (`X-API-Version: 2`), a query parameter (`?api_version=2`) or the `Accept` media type
//!   (`application/vnd.acme.v2+json`, `application/json; version=2`); `v2`, `V2`, `2` and
//!   `2.0` are one version. Malformed, ambiguous or unknown versions get an RFC 9457 problem
//!   (`400`, or `404` for an unknown version in the path) listing the supported versions;
//! - **transforms**: a chain of [`VersionChange`]s upgrades old request bodies to the latest
//!   format and downgrades responses back, so handlers only know the latest version; a
//!   request at the latest version is neither buffered nor parsed;
//! - **deprecation**: `Deprecation`, `Sunset`, `Link` and `Warning` headers on deprecated
//!   versions, and `410 Gone` from the sunset instant on;
//! - **usage**: per-version request counters, with a Prometheus rendering, to know when an
//!   old version's traffic has stopped.
//!
//! # Quick start
//!
//! ```
//! use axum::{Json, Router, body::Body, routing::get};
//! use engine_ops_apiver::{ApiVersion, ApiVersioning, Deprecation};
//! use http::{Request, StatusCode};
//! use serde_json::json;
//! use std::time::{Duration, SystemTime};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now = SystemTime::now();
//! let versioning = ApiVersioning::builder()
//!     .versions(["v1", "v2"])
//!     .strip_version_from_path(true) // one router serves /api/v1/... and /api/v2/...
//!     .deprecate("v1", Deprecation::since(now)
//!         .sunset(now + Duration::from_secs(90 * 86_400))
//!         .successor_link("https://api.example.com/docs/v2"))
//!     .build()?;
//! let usage = versioning.usage();
//!
//! let router = Router::new().route("/api/status", get(|v: ApiVersion| async move {
//!     Json(json!({ "served_at": v.version }))
//! }));
//! // Wrap the router (rather than `Router::layer`) so that the path is rewritten before routing.
//! let app = versioning.layer(router);
//!
//! let response = app.clone().oneshot(Request::get("/api/v1/status").body(Body::empty())?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert!(response.headers().contains_key("deprecation"));
//! assert!(response.headers().contains_key("sunset"));
//!
//! let response = app.clone().oneshot(Request::get("/api/v9/status").body(Body::empty())?).await?;
//! assert_eq!(response.status(), StatusCode::NOT_FOUND);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//!
//! let response = app.oneshot(
//!     Request::get("/api/status").header("X-API-Version", "2").body(Body::empty())?,
//! ).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(usage.requests(1), Some(1));
//! # Ok(())
//! # }
//! ```
//!
//! To serve the wrapped router, give `axum::serve` the body type explicitly:
//! `axum::serve(listener, axum::ServiceExt::<axum::extract::Request>::into_make_service(app))`.
//! Without path rewriting, `Router::new()....layer(versioning)` works too.
//!
//! # What the layer does to a request
//!
//! In order (see [`ApiVersioning`]): detect the version; answer `410` past its sunset; count
//! it; strip the version segment from the path (if configured, keeping [`OriginalUri`]);
//! insert [`ApiVersion`]; upgrade a JSON request body (older versions with changes only);
//! call the inner service; downgrade a JSON response body; add the deprecation headers,
//! `Vary` (appended, never replaced), a version-specific `ETag` after a transform, and
//! optionally `API-Supported-Versions` / `API-Deprecated-Versions`. Every outcome of the
//! layer itself is a response: the service's error type is the inner service's, and nothing
//! panics on any input.
//!
//! # Contents
//!
//! - [`ApiVersioning::builder`] → [`ApiVersioningBuilder`] → [`ApiVersioningLayer`] →
//!   [`ApiVersioning`] (the service) and its [`ResponseFuture`].
//! - [`Version`] and [`ParseVersionError`]: parsing and ordering ([`IntoVersion`] for the
//!   builder's arguments).
//! - [`detect`]: [`Source`], [`OnConflict`], [`VersionSource`].
//! - [`transform`]: [`VersionChange`], [`NoChange`], [`RequestContext`], [`ResponseContext`],
//!   [`TransformError`].
//! - [`deprecation`]: [`Deprecation`] and the exact header values.
//! - [`usage`]: [`Usage`], [`VersionUsage`].
//! - [`extract`]: [`ApiVersion`] (an axum extractor with the `axum` feature),
//!   [`OriginalUri`].
//! - [`problem`]: [`Problem`], [`ProblemKind`]: the RFC 9457 bodies.
//! - [`Error`]: configuration mistakes, found by [`ApiVersioningBuilder::build`].
//!
//! # Body types
//!
//! The layer answers in the inner service's own body type, so both request and response
//! bodies must implement `From<Bytes>` (axum's `Body` and `http_body_util::Full<Bytes>` do).
//! With plain hyper, map `hyper::body::Incoming` into such a body first
//! (`req.map(axum::body::Body::new)`, say).
//!
//! # Features
//!
//! | feature | default | what it adds                                              |
//! |---------|---------|-----------------------------------------------------------|
//! | `axum`  | yes     | `ApiVersion` as an extractor, `IntoResponse` for problems |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
pub mod deprecation;
pub mod detect;
mod error;
pub mod extract;
mod future;
mod layer;
pub mod problem;
mod service;
pub mod transform;
pub mod usage;
mod version;

pub use deprecation::Deprecation;
pub use detect::{OnConflict, Source, VersionSource};
pub use error::Error;
#[cfg(feature = "axum")]
pub use extract::MissingApiVersion;
pub use extract::{ApiVersion, OriginalUri};
pub use future::ResponseFuture;
pub use layer::{
    API_DEPRECATED_VERSIONS, API_SUPPORTED_VERSIONS, ApiVersioningBuilder, ApiVersioningLayer,
    DEFAULT_REQUEST_BODY_LIMIT, DEFAULT_RESPONSE_BODY_LIMIT,
};
pub use problem::{Problem, ProblemKind};
pub use service::ApiVersioning;
pub use transform::{NoChange, RequestContext, ResponseContext, TransformError, VersionChange};
pub use usage::{Usage, VersionUsage};
pub use version::{IntoVersion, ParseVersionError, Version};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
