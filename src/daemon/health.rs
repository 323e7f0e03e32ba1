//! What keeps the daemon from doing its job right now, for `/healthz`, `/readyz`, the
//! `STATUS=` line to systemd and the daemon's log.
//!
//! Each seam that can fail sets its own slot and clears it when it recovers; nobody else
//! writes them. `/healthz` fails while the store cannot write (the daemon would be reporting
//! state it cannot persist); `/readyz` also fails while the manifests directory is unavailable.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problems {
    /// Why the store cannot write (ENOSPC, EIO, EPERM…); `None` while writes succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Why the manifests directory cannot be watched or read (missing, unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifests: Option<String>,
}

impl Problems {
    /// Live: the daemon can persist what it reports.
    pub fn healthy(&self) -> Result<(), String> {
        match &self.store {
            Some(why) => Err(format!("store: {why}")),
            None => Ok(()),
        }
    }

    /// Ready: healthy, and its source of manifests is there.
    pub fn ready(&self) -> Result<(), String> {
        self.healthy()?;
        match &self.manifests {
            Some(why) => Err(format!("manifests: {why}")),
            None => Ok(()),
        }
    }

    /// The one-line summary for systemd's `STATUS=`.
    pub fn status_line(&self) -> String {
        match self.ready() {
            Ok(()) => "ready".to_string(),
            Err(why) => why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_and_readiness() {
        let mut p = Problems::default();
        assert_eq!(p.ready(), Ok(()));
        p.manifests = Some("directory /x is missing".into());
        assert_eq!(p.healthy(), Ok(()));
        assert_eq!(p.ready(), Err("manifests: directory /x is missing".into()));
        p.store = Some("No space left on device".into());
        assert_eq!(p.healthy(), Err("store: No space left on device".into()));
        assert_eq!(p.ready(), Err("store: No space left on device".into()));
        assert_eq!(p.status_line(), "store: No space left on device");
    }
}
