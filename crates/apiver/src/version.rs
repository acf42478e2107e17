//! API versions: parsing and ordering.
//!
//! A [`Version`] is a `major.minor` pair. `v2`, `V2`, `2` and `2.0` are the same version, and
//! versions are ordered numerically (`v2 < v2.1 < v10`). Parsing is strict, so that a typo is
//! an error rather than a different version: see [`ParseVersionError`] for what is refused.

use std::fmt;
use std::str::FromStr;

/// An API version: `major.minor`, ordered numerically.
///
/// ```
/// use engine_ops_apiver::Version;
///
/// let v: Version = "v2".parse()?;
/// assert_eq!(v, "2.0".parse()?);
/// assert_eq!(v, Version::new(2, 0));
/// assert!(Version::new(10, 0) > v);
/// assert_eq!(v.to_string(), "v2");
/// assert_eq!(Version::new(2, 1).to_string(), "v2.1");
/// # Ok::<(), engine_ops_apiver::ParseVersionError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    major: u32,
    minor: u32,
}

impl Version {
    /// The version `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// The major component.
    pub const fn major(self) -> u32 {
        self.major
    }

    /// The minor component.
    pub const fn minor(self) -> u32 {
        self.minor
    }

    /// Parses a version: an optional `v` or `V`, a major number and an optional `.minor`.
    ///
    /// Numbers are ASCII digits without leading zeros (`0` itself is fine) that fit in a
    /// `u32`. Nothing else is accepted: no whitespace, no sign, no suffix (`v1beta`), no third
    /// component (`1.2.3`).
    pub fn parse(input: &str) -> Result<Self, ParseVersionError> {
        Self::parse_bytes(input.as_bytes())
    }

    /// [`Version::parse`] over bytes, as found in a header value or a URL.
    pub(crate) fn parse_bytes(input: &[u8]) -> Result<Self, ParseVersionError> {
        if input.is_empty() {
            return Err(ParseVersionError::Empty);
        }
        let rest = match input[0] {
            b'v' | b'V' => &input[1..],
            _ => input,
        };
        if rest.is_empty() {
            return Err(ParseVersionError::MissingNumber);
        }
        let (major_part, minor_part) = match rest.iter().position(|&b| b == b'.') {
            Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
            None => (rest, None),
        };
        let major = parse_number(major_part)?;
        let minor = match minor_part {
            None => 0,
            Some([]) => return Err(ParseVersionError::MissingMinor),
            Some(part) => {
                if part.contains(&b'.') {
                    return Err(ParseVersionError::TooManyComponents);
                }
                parse_number(part)?
            }
        };
        Ok(Self { major, minor })
    }
}

fn parse_number(digits: &[u8]) -> Result<u32, ParseVersionError> {
    let Some(&first) = digits.first() else {
        return Err(ParseVersionError::MissingNumber);
    };
    let mut value: u32 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(ParseVersionError::InvalidCharacter);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(b - b'0')))
            .ok_or(ParseVersionError::Overflow)?;
    }
    if first == b'0' && digits.len() > 1 {
        return Err(ParseVersionError::LeadingZero);
    }
    Ok(value)
}

impl fmt::Display for Version {
    /// `v2` for `2.0`, `v2.1` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minor == 0 {
            write!(f, "v{}", self.major)
        } else {
            write!(f, "v{}.{}", self.major, self.minor)
        }
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Version {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Version {
    type Error = ParseVersionError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<u32> for Version {
    /// The version `major.0`.
    fn from(major: u32) -> Self {
        Self::new(major, 0)
    }
}

impl serde::Serialize for Version {
    /// Serialized as its display form, `"v2"` or `"v2.1"`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    /// Deserialized from a string with [`Version::parse`], or from a non-negative integer
    /// major version.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an API version such as \"v2\" or \"2.1\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Version, E> {
                Version::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Version, E> {
                u32::try_from(v)
                    .map(Version::from)
                    .map_err(|_| E::custom(ParseVersionError::Overflow))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Why a string is not a [`Version`].
///
/// ```
/// use engine_ops_apiver::{ParseVersionError, Version};
///
/// assert_eq!(Version::parse(""), Err(ParseVersionError::Empty));
/// assert_eq!(Version::parse("v"), Err(ParseVersionError::MissingNumber));
/// assert_eq!(Version::parse("v-1"), Err(ParseVersionError::InvalidCharacter));
/// assert_eq!(Version::parse("v1."), Err(ParseVersionError::MissingMinor));
/// assert_eq!(Version::parse("v99999999999"), Err(ParseVersionError::Overflow));
/// assert_eq!(Version::parse("v١"), Err(ParseVersionError::InvalidCharacter));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ParseVersionError {
    /// The input is empty.
    #[error("the version is empty; expected a version such as `v2` or `2.1`")]
    Empty,
    /// A `v` or a `.` without a number after it (`v`, `v.1`).
    #[error("the version has no number; expected a version such as `v2` or `2.1`")]
    MissingNumber,
    /// A trailing `.` without a minor number (`v1.`).
    #[error("the version ends with `.`; write `v1` or `v1.0`")]
    MissingMinor,
    /// A third component (`1.2.3`): versions are `major.minor`.
    #[error("the version has more than two components; versions are `major.minor`")]
    TooManyComponents,
    /// A character that is not an ASCII digit where a number was expected (`v-1`, `v1beta`,
    /// `v١`).
    #[error("the version contains a character that is not an ASCII digit")]
    InvalidCharacter,
    /// A number with a leading zero (`v01`, `1.05`), refused so that one version has one
    /// spelling.
    #[error("the version has a leading zero; write `v1` rather than `v01`")]
    LeadingZero,
    /// A number that does not fit in a `u32`.
    #[error("the version number is too large")]
    Overflow,
}

/// Converts a value into a [`Version`]: implemented for [`Version`], `u32` (a major version),
/// `&str` and `String` (parsed with [`Version::parse`]).
///
/// The builder takes this so that `"v1"`, `1` and `Version::new(1, 0)` are all accepted; a
/// string that does not parse is reported by
/// [`ApiVersioningBuilder::build`](crate::ApiVersioningBuilder::build).
pub trait IntoVersion {
    /// Converts `self` into a version, or says why it is not one.
    fn into_version(self) -> Result<Version, (String, ParseVersionError)>;
}

impl IntoVersion for Version {
    fn into_version(self) -> Result<Version, (String, ParseVersionError)> {
        Ok(self)
    }
}

impl IntoVersion for u32 {
    fn into_version(self) -> Result<Version, (String, ParseVersionError)> {
        Ok(Version::from(self))
    }
}

impl IntoVersion for &str {
    fn into_version(self) -> Result<Version, (String, ParseVersionError)> {
        Version::parse(self).map_err(|e| (self.to_owned(), e))
    }
}

impl IntoVersion for String {
    fn into_version(self) -> Result<Version, (String, ParseVersionError)> {
        Version::parse(&self).map_err(|e| (self, e))
    }
}

impl IntoVersion for &String {
    fn into_version(self) -> Result<Version, (String, ParseVersionError)> {
        self.as_str().into_version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_version_are_equal() {
        for s in ["v2", "V2", "2", "2.0", "v2.0", "V2.0"] {
            assert_eq!(Version::parse(s), Ok(Version::new(2, 0)), "{s}");
        }
        assert_eq!(Version::parse("v2.1"), Ok(Version::new(2, 1)));
        assert_eq!(Version::parse("0"), Ok(Version::new(0, 0)));
        assert_eq!(Version::parse("v1.0"), Ok(Version::new(1, 0)));
        assert_eq!(
            Version::parse("4294967295.4294967295"),
            Ok(Version::new(u32::MAX, u32::MAX))
        );
    }

    #[test]
    fn order_is_numeric() {
        let mut versions: Vec<Version> = ["v10", "v2", "v1.1", "v1", "v2.10", "v2.9"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        versions.sort();
        let shown: Vec<String> = versions.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["v1", "v1.1", "v2", "v2.9", "v2.10", "v10"]);
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        use ParseVersionError::*;
        let cases: &[(&str, ParseVersionError)] = &[
            ("", Empty),
            ("v", MissingNumber),
            ("V", MissingNumber),
            ("v.1", MissingNumber),
            (".", MissingNumber),
            ("v1.", MissingMinor),
            ("1.2.3", TooManyComponents),
            ("1..2", TooManyComponents),
            ("v-1", InvalidCharacter),
            ("-1", InvalidCharacter),
            ("+1", InvalidCharacter),
            ("v1beta", InvalidCharacter),
            ("vv1", InvalidCharacter),
            (" v1", InvalidCharacter),
            ("v1 ", InvalidCharacter),
            ("v١", InvalidCharacter),
            ("v1.x", InvalidCharacter),
            ("v01", LeadingZero),
            ("1.05", LeadingZero),
            ("v4294967296", Overflow),
            ("v99999999999999999999999", Overflow),
            ("1.4294967296", Overflow),
        ];
        for (input, expected) in cases {
            assert_eq!(Version::parse(input), Err(*expected), "{input:?}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let v = Version::new(2, 1);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, "\"v2.1\"");
        assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), v);
        assert_eq!(
            serde_json::from_str::<Version>("3").unwrap(),
            Version::new(3, 0)
        );
        assert!(serde_json::from_str::<Version>("\"v-1\"").is_err());
    }
}
