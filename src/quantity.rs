//! Byte sizes in config: plain bytes (`1073741824`) or a Kubernetes quantity (`1Gi`, `500Mi`,
//! `2G`), as `resources.limits.memory` writes them; printed back the short way (`1Gi`).

/// Binary suffixes first, so `format_bytes` finds the largest exact one.
const BINARY: [(&str, u64); 6] = [
    ("Ei", 1 << 60),
    ("Pi", 1 << 50),
    ("Ti", 1 << 40),
    ("Gi", 1 << 30),
    ("Mi", 1 << 20),
    ("Ki", 1 << 10),
];

const DECIMAL: [(&str, u64); 6] = [
    ("E", 1_000_000_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("T", 1_000_000_000_000),
    ("G", 1_000_000_000),
    ("M", 1_000_000),
    ("k", 1_000),
];

/// Parses a size in bytes: digits, an optional fraction, an optional suffix (`Ki`…`Ei`,
/// `k`…`E`). A fraction of a byte rounds up, as Kubernetes' `Quantity.Value()` does.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let bad =
        || format!("invalid size {text:?}: want bytes or a quantity, e.g. \"1Gi\", \"500Mi\"");
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    let unit = match suffix {
        "" => 1,
        s => BINARY
            .iter()
            .chain(DECIMAL.iter())
            .find(|(name, _)| *name == s)
            .map(|(_, unit)| *unit)
            .ok_or_else(bad)?,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) {
        return Err(bad());
    }
    let too_big = || format!("invalid size {text:?}: more than 2^64 bytes");
    let whole: u64 = whole.parse().map_err(|_| too_big())?;
    let mut bytes = whole.checked_mul(unit).ok_or_else(too_big)?;
    if !fraction.is_empty() {
        // Digits past 18 cannot change a whole byte of any unit up to Ei by more than one, and
        // rounding up covers that.
        let digits = &fraction[..fraction.len().min(18)];
        let num: u128 = digits.parse().map_err(|_| bad())?;
        let den = 10u128.pow(digits.len() as u32);
        let part = (num * u128::from(unit)).div_ceil(den);
        let part = u64::try_from(part).map_err(|_| too_big())?;
        bytes = bytes.checked_add(part).ok_or_else(too_big)?;
    }
    Ok(bytes)
}

/// `1Gi`, `512Mi`, or the plain number when no binary suffix divides it exactly.
pub fn format_bytes(bytes: u64) -> String {
    BINARY
        .iter()
        .find(|(_, unit)| bytes != 0 && bytes.is_multiple_of(*unit))
        .map_or_else(
            || bytes.to_string(),
            |(name, unit)| format!("{}{name}", bytes / unit),
        )
}

/// serde: a size given as a YAML number or a quantity string.
pub fn deserialize_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a size in bytes or a quantity such as \"1Gi\"")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v)
                .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            parse_bytes(v).map_err(E::custom)
        }
    }
    d.deserialize_any(Visitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_bytes_or_quantities() {
        let ok = [
            ("0", 0),
            ("1073741824", 1 << 30),
            ("1Gi", 1 << 30),
            ("500Mi", 500 << 20),
            ("1.5Ki", 1536),
            ("2G", 2_000_000_000),
            ("1k", 1000),
            ("0.5", 1),
            (" 15Ei ", 15 << 60),
        ];
        for (text, want) in ok {
            assert_eq!(parse_bytes(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "Gi",
            "1GB",
            "1 Gi",
            "-1",
            "1.",
            ".5",
            "1e3",
            "1m",
            "16Ei",
            "99999999999999999999",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn sizes_print_with_the_largest_exact_binary_suffix() {
        assert_eq!(format_bytes(1 << 30), "1Gi");
        assert_eq!(format_bytes(1536 << 20), "1536Mi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_bytes(0), "0");
        assert_eq!(format_bytes(4096), "4Ki");
    }
}
