//! The crate's one error type: configuration mistakes found when the layer is built.
//!
//! Request-time outcomes (a malformed version, a sunset version, a body too large) are HTTP
//! responses, never errors: see [`problem`](crate::problem).

use crate::version::{ParseVersionError, Version};

/// A configuration mistake, reported by
/// [`ApiVersioningBuilder::build`](crate::ApiVersioningBuilder::build).
///
/// Messages are lowercase, name the version or setting involved, and say how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string given as a version does not parse.
    #[error("{input:?} is not a version ({source}); write versions as `v2`, `2` or `2.1`")]
    InvalidVersion {
        /// The string.
        input: String,
        /// Why it does not parse.
        source: ParseVersionError,
    },
    /// No version was declared.
    #[error("no API version is declared; add at least one with `.version(...)`")]
    NoVersions,
    /// The same version was declared twice (perhaps spelled differently: `v2` and `2.0`).
    #[error("version {0} is declared twice; `v2`, `2` and `2.0` are the same version")]
    DuplicateVersion(Version),
    /// The default version is not one of the declared versions.
    #[error(
        "the default version {0} is not declared; declare it with `.version({0:?})` or pick a declared one"
    )]
    UnknownDefault(Version),
    /// A deprecation or a change names a version that is not declared.
    #[error(
        "{context} names version {version}, which is not declared; declare it with `.version(...)` first"
    )]
    UnknownVersion {
        /// The version.
        version: Version,
        /// What named it: `deprecate`, `change`, `successor_version`.
        context: &'static str,
    },
    /// A version was deprecated twice.
    #[error("version {0} is deprecated twice; give one `Deprecation` per version")]
    DuplicateDeprecation(Version),
    /// A sunset earlier than its deprecation date.
    #[error(
        "version {version} has its sunset ({sunset}) before its deprecation ({deprecation}); a version is deprecated first and removed later"
    )]
    SunsetBeforeDeprecation {
        /// The version.
        version: Version,
        /// The deprecation date, as an HTTP date.
        deprecation: String,
        /// The sunset date, as an HTTP date.
        sunset: String,
    },
    /// A date before 1970 or after 9999, which HTTP dates cannot express.
    #[error(
        "the {what} date of version {version} is outside 1970..9999, which HTTP dates cannot express"
    )]
    DateOutOfRange {
        /// The version.
        version: Version,
        /// `deprecation` or `sunset`.
        what: &'static str,
    },
    /// A successor version that is not newer than the deprecated version.
    #[error(
        "the successor of version {version} is {successor}, which is not newer; name a newer version"
    )]
    SuccessorNotNewer {
        /// The deprecated version.
        version: Version,
        /// The successor named.
        successor: Version,
    },
    /// A change whose `from` is not older than its `to`.
    #[error(
        "the change from {from} to {to} goes backwards; a change goes from an older version to the next newer one"
    )]
    ChangeBackwards {
        /// Its older version.
        from: Version,
        /// Its newer version.
        to: Version,
    },
    /// A change that skips a declared version.
    #[error(
        "the change from {from} to {to} skips version {skipped}; split it into one change per pair of adjacent versions"
    )]
    ChangeSkipsVersion {
        /// Its older version.
        from: Version,
        /// Its newer version.
        to: Version,
        /// The first declared version in between.
        skipped: Version,
    },
    /// Changes are declared, but two adjacent versions have none between them.
    #[error(
        "the version change chain has a gap: no change from {from} to {to}; add one (`NoChange` if the two versions share one format)"
    )]
    ChangeGap {
        /// The older version.
        from: Version,
        /// The next newer version.
        to: Version,
    },
    /// No detection source is configured and there is no default version to fall back on.
    #[error("no version source is configured; add one with `.detect(...)`")]
    NoSources,
    /// A header name that is not a valid HTTP header name.
    #[error("{0:?} is not a valid header name")]
    InvalidHeaderName(String),
    /// An empty query parameter name.
    #[error("the query parameter name is empty; use a name such as `api_version`")]
    EmptyQueryName,
    /// A path prefix that does not start with `/`.
    #[error("the path prefix {0:?} does not start with `/`; write it as `/api`")]
    InvalidPathPrefix(String),
    /// A vendor name that is empty or holds characters a media type cannot.
    #[error("{0:?} is not a valid vendor name for `application/vnd.<vendor>.v2+json`")]
    InvalidVendor(String),
    /// A link that is not a valid URI reference.
    #[error("the {rel} link of version {version}, {url:?}, is not a valid URI")]
    InvalidLink {
        /// The version.
        version: Version,
        /// `successor-version`, `deprecation` or `sunset`.
        rel: &'static str,
        /// The link.
        url: String,
    },
    /// A deprecation message that cannot be sent in a header.
    #[error(
        "the deprecation message of version {0} must be printable ASCII to fit in a `Warning` header"
    )]
    InvalidMessage(Version),
    /// A problem type base that is not a valid URI.
    #[error("the problem type base {0:?} is not a valid URI")]
    InvalidProblemTypeBase(String),
}

impl From<(String, ParseVersionError)> for Error {
    fn from((input, source): (String, ParseVersionError)) -> Self {
        Self::InvalidVersion { input, source }
    }
}
