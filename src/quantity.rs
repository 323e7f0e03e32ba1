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

/// A Kubernetes `resource.Quantity` (`apimachinery/pkg/api/resource/quantity.go`): a signed
/// decimal number and a suffix (binary `Ki`…`Ei`, decimal `n u m "" k M G T P E`, or an
/// exponent `e3`/`E-2`), held exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    /// The digits without the decimal point.
    digits: u128,
    /// How many of them are after the point.
    fraction: u32,
    /// Powers of 2 (binary suffix) or of 10 (decimal suffix or exponent).
    pow2: u32,
    pow10: i32,
}

/// The API server's message for text that is not a quantity.
pub const QUANTITY_SYNTAX: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

impl Quantity {
    pub fn parse(text: &str) -> Result<Quantity, String> {
        let bad = || QUANTITY_SYNTAX.to_owned();
        let (negative, t) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let split = t
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len());
        let (number, suffix) = t.split_at(split);
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let all: String = format!("{whole}{frac}");
        // Past 30 significant digits nothing we use can tell the difference.
        let trimmed = all.trim_start_matches('0');
        if trimmed.len() > 30 {
            return Err("quantity too large".to_owned());
        }
        let digits: u128 = if trimmed.is_empty() {
            0
        } else {
            trimmed.parse().map_err(|_| bad())?
        };
        let (pow2, pow10) = match suffix {
            "Ki" => (10, 0),
            "Mi" => (20, 0),
            "Gi" => (30, 0),
            "Ti" => (40, 0),
            "Pi" => (50, 0),
            "Ei" => (60, 0),
            "n" => (0, -9),
            "u" => (0, -6),
            "m" => (0, -3),
            "" => (0, 0),
            "k" => (0, 3),
            "M" => (0, 6),
            "G" => (0, 9),
            "T" => (0, 12),
            "P" => (0, 15),
            "E" => (0, 18),
            s if s.starts_with(['e', 'E']) => {
                let e: i32 = s[1..].parse().map_err(|_| bad())?;
                if !(-30..=30).contains(&e) {
                    return Err("quantity exponent out of range".to_owned());
                }
                (0, e)
            }
            _ => return Err(bad()),
        };
        Ok(Quantity {
            negative: negative && digits != 0,
            digits,
            fraction: u32::try_from(frac.len()).map_err(|_| bad())?,
            pow2,
            pow10,
        })
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// `value × 10^scale`, rounded up as Kubernetes does (`ScaledValue`); `None` when negative
    /// or past `u64`.
    pub fn scaled(&self, scale: i32) -> Option<u64> {
        if self.negative {
            return None;
        }
        let e = self.pow10 + scale - i32::try_from(self.fraction).ok()?;
        let mut v = self.digits.checked_mul(1u128.checked_shl(self.pow2)?)?;
        if e >= 0 {
            v = v.checked_mul(10u128.checked_pow(e.unsigned_abs())?)?;
        } else {
            let d = 10u128.checked_pow(e.unsigned_abs()).unwrap_or(u128::MAX);
            v = v.div_ceil(d);
        }
        u64::try_from(v).ok()
    }
}

/// A container's `resources`, in the units the kernel takes. Requests default to limits, as
/// the API server defaults them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    pub memory_bytes: Option<u64>,
    /// `limits.cpu` in millicores.
    pub cpu_limit_millis: Option<u64>,
    /// `requests.cpu` (or `limits.cpu`) in millicores.
    pub cpu_request_millis: Option<u64>,
}

impl ResourceLimits {
    pub fn is_empty(&self) -> bool {
        *self == ResourceLimits::default()
    }
}

/// Reads `resources` (`{limits: {cpu, memory}, requests: {cpu, memory}}`) with the API
/// server's checks (`ValidateResourceRequirements` in `pkg/apis/core/validation`): each a
/// quantity, not negative, a request at most its limit. Errors are `(field below resources,
/// message)`; other resource names are the caller's to warn about.
pub fn resource_limits(resources: &serde_json::Value) -> Result<ResourceLimits, Vec<String>> {
    let mut errors = Vec::new();
    let mut get = |section: &str, name: &str, scale: i32| -> Option<(u64, String)> {
        let v = resources.get(section)?.get(name)?;
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                errors.push(format!(
                    "{section}[{name}]: Invalid value: {other}: {QUANTITY_SYNTAX}"
                ));
                return None;
            }
        };
        match Quantity::parse(&text) {
            Err(e) => {
                errors.push(format!("{section}[{name}]: Invalid value: {text:?}: {e}"));
                None
            }
            Ok(q) if q.is_negative() => {
                errors.push(format!(
                    "{section}[{name}]: Invalid value: {text:?}: must be greater than or equal to 0"
                ));
                None
            }
            Ok(q) => match q.scaled(scale) {
                Some(n) => Some((n, text)),
                None => {
                    errors.push(format!(
                        "{section}[{name}]: Invalid value: {text:?}: too large"
                    ));
                    None
                }
            },
        }
    };
    let mem_limit = get("limits", "memory", 0);
    let cpu_limit = get("limits", "cpu", 3);
    let mem_request = get("requests", "memory", 0);
    let cpu_request = get("requests", "cpu", 3);
    for (name, req, lim) in [
        ("cpu", &cpu_request, &cpu_limit),
        ("memory", &mem_request, &mem_limit),
    ] {
        if let (Some((r, rt)), Some((l, lt))) = (req, lim)
            && r > l
        {
            errors.push(format!(
                "requests[{name}]: Invalid value: {rt:?}: must be less than or equal to {name} limit of {lt}"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // A zero limit is no limit: the kubelet sets a memory limit only `if memLimit != 0`, and
    // `milliCPUToQuota` returns no quota for 0 (`pkg/kubelet/kuberuntime/
    // kuberuntime_container_linux.go`, `helpers_linux.go`). Written as is, 0 bytes would
    // make every exec fail and 0 millicores would become the 1 ms minimum quota.
    Ok(ResourceLimits {
        memory_bytes: mem_limit.map(|(n, _)| n).filter(|&n| n > 0),
        cpu_limit_millis: cpu_limit.as_ref().map(|(n, _)| *n).filter(|&n| n > 0),
        cpu_request_millis: cpu_request.or(cpu_limit).map(|(n, _)| n),
    })
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
    fn kubernetes_quantities_scale_and_round_up() {
        let cpu = |t: &str| Quantity::parse(t).unwrap().scaled(3);
        let bytes = |t: &str| Quantity::parse(t).unwrap().scaled(0);
        assert_eq!(cpu("500m"), Some(500));
        assert_eq!(cpu("1.5"), Some(1500));
        assert_eq!(cpu("2"), Some(2000));
        assert_eq!(cpu("0.0001"), Some(1), "rounds up");
        assert_eq!(cpu("1e-3"), Some(1));
        assert_eq!(cpu("100u"), Some(1));
        assert_eq!(bytes("128Mi"), Some(128 << 20));
        assert_eq!(bytes("1Gi"), Some(1 << 30));
        assert_eq!(bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(bytes("129e6"), Some(129_000_000));
        assert_eq!(bytes("1M"), Some(1_000_000));
        assert_eq!(bytes("+1k"), Some(1000));
        assert!(Quantity::parse("-1").unwrap().is_negative());
        assert!(!Quantity::parse("-0").unwrap().is_negative());
        for bad in ["", "abc", "1GB", "1.2.3", "1 Gi", ".", "1Zi", "1e"] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn resources_are_validated_like_the_api_server() {
        use serde_json::json;
        let ok = resource_limits(&json!({"limits": {"memory": "32Mi", "cpu": "500m"}})).unwrap();
        assert_eq!(
            ok,
            ResourceLimits {
                memory_bytes: Some(32 << 20),
                cpu_limit_millis: Some(500),
                cpu_request_millis: Some(500),
            }
        );
        let req = resource_limits(&json!({"requests": {"cpu": 0.25}})).unwrap();
        assert_eq!(req.cpu_request_millis, Some(250));
        assert_eq!(req.cpu_limit_millis, None);
        assert!(resource_limits(&json!({})).unwrap().is_empty());
        // Zero limits are no limits, as the kubelet reads them; the request defaults to 0.
        let zero = resource_limits(&json!({"limits": {"memory": "0", "cpu": 0}})).unwrap();
        assert_eq!(
            zero,
            ResourceLimits {
                memory_bytes: None,
                cpu_limit_millis: None,
                cpu_request_millis: Some(0),
            }
        );
        let errs = resource_limits(&json!({
            "limits": {"cpu": "1", "memory": "-1"},
            "requests": {"cpu": "2", "memory": "lots"}
        }))
        .unwrap_err();
        assert_eq!(
            errs,
            [
                r#"limits[memory]: Invalid value: "-1": must be greater than or equal to 0"#.to_owned(),
                format!(r#"requests[memory]: Invalid value: "lots": {QUANTITY_SYNTAX}"#),
                r#"requests[cpu]: Invalid value: "2": must be less than or equal to cpu limit of 1"#
                    .to_owned(),
            ]
        );
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
