//! `jobvisor top pods`: CPU and memory of the running pods, from their cgroups, in kubectl's
//! columns (`NAME  CPU(cores)  MEMORY(bytes)`; `-A` adds NAMESPACE, `--containers` a line per
//! container). The daemon serves metrics-server's `metrics.k8s.io/v1beta1` PodMetrics; CPU is
//! over the window since the previous look (at least 1 s), or since the container started.

use serde_json::Value;

use super::Ctx;
use crate::printers::render;

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// Only `pods` (or `pod`, `po`) is served.
    pub resource: String,
    /// One pod by name.
    pub name: Option<String>,
    #[command(flatten)]
    pub namespace: super::NamespaceArg,
    /// Pods of every namespace.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// One line per container.
    #[arg(long)]
    pub containers: bool,
}

pub async fn run(ctx: &mut Ctx<'_>, args: TopArgs) -> anyhow::Result<()> {
    if !matches!(args.resource.as_str(), "pods" | "pod" | "po") {
        anyhow::bail!(
            "unknown resource {:?} for top: only pods (this host is the one node)",
            args.resource
        );
    }
    let path = if args.all_namespaces {
        "/apis/metrics.k8s.io/v1beta1/pods".to_owned()
    } else {
        format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods",
            args.namespace.namespace
        )
    };
    let list: Value = match ctx.client.get_json(&path).await {
        Ok(v) => v,
        Err(e) if e.status().is_some_and(|s| s.code == 503) => {
            anyhow::bail!(
                "Metrics API not available: {}",
                e.status().map_or("", |s| s.message.as_str())
            )
        }
        Err(e) => return Err(e.into()),
    };
    let mut items: Vec<&Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            args.name
                .as_ref()
                .is_none_or(|n| p["metadata"]["name"] == **n)
        })
        .collect();
    items.sort_by_key(|p| {
        (
            p["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
            p["metadata"]["name"].as_str().unwrap_or("").to_owned(),
        )
    });
    if items.is_empty() {
        match &args.name {
            Some(n) => anyhow::bail!("metrics not available yet for pod {n}"),
            None if args.all_namespaces => ctx.eprint("No resources found")?,
            None => ctx.eprint(&format!(
                "No resources found in {} namespace.",
                args.namespace.namespace
            ))?,
        }
        return Ok(());
    }
    let mut head: Vec<String> = Vec::new();
    if args.all_namespaces {
        head.push("NAMESPACE".into());
    }
    head.extend(if args.containers {
        vec!["POD".into(), "NAME".into()]
    } else {
        vec!["NAME".into()]
    });
    head.extend(["CPU(cores)".into(), "MEMORY(bytes)".into()]);
    let mut rows = vec![head];
    for p in items {
        let ns = p["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
        let name = p["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let usages: Vec<(String, u64, u64)> = p["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or("").to_owned(),
                    nanocores(c["usage"]["cpu"].as_str().unwrap_or("0")),
                    bytes(c["usage"]["memory"].as_str().unwrap_or("0")),
                )
            })
            .collect();
        let mut lines: Vec<(Option<String>, u64, u64)> = if args.containers {
            usages
                .into_iter()
                .map(|(c, cpu, m)| (Some(c), cpu, m))
                .collect()
        } else {
            let cpu = usages.iter().map(|u| u.1).sum();
            let mem = usages.iter().map(|u| u.2).sum();
            vec![(None, cpu, mem)]
        };
        for (container, cpu, mem) in lines.drain(..) {
            let mut row = Vec::new();
            if args.all_namespaces {
                row.push(ns.clone());
            }
            row.push(name.clone());
            row.extend(container);
            row.push(format!("{}m", cpu / 1_000_000));
            row.push(format!("{}Mi", mem / (1024 * 1024)));
            rows.push(row);
        }
    }
    ctx.print(&render(&rows))?;
    Ok(())
}

/// `123n` (or a plain quantity) in nanocores.
fn nanocores(q: &str) -> u64 {
    crate::quantity::Quantity::parse(q)
        .ok()
        .and_then(|q| q.scaled(9))
        .unwrap_or(0)
}

fn bytes(q: &str) -> u64 {
    crate::quantity::Quantity::parse(q)
        .ok()
        .and_then(|q| q.scaled(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cli::testing::serve;
    use axum::routing::get;

    fn args(containers: bool, all: bool) -> TopArgs {
        TopArgs {
            resource: "pods".into(),
            name: None,
            namespace: crate::cli::NamespaceArg {
                namespace: "default".into(),
            },
            all_namespaces: all,
            containers,
        }
    }

    #[tokio::test]
    async fn kubectl_columns_summed_per_pod_or_per_container() {
        let router = axum::Router::new().route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            get(|| async {
                axum::Json(serde_json::json!({"kind": "PodMetricsList", "items": [
                    {"metadata": {"name": "web", "namespace": "default"}, "containers": [
                        {"name": "a", "usage": {"cpu": "250000000n", "memory": "10240Ki"}},
                        {"name": "b", "usage": {"cpu": "1500000n", "memory": "2048Ki"}}]},
                    {"metadata": {"name": "idle", "namespace": "default"}, "containers": [
                        {"name": "main", "usage": {"cpu": "0n", "memory": "512Ki"}}]}
                ]}))
            }),
        );
        let mut h = serve(router);
        run(&mut h.ctx(), args(false, false)).await.unwrap();
        assert_eq!(
            h.out(),
            "NAME   CPU(cores)   MEMORY(bytes)\nidle   0m           0Mi\nweb    251m         12Mi\n"
        );
        let mut h2 = serve(axum::Router::new().route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            get(|| async {
                axum::Json(serde_json::json!({"items": [
                    {"metadata": {"name": "web", "namespace": "default"}, "containers": [
                        {"name": "a", "usage": {"cpu": "250000000n", "memory": "10240Ki"}}]}]}))
            }),
        ));
        run(&mut h2.ctx(), args(true, false)).await.unwrap();
        assert_eq!(
            h2.out(),
            "POD   NAME   CPU(cores)   MEMORY(bytes)\nweb   a      250m         10Mi\n"
        );
    }
}
