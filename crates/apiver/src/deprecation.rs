//! Deprecation and sunset of a version: the policy and the exact header values.
//!
//! A response at a deprecated version carries, in this order:
//!
//! ```text
//! Deprecation: @1767225600                                   RFC 9745: when it was (or will be) deprecated
//! Sunset: Fri, 01 Jan 2027 00:00:00 GMT                      RFC 8594: when it stops answering
//! Link: <https://api.example.com/v2/docs>; rel="successor-version"
//! Link: <https://example.com/deprecation>; rel="deprecation"
//! Link: <https://example.com/sunset>; rel="sunset"
//! Warning: 299 - "API version v1 is deprecated ..."          RFC 7234, for older clients
//! ```
//!
//! each only where configured (the `Deprecation` and `Warning` fields always). From the sunset
//! instant on (`now >= sunset`, to the second), a request at that version answers `410 Gone`
//! with a problem body naming the successor. Dates have one-second resolution, as HTTP dates
//! do: the sub-second part of a configured instant is dropped, so the advertised second and
//! the first second of `410` are the same.

use crate::error::Error;
use crate::version::{IntoVersion, ParseVersionError, Version};
use http::header::{HeaderName, HeaderValue, LINK, WARNING};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `Deprecation` header name (RFC 9745).
pub const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
/// The `Sunset` header name (RFC 8594).
pub const SUNSET: HeaderName = HeaderName::from_static("sunset");

/// The deprecation policy of one version, given to
/// [`ApiVersioningBuilder::deprecate`](crate::ApiVersioningBuilder::deprecate).
///
/// ```
/// use engine_ops_apiver::Deprecation;
/// use std::time::{Duration, SystemTime};
///
/// let day = Duration::from_secs(86_400);
/// let policy = Deprecation::since(SystemTime::now())
///     .sunset(SystemTime::now() + 180 * day)
///     .successor_link("https://api.example.com/docs/v2")
///     .deprecation_link("https://api.example.com/docs/deprecations")
///     .message("v1 is deprecated: move to v2 before the sunset date");
/// # let _ = policy;
/// ```
#[derive(Debug, Clone)]
pub struct Deprecation {
    pub(crate) since: SystemTime,
    pub(crate) sunset: Option<SystemTime>,
    pub(crate) successor_version: Option<Result<Version, (String, ParseVersionError)>>,
    pub(crate) successor_link: Option<String>,
    pub(crate) deprecation_link: Option<String>,
    pub(crate) sunset_link: Option<String>,
    pub(crate) message: Option<String>,
}

impl Deprecation {
    /// Deprecated since `at` (which may be in the future: RFC 9745 allows announcing a
    /// deprecation ahead of time).
    pub fn since(at: SystemTime) -> Self {
        Self {
            since: at,
            sunset: None,
            successor_version: None,
            successor_link: None,
            deprecation_link: None,
            sunset_link: None,
            message: None,
        }
    }

    /// The version stops answering at `at`: from then on its requests get `410 Gone`.
    /// It must not be before the deprecation date.
    pub fn sunset(mut self, at: SystemTime) -> Self {
        self.sunset = Some(at);
        self
    }

    /// The version clients should move to, named in the `Warning` message and in the `410`
    /// problem body. Defaults to the latest version.
    pub fn successor_version(mut self, version: impl IntoVersion) -> Self {
        self.successor_version = Some(version.into_version());
        self
    }

    /// `Link: <url>; rel="successor-version"`: where the successor is documented or served.
    pub fn successor_link(mut self, url: impl Into<String>) -> Self {
        self.successor_link = Some(url.into());
        self
    }

    /// `Link: <url>; rel="deprecation"`: a page about the deprecation (RFC 9745).
    pub fn deprecation_link(mut self, url: impl Into<String>) -> Self {
        self.deprecation_link = Some(url.into());
        self
    }

    /// `Link: <url>; rel="sunset"`: a page about the sunset (RFC 8594).
    pub fn sunset_link(mut self, url: impl Into<String>) -> Self {
        self.sunset_link = Some(url.into());
        self
    }

    /// The text of `Warning: 299 - "<message>"`. Printable ASCII; quotes and backslashes are
    /// escaped. Defaults to `API version v1 is deprecated[ and will be removed on <date>];
    /// use v2`.
    pub fn message(mut self, text: impl Into<String>) -> Self {
        self.message = Some(text.into());
        self
    }
}

/// A validated policy with its header values rendered once.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Whole seconds.
    pub(crate) sunset: Option<SystemTime>,
    pub(crate) successor: Version,
    pub(crate) successor_link: Option<String>,
    /// In the order they are appended to a response.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

/// The latest date an HTTP date can hold: 9999-12-31T23:59:59Z.
const MAX_HTTP_DATE_SECS: u64 = 253_402_300_799;

fn whole_seconds(at: SystemTime) -> Option<(u64, SystemTime)> {
    let secs = at.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (secs <= MAX_HTTP_DATE_SECS).then(|| (secs, UNIX_EPOCH + Duration::from_secs(secs)))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`). Dates outside 1970..9999 are clamped
/// so that this never panics; policies are validated before they get here.
pub(crate) fn http_date(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(MAX_HTTP_DATE_SECS);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

fn link(version: Version, rel: &'static str, url: &str) -> Result<HeaderValue, Error> {
    let invalid = || Error::InvalidLink {
        version,
        rel,
        url: url.to_owned(),
    };
    if url.is_empty() || url.parse::<http::Uri>().is_err() {
        return Err(invalid());
    }
    HeaderValue::try_from(format!("<{url}>; rel=\"{rel}\"")).map_err(|_| invalid())
}

fn warning(version: Version, message: &str) -> Result<HeaderValue, Error> {
    if !message.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(Error::InvalidMessage(version));
    }
    let mut value = String::with_capacity(message.len() + 10);
    value.push_str("299 - \"");
    for c in message.chars() {
        if c == '"' || c == '\\' {
            value.push('\\');
        }
        value.push(c);
    }
    value.push('"');
    HeaderValue::try_from(value).map_err(|_| Error::InvalidMessage(version))
}

impl Policy {
    /// Validates `deprecation` for `version`; `latest` is the default successor.
    pub(crate) fn new(
        version: Version,
        deprecation: Deprecation,
        latest: Version,
        declared: &[Version],
    ) -> Result<Self, Error> {
        let (since_secs, since) =
            whole_seconds(deprecation.since).ok_or(Error::DateOutOfRange {
                version,
                what: "deprecation",
            })?;
        let sunset = match deprecation.sunset {
            None => None,
            Some(at) => {
                let (_, sunset) = whole_seconds(at).ok_or(Error::DateOutOfRange {
                    version,
                    what: "sunset",
                })?;
                if sunset < since {
                    return Err(Error::SunsetBeforeDeprecation {
                        version,
                        deprecation: http_date(since),
                        sunset: http_date(sunset),
                    });
                }
                Some(sunset)
            }
        };
        let successor = match deprecation.successor_version {
            None => latest,
            Some(parsed) => {
                let successor = parsed?;
                if !declared.contains(&successor) {
                    return Err(Error::UnknownVersion {
                        version: successor,
                        context: "successor_version",
                    });
                }
                if successor <= version {
                    return Err(Error::SuccessorNotNewer { version, successor });
                }
                successor
            }
        };

        let mut headers = vec![(
            DEPRECATION,
            HeaderValue::try_from(format!("@{since_secs}")).map_err(|_| Error::DateOutOfRange {
                version,
                what: "deprecation",
            })?,
        )];
        if let Some(sunset) = sunset {
            headers.push((
                SUNSET,
                HeaderValue::try_from(http_date(sunset)).map_err(|_| Error::DateOutOfRange {
                    version,
                    what: "sunset",
                })?,
            ));
        }
        for (rel, url) in [
            ("successor-version", &deprecation.successor_link),
            ("deprecation", &deprecation.deprecation_link),
            ("sunset", &deprecation.sunset_link),
        ] {
            if let Some(url) = url {
                headers.push((LINK, link(version, rel, url)?));
            }
        }
        let message = match deprecation.message {
            Some(message) => message,
            None => {
                let mut message = format!("API version {version} is deprecated");
                if let Some(sunset) = sunset {
                    message.push_str(" and will be removed on ");
                    message.push_str(&http_date(sunset));
                }
                if successor > version {
                    message.push_str(&format!("; use {successor}"));
                }
                message
            }
        };
        headers.push((WARNING, warning(version, &message)?));

        Ok(Self {
            sunset,
            successor,
            successor_link: deprecation.successor_link,
            headers,
        })
    }

    /// Whether the version answers `410` at `now`.
    pub(crate) fn is_sunset(&self, now: SystemTime) -> bool {
        self.sunset.is_some_and(|sunset| now >= sunset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32) -> Version {
        Version::new(major, 0)
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn header(policy: &Policy, name: &str) -> Vec<String> {
        policy
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn header_values_have_exact_syntax() {
        let policy = Policy::new(
            v(1),
            Deprecation::since(at(1_688_169_599) + Duration::from_millis(900))
                .sunset(at(1_798_761_600))
                .successor_link("https://api.example.com/v2")
                .deprecation_link("https://example.com/dep")
                .sunset_link("/sunset"),
            v(2),
            &[v(1), v(2)],
        )
        .unwrap();
        assert_eq!(header(&policy, "deprecation"), ["@1688169599"]);
        assert_eq!(header(&policy, "sunset"), ["Fri, 01 Jan 2027 00:00:00 GMT"]);
        assert_eq!(
            header(&policy, "link"),
            [
                "<https://api.example.com/v2>; rel=\"successor-version\"",
                "<https://example.com/dep>; rel=\"deprecation\"",
                "</sunset>; rel=\"sunset\"",
            ]
        );
        assert_eq!(
            header(&policy, "warning"),
            [
                "299 - \"API version v1 is deprecated and will be removed on Fri, 01 Jan 2027 00:00:00 GMT; use v2\""
            ]
        );
    }

    #[test]
    fn warning_escapes_quotes() {
        let policy = Policy::new(
            v(1),
            Deprecation::since(at(0)).message(r#"say "bye" \o/"#),
            v(2),
            &[v(1), v(2)],
        )
        .unwrap();
        assert_eq!(header(&policy, "warning"), [r#"299 - "say \"bye\" \\o/""#]);
    }

    #[test]
    fn sunset_boundary_is_exact_to_the_second() {
        let policy = Policy::new(
            v(1),
            Deprecation::since(at(100)).sunset(at(200) + Duration::from_millis(500)),
            v(2),
            &[v(1), v(2)],
        )
        .unwrap();
        assert!(!policy.is_sunset(at(199) + Duration::from_nanos(999_999_999)));
        assert!(policy.is_sunset(at(200)));
        assert!(policy.is_sunset(at(201)));
    }

    #[test]
    fn invalid_policies_are_errors() {
        let declared = [v(1), v(2)];
        let check = |d: Deprecation| Policy::new(v(1), d, v(2), &declared).unwrap_err();
        assert!(matches!(
            check(Deprecation::since(at(200)).sunset(at(100))),
            Error::SunsetBeforeDeprecation { .. }
        ));
        assert!(matches!(
            check(Deprecation::since(UNIX_EPOCH - Duration::from_secs(1))),
            Error::DateOutOfRange { .. }
        ));
        assert!(matches!(
            check(Deprecation::since(at(0)).sunset(at(MAX_HTTP_DATE_SECS + 1))),
            Error::DateOutOfRange { .. }
        ));
        assert!(matches!(
            check(Deprecation::since(at(0)).successor_link("not a uri")),
            Error::InvalidLink { .. }
        ));
        assert!(matches!(
            check(Deprecation::since(at(0)).message("naïve")),
            Error::InvalidMessage(_)
        ));
        assert!(matches!(
            check(Deprecation::since(at(0)).message("a\nb")),
            Error::InvalidMessage(_)
        ));
        assert!(matches!(
            check(Deprecation::since(at(0)).successor_version("v3")),
            Error::UnknownVersion { .. }
        ));
        assert!(matches!(
            check(Deprecation::since(at(0)).successor_version("v1")),
            Error::SuccessorNotNewer { .. }
        ));
        assert!(matches!(
            check(Deprecation::since(at(0)).successor_version("v1.")),
            Error::InvalidVersion { .. }
        ));
        // The largest HTTP date is fine.
        Policy::new(
            v(1),
            Deprecation::since(at(0)).sunset(at(MAX_HTTP_DATE_SECS)),
            v(2),
            &declared,
        )
        .unwrap();
    }
}
