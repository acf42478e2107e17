//! `maxSurge` and `maxUnavailable`: an instance count or a percentage of replicas, resolved to
//! counts exactly as Kubernetes' deployment controller does.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::Error;

/// An instance count (`3`) or a percentage of the replica count (`25%`), as Kubernetes'
/// `IntOrString` in `maxSurge` and `maxUnavailable`.
///
/// Parse it from text (`"3"`, `"25%"`), or build it from a `u32` (an instance count).
/// Percentages are 0 to 100; text that is neither a whole number nor a percentage is refused
/// with a message that says how to write it.
///
/// ```
/// use engine_ops_rollout::IntOrPercent;
///
/// assert_eq!("3".parse::<IntOrPercent>()?, IntOrPercent::Int(3));
/// assert_eq!("25%".parse::<IntOrPercent>()?, IntOrPercent::Percent(25));
/// assert_eq!(IntOrPercent::from(2), IntOrPercent::Int(2));
/// assert_eq!(IntOrPercent::Percent(25).to_string(), "25%");
/// for bad in ["-1", "110%", "20Percent", "", "%", "1.5"] {
///     assert!(bad.parse::<IntOrPercent>().is_err(), "{bad}");
/// }
/// # Ok::<(), engine_ops_rollout::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntOrPercent {
    /// A number of instances.
    Int(u32),
    /// A percentage of the replica count, 0 to 100.
    Percent(u32),
}

impl IntOrPercent {
    /// `true` for `0` and `0%`: the value a user *gave* as zero (before any rounding).
    pub fn is_zero(self) -> bool {
        matches!(self, IntOrPercent::Int(0) | IntOrPercent::Percent(0))
    }

    /// The instance count for `total` replicas: an `Int` as is, a `Percent` scaled and
    /// rounded up or down, as `intstr.GetScaledValueFromIntOrPercent` does.
    ///
    /// ```
    /// use engine_ops_rollout::IntOrPercent;
    ///
    /// assert_eq!(IntOrPercent::Percent(25).scaled(10, true), 3);
    /// assert_eq!(IntOrPercent::Percent(25).scaled(10, false), 2);
    /// assert_eq!(IntOrPercent::Int(7).scaled(10, false), 7);
    /// ```
    pub fn scaled(self, total: u32, round_up: bool) -> u32 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => {
                let product = u64::from(p) * u64::from(total);
                let scaled = if round_up {
                    product.div_ceil(100)
                } else {
                    product / 100
                };
                u32::try_from(scaled).unwrap_or(u32::MAX)
            }
        }
    }

    /// Refuses percentages above 100 %; `what` names the setting in the message.
    pub(crate) fn validate(self, what: &str) -> Result<Self, Error> {
        match self {
            IntOrPercent::Percent(p) if p > 100 => Err(Error::invalid(
                what,
                format!("`{p}%` is above 100%: give a percentage of replicas from 0% to 100%"),
            )),
            value => Ok(value),
        }
    }
}

impl Default for IntOrPercent {
    /// `25%`: Kubernetes' default for both `maxSurge` and `maxUnavailable`.
    fn default() -> Self {
        IntOrPercent::Percent(25)
    }
}

impl From<u32> for IntOrPercent {
    fn from(count: u32) -> Self {
        IntOrPercent::Int(count)
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for IntOrPercent {
    /// As Kubernetes writes it: a number, or a string ending in `%`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrPercent::Int(n) => serializer.serialize_u32(*n),
            IntOrPercent::Percent(_) => serializer.collect_str(self),
        }
    }
}

impl FromStr for IntOrPercent {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        parse(text).map_err(|message| Error::invalid("integer or percentage", message))
    }
}

/// What can be given as `maxSurge` or `maxUnavailable` to a builder: an [`IntOrPercent`], an
/// instance count (`u32`, or `i32` so that a bare literal works; a negative one is refused),
/// or text (`"25%"`). Malformed values are reported when the builder's `build` runs.
pub trait IntoIntOrPercent {
    /// The value, or why it is not one.
    ///
    /// ```
    /// use engine_ops_rollout::{IntOrPercent, IntoIntOrPercent};
    ///
    /// assert_eq!("25%".into_int_or_percent()?, IntOrPercent::Percent(25));
    /// assert_eq!(1.into_int_or_percent()?, IntOrPercent::Int(1));
    /// assert!((-1).into_int_or_percent().is_err());
    /// # Ok::<(), engine_ops_rollout::Error>(())
    /// ```
    fn into_int_or_percent(self) -> Result<IntOrPercent, Error>;
}

impl IntoIntOrPercent for IntOrPercent {
    fn into_int_or_percent(self) -> Result<IntOrPercent, Error> {
        Ok(self)
    }
}

impl IntoIntOrPercent for u32 {
    fn into_int_or_percent(self) -> Result<IntOrPercent, Error> {
        Ok(IntOrPercent::Int(self))
    }
}

impl IntoIntOrPercent for i32 {
    fn into_int_or_percent(self) -> Result<IntOrPercent, Error> {
        u32::try_from(self).map(IntOrPercent::Int).map_err(|_| {
            Error::invalid(
                "integer or percentage",
                format!("`{self}` is negative: give 0 or more instances, or a percentage (`25%`)"),
            )
        })
    }
}

impl IntoIntOrPercent for &str {
    fn into_int_or_percent(self) -> Result<IntOrPercent, Error> {
        self.parse()
    }
}

impl IntoIntOrPercent for String {
    fn into_int_or_percent(self) -> Result<IntOrPercent, Error> {
        self.parse()
    }
}

fn parse(text: &str) -> Result<IntOrPercent, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(
            "the value is empty: give a number of instances (`3`) or a percentage of replicas (`25%`)"
                .to_owned(),
        );
    }
    let (digits, percent) = match trimmed.strip_suffix('%') {
        Some(digits) => (digits, true),
        None => (trimmed, false),
    };
    if digits.is_empty() {
        return Err(
            "`%` has no number: write a percentage as digits followed by `%` (`25%`)".to_owned(),
        );
    }
    if let Some(rest) = digits.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(format!(
            "`{trimmed}` is negative: give 0 or more instances, or a percentage from 0% to 100%"
        ));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        if digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(format!(
                "`{trimmed}` is not a whole number: instances cannot be split; give a whole number (`1`, `2`) or a percentage (`25%`)"
            ));
        }
        return Err(format!(
            "`{trimmed}` is neither a number of instances nor a percentage: write digits (`3`) or digits followed by `%` (`25%`)"
        ));
    }
    let value: u32 = digits.parse().map_err(|_| {
        format!(
            "`{trimmed}` is too large: give a number of instances up to {}",
            u32::MAX
        )
    })?;
    match (percent, value) {
        (true, 101..) => Err(format!(
            "`{trimmed}` is above 100%: give a percentage of replicas from 0% to 100%"
        )),
        (true, _) => Ok(IntOrPercent::Percent(value)),
        (false, _) => Ok(IntOrPercent::Int(value)),
    }
}

/// `maxSurge` and `maxUnavailable` resolved to instance counts for one replica count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Fenceposts {
    /// Instances that may run above the replica count.
    pub surge: u32,
    /// Instances that may be missing from the replica count.
    pub unavailable: u32,
    /// `true` when both resolved to zero and `unavailable` was raised to 1 so that the update
    /// can make progress (Kubernetes does the same, silently). A driver reports it as a
    /// warning: the rollout takes one instance out of service at a time.
    pub unavailable_forced: bool,
}

impl Fenceposts {
    /// Validates and resolves `max_surge` and `max_unavailable` for `replicas`, with the
    /// rounding and the zero rule of Kubernetes' `ResolveFenceposts`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when both are given as zero (`0` or `0%`), or a percentage is
    /// above 100 %.
    ///
    /// ```
    /// use engine_ops_rollout::{Fenceposts, IntOrPercent};
    ///
    /// let f = Fenceposts::resolve(IntOrPercent::Percent(0), IntOrPercent::Percent(1), 10)?;
    /// assert_eq!((f.surge, f.unavailable, f.unavailable_forced), (0, 1, true));
    /// # Ok::<(), engine_ops_rollout::Error>(())
    /// ```
    pub fn resolve(
        max_surge: IntOrPercent,
        max_unavailable: IntOrPercent,
        replicas: u32,
    ) -> Result<Fenceposts, Error> {
        let max_surge = max_surge.validate("maxSurge")?;
        let max_unavailable = max_unavailable.validate("maxUnavailable")?;
        if max_surge.is_zero() && max_unavailable.is_zero() {
            return Err(Error::invalid(
                "maxUnavailable",
                "may not be 0 when `maxSurge` is 0: the update could never replace an instance; allow one extra instance (maxSurge 1) or one missing instance (maxUnavailable 1)",
            ));
        }
        let surge = max_surge.scaled(replicas, true);
        let unavailable = max_unavailable.scaled(replicas, false);
        if surge == 0 && unavailable == 0 {
            // As Kubernetes: rounding down may leave both at zero; one unavailable instance
            // lets the update progress even where a surge would not fit (quota).
            return Ok(Fenceposts {
                surge,
                unavailable: 1,
                unavailable_forced: true,
            });
        }
        Ok(Fenceposts {
            surge,
            unavailable,
            unavailable_forced: false,
        })
    }
}

/// `(surge, unavailable)` instance counts for `replicas`, exactly as Kubernetes'
/// `ResolveFenceposts` (`k8s.io/kubernetes/pkg/controller/deployment/util`) resolves
/// `maxSurge` and `maxUnavailable`: how many instances a rolling update may run **above** the
/// replica count, and how many may be **missing** from it.
///
/// - a surge percentage rounds **up**, an unavailable percentage rounds **down**
///   (`intstr.GetScaledValueFromIntOrPercent`), so 25 % of 10 is a surge of 3 and an
///   unavailability of 2;
/// - when both resolve to zero (say `0%` / `1%` of 10), unavailable becomes 1, so that the
///   update can make progress; [`Fenceposts::resolve`] tells whether that happened
///   ([`Fenceposts::unavailable_forced`]), so that a driver can warn;
/// - both *given* as zero is refused, as the API server's validation refuses it.
///
/// One difference from Kubernetes, on purpose: a percentage above 100 % is refused for
/// `maxSurge` too (Kubernetes refuses it only for `maxUnavailable`). A rolling update never
/// runs more than twice its replicas, so a surge above 100 % cannot change anything and is
/// almost always a typo.
///
/// # Errors
///
/// [`Error::InvalidConfig`] when both are given as zero (`may not be 0 when `maxSurge` is
/// 0`, as the Kubernetes API server says), or a percentage is above 100 %.
///
/// ```
/// use engine_ops_rollout::{IntOrPercent, IntOrPercent::*, resolve_fenceposts};
///
/// let quarter: IntOrPercent = "25%".parse()?;
/// assert_eq!(resolve_fenceposts(quarter, quarter, 10)?, (3, 2));
/// assert_eq!(resolve_fenceposts(Percent(25), Percent(25), 4)?, (1, 1));
/// assert_eq!(resolve_fenceposts(Percent(10), Percent(10), 3)?, (1, 0));
/// assert_eq!(resolve_fenceposts(Percent(0), Percent(1), 10)?, (0, 1));
/// assert!(resolve_fenceposts(0.into(), "0%".parse()?, 10).is_err());
/// # Ok::<(), engine_ops_rollout::Error>(())
/// ```
pub fn resolve_fenceposts(
    max_surge: IntOrPercent,
    max_unavailable: IntOrPercent,
    replicas: u32,
) -> Result<(u32, u32), Error> {
    Fenceposts::resolve(max_surge, max_unavailable, replicas).map(|f| (f.surge, f.unavailable))
}

#[cfg(test)]
mod tests {
    use super::IntOrPercent::{Int, Percent};
    use super::*;

    #[test]
    fn parses_counts_and_percentages() {
        assert_eq!("3".parse::<IntOrPercent>().unwrap(), Int(3));
        assert_eq!("0".parse::<IntOrPercent>().unwrap(), Int(0));
        assert_eq!("25%".parse::<IntOrPercent>().unwrap(), Percent(25));
        assert_eq!("100%".parse::<IntOrPercent>().unwrap(), Percent(100));
        assert_eq!(" 7 ".parse::<IntOrPercent>().unwrap(), Int(7));
        assert_eq!(IntOrPercent::from(4), Int(4));
        assert_eq!(IntOrPercent::default(), Percent(25));
        assert_eq!(Int(3).to_string(), "3");
        assert_eq!(Percent(25).to_string(), "25%");
    }

    #[test]
    fn rejects_malformed_text_with_a_message_that_says_how_to_write_it() {
        let cases = [
            ("-1", "negative"),
            ("-5%", "negative"),
            ("110%", "above 100%"),
            (
                "20Percent",
                "neither a number of instances nor a percentage",
            ),
            ("", "empty"),
            ("%", "has no number"),
            ("1.5", "not a whole number"),
            ("1.5%", "not a whole number"),
            ("99999999999", "too large"),
            ("3 %", "neither"),
        ];
        for (text, expected) in cases {
            let err = text.parse::<IntOrPercent>().unwrap_err();
            assert!(err.is_bad_input());
            let message = err.to_string();
            assert!(
                message.contains(expected),
                "{text:?}: {message:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn integer_inputs_refuse_negative_counts() {
        assert_eq!(2.into_int_or_percent().unwrap(), Int(2));
        assert_eq!(2u32.into_int_or_percent().unwrap(), Int(2));
        assert!((-1).into_int_or_percent().is_err());
        assert_eq!(
            String::from("5%").into_int_or_percent().unwrap(),
            Percent(5)
        );
    }

    #[test]
    fn serializes_as_kubernetes_writes_it() {
        assert_eq!(serde_json::to_string(&Int(3)).unwrap(), "3");
        assert_eq!(serde_json::to_string(&Percent(25)).unwrap(), "\"25%\"");
    }

    /// Cases worked out from `ResolveFenceposts` and `GetScaledValueFromIntOrPercent`.
    #[test]
    fn resolves_as_kubernetes_does() {
        let cases = [
            // (maxSurge, maxUnavailable, replicas) -> (surge, unavailable, forced)
            ((Percent(25), Percent(25), 10), (3, 2, false)),
            ((Percent(25), Percent(25), 4), (1, 1, false)),
            ((Percent(25), Percent(25), 1), (1, 0, false)),
            ((Percent(10), Percent(10), 3), (1, 0, false)),
            ((Percent(0), Percent(1), 10), (0, 1, true)),
            ((Percent(0), Percent(25), 3), (0, 1, true)),
            ((Percent(0), Percent(50), 3), (0, 1, false)),
            ((Int(0), Int(1), 10), (0, 1, false)),
            ((Int(1), Int(0), 10), (1, 0, false)),
            ((Int(5), Percent(100), 4), (5, 4, false)),
            ((Percent(100), Int(0), 7), (7, 0, false)),
            ((Percent(30), Percent(30), 10), (3, 3, false)),
            ((Percent(33), Percent(33), 10), (4, 3, false)),
            ((Percent(25), Percent(25), 0), (0, 1, true)),
            ((Int(2), Int(3), 0), (2, 3, false)),
        ];
        for ((surge, unavailable, replicas), expected) in cases {
            let f = Fenceposts::resolve(surge, unavailable, replicas).unwrap();
            assert_eq!(
                (f.surge, f.unavailable, f.unavailable_forced),
                expected,
                "maxSurge {surge}, maxUnavailable {unavailable}, replicas {replicas}"
            );
            assert_eq!(
                resolve_fenceposts(surge, unavailable, replicas).unwrap(),
                (expected.0, expected.1)
            );
        }
    }

    #[test]
    fn both_given_as_zero_is_refused_like_the_api_server() {
        for (surge, unavailable) in [
            (Int(0), Int(0)),
            (Percent(0), Percent(0)),
            (Int(0), Percent(0)),
            (Percent(0), Int(0)),
        ] {
            let err = resolve_fenceposts(surge, unavailable, 10).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains("maxUnavailable")
                    && message.contains("may not be 0 when `maxSurge` is 0"),
                "{message}"
            );
        }
    }

    #[test]
    fn percentages_above_100_are_refused_by_name() {
        let err = resolve_fenceposts(Percent(150), Int(1), 10).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid maxSurge: `150%` is above 100%"),
            "{err}"
        );
        let err = resolve_fenceposts(Int(1), Percent(101), 10).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid maxUnavailable:"),
            "{err}"
        );
    }
}
