//! Text formats kubectl users know: `HumanDuration` ages, RFC 1123 times, JSON with
//! 4-space indent and block-style YAML.
//!
//! The YAML emitter writes what `kubectl -o yaml` (go-yaml via sigs.k8s.io/yaml) writes for
//! JSON data: keys in the order given (serde_json sorts them, as kubectl's unstructured
//! output does), sequences not indented under their key, strings plain unless YAML would
//! read them as something else, multi-line strings as `|` blocks. It only has to handle
//! what JSON can hold, which is why it is small.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::Value;

pub use crate::printers::{human_duration, since};

/// Go's `time.RFC1123Z` in the given zone: `Mon, 02 Dec 2019 15:20:11 +0200`.
pub fn rfc1123z_in(ts: Timestamp, tz: TimeZone) -> String {
    ts.to_zoned_datetime(tz)
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

/// Pretty JSON with kubectl's 4-space indent, and a final newline.
pub fn to_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into a Vec cannot fail: keys are strings, there is no I/O.
    let _ = value.serialize(&mut ser);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    text.push('\n');
    text
}

/// A map's entries by key: kubectl's `-o yaml` sorts keys (sigs.k8s.io/yaml goes through a
/// Go map), while `-o json` keeps the object's field order, as a `Value` here does.
pub(crate) fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

/// Block-style YAML for a JSON value, keys sorted as kubectl's, ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar, 0));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (i, (key, value)) in sorted(map).into_iter().enumerate() {
        // The first key of a map inside a sequence item sits right after "- ".
        if i > 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str(&quote_if_needed(key));
        out.push(':');
        write_value_after_key(out, value, indent);
    }
}

fn write_value_after_key(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        // go-yaml puts a sequence's dashes at its key's indentation.
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar, indent + 2));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        if !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => write_map(out, map, indent + 2),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2),
            scalar => {
                out.push_str(&scalar_text(scalar, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar (or empty collection) as it follows `key: ` or `- `; `indent` is where the
/// lines of a `|` block start.
fn scalar_text(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(_) => "{}".to_string(),
        Value::Array(_) => "[]".to_string(),
        Value::String(s) => match literal_block(s, indent) {
            Some(block) => block,
            None => quote_if_needed(s),
        },
    }
}

/// A multi-line string as a `|` block, when every line can be written verbatim.
fn literal_block(s: &str, indent: usize) -> Option<String> {
    if !s.contains('\n')
        || s.starts_with(' ')
        || s.starts_with('\n')
        || s.chars().any(|c| c.is_control() && c != '\n')
        || s.lines().any(|l| l.ends_with(' '))
    {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let chomp = match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    };
    // `|+` keeps the newlines after the last line: they come back as empty lines.
    let mut lines: Vec<&str> = body.split('\n').collect();
    lines.extend(std::iter::repeat_n("", trailing.saturating_sub(1)));
    let mut out = chomp.to_string();
    for line in lines {
        out.push('\n');
        if !line.is_empty() {
            push_indent(&mut out, indent);
            out.push_str(line);
        }
    }
    Some(out)
}

/// Plain when YAML reads it back as this same string, double-quoted otherwise.
pub fn quote_if_needed(s: &str) -> String {
    if needs_quotes(s) {
        double_quoted(s)
    } else {
        s.to_string()
    }
}

fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return true;
    }
    if s.chars().any(|c| c.is_control() || c == '\u{feff}') {
        return true;
    }
    // Indicators that start something else when they open a plain scalar.
    if "[]{}#&*!|>'\"%@`,".contains(first) {
        return true;
    }
    let second = s[first.len_utf8()..].chars().next();
    if "-?:".contains(first) && second.is_none_or(|c| c == ' ') {
        return true;
    }
    if s.contains(": ") || s.contains(" #") {
        return true;
    }
    // YAML 1.1 (go-yaml, kubectl) reads these as null, booleans or numbers.
    const SPECIAL: &[&str] = &[
        "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    if SPECIAL.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        return true;
    }
    // Numbers, timestamps and the like: anything starting like a number is quoted. Quoting
    // a string that did not need it is harmless; not quoting one that did is not.
    let starts_numeric = first.is_ascii_digit()
        || ("+-.".contains(first) && second.is_some_and(|c| c.is_ascii_digit() || c == '.'));
    if starts_numeric {
        return true;
    }
    s == "---" || s == "..." || s == "<<"
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use jiff::SignedDuration;
    use serde_json::json;

    #[test]
    fn human_duration_matches_kubectl() {
        let cases: &[(i64, &str)] = &[
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (65, "65s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (180, "3m"),
            (599, "9m59s"),
            (600, "10m"),
            (45 * 60, "45m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 20 * 60, "3h20m"),
            (8 * 3600 - 1, "7h59m"),
            (8 * 3600, "8h"),
            (30 * 3600, "30h"),
            (48 * 3600 - 1, "47h"),
            (48 * 3600, "2d"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (8 * 86400 - 1, "7d23h"),
            (8 * 86400, "8d"),
            (30 * 86400, "30d"),
            (2 * 365 * 86400 - 1, "729d"),
            (2 * 365 * 86400, "2y"),
            (2 * 365 * 86400 + 30 * 86400, "2y30d"),
            (8 * 365 * 86400, "8y"),
            (20 * 365 * 86400, "20y"),
        ];
        for &(secs, want) in cases {
            assert_eq!(
                human_duration(SignedDuration::from_secs(secs)),
                want,
                "{secs}s"
            );
        }
        // Sub-second parts are truncated, like Go's int(d.Seconds()).
        assert_eq!(human_duration(SignedDuration::from_millis(1999)), "1s");
        assert_eq!(human_duration(SignedDuration::from_millis(-1500)), "0s");
    }

    #[test]
    fn since_and_rfc1123z() {
        let now: Timestamp = "2024-01-15T10:00:00Z".parse().unwrap();
        let then: Timestamp = "2024-01-15T09:57:00Z".parse().unwrap();
        assert_eq!(since(Some(then), now), "3m");
        assert_eq!(since(None, now), "<unknown>");
        let ts: Timestamp = "2019-12-02T13:20:11Z".parse().unwrap();
        assert_eq!(
            rfc1123z_in(ts, TimeZone::UTC),
            "Mon, 02 Dec 2019 13:20:11 +0000"
        );
        let plus2 = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(rfc1123z_in(ts, plus2), "Mon, 02 Dec 2019 15:20:11 +0200");
    }

    #[test]
    fn json_uses_four_spaces() {
        assert_eq!(
            to_json(&json!({"a": [1]})),
            "{\n    \"a\": [\n        1\n    ]\n}\n"
        );
    }

    #[test]
    fn yaml_block_style() {
        let v = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "pi", "labels": {"app": "x"}, "annotations": {}},
            "spec": {
                "completions": 3,
                "suspend": false,
                "template": {"spec": {"containers": [
                    {"name": "c", "command": ["sh", "-c", "echo hi\nexit 1\n"], "args": []}
                ]}}
            },
            "status": {"startTime": "2024-01-15T10:00:00Z", "ready": null, "list": [[1, 2], {"a": 1, "b": "-"}]}
        });
        let want = "\
apiVersion: batch/v1
kind: Job
metadata:
  annotations: {}
  labels:
    app: x
  name: pi
spec:
  completions: 3
  suspend: false
  template:
    spec:
      containers:
      - args: []
        command:
        - sh
        - -c
        - |
          echo hi
          exit 1
        name: c
status:
  list:
  - - 1
    - 2
  - a: 1
    b: \"-\"
  ready: null
  startTime: \"2024-01-15T10:00:00Z\"
";
        assert_eq!(to_yaml(&v), want);
    }

    #[test]
    fn yaml_quotes_what_would_read_back_differently() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            (
                "batch.kubernetes.io/job-name",
                "batch.kubernetes.io/job-name",
            ),
            ("-c", "-c"),
            ("", "\"\""),
            ("true", "\"true\""),
            ("No", "\"No\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            ("123", "\"123\""),
            ("1.5", "\"1.5\""),
            ("-1", "\"-1\""),
            (".5", "\".5\""),
            ("0x1F", "\"0x1F\""),
            ("a: b", "\"a: b\""),
            ("a #b", "\"a #b\""),
            ("key:", "\"key:\""),
            (" lead", "\" lead\""),
            ("*ref", "\"*ref\""),
            ("- item", "\"- item\""),
            ("{x}", "\"{x}\""),
            ("say \"hi\"", "say \"hi\""),
            ("tab\there", "\"tab\\there\""),
            ("ünï", "ünï"),
        ];
        for &(input, want) in cases {
            assert_eq!(quote_if_needed(input), want, "{input:?}");
        }
    }

    #[test]
    fn yaml_multiline_chomping() {
        assert_eq!(to_yaml(&json!({"s": "a\nb"})), "s: |-\n  a\n  b\n");
        assert_eq!(to_yaml(&json!({"s": "a\n\nb\n"})), "s: |\n  a\n\n  b\n");
        assert_eq!(to_yaml(&json!({"s": "a\n\n"})), "s: |+\n  a\n\n");
        // Not representable verbatim as a block: falls back to quotes.
        assert_eq!(to_yaml(&json!({"s": " a\nb"})), "s: \" a\\nb\"\n");
        assert_eq!(to_yaml(&json!({"s": "a \nb"})), "s: \"a \\nb\"\n");
        assert_eq!(to_yaml(&json!(["x\ny"])), "- |-\n  x\n  y\n");
        assert_eq!(to_yaml(&json!({})), "{}\n");
        assert_eq!(to_yaml(&json!("x")), "x\n");
    }
}
