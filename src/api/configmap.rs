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
}
