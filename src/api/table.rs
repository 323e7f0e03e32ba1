//! `meta.k8s.io/v1` `Table`: a list laid out by the server, as kubectl asks for it
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`). kubectl prints the columns of
//! priority 0, and the others too with `-o wide`.
//!
//! The daemon answers `get` with rows it lays out from its own objects, so printing 10,000
//! Jobs costs neither side their full JSON (about 2 KB each): decoding those in the CLI took
//! 85% of `get jobs` over 10,000.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What kubectl sends to have a list printed by the server, falling back to the objects.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// The content type of a Table answer.
pub const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Whether an `Accept` header asks for a `meta.k8s.io/v1` Table (any of its media ranges).
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut params = range.split(';').map(str::trim);
        let json = params
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case("application/json"));
        let (mut table, mut group, mut version) = (false, false, false);
        for p in params {
            match p.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("as", "Table")) => table = true,
                Some(("g", "meta.k8s.io")) => group = true,
                Some(("v", "v1")) => version = true,
                _ => {}
            }
        }
        json && table && group && version
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub description: String,
    /// 0: always shown; more: only with `-o wide`.
    #[serde(default)]
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRow {
    pub cells: Vec<Value>,
    /// The row's object as `PartialObjectMetadata`; only its name and namespace are read.
    #[serde(default)]
    pub object: RowObject,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowObject {
    #[serde(default)]
    pub metadata: RowMeta,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: Value,
    pub column_definitions: Vec<TableColumn>,
    pub rows: Vec<TableRow>,
}

impl TableRow {
    /// The namespace of the row's object, for the NAMESPACE column of `-A`.
    pub fn namespace(&self) -> &str {
        &self.object.metadata.namespace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_that_ask_for_a_table() {
        assert!(wants_table(TABLE_ACCEPT));
        // kubectl's own header.
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(wants_table(
            "application/json; as=Table; g=meta.k8s.io; v=v1"
        ));
        for no in [
            "application/json, */*",
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
            "application/yaml;as=Table;v=v1;g=meta.k8s.io",
            "",
        ] {
            assert!(!wants_table(no), "{no}");
        }
    }
}
