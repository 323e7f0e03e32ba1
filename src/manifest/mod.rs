//! Manifest files → validated, defaulted objects. (Stub: the real parser replaces this.)

use std::path::Path;

use jiff::Timestamp;

use crate::api::Job;

/// What one file yields. All or nothing: `jobs` is empty whenever `errors` is not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileReport {
    /// Parsed, defaulted, validated Jobs in file order; identity (uid, generated labels) not yet assigned.
    pub jobs: Vec<Job>,
    /// Each error fully formatted and naming the file (and line, or field path).
    pub errors: Vec<String>,
    /// Accepted but worth saying (ignored cluster-only fields, DNS-label advice, …).
    pub warnings: Vec<String>,
}

/// Parses, defaults and validates the text of one manifest file.
pub fn load(path: &Path, text: &str) -> FileReport {
    let _ = (path, text);
    FileReport::default()
}

/// Reads and loads a file; an I/O error becomes the report's one error.
pub fn load_path(path: &Path) -> FileReport {
    match std::fs::read_to_string(path) {
        Ok(text) => load(path, &text),
        Err(e) => FileReport {
            errors: vec![format!("{}: {e}", path.display())],
            ..FileReport::default()
        },
    }
}

/// Gives a new Job its server-assigned identity, as the API server's create strategy does:
/// uid, creationTimestamp, generation 1, the generated selector and the four template labels,
/// and the Job's own labels copied from the template when it has none.
pub fn assign_identity(job: &mut Job, uid: &str, now: Timestamp) {
    let _ = (job, uid, now);
}
