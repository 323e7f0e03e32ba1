//! A ConfigMap's admission, as the API server's `ValidateConfigMap` and
//! `ValidateConfigMapUpdate` (`pkg/apis/core/validation/validation.go`) judge it; its
//! metadata is judged by `declared` like every declared kind's.

use super::declared::Admit;
use super::validate::invalid_value;
use std::collections::BTreeMap;

use crate::api::configmap::{ConfigMap, decode_base64, decoded_len as base64_len};

/// `core.MaxSecretSize`, which also bounds a ConfigMap's data: 1 MiB.
pub const MAX_CONFIGMAP_BYTES: usize = 1024 * 1024;

/// `IsConfigMapKey`'s pattern message (`apimachinery pkg/util/validation/validation.go`).
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', \
     '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key_name', regex used for validation is \
     '[-._a-zA-Z0-9]+')";

const IMMUTABLE: &str = "Forbidden: field is immutable when `immutable` is set";

impl Admit for ConfigMap {
    fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let mut total = 0;
        for (key, value) in &self.data {
            let path = format!("data[{key}]");
            for msg in config_key(key) {
                errors.push(invalid_value(&path, key, &msg));
            }
            if self.binary_data.contains_key(key) {
                errors.push(invalid_value(
                    &path,
                    key,
                    "duplicate of key present in binaryData",
                ));
            }
            total += value.len();
        }
        for (key, value) in &self.binary_data {
            let path = format!("binaryData[{key}]");
            for msg in config_key(key) {
                errors.push(invalid_value(&path, key, &msg));
            }
            // Kubernetes decodes the bytes while reading the object; what they are is
            // judged here, in the same words.
            match base64_len(value) {
                Ok(n) => total += n,
                Err(at) => errors.push(invalid_value(
                    &path,
                    &elide(value),
                    &format!("illegal base64 data at input byte {at}"),
                )),
            }
        }
        if total > MAX_CONFIGMAP_BYTES {
            // The path is the whole object's, which the API server prints as `[]`.
            errors.push(format!(
                "[]: Too long: may not be more than {MAX_CONFIGMAP_BYTES} bytes"
            ));
        }
        errors
    }

    fn validate_update(&self, old: &ConfigMap) -> Vec<String> {
        let mut errors = Vec::new();
        if old.immutable == Some(true) {
            if self.immutable != Some(true) {
                errors.push(format!("immutable: {IMMUTABLE}"));
            }
            if self.data != old.data {
                errors.push(format!("data: {IMMUTABLE}"));
            }
            if binary_bytes(&self.binary_data) != binary_bytes(&old.binary_data) {
                errors.push(format!("binaryData: {IMMUTABLE}"));
            }
        }
        errors
    }
}

/// `binaryData` as the API server holds it, bytes (compared with `reflect.DeepEqual`): the
/// same bytes written another way are the same. A value that does not decode stays text
/// (validation refuses it anyway).
fn binary_bytes(map: &BTreeMap<String, String>) -> BTreeMap<&str, Result<Vec<u8>, &str>> {
    map.iter()
        .map(|(k, v)| (k.as_str(), decode_base64(v).map_err(|_| v.as_str())))
        .collect()
}

/// `IsConfigMapKey`: at most 253 characters of `[-._a-zA-Z0-9]`, not `.`, `..` or `..*`.
fn config_key(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if key.len() > 253 {
        errors.push("must be no more than 253 characters".to_string());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if key.is_empty() || !key.chars().all(allowed) {
        errors.push(CONFIG_KEY_MSG.to_string());
    }
    if key == "." {
        errors.push("must not be '.'".to_string());
    } else if key == ".." {
        errors.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        errors.push("must not start with '..'".to_string());
    }
    errors
}

/// A value short enough to quote in a message.
fn elide(value: &str) -> String {
    match value.char_indices().nth(32) {
        Some((at, _)) => format!("{}...", &value[..at]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cm(data: &[(&str, &str)], binary: &[(&str, &str)]) -> ConfigMap {
        let map = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ConfigMap {
            data: map(data),
            binary_data: map(binary),
            ..Default::default()
        }
    }

    /// Each rule of `ValidateConfigMap`, in the API server's words.
    #[test]
    fn validation_rules() {
        let key_msg =
            |path: &str, key: &str| format!("{path}: Invalid value: \"{key}\": {CONFIG_KEY_MSG}");
        let long_key = "k".repeat(254);
        let big = "x".repeat(MAX_CONFIGMAP_BYTES);
        let cases: Vec<(&str, ConfigMap, Vec<String>)> = vec![
            ("good", cm(&[("a.b_C-1", "v")], &[("bin", "aGk=")]), vec![]),
            ("empty", cm(&[], &[]), vec![]),
            (
                "bad key",
                cm(&[("a b", "v")], &[]),
                vec![key_msg("data[a b]", "a b")],
            ),
            (
                "bad binary key",
                cm(&[], &[("a/b", "aGk=")]),
                vec![key_msg("binaryData[a/b]", "a/b")],
            ),
            (
                "dot",
                cm(&[(".", "v")], &[]),
                vec!["data[.]: Invalid value: \".\": must not be '.'".into()],
            ),
            (
                "dotdot",
                cm(&[("..", "v")], &[]),
                vec!["data[..]: Invalid value: \"..\": must not be '..'".into()],
            ),
            (
                "dotdot prefix",
                cm(&[("..a", "v")], &[]),
                vec!["data[..a]: Invalid value: \"..a\": must not start with '..'".into()],
            ),
            (
                "long key",
                cm(&[(&long_key, "v")], &[]),
                vec![format!(
                    "data[{long_key}]: Invalid value: \"{long_key}\": must be no more than 253 characters"
                )],
            ),
            (
                "in both",
                cm(&[("a", "v")], &[("a", "aGk=")]),
                vec![
                    "data[a]: Invalid value: \"a\": duplicate of key present in binaryData".into(),
                ],
            ),
            (
                "bad base64",
                cm(&[], &[("b", "a*k=")]),
                vec![
                    "binaryData[b]: Invalid value: \"a*k=\": illegal base64 data at input byte 1"
                        .into(),
                ],
            ),
            (
                "unpadded base64",
                cm(&[], &[("b", "aGk")]),
                vec![
                    "binaryData[b]: Invalid value: \"aGk\": illegal base64 data at input byte 0"
                        .into(),
                ],
            ),
            ("at the limit", cm(&[("a", &big)], &[]), vec![]),
            (
                "one byte over",
                cm(&[("a", &big)], &[("b", "aQ==")]),
                vec!["[]: Too long: may not be more than 1048576 bytes".into()],
            ),
        ];
        for (name, c, want) in cases {
            assert_eq!(c.validate(), want, "{name}");
        }
    }

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_len(""), Ok(0));
        assert_eq!(base64_len("aGk="), Ok(2));
        assert_eq!(base64_len("aGVsbG8="), Ok(5));
        assert_eq!(base64_len("aGVs\nbG8="), Ok(5));
        assert_eq!(base64_len("aQ=="), Ok(1));
        assert_eq!(base64_len("a==="), Err(1));
        // The offsets Go's `decodeQuantum` (src/encoding/base64/base64.go) reports: an
        // incomplete last quantum at its start, data after padding where it resumes, a
        // single `=` where two are due at the end of input.
        assert_eq!(base64_len("aGk"), Err(0));
        assert_eq!(base64_len("aGkaGk"), Err(4));
        assert_eq!(base64_len("a"), Err(0));
        assert_eq!(base64_len("aQ==aQ=="), Err(4));
        assert_eq!(base64_len("aGk=aGk="), Err(4));
        assert_eq!(base64_len("aQ==\n"), Ok(1));
        assert_eq!(base64_len("aQ=\n"), Err(4));
        assert_eq!(base64_len("aQ=x"), Err(2));
        assert_eq!(base64_len("aG*k"), Err(2));
    }

    /// `ValidateConfigMapUpdate`: once immutable, data, binaryData and the flag stay.
    #[test]
    fn immutable_updates() {
        let mut old = cm(&[("a", "1")], &[]);
        let mut new = cm(&[("a", "2")], &[]);
        assert!(new.validate_update(&old).is_empty(), "mutable: any change");
        old.immutable = Some(true);
        new.immutable = Some(true);
        assert_eq!(
            new.validate_update(&old),
            ["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let mut same = old.clone();
        same.metadata.labels.insert("x".into(), "y".into());
        assert!(same.validate_update(&old).is_empty(), "labels may change");
        same.immutable = None;
        assert_eq!(
            same.validate_update(&old),
            ["immutable: Forbidden: field is immutable when `immutable` is set"]
        );
        let mut bin = old.clone();
        bin.binary_data.insert("b".into(), "aQ==".into());
        assert_eq!(
            bin.validate_update(&old),
            ["binaryData: Forbidden: field is immutable when `immutable` is set"]
        );
        // The API server compares the bytes: the same bytes written another way (a block
        // scalar's newline, wrapped lines, unused trailing bits) are no change.
        let mut rewrapped = bin.clone();
        rewrapped.binary_data.insert("b".into(), "aQ==\n".into());
        assert!(rewrapped.validate_update(&bin).is_empty());
        rewrapped.binary_data.insert("b".into(), "aR==".into());
        assert!(rewrapped.validate_update(&bin).is_empty(), "trailing bits");
        rewrapped.binary_data.insert("b".into(), "aA==".into());
        assert_eq!(
            rewrapped.validate_update(&bin),
            ["binaryData: Forbidden: field is immutable when `immutable` is set"]
        );
    }

    #[test]
    fn base64_decodes_as_go_does() {
        use crate::api::configmap::decode_base64 as decode;
        assert_eq!(decode(""), Ok(vec![]));
        assert_eq!(decode("aGk="), Ok(b"hi".to_vec()));
        assert_eq!(decode("aGVs\nbG8="), Ok(b"hello".to_vec()));
        assert_eq!(decode("aQ=="), Ok(b"i".to_vec()));
        assert_eq!(decode("+/8="), Ok(vec![0xfb, 0xff]));
        assert_eq!(decode("aGk"), Err(0));
    }
}

#[cfg(test)]
mod load_tests {
    use std::path::Path;

    use crate::api::Kind;

    fn load(text: &str) -> crate::manifest::FileReport {
        crate::manifest::load(Path::new("c.yaml"), text, None)
    }

    /// A ConfigMap document goes through the generic declared path: typed (line, column and
    /// field path on a wrong shape), defaulted, validated with its metadata, and named.
    #[test]
    fn a_configmap_file_loads_and_is_judged() {
        let r = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x}\n");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let [cm] = r.declared.as_slice() else {
            panic!("one ConfigMap: {r:?}")
        };
        assert_eq!(cm.kind, Kind::ConfigMap);
        assert_eq!(cm.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(cm.object["data"]["a"], "x");
        assert_eq!(
            cm.object["metadata"]["annotations"]["jobvisor.io/source"],
            "c.yaml"
        );
        assert_eq!(r.objects[0].0.kind, Kind::ConfigMap);

        let r = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: 1\n");
        assert_eq!(
            r.errors,
            ["c.yaml:5:6: data.a: cannot unmarshal number into a field of type string"]
        );

        let r = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndatas: {}\n");
        assert_eq!(r.errors, [r#"c.yaml:4:1: unknown field "datas""#]);

        let r = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: C}\ndata: {..: x}\n");
        let [e] = r.errors.as_slice() else {
            panic!("one report: {:?}", r.errors)
        };
        assert!(e.starts_with("c.yaml: The ConfigMap \"C\" is invalid: \n* metadata.name: Invalid value: \"C\": a lowercase RFC 1123 subdomain"), "{e}");
        assert!(
            e.ends_with("\n* data[..]: Invalid value: \"..\": must not be '..'"),
            "{e}"
        );
        assert!(r.declared.is_empty(), "all or nothing");
    }

    /// Messages about a kind a file may not define list ConfigMap among those it may.
    #[test]
    fn the_kinds_a_file_may_define_include_configmap() {
        assert_eq!(
            crate::manifest::parse::runs(),
            "jobvisor runs batch/v1 Job, batch/v1 CronJob and v1 Pod, and keeps v1 ConfigMap"
        );
    }
}
