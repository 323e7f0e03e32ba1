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
/// first byte that makes it invalid.
pub fn decoded_len(text: &str) -> Result<usize, usize> {
    let symbols: Vec<(usize, u8)> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| !matches!(b, b'\r' | b'\n'))
        .collect();
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let mut len = 0;
    for (q, quantum) in symbols.chunks(4).enumerate() {
        let last = (q + 1) * 4 >= symbols.len();
        if quantum.len() < 4 {
            return Err(text.len());
        }
        let pad = quantum.iter().rev().take_while(|(_, b)| *b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            let (at, _) = quantum[4 - pad];
            return Err(at);
        }
        if let Some((at, _)) = quantum[..4 - pad].iter().find(|(_, b)| !alphabet(*b)) {
            return Err(*at);
        }
        len += 3 - pad;
    }
    Ok(len)
}
