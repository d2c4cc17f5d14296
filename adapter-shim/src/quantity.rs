//! Float → Kubernetes `Quantity` strings, formatted exactly as prometheus-adapter formats them.
//!
//! prometheus-adapter builds every value as a *milli-quantity* in the DecimalSI format:
//! `milli = int64(v * 1000)` (the float product, truncated toward zero), then Kubernetes
//! canonicalises `{value: milli, scale: -3}`:
//!
//! 1. `0` prints as `"0"`.
//! 2. Every factor of 10 is stripped from `|milli|`: `milli = a · 10^t`, exponent `e = t - 3`.
//! 3. The exponent is lowered to a multiple of 3 (Go's truncating `%`): if `e % 3` is 1 or -2,
//!    `a *= 10, e -= 1`; if it is 2 or -1, `a *= 100, e -= 2`.
//! 4. The string is the decimal `a` (with its sign) followed by the DecimalSI suffix of `e`:
//!    -3 → `m`, 0 → ``, 3 → `k`, 6 → `M`, 9 → `G`, 12 → `T`, 15 → `P`.
//!
//! So `0.4` → `400m`, `10` → `10`, `1.5e6` → `1500k`, `1.005` → `1004m` (the product is
//! `1004.9999…`), and anything with `|v| < 0.001` → `0`.
//!
//! Where prometheus-adapter produces garbage, this module returns an error instead:
//! NaN, ±Inf and values whose milli form does not fit an `i64` (`|v| ≥ 2^63 / 1000`, about
//! 9.22e15) would become `-9223372036854775808m` in Go on amd64. [`MilliQuantity::from_f64`]
//! reports them as [`QuantityError`], and the caller decides what reaches the wire (the
//! shim omits such items; see the crate README).

use std::fmt;

/// Why a float has no Quantity form.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum QuantityError {
    /// The value is NaN (Prometheus writes it as `"NaN"`).
    #[error("value is NaN")]
    NaN,
    /// The value is +Inf or -Inf.
    #[error("value is {}Inf", if *.0 { "+" } else { "-" })]
    Infinite(
        /// `true` for +Inf.
        bool,
    ),
    /// `v * 1000` does not fit a signed 64-bit integer.
    #[error("value {0} is out of range for a milli-quantity (|v * 1000| must be below 2^63)")]
    OutOfRange(f64),
}

/// An integer number of thousandths: the exact value prometheus-adapter puts on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MilliQuantity(pub i64);

/// 2^63 as an f64 (exactly representable).
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

impl MilliQuantity {
    /// `trunc(v * 1000)`, the conversion prometheus-adapter applies (Go's `int64(v*1000.0)`).
    ///
    /// # Errors
    /// NaN, ±Inf, and products outside the open interval (-2^63, 2^63). The lower bound is
    /// open on purpose: `-2^63` itself prints as `-9223372036854775808m`, the very string
    /// prometheus-adapter emits for NaN, so it is never produced.
    pub fn from_f64(v: f64) -> Result<Self, QuantityError> {
        if v.is_nan() {
            return Err(QuantityError::NaN);
        }
        if v.is_infinite() {
            return Err(QuantityError::Infinite(v > 0.0));
        }
        let product = (v * 1000.0).trunc();
        if !(product > -TWO_POW_63 && product < TWO_POW_63) {
            return Err(QuantityError::OutOfRange(v));
        }
        // In range and integral, so the conversion is exact.
        #[allow(clippy::cast_possible_truncation)]
        Ok(Self(product as i64))
    }

    /// The canonical DecimalSI string of this milli-quantity.
    #[must_use]
    pub fn canonical(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for MilliQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        let negative = self.0 < 0;
        let mut a = self.0.unsigned_abs();
        let mut exponent: i32 = -3;
        while a.is_multiple_of(10) {
            a /= 10;
            exponent += 1;
        }
        // Lowering the exponent only re-multiplies factors of 10 removed above, so `a` never
        // exceeds the original magnitude.
        match exponent % 3 {
            1 | -2 => {
                a *= 10;
                exponent -= 1;
            }
            2 | -1 => {
                a *= 100;
                exponent -= 2;
            }
            _ => {}
        }
        let suffix = match exponent {
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            // |milli| < 2^64 < 10^20 has at most 19 trailing zeros, so exponent ≤ 15.
            _ => return Err(fmt::Error),
        };
        if negative {
            f.write_str("-")?;
        }
        write!(f, "{a}{suffix}")
    }
}

/// Formats `v` as prometheus-adapter does: `NewMilliQuantity(int64(v*1000), DecimalSI)`.
///
/// # Errors
/// See [`MilliQuantity::from_f64`]: NaN, ±Inf and out-of-range values have no faithful form.
pub fn format_value(v: f64) -> Result<String, QuantityError> {
    MilliQuantity::from_f64(v).map(MilliQuantity::canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings are derived by hand from the rule in the module docs (and, for the
    /// products that are not exact in binary, by working out the IEEE-754 rounding of
    /// `v * 1000`), never by running this module.
    #[test]
    fn table() {
        let ok: &[(f64, &str)] = &[
            // The anchor's verified table.
            (0.4, "400m"),
            (10.0, "10"),
            (1.5e6, "1500k"),
            (0.016, "16m"),
            (20.5, "20500m"),
            (1.0, "1"),
            (1000.0, "1k"),
            (1234.5678, "1234567m"),
            (0.0004, "0"),
            (0.001, "1m"),
            (-0.5, "-500m"),
            (1.005, "1004m"),
            (2.5e9, "2500M"),
            (9.2e15, "9200T"),
            // Zero and values that truncate to zero (never "-0").
            (0.0, "0"),
            (-0.0, "0"),
            (0.000_999_9, "0"),
            (-0.0009, "0"),
            (5e-4, "0"),
            (7.5e-4, "0"),
            (1e-9, "0"),
            (f64::MIN_POSITIVE, "0"),
            (-f64::MIN_POSITIVE, "0"),
            // Milli boundaries.
            (-0.001, "-1m"),
            (0.01, "10m"),
            (0.1, "100m"),
            (0.12, "120m"),
            (0.25, "250m"),
            (0.3, "300m"),
            (-0.4, "-400m"),
            (0.5, "500m"),
            (1.1, "1100m"),
            (1.5, "1500m"),
            (2.5, "2500m"),
            (2.675, "2675m"),
            (7.3891, "7389m"),
            (999.999, "999999m"),
            // Whole numbers: exponent lowered to a multiple of 3, never a decimal point.
            (42.0, "42"),
            (100.0, "100"),
            (1024.0, "1024"),
            (1200.0, "1200"),
            (1234.0, "1234"),
            (12_000.0, "12k"),
            (12_345.0, "12345"),
            (65_536.0, "65536"),
            (120_000.0, "120k"),
            (-1000.0, "-1k"),
            (-1.5e6, "-1500k"),
            (1e6, "1M"),
            (123_456_789.0, "123456789"),
            (1e9, "1G"),
            (1e12, "1T"),
            (1e15, "1P"),
            (9e15, "9P"),
            (-9e15, "-9P"),
        ];
        assert!(ok.len() >= 40);
        for &(v, want) in ok {
            assert_eq!(format_value(v).as_deref(), Ok(want), "format_value({v:e})");
        }
    }

    #[test]
    fn no_garbage() {
        assert_eq!(format_value(f64::NAN), Err(QuantityError::NaN));
        assert_eq!(
            format_value(f64::INFINITY),
            Err(QuantityError::Infinite(true))
        );
        assert_eq!(
            format_value(f64::NEG_INFINITY),
            Err(QuantityError::Infinite(false))
        );
        for v in [1e16, -1e16, 9.3e15, f64::MAX, f64::MIN] {
            assert_eq!(format_value(v), Err(QuantityError::OutOfRange(v)), "{v:e}");
        }
        // -2^63/1000 would print as Go's NaN garbage; it is refused.
        let min = -9_223_372_036_854_775.808;
        assert!(format_value(min).is_err());
        assert_eq!(
            QuantityError::Infinite(false).to_string(),
            "value is -Inf",
            "messages stay one line"
        );
    }

    #[test]
    fn canonical_integers() {
        let cases: &[(i64, &str)] = &[
            (0, "0"),
            (1, "1m"),
            (-1, "-1m"),
            (10, "10m"),
            (999, "999m"),
            (1000, "1"),
            (1001, "1001m"),
            (10_000, "10"),
            (100_000, "100"),
            (1_000_000, "1k"),
            (i64::MAX, "9223372036854775807m"),
            (i64::MIN + 1, "-9223372036854775807m"),
            (1_000_000_000_000_000_000, "1P"),
            (-4_000_000_000_000_000_000, "-4P"),
        ];
        for &(m, want) in cases {
            assert_eq!(MilliQuantity(m).to_string(), want, "milli {m}");
        }
    }
}
