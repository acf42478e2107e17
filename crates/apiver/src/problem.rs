//! RFC 9457 problem details: the bodies of the layer's own `400`, `404`, `410`, `413` and
//! `500` responses.
//!
//! Every problem is `application/problem+json` with `type`, `title`, `status`, `detail`, and
//! the extension member `supported_versions` (the versions served right now). A `410` also
//! carries `successor_version` and, where configured, `successor_link` and `sunset`:
//!
//! ```text
//! HTTP/1.1 410 Gone
//! content-type: application/problem+json
//!
//! {"type":"about:blank","title":"Gone","status":410,
//!  "detail":"API version v0 was sunset on Thu, 01 Jan 2026 00:00:00 GMT; use v2",
//!  "supported_versions":["v1","v2"],"successor_version":"v2","sunset":"Thu, 01 Jan 2026 00:00:00 GMT"}
//! ```
//!
//! By default `type` is `about:blank` and `title` the status phrase, as RFC 9457 recommends
//! for problems without their own documentation. With
//! [`problem_type_base`](crate::ApiVersioningBuilder::problem_type_base) each kind of
//! problem gets its own `type` (`<base><code>`, the codes of [`ProblemKind::code`]) and title.

use crate::version::Version;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

/// The media type of problem bodies.
pub const APPLICATION_PROBLEM_JSON: &str = "application/problem+json";

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A value that is not a version (`400`).
    MalformedVersion,
    /// Sources, or repeated values of one source, that name different versions (`400`).
    AmbiguousVersion,
    /// A valid version that is not served (`400`, or `404` when it came from the path).
    UnknownVersion,
    /// No version was given and no default is configured (`400`).
    VersionRequired,
    /// The version is past its sunset (`410`).
    VersionGone,
    /// A request body over the limit, at a version whose requests are transformed (`413`).
    BodyTooLarge,
    /// A JSON request body that does not parse, at a version whose requests are transformed
    /// (`400`).
    InvalidJson,
    /// A version change refused the request body (`400` unless the change chose another).
    RequestTransformFailed,
    /// The response could not be transformed for the client's version: the handler's body
    /// was too large or could not be read, or a change failed (`500`).
    ResponseTransformFailed,
    /// The `ApiVersion` extractor ran on a request that did not go through the layer (`500`).
    LayerMissing,
}

impl ProblemKind {
    /// A stable kebab-case code, appended to the problem type base: `malformed-version`,
    /// `ambiguous-version`, `unknown-version`, `version-required`, `version-gone`,
    /// `body-too-large`, `invalid-json`, `request-transform-failed`,
    /// `response-transform-failed`, `layer-missing`.
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedVersion => "malformed-version",
            Self::AmbiguousVersion => "ambiguous-version",
            Self::UnknownVersion => "unknown-version",
            Self::VersionRequired => "version-required",
            Self::VersionGone => "version-gone",
            Self::BodyTooLarge => "body-too-large",
            Self::InvalidJson => "invalid-json",
            Self::RequestTransformFailed => "request-transform-failed",
            Self::ResponseTransformFailed => "response-transform-failed",
            Self::LayerMissing => "layer-missing",
        }
    }

    /// The title used with a problem type base.
    pub fn title(self) -> &'static str {
        match self {
            Self::MalformedVersion => "Malformed API version",
            Self::AmbiguousVersion => "Ambiguous API version",
            Self::UnknownVersion => "Unknown API version",
            Self::VersionRequired => "API version required",
            Self::VersionGone => "API version sunset",
            Self::BodyTooLarge => "Request body too large",
            Self::InvalidJson => "Invalid JSON body",
            Self::RequestTransformFailed => "Request not valid for this API version",
            Self::ResponseTransformFailed => "Response transformation failed",
            Self::LayerMissing => "API versioning layer missing",
        }
    }
}

/// An RFC 9457 problem detail, as the layer sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(skip)]
    kind: ProblemKind,
    #[serde(rename = "type")]
    type_uri: String,
    title: String,
    #[serde(serialize_with = "status_as_u16")]
    status: StatusCode,
    detail: String,
    supported_versions: Vec<Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    successor_version: Option<Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    successor_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sunset: Option<String>,
}

fn status_as_u16<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem of `kind` with `status` and `detail`; `type_base` as configured.
    pub(crate) fn new(
        kind: ProblemKind,
        status: StatusCode,
        detail: String,
        supported_versions: Vec<Version>,
        type_base: Option<&str>,
    ) -> Self {
        let (type_uri, title) = match type_base {
            Some(base) => (format!("{base}{}", kind.code()), kind.title().to_owned()),
            None => (
                "about:blank".to_owned(),
                status.canonical_reason().unwrap_or("Error").to_owned(),
            ),
        };
        Self {
            kind,
            type_uri,
            title,
            status,
            detail,
            supported_versions,
            successor_version: None,
            successor_link: None,
            sunset: None,
        }
    }

    pub(crate) fn with_successor(
        mut self,
        version: Version,
        link: Option<String>,
        sunset: Option<String>,
    ) -> Self {
        self.successor_version = Some(version);
        self.successor_link = link;
        self.sunset = sunset;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `type` member.
    pub fn type_uri(&self) -> &str {
        &self.type_uri
    }

    /// The `title` member.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The `detail` member: what happened to this request, and what to do.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The `supported_versions` member.
    pub fn supported_versions(&self) -> &[Version] {
        &self.supported_versions
    }

    /// The `successor_version` member of a `410`.
    pub fn successor_version(&self) -> Option<Version> {
        self.successor_version
    }

    /// The JSON body.
    pub fn to_json(&self) -> Bytes {
        // Serializing plain strings, numbers and versions cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The response: this status, `Content-Type: application/problem+json`, the JSON body
    /// and its `Content-Length`.
    pub fn into_response<B: From<Bytes>>(self) -> Response<B> {
        let body = self.to_json();
        let mut response = Response::new(B::from(Bytes::new()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(APPLICATION_PROBLEM_JSON),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        *response.body_mut() = B::from(body);
        response
    }
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Problem {
    fn into_response(self) -> axum_core::response::Response {
        Problem::into_response(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_members() {
        let p = Problem::new(
            ProblemKind::VersionGone,
            StatusCode::GONE,
            "gone".into(),
            vec![Version::new(1, 0), Version::new(2, 0)],
            None,
        )
        .with_successor(Version::new(2, 0), None, Some("date".into()));
        let json: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "about:blank",
                "title": "Gone",
                "status": 410,
                "detail": "gone",
                "supported_versions": ["v1", "v2"],
                "successor_version": "v2",
                "sunset": "date",
            })
        );
        let p = Problem::new(
            ProblemKind::MalformedVersion,
            StatusCode::BAD_REQUEST,
            "bad".into(),
            vec![],
            Some("https://example.com/problems/"),
        );
        let response: Response<String> = p
            .into_response::<Bytes>()
            .map(|b| String::from_utf8(b.to_vec()).unwrap());
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()[CONTENT_TYPE], APPLICATION_PROBLEM_JSON);
        assert_eq!(
            response.headers()[CONTENT_LENGTH],
            response.body().len().to_string().as_str()
        );
        let json: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(
            json["type"],
            "https://example.com/problems/malformed-version"
        );
        assert_eq!(json["title"], "Malformed API version");
    }
}
