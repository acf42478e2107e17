//! The `application/health+json` response format.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The media type of probe responses.
pub const HEALTH_JSON: &str = "application/health+json";

/// The outcome of a probe or of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Healthy.
    Pass,
    /// Healthy, with a problem worth knowing about (a non-critical check failed).
    Warn,
    /// Unhealthy.
    Fail,
}

impl Status {
    /// The HTTP status a probe answers with: `200` for `pass` and `warn`, `503` for `fail`.
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::Pass | Self::Warn => StatusCode::OK,
            Self::Fail => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }

    /// The minimal body, `{"status":"…"}`.
    pub(crate) fn minimal_body(self) -> &'static [u8] {
        match self {
            Self::Pass => br#"{"status":"pass"}"#,
            Self::Warn => br#"{"status":"warn"}"#,
            Self::Fail => br#"{"status":"fail"}"#,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How much a probe response tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Detail {
    /// Only `{"status": …}` (the default): nothing about internals is exposed.
    #[default]
    Never,
    /// The full report when the request asks for it with `?verbose` (also `?verbose=true`,
    /// `?verbose=1`; `?verbose=false` and `?verbose=0` do not count).
    OnRequest,
    /// The full report on every request.
    Always,
}

impl Detail {
    pub(crate) fn shows(self, query: Option<&str>) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::OnRequest => query.is_some_and(wants_verbose),
        }
    }
}

fn wants_verbose(query: &str) -> bool {
    query.split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        key == "verbose" && !matches!(value, "false" | "0")
    })
}

/// A probe's full report: what the response body holds when detail is shown.
///
/// Bodies follow the *Health Check Response Format for HTTP APIs*
/// ([draft-inadarei-api-health-check-06]), the format behind the `application/health+json`
/// media type:
///
/// ```json
/// {
///   "status": "warn",
///   "checks": {
///     "postgres": [
///       { "status": "pass", "time": "2026-05-01T12:00:00.123Z",
///         "observedValue": 1.25, "observedUnit": "ms" }
///     ],
///     "search": [
///       { "status": "warn", "time": "2026-05-01T12:00:00.120Z",
///         "observedValue": 500.0, "observedUnit": "ms", "output": "timed out after 500ms" }
///     ]
///   }
/// }
/// ```
///
/// - `status` is `pass`, `warn` or `fail`. `pass` and `warn` answer `200 OK`, `fail` answers
///   `503 Service Unavailable`.
/// - `checks` is keyed by check name; as the draft requires, each value is an array (here
///   always of one object). `time` is when the check ran (RFC 3339, UTC), `observedValue` how
///   long it took, in `observedUnit` (always `ms`), and `output` the error when the check did
///   not pass.
/// - `output` at the top level says why the lifecycle fails the probe (`"starting"`,
///   `"draining"`, …).
///
/// Only `status` is sent unless detail is enabled (see [`Detail`]): check names and error
/// messages describe internals that a public endpoint should not expose.
///
/// [draft-inadarei-api-health-check-06]: https://datatracker.ietf.org/doc/html/draft-inadarei-api-health-check-06
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// The overall status.
    pub status: Status,
    /// Why the lifecycle fails the probe, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Each check's result, keyed by check name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, Vec<CheckReport>>,
}

impl HealthReport {
    /// A report with a status and nothing else.
    pub fn new(status: Status) -> Self {
        Self {
            status,
            output: None,
            checks: BTreeMap::new(),
        }
    }

    /// The report of the check called `name`, if the probe ran it.
    pub fn check(&self, name: &str) -> Option<&CheckReport> {
        self.checks.get(name).and_then(|v| v.first())
    }

    /// The report as `application/health+json`.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|_| self.status.minimal_body().to_vec())
    }
}

/// One check's result within a [`HealthReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireCheck", try_from = "WireCheck")]
#[non_exhaustive]
pub struct CheckReport {
    /// The check's status, after criticality: a non-critical check that failed is `warn`.
    pub status: Status,
    /// When the check ran (millisecond precision on the wire).
    pub time: SystemTime,
    /// How long it took (microsecond precision on the wire).
    pub duration: Duration,
    /// The error, when the check did not pass.
    pub output: Option<String>,
}

impl CheckReport {
    /// A check report.
    pub fn new(
        status: Status,
        time: SystemTime,
        duration: Duration,
        output: Option<String>,
    ) -> Self {
        Self {
            status,
            time,
            duration,
            output,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCheck {
    status: Status,
    time: String,
    observed_value: f64,
    observed_unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<String>,
}

impl From<CheckReport> for WireCheck {
    fn from(c: CheckReport) -> Self {
        Self {
            status: c.status,
            time: format_rfc3339(c.time),
            // Microseconds as fractional milliseconds: exact in an f64 for any realistic value.
            observed_value: c.duration.as_micros() as f64 / 1000.0,
            observed_unit: "ms".to_owned(),
            output: c.output,
        }
    }
}

impl TryFrom<WireCheck> for CheckReport {
    type Error = String;

    fn try_from(w: WireCheck) -> Result<Self, String> {
        let time = parse_rfc3339(&w.time).ok_or_else(|| format!("invalid time `{}`", w.time))?;
        let scale = match w.observed_unit.as_str() {
            "ms" => 1000.0,
            "s" => 1_000_000.0,
            "us" | "µs" => 1.0,
            other => return Err(format!("unknown observedUnit `{other}`")),
        };
        let micros = (w.observed_value * scale).round();
        if !(0.0..=u64::MAX as f64).contains(&micros) {
            return Err(format!("invalid observedValue {}", w.observed_value));
        }
        Ok(Self {
            status: w.status,
            time,
            duration: Duration::from_micros(micros as u64),
            output: w.output,
        })
    }
}

// RFC 3339 without a date crate: days from civil and back (Howard Hinnant's algorithms).

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-05-01T12:00:00.123Z` (UTC, milliseconds; times before 1970 print as 1970).
pub(crate) fn format_rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Parses an RFC 3339 date-time (`Z` or a `±hh:mm` offset, any number of fraction digits,
/// kept to nanoseconds). Times before 1970 are not representable and give `None`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d == 0 || d > month_days[mo as usize - 1] {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec)
        - offset;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_777_636_800_123);
        assert_eq!(format_rfc3339(t), "2026-05-01T12:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let t = UNIX_EPOCH + Duration::from_millis(1_777_636_800_123);
        assert_eq!(parse_rfc3339("2026-05-01T12:00:00.123Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-05-01T14:00:00.123+02:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-05-01T11:30:00.123-00:30"), Some(t));
        assert_eq!(
            parse_rfc3339("2026-05-01T12:00:00.123456789123Z"),
            Some(t + Duration::from_nanos(456_789))
        );
        for bad in [
            "",
            "2026-05-01",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-05-01T24:00:00Z",
            "2026-05-01T12:00:00.Z",
            "2026-05-01T12:00:00",
            "2026-05-01T12:00:00+0200",
            "1969-12-31T23:59:59Z",
            "2026-05-01T12:00:00Zjunk",
            "2026-05-01T12:00:00.123€",
            "+026-05-01T12:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn verbose_query() {
        assert!(wants_verbose("verbose"));
        assert!(wants_verbose("a=1&verbose=true"));
        assert!(wants_verbose("verbose=1"));
        assert!(wants_verbose("verbose="));
        assert!(!wants_verbose("verbose=false"));
        assert!(!wants_verbose("verbose=0"));
        assert!(!wants_verbose("verbosex"));
        assert!(!wants_verbose(""));
        assert!(!Detail::Never.shows(Some("verbose")));
        assert!(!Detail::OnRequest.shows(None));
        assert!(Detail::OnRequest.shows(Some("verbose")));
        assert!(Detail::Always.shows(None));
    }

    #[test]
    fn minimal_bodies_match_serde() {
        for s in [Status::Pass, Status::Warn, Status::Fail] {
            assert_eq!(HealthReport::new(s).to_json(), s.minimal_body());
        }
    }

    #[test]
    fn rejects_malformed_checks() {
        let bad = [
            r#"{"status":"pass","time":"nope","observedValue":1,"observedUnit":"ms"}"#,
            r#"{"status":"pass","time":"2026-05-01T12:00:00Z","observedValue":1,"observedUnit":"parsecs"}"#,
            r#"{"status":"pass","time":"2026-05-01T12:00:00Z","observedValue":-1,"observedUnit":"ms"}"#,
            r#"{"status":"ok","time":"2026-05-01T12:00:00Z","observedValue":1,"observedUnit":"ms"}"#,
        ];
        for json in bad {
            assert!(serde_json::from_str::<CheckReport>(json).is_err(), "{json}");
        }
        let ok = r#"{"status":"warn","time":"2026-05-01T12:00:00Z","observedValue":0.5,"observedUnit":"s"}"#;
        let c: CheckReport = serde_json::from_str(ok).unwrap();
        assert_eq!(c.duration, Duration::from_millis(500));
    }

    fn status() -> impl Strategy<Value = Status> {
        prop_oneof![Just(Status::Pass), Just(Status::Warn), Just(Status::Fail)]
    }

    fn check_report() -> impl Strategy<Value = CheckReport> {
        // Times at millisecond and durations at microsecond precision: what the wire keeps.
        (
            status(),
            0u64..253_402_300_799_999,
            0u64..86_400_000_000,
            proptest::option::of(".*"),
        )
            .prop_map(|(status, ms, us, output)| {
                CheckReport::new(
                    status,
                    UNIX_EPOCH + Duration::from_millis(ms),
                    Duration::from_micros(us),
                    output,
                )
            })
    }

    proptest! {
        #[test]
        fn time_round_trips(ms in 0u64..253_402_300_799_999) {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            prop_assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse_rfc3339(&s);
        }

        #[test]
        fn report_round_trips(
            status in status(),
            output in proptest::option::of(".*"),
            checks in proptest::collection::btree_map("[a-z0-9_.-]{1,20}", check_report(), 0..5),
        ) {
            let report = HealthReport {
                status,
                output,
                checks: checks.into_iter().map(|(k, v)| (k, vec![v])).collect(),
            };
            let json = report.to_json();
            let back: HealthReport = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(back, report);
        }
    }
}
