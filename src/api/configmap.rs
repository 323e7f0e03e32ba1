//! `v1 ConfigMap`: configuration a file declares (`data`, `binaryData`), served as it is.
//! Nothing controls it, and no pod consumes it yet (env `valueFrom`, `envFrom` and volumes
//! come later). Admission rules: `manifest/configmap.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::declared::Declared;
use super::{Kind, ObjectMeta};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMap {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Each value base64, as JSON carries bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binary_data: BTreeMap<String, String>,
    /// Once true, `data` and `binaryData` may not change, and it may not be unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl Declared for ConfigMap {
    const KIND: Kind = Kind::ConfigMap;
    /// `printConfigMap` (`pkg/printers/internalversion/printers.go`): NAME, DATA, AGE.
    const COLUMNS: &'static [&'static str] = &["DATA"];

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }

    /// DATA counts the keys of both maps.
    fn cells(&self) -> Vec<String> {
        vec![(self.data.len() + self.binary_data.len()).to_string()]
    }

    /// kubectl's `describeConfigMap`: each data key, a rule and its value; each binary key
    /// and its size in bytes.
    fn describe(&self) -> String {
        let mut w = String::from("\nData\n====\n");
        for (k, v) in &self.data {
            w.push_str(&format!("{k}:\n----\n{v}\n\n"));
        }
        w.push_str("\nBinaryData\n====\n");
        for (k, v) in &self.binary_data {
            let bytes = decoded_len(v).unwrap_or_default();
            w.push_str(&format!("{k}: {bytes} bytes\n"));
        }
        w.push('\n');
        w
    }
}

/// The decoded length of padded standard base64 (Go's `base64.StdEncoding`, which
/// `encoding/json` decodes `[]byte` with; it skips `\r` and `\n`), or the offset of the
/// first byte that makes it invalid, as Go reports it ([`decode_base64`]).
pub fn decoded_len(text: &str) -> Result<usize, usize> {
    decode_base64(text).map(|bytes| bytes.len())
}

/// The bytes of padded standard base64 as Go's non-strict `base64.StdEncoding` decodes them
/// (newlines skipped, unused trailing bits ignored), or the offset of the first byte that
/// makes it invalid, as Go reports it: a port of its `decodeQuantum`
/// (`src/encoding/base64/base64.go`).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, usize> {
    let src = text.as_bytes();
    let symbol = |b: u8| -> Option<u32> {
        match b {
            b'A'..=b'Z' => Some(u32::from(b - b'A')),
            b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let newline = |b: u8| b == b'\n' || b == b'\r';
    let skip_newlines = |mut si: usize| {
        while si < src.len() && newline(src[si]) {
            si += 1;
        }
        si
    };
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    loop {
        // This quantum's symbols so far (newlines are not symbols), 6 bits each.
        let (mut j, mut bits) = (0, 0u32);
        while j < 4 {
            let Some(&c) = src.get(si) else {
                // The end of input: between quanta it is the end; inside one, an error at
                // where the quantum began.
                return if j == 0 { Ok(out) } else { Err(si - j) };
            };
            si += 1;
            if let Some(v) = symbol(c) {
                bits |= v << (18 - 6 * j);
                j += 1;
                continue;
            }
            if newline(c) {
                continue;
            }
            if c != b'=' || j < 2 {
                return Err(si - 1);
            }
            if j == 2 {
                // "==" is due; the first is consumed.
                si = skip_newlines(si);
                match src.get(si) {
                    None => return Err(src.len()),
                    Some(b'=') => si += 1,
                    Some(_) => return Err(si - 1),
                }
            }
            si = skip_newlines(si);
            // Padding ends the input: anything after it is trailing garbage.
            if si < src.len() {
                return Err(si);
            }
            out.extend_from_slice(&bits.to_be_bytes()[1..j]);
            return Ok(out);
        }
        out.extend_from_slice(&bits.to_be_bytes()[1..]);
    }
}
