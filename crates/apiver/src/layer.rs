//! The configuration, its builder, and the [`ApiVersioningLayer`] it produces.

use crate::deprecation::{Deprecation, Policy};
use crate::detect::{Detector, Found, OnConflict, Source, SourceError, SourceSpec, VersionSource};
use crate::error::Error;
use crate::service::ApiVersioning;
use crate::transform::{Chain, Step, VersionChange};
use crate::usage::Usage;
use crate::version::{IntoVersion, ParseVersionError, Version};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;
use tower_layer::Layer;

/// The `API-Supported-Versions` header name.
pub const API_SUPPORTED_VERSIONS: HeaderName = HeaderName::from_static("api-supported-versions");
/// The `API-Deprecated-Versions` header name.
pub const API_DEPRECATED_VERSIONS: HeaderName = HeaderName::from_static("api-deprecated-versions");

/// The default request body limit for transforms: 2 MiB, as axum's `DefaultBodyLimit`.
pub const DEFAULT_REQUEST_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The default response body limit for transforms: 8 MiB.
pub const DEFAULT_RESPONSE_BODY_LIMIT: usize = 8 * 1024 * 1024;

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;
type Parsed = Result<Version, (String, ParseVersionError)>;

#[derive(Debug)]
enum DefaultChoice {
    Latest,
    Version(Parsed),
    Required,
}

/// Builds an [`ApiVersioningLayer`]; start with [`ApiVersioning::builder`].
///
/// Every setting is checked by [`build`](Self::build), which returns the first mistake as an
/// [`Error`]; nothing is checked again per request.
#[must_use = "a builder does nothing until `build` is called"]
pub struct ApiVersioningBuilder {
    versions: Vec<Parsed>,
    default: DefaultChoice,
    sources: Option<Vec<Source>>,
    on_conflict: OnConflict,
    strip_path: bool,
    deprecations: Vec<(Parsed, Deprecation)>,
    changes: Vec<(Parsed, Parsed, Box<dyn VersionChange>)>,
    request_body_limit: usize,
    response_body_limit: usize,
    advertise: bool,
    clock: Option<Clock>,
    problem_type_base: Option<String>,
}

impl fmt::Debug for ApiVersioningBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiVersioningBuilder")
            .field("versions", &self.versions)
            .field("default", &self.default)
            .field("sources", &self.sources)
            .field("on_conflict", &self.on_conflict)
            .field("strip_path", &self.strip_path)
            .field("deprecations", &self.deprecations)
            .field("changes", &self.changes.len())
            .field("request_body_limit", &self.request_body_limit)
            .field("response_body_limit", &self.response_body_limit)
            .field("advertise", &self.advertise)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .field("problem_type_base", &self.problem_type_base)
            .finish()
    }
}

impl ApiVersioning<()> {
    /// Starts the configuration of an [`ApiVersioningLayer`].
    ///
    /// ```
    /// use engine_ops_apiver::{ApiVersioning, Deprecation, Source};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let layer = ApiVersioning::builder()
    ///     .version("v1")
    ///     .version("v2")
    ///     .default_version("v2")
    ///     .detect([Source::path(), Source::header("X-API-Version")])
    ///     .strip_version_from_path(true)
    ///     .deprecate("v1", Deprecation::since(SystemTime::now())
    ///         .sunset(SystemTime::now() + Duration::from_secs(90 * 86_400)))
    ///     .build()?;
    /// assert_eq!(layer.latest().to_string(), "v2");
    /// # Ok::<(), engine_ops_apiver::Error>(())
    /// ```
    pub fn builder() -> ApiVersioningBuilder {
        ApiVersioningBuilder {
            versions: Vec::new(),
            default: DefaultChoice::Latest,
            sources: None,
            on_conflict: OnConflict::Reject,
            strip_path: false,
            deprecations: Vec::new(),
            changes: Vec::new(),
            request_body_limit: DEFAULT_REQUEST_BODY_LIMIT,
            response_body_limit: DEFAULT_RESPONSE_BODY_LIMIT,
            advertise: false,
            clock: None,
            problem_type_base: None,
        }
    }
}

impl ApiVersioningBuilder {
    /// Declares a version the API serves (`"v1"`, `1`, `"1.1"`, `Version::new(1, 1)`).
    /// Order does not matter: versions are sorted; the greatest is the latest.
    pub fn version(mut self, version: impl IntoVersion) -> Self {
        self.versions.push(version.into_version());
        self
    }

    /// Declares several versions at once.
    pub fn versions<V: IntoVersion>(mut self, versions: impl IntoIterator<Item = V>) -> Self {
        self.versions
            .extend(versions.into_iter().map(IntoVersion::into_version));
        self
    }

    /// The version of a request that names none. Defaults to the latest version.
    pub fn default_version(mut self, version: impl IntoVersion) -> Self {
        self.default = DefaultChoice::Version(version.into_version());
        self
    }

    /// No default: a request that names no version answers `400`. CORS preflight requests
    /// (`OPTIONS` with `Access-Control-Request-Method`) still pass.
    pub fn require_version(mut self) -> Self {
        self.default = DefaultChoice::Required;
        self
    }

    /// Where to look for the version, in order of precedence. Replaces the default,
    /// `[Source::path(), Source::header("X-API-Version"), Source::query("api_version")]`.
    pub fn detect(mut self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.sources = Some(sources.into_iter().collect());
        self
    }

    /// What to do when sources disagree: [`OnConflict::Reject`] (`400`, the default) or
    /// [`OnConflict::Precedence`].
    pub fn on_conflict(mut self, policy: OnConflict) -> Self {
        self.on_conflict = policy;
        self
    }

    /// Removes the version segment from the path before the inner service sees it, so that
    /// `/api/v1/orders` and `/api/v2/orders` both reach the route `/api/orders`. The original
    /// URI is kept as the [`OriginalUri`](crate::OriginalUri) extension. Off by default.
    ///
    /// With axum, the layer must then wrap the `Router` (routing happens inside it), not be
    /// added with `Router::layer`.
    pub fn strip_version_from_path(mut self, strip: bool) -> Self {
        self.strip_path = strip;
        self
    }

    /// Deprecates a version: its responses carry the deprecation headers, and from its
    /// sunset on it answers `410 Gone`.
    pub fn deprecate(mut self, version: impl IntoVersion, policy: Deprecation) -> Self {
        self.deprecations.push((version.into_version(), policy));
        self
    }

    /// Registers a change between two adjacent declared versions. Several changes may share
    /// a step: requests go through them in registration order, responses in reverse.
    ///
    /// Once a change is registered, every pair of adjacent versions needs at least one
    /// (use [`NoChange`](crate::NoChange) where two versions share a format).
    pub fn change(
        mut self,
        from: impl IntoVersion,
        to: impl IntoVersion,
        change: impl VersionChange,
    ) -> Self {
        self.changes
            .push((from.into_version(), to.into_version(), Box::new(change)));
        self
    }

    /// The largest request body that is read for a transform (default 2 MiB); beyond it the
    /// request answers `413`. Requests at the latest version are never read.
    pub fn request_body_limit(mut self, bytes: usize) -> Self {
        self.request_body_limit = bytes;
        self
    }

    /// The largest response body that is read for a transform (default 8 MiB); beyond it
    /// the response is replaced with a `500` problem, as the client could not read the
    /// handler's format.
    pub fn response_body_limit(mut self, bytes: usize) -> Self {
        self.response_body_limit = bytes;
        self
    }

    /// Adds `API-Supported-Versions` and `API-Deprecated-Versions` to every response
    /// (versions past their sunset are in neither). Off by default.
    pub fn advertise_versions(mut self, advertise: bool) -> Self {
        self.advertise = advertise;
        self
    }

    /// The clock used to decide whether a version is past its sunset (default
    /// [`SystemTime::now`]). Tests set the time with it; it is called at most once per
    /// request, and only when some version has a sunset.
    pub fn clock(mut self, now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(now));
        self
    }

    /// Gives each kind of problem its own `type` URI, `<base><code>` (for example
    /// `https://api.example.com/problems/` + `version-gone`), and a specific title.
    /// Without it, problems have `type` `about:blank` and the status phrase as title.
    pub fn problem_type_base(mut self, base: impl Into<String>) -> Self {
        self.problem_type_base = Some(base.into());
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// ```
    /// use engine_ops_apiver::{ApiVersioning, Deprecation, Error, NoChange};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let now = SystemTime::now();
    /// let err = ApiVersioning::builder()
    ///     .version(1)
    ///     .version(2)
    ///     .deprecate(1, Deprecation::since(now).sunset(now - Duration::from_secs(86_400)))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::SunsetBeforeDeprecation { .. }));
    ///
    /// let err = ApiVersioning::builder()
    ///     .versions([1, 2, 3])
    ///     .change(1, 2, NoChange)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::ChangeGap { .. }));
    /// ```
    pub fn build(self) -> Result<ApiVersioningLayer, Error> {
        // Versions.
        let mut versions = Vec::with_capacity(self.versions.len());
        for parsed in self.versions {
            versions.push(parsed?);
        }
        versions.sort_unstable();
        if let Some(pair) = versions.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::DuplicateVersion(pair[0]));
        }
        let Some(&latest) = versions.last() else {
            return Err(Error::NoVersions);
        };
        let index_of = |v: Version, context: &'static str| {
            versions
                .binary_search(&v)
                .map_err(|_| Error::UnknownVersion {
                    version: v,
                    context,
                })
        };

        // Default.
        let default = match self.default {
            DefaultChoice::Latest => Some(versions.len() - 1),
            DefaultChoice::Required => None,
            DefaultChoice::Version(parsed) => {
                let v = parsed?;
                Some(
                    versions
                        .binary_search(&v)
                        .map_err(|_| Error::UnknownDefault(v))?,
                )
            }
        };

        // Sources.
        let sources = self.sources.unwrap_or_else(|| {
            vec![
                Source::path(),
                Source::header("x-api-version"),
                Source::query("api_version"),
            ]
        });
        if sources.is_empty() {
            return Err(Error::NoSources);
        }
        let mut detectors = Vec::with_capacity(sources.len());
        let mut vary: Vec<String> = Vec::new();
        for Source(spec) in sources {
            detectors.push(match spec {
                SourceSpec::Path { prefix } => Detector::Path {
                    prefix: match prefix {
                        None => None,
                        Some(p) => {
                            if !p.is_empty() && !p.starts_with('/') {
                                return Err(Error::InvalidPathPrefix(p));
                            }
                            Some(p.trim_end_matches('/').to_owned())
                        }
                    },
                },
                SourceSpec::Header(name) => {
                    let header = HeaderName::try_from(name.as_str())
                        .map_err(|_| Error::InvalidHeaderName(name.clone()))?;
                    if !vary.iter().any(|v| v == header.as_str()) {
                        vary.push(header.as_str().to_owned());
                    }
                    Detector::Header(header)
                }
                SourceSpec::Query(name) => {
                    if name.is_empty() {
                        return Err(Error::EmptyQueryName);
                    }
                    Detector::Query(name)
                }
                SourceSpec::MediaType { vendor } => {
                    if let Some(v) = &vendor {
                        let valid = !v.is_empty()
                            && v.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
                        if !valid {
                            return Err(Error::InvalidVendor(v.clone()));
                        }
                    }
                    if !vary.iter().any(|v| v == "accept") {
                        vary.push("accept".to_owned());
                    }
                    Detector::MediaType { vendor }
                }
            });
        }

        // Deprecations.
        let mut policies: Vec<Option<Policy>> = versions.iter().map(|_| None).collect();
        for (parsed, deprecation) in self.deprecations {
            let v = parsed?;
            let i = index_of(v, "deprecate")?;
            if policies[i].is_some() {
                return Err(Error::DuplicateDeprecation(v));
            }
            policies[i] = Some(Policy::new(v, deprecation, latest, &versions)?);
        }

        // Changes.
        let mut chain = Chain::default();
        if !self.changes.is_empty() {
            let mut steps: Vec<Step> = versions
                .windows(2)
                .map(|w| Step {
                    from: w[0],
                    to: w[1],
                    changes: Vec::new(),
                })
                .collect();
            for (from, to, change) in self.changes {
                let (from, to) = (from?, to?);
                let (i, j) = (index_of(from, "change")?, index_of(to, "change")?);
                if j <= i {
                    return Err(Error::ChangeBackwards { from, to });
                }
                if j > i + 1 {
                    return Err(Error::ChangeSkipsVersion {
                        from,
                        to,
                        skipped: versions[i + 1],
                    });
                }
                steps[i].changes.push(change);
            }
            if let Some(gap) = steps.iter().find(|s| s.changes.is_empty()) {
                return Err(Error::ChangeGap {
                    from: gap.from,
                    to: gap.to,
                });
            }
            chain.steps = steps;
        }

        if let Some(base) = &self.problem_type_base
            && base.parse::<http::Uri>().is_err()
        {
            return Err(Error::InvalidProblemTypeBase(base.clone()));
        }

        let epochs = Epoch::all(&versions, &policies);
        let etag_suffixes = versions.iter().map(|v| format!("-{v}")).collect();
        let vary = (!vary.is_empty()).then(|| {
            let value = HeaderValue::try_from(vary.join(", ")).ok();
            (vary, value)
        });
        let (vary_tokens, vary_value) = match vary {
            Some((tokens, Some(value))) => (tokens, Some(value)),
            _ => (Vec::new(), None),
        };

        Ok(ApiVersioningLayer {
            config: Arc::new(Config {
                usage: Usage::new(versions.clone()),
                has_sunset: policies.iter().flatten().any(|p| p.sunset.is_some()),
                versions,
                default,
                detectors,
                on_conflict: self.on_conflict,
                strip_path: self.strip_path,
                policies,
                chain,
                request_body_limit: self.request_body_limit,
                response_body_limit: self.response_body_limit,
                vary_tokens,
                vary_value,
                advertise: self.advertise,
                epochs,
                clock: self.clock,
                problem_type_base: self.problem_type_base,
                etag_suffixes,
            }),
        })
    }
}

/// A tower [`Layer`] that versions an HTTP API: built once by [`ApiVersioning::builder`],
/// cheap to clone (the configuration is shared behind an `Arc`).
///
/// ```
/// use axum::{Router, routing::get, body::Body};
/// use engine_ops_apiver::{ApiVersion, ApiVersioning};
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let versioning = ApiVersioning::builder()
///     .versions(["v1", "v2"])
///     .strip_version_from_path(true)
///     .build()?;
/// let router = Router::new().route("/api/hello", get(|v: ApiVersion| async move { v.version.to_string() }));
/// let app = versioning.layer(router);
///
/// let response = app.clone().oneshot(Request::get("/api/v1/hello").body(Body::empty())?).await?;
/// assert_eq!(response.status(), StatusCode::OK);
/// let response = app.clone().oneshot(Request::get("/api/v3/hello").body(Body::empty())?).await?;
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// let response = app.oneshot(Request::get("/api/hello").header("X-API-Version", "1.").body(Body::empty())?).await?;
/// assert_eq!(response.status(), StatusCode::BAD_REQUEST);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ApiVersioningLayer {
    pub(crate) config: Arc<Config>,
}

impl fmt::Debug for ApiVersioningLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiVersioningLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl ApiVersioningLayer {
    /// Wraps `inner`: the same as [`Layer::layer`], without importing the trait.
    pub fn layer<S>(&self, inner: S) -> ApiVersioning<S> {
        ApiVersioning::new(inner, self.config.clone())
    }

    /// The request counters; the handle stays valid (and counting) for the layer's lifetime.
    pub fn usage(&self) -> Usage {
        self.config.usage.clone()
    }

    /// The declared versions, oldest first (including those past their sunset).
    pub fn versions(&self) -> &[Version] {
        &self.config.versions
    }

    /// The latest version: the format handlers speak.
    pub fn latest(&self) -> Version {
        self.config.latest()
    }

    /// The version of requests that name none; `None` with
    /// [`require_version`](ApiVersioningBuilder::require_version).
    pub fn default_version(&self) -> Option<Version> {
        self.config.default.map(|i| self.config.versions[i])
    }
}

impl<S> Layer<S> for ApiVersioningLayer {
    type Service = ApiVersioning<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiVersioning::new(inner, self.config.clone())
    }
}

/// The versions served and deprecated during one interval between sunsets.
#[derive(Debug)]
pub(crate) struct Epoch {
    /// The end of the interval (exclusive); `None`: forever.
    pub(crate) until: Option<SystemTime>,
    pub(crate) supported: Vec<Version>,
    pub(crate) supported_header: Option<HeaderValue>,
    pub(crate) deprecated_header: Option<HeaderValue>,
}

impl Epoch {
    fn all(versions: &[Version], policies: &[Option<Policy>]) -> Vec<Self> {
        let mut bounds: Vec<SystemTime> =
            policies.iter().flatten().filter_map(|p| p.sunset).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let join = |list: &[Version]| {
            (!list.is_empty())
                .then(|| {
                    let text: Vec<String> = list.iter().map(ToString::to_string).collect();
                    HeaderValue::try_from(text.join(", ")).ok()
                })
                .flatten()
        };
        bounds
            .into_iter()
            .map(Some)
            .chain([None])
            .map(|until| {
                // Served during [previous bound, until) iff the sunset is at or after `until`.
                let served = |p: &Option<Policy>| match (p.as_ref().and_then(|p| p.sunset), until) {
                    (None, _) => true,
                    (Some(sunset), Some(until)) => sunset >= until,
                    (Some(_), None) => false,
                };
                let supported: Vec<Version> = versions
                    .iter()
                    .zip(policies)
                    .filter(|(_, p)| served(p))
                    .map(|(v, _)| *v)
                    .collect();
                let deprecated: Vec<Version> = versions
                    .iter()
                    .zip(policies)
                    .filter(|(_, p)| p.is_some() && served(p))
                    .map(|(v, _)| *v)
                    .collect();
                Epoch {
                    until,
                    supported_header: join(&supported),
                    deprecated_header: join(&deprecated),
                    supported,
                }
            })
            .collect()
    }
}

/// The validated configuration shared by every clone of the layer and its services.
pub(crate) struct Config {
    pub(crate) versions: Vec<Version>,
    pub(crate) default: Option<usize>,
    pub(crate) detectors: Vec<Detector>,
    pub(crate) on_conflict: OnConflict,
    pub(crate) strip_path: bool,
    pub(crate) policies: Vec<Option<Policy>>,
    pub(crate) chain: Chain,
    pub(crate) request_body_limit: usize,
    pub(crate) response_body_limit: usize,
    /// Lowercase header names for `Vary`, and the same joined as one value.
    pub(crate) vary_tokens: Vec<String>,
    pub(crate) vary_value: Option<HeaderValue>,
    pub(crate) advertise: bool,
    pub(crate) epochs: Vec<Epoch>,
    pub(crate) has_sunset: bool,
    pub(crate) clock: Option<Clock>,
    pub(crate) usage: Usage,
    pub(crate) problem_type_base: Option<String>,
    /// `-v1` per version, for `ETag`s.
    pub(crate) etag_suffixes: Vec<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("versions", &self.versions)
            .field("default", &self.default.map(|i| self.versions[i]))
            .field("detectors", &self.detectors)
            .field("on_conflict", &self.on_conflict)
            .field("strip_path", &self.strip_path)
            .field("policies", &self.policies)
            .field("chain", &self.chain)
            .field("request_body_limit", &self.request_body_limit)
            .field("response_body_limit", &self.response_body_limit)
            .field("vary", &self.vary_value)
            .field("advertise", &self.advertise)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .field("problem_type_base", &self.problem_type_base)
            .finish_non_exhaustive()
    }
}

/// The version a request is served at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Detected {
    pub(crate) index: usize,
    pub(crate) source: VersionSource,
    /// The `/v2` of the path, when the path named the version.
    pub(crate) segment: Option<Range<usize>>,
}

/// Why a request has no usable version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DetectError {
    Source {
        place: String,
        error: SourceError,
    },
    Conflict {
        first: (String, Version),
        second: (String, Version),
    },
    Unknown {
        version: Version,
        place: String,
        from_path: bool,
    },
    Required,
}

impl Config {
    pub(crate) fn latest(&self) -> Version {
        self.versions[self.versions.len() - 1]
    }

    pub(crate) fn now(&self) -> SystemTime {
        match &self.clock {
            Some(clock) => clock(),
            None => SystemTime::now(),
        }
    }

    /// The epoch that `now` falls in (`None`: no sunset is configured, there is one epoch).
    pub(crate) fn epoch(&self, now: Option<SystemTime>) -> &Epoch {
        let last = self.epochs.len() - 1;
        match now {
            None => &self.epochs[last],
            Some(now) => self
                .epochs
                .iter()
                .find(|e| e.until.is_none_or(|until| now < until))
                .unwrap_or(&self.epochs[last]),
        }
    }

    /// Finds the version of a request from its path, query and headers.
    pub(crate) fn detect(
        &self,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Detected, DetectError> {
        let mut chosen: Option<(usize, Version)> = None;
        let mut segment = None;
        let mut from_path = false;
        for (i, detector) in self.detectors.iter().enumerate() {
            let found =
                detector
                    .read(path, query, headers)
                    .map_err(|error| DetectError::Source {
                        place: detector.describe(),
                        error,
                    })?;
            let Some(Found {
                version,
                segment: seg,
            }) = found
            else {
                continue;
            };
            match chosen {
                None => chosen = Some((i, version)),
                Some((first, v)) if v != version => {
                    return Err(DetectError::Conflict {
                        first: (self.detectors[first].describe(), v),
                        second: (detector.describe(), version),
                    });
                }
                Some(_) => {}
            }
            if seg.is_some() {
                segment = seg;
                from_path = true;
            }
            if self.on_conflict == OnConflict::Precedence {
                break;
            }
        }
        match chosen {
            Some((first, version)) => match self.versions.binary_search(&version) {
                Ok(index) => Ok(Detected {
                    index,
                    source: self.detectors[first].kind(),
                    segment,
                }),
                Err(_) => Err(DetectError::Unknown {
                    version,
                    place: self.detectors[first].describe(),
                    from_path,
                }),
            },
            None => match self.default {
                Some(index) => Ok(Detected {
                    index,
                    source: VersionSource::Default,
                    segment: None,
                }),
                None => Err(DetectError::Required),
            },
        }
    }
}
