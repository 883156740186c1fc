//! `Kudos`: the horde's currency as an exact fixed-point amount.
//!
//! Amounts are stored as integer thousandths of a kudos (`i64`), so sums are exact and the
//! ledger can promise that all balances add up to exactly zero. Floating point appears only at
//! the edges: the reward formula computes in `f64` and rounds once, and JSON carries a number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Thousandths of a kudos in one kudos.
const SCALE: i64 = 1000;

/// An exact amount of kudos, in thousandths. May be negative (debt).
///
/// Arithmetic is checked: [`Kudos::checked_add`] and friends return `None` on overflow, and the
/// operators `+`, `-` and unary `-` panic on overflow instead of wrapping (the range, ±9.2 × 10¹⁵
/// kudos, is far beyond any real balance, so an overflow is a bug worth stopping for).
///
/// Serialises as a JSON number with at most three decimals.
///
/// ```
/// use horde_core::Kudos;
/// let a: Kudos = "10.44".parse()?;
/// assert_eq!(a.milli(), 10_440);
/// assert_eq!((a + Kudos::from_milli(60)).to_string(), "10.5");
/// assert_eq!(serde_json::to_string(&a)?, "10.44");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kudos(i64);

impl Kudos {
    /// Zero kudos.
    pub const ZERO: Kudos = Kudos(0);

    /// An amount of `milli` thousandths of a kudos.
    pub const fn from_milli(milli: i64) -> Kudos {
        Kudos(milli)
    }

    /// A whole number of kudos, or `None` if it does not fit.
    pub const fn from_whole(kudos: i64) -> Option<Kudos> {
        match kudos.checked_mul(SCALE) {
            Some(m) => Some(Kudos(m)),
            None => None,
        }
    }

    /// The nearest amount to `value` (rounded half away from zero to a thousandth), or `None`
    /// for NaN, infinities and values out of range.
    pub fn from_f64(value: f64) -> Option<Kudos> {
        let scaled = (value * SCALE as f64).round();
        // `i64::MAX as f64` rounds up to 2^63, so compare with a strict bound.
        if scaled.is_finite() && scaled.abs() < 9.0e18 {
            Some(Kudos(scaled as i64))
        } else {
            None
        }
    }

    /// The amount in thousandths of a kudos.
    pub const fn milli(self) -> i64 {
        self.0
    }

    /// The amount as a float, for display and JSON only.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// Returns true if and only if the amount is strictly greater than zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Returns true if and only if the amount is strictly below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Kudos) -> Option<Kudos> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Kudos(v)),
            None => None,
        }
    }

    /// `self - other`, or `None` on overflow.
    pub const fn checked_sub(self, other: Kudos) -> Option<Kudos> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(Kudos(v)),
            None => None,
        }
    }

    /// `-self`, or `None` on overflow.
    pub const fn checked_neg(self) -> Option<Kudos> {
        match self.0.checked_neg() {
            Some(v) => Some(Kudos(v)),
            None => None,
        }
    }
}

impl std::ops::Add for Kudos {
    type Output = Kudos;
    fn add(self, other: Kudos) -> Kudos {
        self.checked_add(other)
            .unwrap_or_else(|| panic!("kudos overflow: {self} + {other}"))
    }
}

impl std::ops::Sub for Kudos {
    type Output = Kudos;
    fn sub(self, other: Kudos) -> Kudos {
        self.checked_sub(other)
            .unwrap_or_else(|| panic!("kudos overflow: {self} - {other}"))
    }
}

impl std::ops::Neg for Kudos {
    type Output = Kudos;
    fn neg(self) -> Kudos {
        self.checked_neg()
            .unwrap_or_else(|| panic!("kudos overflow: -{self}"))
    }
}

impl std::ops::AddAssign for Kudos {
    fn add_assign(&mut self, other: Kudos) {
        *self = *self + other;
    }
}

impl std::ops::SubAssign for Kudos {
    fn sub_assign(&mut self, other: Kudos) {
        *self = *self - other;
    }
}

/// Panics on overflow, like `+`; use it only where the sum is known to fit (a ledger sums its
/// balances in 128 bits instead).
impl std::iter::Sum for Kudos {
    fn sum<I: Iterator<Item = Kudos>>(iter: I) -> Kudos {
        iter.fold(Kudos::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Kudos {
    /// Shortest exact decimal: `10.44`, `-3`, `0.005`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / SCALE as u64;
        let frac = abs % SCALE as u64;
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

/// Why a text is not a kudos amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseKudosError {
    /// Not a decimal number, or more than three decimals.
    #[error("not a kudos amount with at most three decimals")]
    Invalid,
    /// Too large for the fixed-point range.
    #[error("kudos amount out of range")]
    OutOfRange,
}

impl FromStr for Kudos {
    type Err = ParseKudosError;

    /// Parses a decimal such as `12`, `-0.5` or `10.44` exactly (at most three decimals).
    fn from_str(s: &str) -> Result<Kudos, ParseKudosError> {
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && frac.is_empty()
            || !all_digits(whole)
            || !all_digits(frac)
            || frac.len() > 3
        {
            return Err(ParseKudosError::Invalid);
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| ParseKudosError::OutOfRange)?
        };
        let frac_milli: i64 = format!("{frac:0<3}")
            .parse()
            .map_err(|_| ParseKudosError::Invalid)?;
        let milli = whole
            .checked_mul(SCALE)
            .and_then(|w| w.checked_add(frac_milli))
            .ok_or(ParseKudosError::OutOfRange)?;
        Ok(Kudos(if negative { -milli } else { milli }))
    }
}

impl Serialize for Kudos {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % SCALE == 0 {
            serializer.serialize_i64(self.0 / SCALE)
        } else {
            serializer.serialize_f64(self.as_f64())
        }
    }
}

impl<'de> Deserialize<'de> for Kudos {
    /// Accepts any JSON number; rounds to the nearest thousandth.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Kudos, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Kudos::from_f64(value).ok_or_else(|| serde::de::Error::custom("kudos amount out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_kudos_scale_by_a_thousand_and_refuse_overflow() {
        assert_eq!(Kudos::from_whole(3), Some(Kudos::from_milli(3_000)));
        assert_eq!(Kudos::from_whole(-2), Some(Kudos::from_milli(-2_000)));
        assert_eq!(Kudos::from_whole(i64::MAX / 1_000 + 1), None);
    }

    #[test]
    fn floats_convert_up_to_a_bound_below_i64() {
        // 9e15 kudos is 9e18 thousandths: the first amount refused (i64 stops at 9.22e18).
        assert_eq!(Kudos::from_f64(9.0e15), None);
        assert_eq!(Kudos::from_f64(-9.0e15), None);
        assert!(Kudos::from_f64(8.999_999_999_999e15).is_some());
        assert_eq!(Kudos::from_f64(f64::NAN), None);
    }

    #[test]
    fn display_is_shortest_exact_decimal() {
        assert_eq!(Kudos::from_milli(10_440).to_string(), "10.44");
        assert_eq!(Kudos::from_milli(-3000).to_string(), "-3");
        assert_eq!(Kudos::from_milli(5).to_string(), "0.005");
        assert_eq!(Kudos::from_milli(-5).to_string(), "-0.005");
        assert_eq!(Kudos::ZERO.to_string(), "0");
    }

    #[test]
    fn parse_roundtrips_and_rejects_junk() {
        for s in ["0", "1", "-1", "10.44", "0.005", "123456.789", "-0.5"] {
            let k: Kudos = s.parse().unwrap();
            assert_eq!(k.to_string(), s);
        }
        assert_eq!("+2.5".parse::<Kudos>().unwrap(), Kudos::from_milli(2500));
        assert_eq!(".5".parse::<Kudos>().unwrap(), Kudos::from_milli(500));
        for s in [
            "",
            ".",
            "1.2345",
            "abc",
            "1e3",
            "--1",
            "1.-2",
            "99999999999999999999",
        ] {
            assert!(s.parse::<Kudos>().is_err(), "{s}");
        }
    }

    #[test]
    fn json_is_a_number() {
        assert_eq!(
            serde_json::to_string(&Kudos::from_milli(10_440)).unwrap(),
            "10.44"
        );
        assert_eq!(
            serde_json::to_string(&Kudos::from_milli(7000)).unwrap(),
            "7"
        );
        let k: Kudos = serde_json::from_str("47.44").unwrap();
        assert_eq!(k.milli(), 47_440);
        let k: Kudos = serde_json::from_str("3").unwrap();
        assert_eq!(k.milli(), 3000);
        assert!(serde_json::from_str::<Kudos>("1e300").is_err());
        assert!(serde_json::from_str::<Kudos>("\"1\"").is_err());
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Kudos::from_milli(i64::MAX);
        assert_eq!(max.checked_add(Kudos::from_milli(1)), None);
        assert_eq!(Kudos::from_milli(i64::MIN).checked_neg(), None);
        assert!(std::panic::catch_unwind(|| max + Kudos::from_milli(1)).is_err());
        assert_eq!(Kudos::from_f64(f64::NAN), None);
        assert_eq!(Kudos::from_f64(1e30), None);
        assert_eq!(Kudos::from_f64(10.4449).unwrap().milli(), 10_445);
    }
}
