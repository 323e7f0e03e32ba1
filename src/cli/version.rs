//! `jobvisor version`: the client's version, and the daemon's when it answers `/version`.
//!
//! Printed like kubectl (`Client Version: v0.1.0`, `Server Version: v0.1.0`). A daemon
//! that is not running is not an error here: the client version alone is still an answer.

use serde_json::Value;

use super::Ctx;
use crate::proto::VERSION_PATH;

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Only the client version; do not ask the daemon.
    #[arg(long)]
    pub client: bool,
}

pub async fn run(ctx: &mut Ctx<'_>, args: VersionArgs) -> anyhow::Result<()> {
    ctx.print(&format!("Client Version: v{}\n", crate::VERSION))?;
    if args.client {
        return Ok(());
    }
    if let Ok(info) = ctx.client.get_json::<Value>(VERSION_PATH).await
        && let Some(version) = info.get("gitVersion").and_then(Value::as_str)
    {
        ctx.print(&format!("Server Version: {version}\n"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cli::testing::serve;
    use axum::routing::get;

    #[tokio::test]
    async fn client_and_server() {
        let router = axum::Router::new().route(
            "/version",
            get(|| async {
                axum::Json(serde_json::json!({"gitVersion": "v9.9.9", "platform": "linux/amd64"}))
            }),
        );
        let mut h = serve(router);
        run(&mut h.ctx(), VersionArgs { client: false })
            .await
            .unwrap();
        assert_eq!(
            h.out(),
            format!(
                "Client Version: v{}\nServer Version: v9.9.9\n",
                crate::VERSION
            )
        );

        let dir = tempfile::tempdir().unwrap();
        h.client = crate::proto::Client::new(dir.path().join("none.sock"));
        h.out.clear();
        run(&mut h.ctx(), VersionArgs { client: false })
            .await
            .unwrap();
        assert_eq!(h.out(), format!("Client Version: v{}\n", crate::VERSION));
    }
}
