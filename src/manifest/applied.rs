//! What `apply` writes into the manifests directory: one file per object, named after the
//! object's identity and marked as apply's on its first line.
//!
//! kubectl apply addresses objects by identity (apiVersion/kind, namespace, name), never by
//! the file they came from. jobvisor keeps objects in files, so apply gives each object it
//! creates a file of its own, named from that identity, with [`HEADER`] as its first line.
//! Only a file with that header is apply's to rewrite; any other file is the user's, and an
//! object defined there is not apply's to change. The object is written as YAML from what
//! the user wrote (no defaults, no status), so the file reads like a manifest.

use std::fmt;

use serde_json::Value;

use crate::api::{Kind, ObjectMeta};

/// The first line of every file `apply` writes, and how it knows them again.
pub const HEADER: &str =
    "# Written by jobvisor apply; edits here are kept until the next apply of these objects.";

/// Whether `text` is a file `apply` wrote (its first line is [`HEADER`]).
pub fn is_written_by_apply(text: &str) -> bool {
    text.lines().next() == Some(HEADER)
}

/// The text of the file `apply` writes for `object`.
pub fn file_text(object: &Value) -> String {
    format!("{HEADER}\n{}", to_yaml(object))
}

/// What names an object: its kind (which fixes its apiVersion) and its namespaced name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ObjectId {
    pub fn new(kind: Kind, meta: &ObjectMeta) -> ObjectId {
        ObjectId {
            kind,
            namespace: meta.namespace().to_string(),
            name: meta.name().to_string(),
        }
    }

    /// The file `apply` creates for a new object: `job.batch_default_x.yaml`. `_` appears in
    /// no kind, namespace or name, so the name is one identity's only.
    pub fn file_name(&self) -> String {
        // Validation keeps names to DNS characters; anything else never reaches a path.
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| match c {
                    'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
                    _ => '-',
                })
                .collect()
        };
        let stem = format!(
            "{}_{}_{}",
            self.kind.name_prefix(),
            safe(&self.namespace),
            safe(&self.name)
        );
        // A file name has 255 bytes; a Pod's name alone may have 253. Longer ones are cut and
        // told apart by a checksum of the whole identity.
        const MAX_STEM: usize = 255 - ".yaml".len();
        if stem.len() <= MAX_STEM {
            return format!("{stem}.yaml");
        }
        let sum = crc32fast::hash(stem.as_bytes());
        let cut = MAX_STEM - "-01234567".len();
        format!("{}-{sum:08x}.yaml", &stem[..cut])
    }
}

/// `job.batch/x`: how kubectl names an object in what it prints.
impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.name_prefix(), self.name)
    }
}

// ---------------------------------------------------------------- YAML out

/// Block-style YAML that reads back as exactly `value`: strings are quoted unless plainly
/// strings, multi-line ones become literal blocks, and keys are sorted (as `kubectl -o yaml`).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(m, 0, false, &mut out),
        Value::Array(a) if !a.is_empty() => write_seq(a, 0, &mut out),
        // Indented, so no line of a literal block can read as `---` or `...`.
        other => write_inline(other, 2, &mut out),
    }
    out
}

fn pad(indent: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// `after_dash`: the map is a sequence item, and its first key goes on the `- ` line.
fn write_map(
    m: &serde_json::Map<String, Value>,
    indent: usize,
    after_dash: bool,
    out: &mut String,
) {
    let mut entries: Vec<_> = m.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 || !after_dash {
            pad(indent, out);
        }
        out.push_str(&scalar_string(k));
        out.push(':');
        write_value(v, indent, out);
    }
}

fn write_seq(a: &[Value], indent: usize, out: &mut String) {
    for item in a {
        pad(indent, out);
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                out.push(' ');
                write_map(m, indent + 2, true, out);
            }
            Value::Array(b) if !b.is_empty() => {
                out.push('\n');
                write_seq(b, indent + 2, out);
            }
            other => write_value(other, indent, out),
        }
    }
}

/// The value of a key at `indent` (or of an item of a sequence at `indent`), after its `:`
/// or `-`.
fn write_value(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(m, indent + 2, false, out);
        }
        // A sequence under a key at the key's own indentation, as kubectl writes them.
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(a, indent, out);
        }
        other => {
            out.push(' ');
            write_inline(other, indent + 2, out);
        }
    }
}

/// A scalar or empty collection, then the line's end; a literal block's lines at `content`.
fn write_inline(v: &Value, content: usize, out: &mut String) {
    match v {
        Value::Null => out.push_str("null\n"),
        Value::Bool(b) => out.push_str(if *b { "true\n" } else { "false\n" }),
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push('\n');
        }
        Value::String(s) if literal_block_fits(s) => write_literal(s, content, out),
        Value::String(s) => {
            out.push_str(&scalar_string(s));
            out.push('\n');
        }
        Value::Array(_) => out.push_str("[]\n"),
        Value::Object(_) => out.push_str("{}\n"),
    }
}

/// A literal block keeps a script readable; it can hold any multi-line text of printable
/// characters whose first line does not start with a blank (that would be taken for
/// indentation) and that does not start with a line break.
fn literal_block_fits(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\t', '\n'])
        && s.chars().all(|c| c == '\n' || c == '\t' || printable(c))
}

fn write_literal(s: &str, content: usize, out: &mut String) {
    // Chomping: `|` keeps one final line break, `|-` none, `|+` all of them.
    let trailing = s.len() - s.trim_end_matches('\n').len();
    out.push_str(match trailing {
        0 => "|-\n",
        1 => "|\n",
        _ => "|+\n",
    });
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(content, out);
            out.push_str(line);
        }
        out.push('\n');
    }
}

/// YAML's printable characters (`c-printable`), less those a reader may take for a line
/// break or a byte-order mark.
fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A string as a scalar that reads back as that string: plain when it is a word that YAML
/// (1.1 or 1.2) cannot take for anything else, double-quoted otherwise.
fn scalar_string(s: &str) -> String {
    if plain_is_safe(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Starts with a letter, holds only letters, digits and `._/-`, and is no YAML 1.1 boolean or
/// null (`y`, `no`, `off`, `Null`…); a number never starts with a letter.
fn plain_is_safe(s: &str) -> bool {
    const WORDS: [&str; 12] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "infinity",
    ];
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn read_back(text: &str) -> Value {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).unwrap();
        assert_eq!(docs.len(), 1, "{text}");
        docs.into_iter().next().unwrap()
    }

    #[test]
    fn yaml_reads_back_as_the_value() {
        let tricky = [
            "",
            "yes",
            "No",
            "ON",
            "y",
            "null",
            "~",
            "true",
            "1",
            "0x10",
            "010",
            "1.5",
            "1e3",
            ".inf",
            "-",
            "- a",
            "a: b",
            "#x",
            "x #y",
            " lead",
            "trail ",
            "a\tb",
            "'q'",
            "\"q\"",
            "\\",
            "é ü",
            "\u{1}",
            "\u{7f}",
            "\u{85}",
            "\u{2028}",
            "\u{feff}x",
            "💡",
            "@a",
            "`a`",
            "&a",
            "*a",
            "!a",
            "%a",
            "|",
            ">",
            "[a]",
            "{a}",
            "a,b",
            "?",
            "? a",
            "---",
            "...",
            "=",
            "<<",
            "nan",
            "NaN",
            "inf",
            "Infinity",
            "e5",
            "E",
            "Y",
            "n",
        ];
        let scripts = [
            "echo a\necho b",
            "echo a\n",
            "line\n\n\n",
            "a\n\nb\n",
            "  indented\nfirst",
            "first\n  indented more\n\ttabbed\n",
            "\nleading break",
            "x\n---\n...\n# not a comment",
            "crlf\r\nline",
            "ends with spaces  \nand  ",
        ];
        let mut strings: Vec<Value> = tricky.iter().map(|s| json!(s)).collect();
        strings.extend(scripts.iter().map(|s| json!(s)));
        let value = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "x", "1": "one", "true": "t"}},
            "spec": {
                "completions": 3,
                "suspend": false,
                "activeDeadlineSeconds": -1,
                "ratio": 0.5,
                "empty": {},
                "none": [],
                "nothing": null,
                "template": {"spec": {"containers": [
                    {"name": "c", "command": ["sh", "-c", "echo a\nexit 1\n"], "env": [{"name": "N", "value": "3"}]},
                    {"name": "d", "args": strings.clone()}
                ]}},
                "nested": [[1, [2, {"a": [3]}]], {"b": {}}, [], {}],
                "keys": strings.iter().filter_map(|s| s.as_str()).map(|s| (s.to_string(), json!(s))).collect::<serde_json::Map<String, Value>>(),
            }
        });
        let text = to_yaml(&value);
        assert_eq!(read_back(&text), value, "{text}");
        for s in &strings {
            assert_eq!(read_back(&to_yaml(s)), *s, "{s:?}");
        }
    }

    #[test]
    fn yaml_is_block_style_with_quotes_only_where_needed() {
        let value = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "hello"},
            "spec": {"backoffLimit": 2, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", "echo hi\nexit 0\n"]}]
            }}}
        });
        assert_eq!(
            to_yaml(&value),
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: hello\nspec:\n  backoffLimit: 2\n  template:\n    spec:\n      containers:\n      - command:\n        - sh\n        - \"-c\"\n        - |\n          echo hi\n          exit 0\n        image: \"busybox:1.36\"\n        name: c\n      restartPolicy: Never\n"
        );
    }

    #[test]
    fn files_are_named_by_identity_and_marked() {
        let id = |kind, ns: &str, name: &str| ObjectId {
            kind,
            namespace: ns.into(),
            name: name.into(),
        };
        let job = id(Kind::Job, "team", "nightly.backup");
        assert_eq!(job.file_name(), "job.batch_team_nightly.backup.yaml");
        assert_eq!(job.to_string(), "job.batch/nightly.backup");
        assert_eq!(
            id(Kind::Pod, "default", "p").file_name(),
            "pod_default_p.yaml"
        );
        let pod = id(Kind::Pod, "default", &"p".repeat(253));
        let long = pod.file_name();
        assert_eq!(long.len(), 255, "{long}");
        assert!(long.starts_with("pod_default_ppp") && long.ends_with(".yaml"));
        let other = id(Kind::Pod, "default", &format!("{}q", "p".repeat(252)));
        assert_ne!(other.file_name(), long, "cut names stay apart");
        assert_eq!(
            id(Kind::Pod, "default", "../x").file_name(),
            "pod_default_..-x.yaml"
        );

        let text = file_text(&json!({"kind": "Job"}));
        assert_eq!(text, format!("{HEADER}\nkind: Job\n"));
        assert!(is_written_by_apply(&text));
        assert!(is_written_by_apply(&format!("{HEADER}\r\nkind: Job\r\n")));
        assert!(!is_written_by_apply(&format!("\n{HEADER}\n")));
        assert!(!is_written_by_apply("kind: Job\n"));
        assert!(!is_written_by_apply(""));
    }
}
