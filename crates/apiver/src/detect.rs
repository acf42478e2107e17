//! Where the requested version comes from: path, header, query parameter, `Accept` media type.
//!
//! A [`Source`] names one place to look. The layer looks at each configured source; when
//! several carry a version they must agree (or, with [`OnConflict::Precedence`], the first
//! source in the configured order wins). Each source is strict about values it owns (a header
//! or parameter that is present must hold a valid version) and lenient about values it merely
//! recognises (a path segment is a version only if it looks like one).

use crate::version::{ParseVersionError, Version};
use http::HeaderMap;
use http::header::{ACCEPT, HeaderName};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// One place the requested version can be read from.
///
/// ```
/// use engine_ops_apiver::Source;
///
/// let sources = [
///     Source::path(),                      // /v2/orders, /api/v2/orders
///     Source::header("X-API-Version"),     // X-API-Version: 2
///     Source::query("api_version"),        // ?api_version=2
///     Source::media_type(),                // Accept: application/json; version=2
/// ];
/// # let _ = sources;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Source(pub(crate) SourceSpec);

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum SourceSpec {
    Path { prefix: Option<String> },
    Header(String),
    Query(String),
    MediaType { vendor: Option<String> },
}

impl Source {
    /// The first path segment that looks like a version: `v` or `V`, then a digit, then only
    /// digits and dots (`/v2/orders`, `/api/v10/orders`, `/api/v2.1/orders`).
    ///
    /// A segment such as `v1beta`, `version` or `2` is not a version and is left alone, so
    /// such a path is served the default version. A segment that looks like a version but
    /// does not parse (`v1.`, `v99999999999`) is a `400`; a valid version that is not
    /// configured is a `404`, as for any path that does not exist.
    ///
    /// Use [`Source::path_after`] when a resource name could look like a version.
    pub fn path() -> Self {
        Self(SourceSpec::Path { prefix: None })
    }

    /// The path segment right after `prefix` (`Source::path_after("/api")` reads `v2` from
    /// `/api/v2/orders`, and nothing from `/orders/v2`).
    ///
    /// The prefix is matched segment by segment (`/api` does not match `/apis/v2`); a
    /// trailing `/` is ignored, and `""` or `"/"` means the first segment.
    pub fn path_after(prefix: impl Into<String>) -> Self {
        Self(SourceSpec::Path {
            prefix: Some(prefix.into()),
        })
    }

    /// A request header, such as `X-API-Version` (the default). The header may appear more
    /// than once (or hold a comma-separated list) only if every value names the same version.
    pub fn header(name: impl Into<String>) -> Self {
        Self(SourceSpec::Header(name.into()))
    }

    /// A query parameter, such as `api_version` (the default). Names and values are
    /// percent-decoded. The parameter may appear more than once only with the same version.
    pub fn query(name: impl Into<String>) -> Self {
        Self(SourceSpec::Query(name.into()))
    }

    /// The `version` parameter of a media range in `Accept`
    /// (`Accept: application/json; version=2`), or a vendor media type whose last
    /// component is a version (`Accept: application/vnd.acme.v2+json`).
    ///
    /// Every media range that names a version must name the same one. Turning this source on
    /// makes responses carry `Vary: Accept`.
    pub fn media_type() -> Self {
        Self(SourceSpec::MediaType { vendor: None })
    }

    /// Like [`Source::media_type`], but a vendor media type must belong to `vendor`:
    /// `Source::vendor_media_type("acme")` reads `application/vnd.acme.v2+json` and ignores
    /// `application/vnd.other.v3+json`.
    pub fn vendor_media_type(vendor: impl Into<String>) -> Self {
        Self(SourceSpec::MediaType {
            vendor: Some(vendor.into()),
        })
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            SourceSpec::Path { prefix: None } => f.write_str("Source::path()"),
            SourceSpec::Path { prefix: Some(p) } => write!(f, "Source::path_after({p:?})"),
            SourceSpec::Header(h) => write!(f, "Source::header({h:?})"),
            SourceSpec::Query(q) => write!(f, "Source::query({q:?})"),
            SourceSpec::MediaType { vendor: None } => f.write_str("Source::media_type()"),
            SourceSpec::MediaType { vendor: Some(v) } => {
                write!(f, "Source::vendor_media_type({v:?})")
            }
        }
    }
}

/// What to do when two sources name different versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnConflict {
    /// Answer `400` with a problem body naming both versions (the default). Every configured
    /// source is read.
    #[default]
    Reject,
    /// Use the first source, in the configured order, that carries a version; the later
    /// sources are not read at all.
    Precedence,
}

/// Where the version of a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VersionSource {
    /// A path segment.
    Path,
    /// A request header.
    Header,
    /// A query parameter.
    Query,
    /// The `Accept` media type.
    MediaType,
    /// The request named no version: the configured default was used.
    Default,
}

impl VersionSource {
    /// A short lowercase name: `path`, `header`, `query`, `media type`, `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Header => "header",
            Self::Query => "query",
            Self::MediaType => "media type",
            Self::Default => "default",
        }
    }
}

impl fmt::Display for VersionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated source, ready to read requests.
#[derive(Debug, Clone)]
pub(crate) enum Detector {
    /// `prefix` is normalised: empty, or `/seg/seg` without a trailing slash.
    Path {
        prefix: Option<String>,
    },
    Header(HeaderName),
    Query(String),
    MediaType {
        vendor: Option<String>,
    },
}

impl Detector {
    pub(crate) fn kind(&self) -> VersionSource {
        match self {
            Self::Path { .. } => VersionSource::Path,
            Self::Header(_) => VersionSource::Header,
            Self::Query(_) => VersionSource::Query,
            Self::MediaType { .. } => VersionSource::MediaType,
        }
    }

    /// The description used in problem details: `path`, `header X-API-Version`, ...
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Path { .. } => "the path".to_owned(),
            Self::Header(h) => format!("header `{h}`"),
            Self::Query(q) => format!("query parameter `{q}`"),
            Self::MediaType { .. } => "the `Accept` media type".to_owned(),
        }
    }

    /// Reads this source. `Ok(None)`: the request does not use it.
    pub(crate) fn read(&self, path: &str, query: Option<&str>, headers: &HeaderMap) -> Read {
        match self {
            Self::Path { prefix } => from_path(path, prefix.as_deref()),
            Self::Header(name) => from_header(headers, name),
            Self::Query(name) => match query {
                Some(q) => from_query(q, name),
                None => Ok(None),
            },
            Self::MediaType { vendor } => from_accept(headers, vendor.as_deref()),
        }
    }
}

/// A version read from one source; `segment` is the byte range of `/v2` in the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) version: Version,
    pub(crate) segment: Option<Range<usize>>,
}

/// Why a source could not give one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceError {
    /// A value that is not a version.
    Malformed {
        value: String,
        error: ParseVersionError,
    },
    /// The source names two different versions (a header given twice, ...).
    Ambiguous { first: Version, second: Version },
}

pub(crate) type Read = Result<Option<Found>, SourceError>;

/// Shortens client input for a problem detail: at most 64 characters.
pub(crate) fn excerpt(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out: String = text.chars().take(64).collect();
    if text.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

fn parse(value: &[u8]) -> Result<Version, SourceError> {
    Version::parse_bytes(value).map_err(|error| SourceError::Malformed {
        value: excerpt(value),
        error,
    })
}

fn merge(current: &mut Option<Version>, next: Version) -> Result<(), SourceError> {
    match *current {
        None => {
            *current = Some(next);
            Ok(())
        }
        Some(first) if first == next => Ok(()),
        Some(first) => Err(SourceError::Ambiguous {
            first,
            second: next,
        }),
    }
}

/// `v` or `V`, a digit, then digits and dots only.
fn looks_like_version(segment: &[u8]) -> bool {
    matches!(segment, [b'v' | b'V', d, rest @ ..]
        if d.is_ascii_digit() && rest.iter().all(|b| b.is_ascii_digit() || *b == b'.'))
}

fn from_path(path: &str, prefix: Option<&str>) -> Read {
    let bytes = path.as_bytes();
    let segment_at = |start: usize| -> Range<usize> {
        // `start` indexes the `/` that opens the segment.
        let end = bytes[start + 1..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(bytes.len(), |p| start + 1 + p);
        start..end
    };
    match prefix {
        Some(prefix) => {
            let Some(rest) = path.strip_prefix(prefix) else {
                return Ok(None);
            };
            if !rest.starts_with('/') {
                return Ok(None);
            }
            let range = segment_at(prefix.len());
            let segment = &bytes[range.start + 1..range.end];
            if !looks_like_version(segment) {
                return Ok(None);
            }
            Ok(Some(Found {
                version: parse(segment)?,
                segment: Some(range),
            }))
        }
        None => {
            let mut start = 0;
            while start < bytes.len() {
                if bytes[start] != b'/' {
                    // Not origin-form (`*`, or a path without its leading slash): no segments.
                    return Ok(None);
                }
                let range = segment_at(start);
                let segment = &bytes[range.start + 1..range.end];
                if looks_like_version(segment) {
                    return Ok(Some(Found {
                        version: parse(segment)?,
                        segment: Some(range),
                    }));
                }
                start = range.end;
            }
            Ok(None)
        }
    }
}

fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

fn from_header(headers: &HeaderMap, name: &HeaderName) -> Read {
    let mut found = None;
    for value in headers.get_all(name) {
        for element in value.as_bytes().split(|&b| b == b',') {
            merge(&mut found, parse(trim_ows(element))?)?;
        }
    }
    Ok(found.map(|version| Found {
        version,
        segment: None,
    }))
}

/// Percent-decodes a query component (`+` is a space); invalid escapes stay as they are.
fn percent_decode(input: &str) -> Cow<'_, [u8]> {
    let bytes = input.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(bytes);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

fn from_query(query: &str, name: &str) -> Read {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key).as_ref() != name.as_bytes() {
            continue;
        }
        merge(&mut found, parse(&percent_decode(value))?)?;
    }
    Ok(found.map(|version| Found {
        version,
        segment: None,
    }))
}

/// Splits a header value on `sep`, outside double-quoted strings.
fn split_unquoted(value: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut in_quotes = false;
    let mut escaped = false;
    value.split(move |&b| {
        if escaped {
            escaped = false;
            return false;
        }
        match b {
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            _ => {}
        }
        b == sep && !in_quotes
    })
}

fn unquote(value: &[u8]) -> Cow<'_, [u8]> {
    match value {
        [b'"', inner @ .., b'"'] => {
            if !inner.contains(&b'\\') {
                return Cow::Borrowed(inner);
            }
            let mut out = Vec::with_capacity(inner.len());
            let mut iter = inner.iter();
            while let Some(&b) = iter.next() {
                if b == b'\\' {
                    if let Some(&next) = iter.next() {
                        out.push(next);
                    }
                } else {
                    out.push(b);
                }
            }
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(value),
    }
}

/// The version named by one media range, from its `version` parameter or a vendor subtype.
fn media_range_version(range: &[u8], vendor: Option<&str>) -> Result<Option<Version>, SourceError> {
    let mut parts = split_unquoted(range, b';');
    let media_type = trim_ows(parts.next().unwrap_or_default());
    let mut found = None;

    if let Some(slash) = media_type.iter().position(|&b| b == b'/') {
        let subtype = &media_type[slash + 1..];
        let subtype = match subtype.iter().position(|&b| b == b'+') {
            Some(plus) => &subtype[..plus],
            None => subtype,
        };
        if subtype.len() > 4 && subtype[..4].eq_ignore_ascii_case(b"vnd.") {
            let name = &subtype[4..];
            // `<vendor>.<version>`: the version is the first dot-separated tail that looks
            // like one (it may hold a dot itself: `acme.v2.1`).
            let split = (0..name.len())
                .filter(|&i| name[i] == b'.')
                .find(|&i| looks_like_version(&name[i + 1..]));
            if let Some(dot) = split {
                let owner = &name[..dot];
                if vendor.is_none_or(|v| owner.eq_ignore_ascii_case(v.as_bytes())) {
                    merge(&mut found, parse(&name[dot + 1..])?)?;
                }
            }
        }
    }
    for param in parts {
        let param = trim_ows(param);
        let Some(eq) = param.iter().position(|&b| b == b'=') else {
            continue;
        };
        if trim_ows(&param[..eq]).eq_ignore_ascii_case(b"version") {
            merge(&mut found, parse(&unquote(trim_ows(&param[eq + 1..])))?)?;
        }
    }
    Ok(found)
}

fn from_accept(headers: &HeaderMap, vendor: Option<&str>) -> Read {
    let mut found = None;
    for value in headers.get_all(ACCEPT) {
        for range in split_unquoted(value.as_bytes(), b',') {
            if let Some(version) = media_range_version(range, vendor)? {
                merge(&mut found, version)?;
            }
        }
    }
    Ok(found.map(|version| Found {
        version,
        segment: None,
    }))
}

/// Removes the byte range `segment` (a `/v2`) from the path of `uri`, keeping the query.
pub(crate) fn strip_segment(uri: &http::Uri, segment: Range<usize>) -> Option<http::Uri> {
    let path = uri.path();
    let mut stripped = String::with_capacity(path.len() + uri.query().map_or(0, |q| q.len() + 1));
    stripped.push_str(path.get(..segment.start)?);
    stripped.push_str(path.get(segment.end..)?);
    if stripped.is_empty() {
        stripped.push('/');
    }
    if let Some(query) = uri.query() {
        stripped.push('?');
        stripped.push_str(query);
    }
    if uri.scheme().is_none() && uri.authority().is_none() {
        // Origin form, as servers receive it: one parse of the new path and query.
        return http::Uri::try_from(stripped).ok();
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(http::uri::PathAndQuery::from_maybe_shared(stripped).ok()?);
    http::Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn v(major: u32) -> Version {
        Version::new(major, 0)
    }

    fn found(path: &str, prefix: Option<&str>) -> Option<(Version, String)> {
        from_path(path, prefix)
            .unwrap()
            .map(|f| (f.version, path[f.segment.unwrap()].to_owned()))
    }

    #[test]
    fn path_segments() {
        assert_eq!(found("/api/v1/optimize", None), Some((v(1), "/v1".into())));
        assert_eq!(
            found("/api/v10/optimize", None),
            Some((v(10), "/v10".into()))
        );
        assert_eq!(found("/V2", None), Some((v(2), "/V2".into())));
        assert_eq!(
            found("/api/v2.1/x", None),
            Some((Version::new(2, 1), "/v2.1".into()))
        );
        assert_eq!(found("/api/v1beta/optimize", None), None);
        assert_eq!(found("/api/version/optimize", None), None);
        assert_eq!(found("/api/2/optimize", None), None);
        assert_eq!(found("/api/v/optimize", None), None);
        assert_eq!(found("/api/v-1/optimize", None), None);
        assert_eq!(found("", None), None);
        assert_eq!(found("*", None), None);
        assert_eq!(found("/", None), None);
        assert_eq!(found("//v3//", None), Some((v(3), "/v3".into())));
        assert!(matches!(
            from_path("/api/v1./x", None),
            Err(SourceError::Malformed {
                error: ParseVersionError::MissingMinor,
                ..
            })
        ));
        assert!(matches!(
            from_path("/api/v99999999999/x", None),
            Err(SourceError::Malformed {
                error: ParseVersionError::Overflow,
                ..
            })
        ));
    }

    #[test]
    fn path_after_prefix() {
        assert_eq!(found("/api/v1/x", Some("/api")), Some((v(1), "/v1".into())));
        assert_eq!(found("/api/v1", Some("/api")), Some((v(1), "/v1".into())));
        assert_eq!(found("/apis/v1/x", Some("/api")), None);
        assert_eq!(found("/x/v1", Some("/api")), None);
        assert_eq!(found("/api/x/v1", Some("/api")), None);
        assert_eq!(found("/v1/x", Some("")), Some((v(1), "/v1".into())));
        assert_eq!(found("/api", Some("/api")), None);
    }

    #[test]
    fn headers_repeat_only_with_one_version() {
        let mut h = HeaderMap::new();
        let name = HeaderName::from_static("x-api-version");
        assert_eq!(from_header(&h, &name), Ok(None));
        h.append(&name, HeaderValue::from_static("v2"));
        h.append(&name, HeaderValue::from_static(" 2.0 , V2"));
        assert_eq!(from_header(&h, &name).unwrap().unwrap().version, v(2));
        h.append(&name, HeaderValue::from_static("3"));
        assert_eq!(
            from_header(&h, &name),
            Err(SourceError::Ambiguous {
                first: v(2),
                second: v(3)
            })
        );
        let mut h = HeaderMap::new();
        h.insert(&name, HeaderValue::from_static(""));
        assert!(matches!(
            from_header(&h, &name),
            Err(SourceError::Malformed {
                error: ParseVersionError::Empty,
                ..
            })
        ));
    }

    #[test]
    fn query_parameters() {
        let q = |s: &str| from_query(s, "api_version").map(|f| f.map(|f| f.version));
        assert_eq!(q("a=1&api_version=v2"), Ok(Some(v(2))));
        assert_eq!(q("api%5Fversion=v%32"), Ok(Some(v(2))));
        assert_eq!(q("api_version=2&api_version=v2.0"), Ok(Some(v(2))));
        assert_eq!(q("other=1"), Ok(None));
        assert_eq!(q(""), Ok(None));
        assert!(matches!(
            q("api_version=1&api_version=2"),
            Err(SourceError::Ambiguous { .. })
        ));
        assert!(matches!(
            q("api_version"),
            Err(SourceError::Malformed {
                error: ParseVersionError::Empty,
                ..
            })
        ));
        assert!(matches!(
            q("api_version=%zz"),
            Err(SourceError::Malformed { .. })
        ));
        assert!(matches!(
            q("api_version=%"),
            Err(SourceError::Malformed { .. })
        ));
        assert!(matches!(
            q("api_version=%D9%A1"),
            Err(SourceError::Malformed {
                error: ParseVersionError::InvalidCharacter,
                ..
            })
        ));
    }

    #[test]
    fn accept_media_types() {
        let accept = |s: &'static str, vendor: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT, HeaderValue::from_static(s));
            from_accept(&h, vendor).map(|f| f.map(|f| f.version))
        };
        assert_eq!(accept("application/vnd.acme.v2+json", None), Ok(Some(v(2))));
        assert_eq!(
            accept("application/vnd.acme.v2.1+json", Some("acme")),
            Ok(Some(Version::new(2, 1)))
        );
        assert_eq!(
            accept("application/vnd.acme.v2", Some("ACME")),
            Ok(Some(v(2)))
        );
        assert_eq!(
            accept("application/vnd.other.v2+json", Some("acme")),
            Ok(None)
        );
        assert_eq!(accept("application/json; version=2", None), Ok(Some(v(2))));
        assert_eq!(
            accept("application/json;version=\"v3\"", None),
            Ok(Some(v(3)))
        );
        assert_eq!(
            accept(
                "text/html, application/json;q=0.9;version=2, */*;q=0.1",
                None
            ),
            Ok(Some(v(2)))
        );
        assert_eq!(accept("application/vnd.acme+json", None), Ok(None));
        assert_eq!(accept("*/*", None), Ok(None));
        assert_eq!(accept("", None), Ok(None));
        assert!(matches!(
            accept(
                "application/vnd.acme.v2+json, application/json; version=3",
                None
            ),
            Err(SourceError::Ambiguous { .. })
        ));
        assert!(matches!(
            accept("application/json; version=v1.", None),
            Err(SourceError::Malformed { .. })
        ));
        assert!(matches!(
            accept("application/json; version=\"a,b\"", None),
            Err(SourceError::Malformed { .. })
        ));
    }

    #[test]
    fn strip() {
        let uri: http::Uri = "/api/v1/optimize?x=1".parse().unwrap();
        assert_eq!(
            strip_segment(&uri, 4..7).unwrap().to_string(),
            "/api/optimize?x=1"
        );
        let uri: http::Uri = "/v1".parse().unwrap();
        assert_eq!(strip_segment(&uri, 0..3).unwrap().to_string(), "/");
        let uri: http::Uri = "http://example.com/v1/x".parse().unwrap();
        assert_eq!(
            strip_segment(&uri, 0..3).unwrap().to_string(),
            "http://example.com/x"
        );
    }
}
