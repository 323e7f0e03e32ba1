//! The daemon's event loop (in progress).

use std::path::PathBuf;

/// `jobvisor daemon [--root DIR] [--config FILE]`
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    pub root: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

/// Runs the daemon until SIGTERM/SIGINT. Errors here are start-up failures.
pub async fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    let _ = opts;
    Ok(())
}
