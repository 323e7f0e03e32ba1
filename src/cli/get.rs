//! `jobvisor get cronjobs|jobs|pods|events|manifests [NAME]`: kubectl's `get`.
//!
//! Tables use kubectl's columns (see [`super::table`]). A list printed as a table is asked
//! for as a `meta.k8s.io/v1` Table, as kubectl does: the daemon lays the rows out from its
//! objects (the same `table` functions), so 10,000 Jobs cost about 100 bytes a row instead of
//! their JSON decoded here (1.2 s before). `-o json|yaml` print the objects as
//! the daemon sent them (a `kind: List` for several, like kubectl), `-o name` prints
//! `job.batch/NAME`. `-l` goes to the server as `labelSelector` and is applied here too, so
//! a server that ignores it still gives the right answer. `-w` prints the current state,
//! then one row per change from the `?watch=true` stream; the stream starts with ADDED for
//! every current object, and those already printed unchanged are skipped.
//!
//! Events and manifests have no single-object route in the API: a name is looked up in the
//! list. Manifests are jobvisor's own kind (the files of the manifests directory): not
//! namespaced, named by file name or full path, and not watchable.

use std::collections::HashMap;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use super::format::{to_json, to_yaml};
use super::table;
use super::{Ctx, Kind, NamespaceArg, not_found, split_type_name};
use crate::api::labels::Selector;
use crate::api::table::{TABLE_ACCEPT, Table, TableColumn, TableRow};
use crate::api::{CronJob, Event, Job, List, ManifestFile, Pod, Status, WatchEvent};
use crate::proto::{self, ApiError};

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// cronjobs, jobs, pods, events or manifests (kubectl's aliases work), or TYPE/NAME.
    #[arg(value_name = "TYPE")]
    pub resource: String,
    /// Only this object.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub ns: NamespaceArg,
    /// List the objects of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    pub output: Option<Output>,
    /// Label selector, e.g. `app=web,tier!=db`.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// After listing, watch for changes and print them.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Do not print the header row of tables.
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Wide,
    Json,
    Yaml,
    Name,
}

pub async fn run(ctx: &mut Ctx<'_>, args: GetArgs) -> anyhow::Result<()> {
    let (kind, name) = match split_type_name(&args.resource) {
        Some((kind, name)) => {
            if args.name.is_some() {
                bail!(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form"
                );
            }
            (kind, Some(name.to_string()))
        }
        None => (Kind::parse_or_err(&args.resource)?, args.name.clone()),
    };
    let selector = match &args.selector {
        Some(text) => Some((
            text.clone(),
            Selector::parse(text).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    if name.is_some() && selector.is_some() {
        bail!("name cannot be provided when a selector is specified");
    }
    if kind == Kind::Manifest && selector.is_some() {
        bail!("manifests have no labels: -l cannot select them");
    }
    if kind == Kind::Manifest && args.watch {
        bail!("watching manifests is not supported");
    }
    // A named object lives in one namespace; -A only widens lists.
    let all = args.all_namespaces && name.is_none() && kind.namespaced();
    let printer = Printer {
        kind,
        output: args.output,
        all_namespaces: all,
        no_headers: args.no_headers,
        node: local_node_name(),
    };
    let namespace = args.ns.namespace.clone();
    let scope = if all { None } else { Some(namespace.as_str()) };

    let as_table = matches!(args.output, None | Some(Output::Wide));
    let objects = match &name {
        Some(name) => vec![get_one(ctx, kind, &namespace, name).await?],
        // Laid out by the daemon, as kubectl has the API server do it; `-w` prints from the
        // objects it watches anyway, and manifests have their own route.
        None if as_table && !args.watch && kind != Kind::Manifest => {
            match list_for_table(ctx, kind, scope, selector.as_ref()).await? {
                Listed::Table(t) => {
                    match table::render_table(&t, printer.wide(), all, args.no_headers) {
                        Some(text) => ctx.print(&text)?,
                        None => ctx.eprint(&no_resources(kind, scope))?,
                    }
                    return Ok(());
                }
                Listed::Objects(objects) => objects,
            }
        }
        None => list(ctx, kind, scope, selector.as_ref()).await?,
    };

    if kind == Kind::Manifest {
        // Files listed while their directory is gone are not being removed: say so first.
        if let Some(why) = manifests_unavailable(ctx).await? {
            ctx.eprint(&format!("Warning: {why}"))?;
        }
    }

    let mut header_printed = false;
    if args.watch {
        // kubectl -w prints objects one by one, never as a List.
        if objects.is_empty() {
            ctx.eprint(&no_resources(kind, scope))?;
        }
        for (i, obj) in objects.iter().enumerate() {
            let text = printer.one(obj, ctx.clock.now(), i == 0 && !printer.no_headers, i > 0)?;
            ctx.print(&text)?;
            header_printed = true;
        }
    } else if name.is_some() && objects.len() == 1 {
        let text = printer.one(&objects[0], ctx.clock.now(), !printer.no_headers, false)?;
        ctx.print(&text)?;
    } else {
        match printer.list(&objects, ctx.clock.now())? {
            Some(text) => ctx.print(&text)?,
            None => ctx.eprint(&no_resources(kind, scope))?,
        }
    }
    if !args.watch {
        return Ok(());
    }
    let initial: HashMap<(String, String), Value> = objects
        .into_iter()
        .map(|o| ((o.namespace().to_string(), o.name().to_string()), o.value))
        .collect();
    watch(
        ctx,
        &printer,
        scope,
        name.as_deref(),
        selector.as_ref(),
        initial,
        header_printed,
    )
    .await
}

/// The daemon's reason when its manifests directory is unavailable (`source` of the list).
async fn manifests_unavailable(ctx: &mut Ctx<'_>) -> anyhow::Result<Option<String>> {
    let list: Value = ctx.client.get_json(&proto::manifests_path()).await?;
    let source = &list["source"];
    Ok((source["state"] == "Unavailable").then(|| {
        source["message"]
            .as_str()
            .unwrap_or("the manifests directory is unavailable")
            .to_string()
    }))
}

fn no_resources(kind: Kind, scope: Option<&str>) -> String {
    match scope {
        Some(ns) if kind.namespaced() => format!("No resources found in {ns} namespace."),
        _ => "No resources found".to_string(),
    }
}

/// What NODE shows for a pod that names none: this machine, where every pod runs.
fn local_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "<none>".to_string())
}

/// One object as served, and decoded for the table.
#[derive(Debug, Clone)]
pub struct Obj {
    pub value: Value,
    pub item: Item,
}

#[derive(Debug, Clone)]
pub enum Item {
    Job(Box<Job>),
    CronJob(Box<CronJob>),
    Pod(Box<Pod>),
    Event(Box<Event>),
    Manifest(Box<ManifestFile>),
    /// An object of a declared kind (ConfigMap…): its metadata; its cells come from the
    /// object as served.
    Declared(Kind, Box<crate::api::ObjectMeta>),
}

impl Obj {
    pub fn decode(kind: Kind, value: Value) -> anyhow::Result<Obj> {
        let what = &kind.resource().qualified();
        let item = match kind {
            Kind::Job => Item::Job(Box::new(from_value(&value, what)?)),
            Kind::CronJob => Item::CronJob(Box::new(from_value(&value, what)?)),
            Kind::Pod => Item::Pod(Box::new(from_value(&value, what)?)),
            Kind::Event => Item::Event(Box::new(from_value(&value, what)?)),
            Kind::Manifest => Item::Manifest(Box::new(from_value(&value, what)?)),
            // Declared kinds: unreachable until one is registered.
            #[allow(unreachable_patterns)]
            declared => {
                let meta = value.get("metadata").cloned().unwrap_or_default();
                Item::Declared(declared, Box::new(from_value(&meta, what)?))
            }
        };
        Ok(Obj { value, item })
    }

    /// Manifests are named by their file name; everything else by metadata.name.
    pub fn name(&self) -> &str {
        match &self.item {
            Item::Job(j) => j.metadata.name(),
            Item::CronJob(c) => c.metadata.name(),
            Item::Pod(p) => p.metadata.name(),
            Item::Event(e) => e.metadata.name(),
            Item::Manifest(m) => m.path.rsplit('/').next().unwrap_or(&m.path),
            Item::Declared(_, m) => m.name(),
        }
    }

    pub fn namespace(&self) -> &str {
        match &self.item {
            Item::Job(j) => j.metadata.namespace(),
            Item::CronJob(c) => c.metadata.namespace(),
            Item::Pod(p) => p.metadata.namespace(),
            Item::Event(e) => e.metadata.namespace(),
            Item::Manifest(_) => "",
            Item::Declared(_, m) => m.namespace(),
        }
    }

    fn matches(&self, selector: &Selector) -> bool {
        let labels = match &self.item {
            Item::Job(j) => &j.metadata.labels,
            Item::CronJob(c) => &c.metadata.labels,
            Item::Pod(p) => &p.metadata.labels,
            Item::Event(e) => &e.metadata.labels,
            Item::Manifest(_) => return true,
            Item::Declared(_, m) => &m.labels,
        };
        selector.matches(labels)
    }
}

fn from_value<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> anyhow::Result<T> {
    let name = value
        .pointer("/metadata/name")
        .or_else(|| value.pointer("/path"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    T::deserialize(value)
        .with_context(|| format!("the daemon sent {what} \"{name}\" in an unexpected shape"))
}

async fn get_one(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Obj> {
    let value: Value = match kind {
        Kind::Pod => {
            ctx.client
                .get_json(&proto::pod_path(namespace, name))
                .await?
        }
        Kind::Event | Kind::Manifest => {
            let found = list(ctx, kind, Some(namespace), None)
                .await?
                .into_iter()
                .find(|o| {
                    o.name() == name || matches!(&o.item, Item::Manifest(m) if m.path == name)
                });
            return found.ok_or_else(|| not_found(kind, name).into());
        }
        // Jobs, CronJobs and the declared kinds (ConfigMaps…).
        _ => {
            ctx.client
                .get_json(&kind.object_path(namespace, name))
                .await?
        }
    };
    Obj::decode(kind, value)
}

/// Lists one kind, filtered by the selector and sorted the way kubectl shows them.
pub async fn list(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    scope: Option<&str>,
    selector: Option<&(String, Selector)>,
) -> anyhow::Result<Vec<Obj>> {
    let list: List<Value> = ctx
        .client
        .get_json(&list_path(kind, scope, selector))
        .await?;
    objects(kind, list.items, selector)
}

/// A list asked for as a Table: the rows, or the objects from a daemon that answers with
/// them (one from before tables).
enum Listed {
    Table(Table),
    Objects(Vec<Obj>),
}

async fn list_for_table(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    scope: Option<&str>,
    selector: Option<&(String, Selector)>,
) -> anyhow::Result<Listed> {
    /// Either answer, decoded in one pass (a `Value` first cost the CLI as much again).
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        #[serde(default)]
        api_version: String,
        #[serde(default)]
        kind: String,
        #[serde(default)]
        metadata: Value,
        #[serde(default)]
        column_definitions: Vec<TableColumn>,
        #[serde(default)]
        rows: Vec<TableRow>,
        #[serde(default)]
        items: Vec<Value>,
    }
    let path = list_path(kind, scope, selector);
    let a: Answer = ctx.client.get_json_as(&path, TABLE_ACCEPT).await?;
    if a.kind == "Table" {
        return Ok(Listed::Table(Table {
            api_version: a.api_version,
            kind: a.kind,
            metadata: a.metadata,
            column_definitions: a.column_definitions,
            rows: a.rows,
        }));
    }
    Ok(Listed::Objects(objects(kind, a.items, selector)?))
}

fn list_path(kind: Kind, scope: Option<&str>, selector: Option<&(String, Selector)>) -> String {
    let mut query = Vec::new();
    if let Some((text, _)) = selector {
        query.push(("labelSelector", text.as_str()));
    }
    proto::with_query(&collection_path(kind, scope), &query)
}

/// Decodes listed objects, keeps those the selector matches (a server may ignore it), and
/// sorts them as kubectl shows them.
fn objects(
    kind: Kind,
    items: Vec<Value>,
    selector: Option<&(String, Selector)>,
) -> anyhow::Result<Vec<Obj>> {
    let mut objects = Vec::with_capacity(items.len());
    for value in items {
        let obj = Obj::decode(kind, value)?;
        if selector.is_none_or(|(_, s)| obj.matches(s)) {
            objects.push(obj);
        }
    }
    sort(&mut objects);
    Ok(objects)
}

fn collection_path(kind: Kind, scope: Option<&str>) -> String {
    kind.collection_path(scope)
}

fn sort(objects: &mut [Obj]) {
    objects.sort_by(|a, b| match (&a.item, &b.item) {
        (Item::Event(x), Item::Event(y)) => table::event_time(x)
            .cmp(&table::event_time(y))
            .then_with(|| x.metadata.name().cmp(y.metadata.name())),
        (Item::Manifest(x), Item::Manifest(y)) => x.path.cmp(&y.path),
        _ => (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())),
    });
}

struct Printer {
    kind: Kind,
    output: Option<Output>,
    all_namespaces: bool,
    no_headers: bool,
    node: String,
}

impl Printer {
    fn wide(&self) -> bool {
        self.output == Some(Output::Wide)
    }

    fn headers(&self) -> Vec<String> {
        let wide = self.wide();
        let mut h = match self.kind {
            Kind::Job => table::job_headers(wide),
            Kind::CronJob => table::cronjob_headers(wide),
            Kind::Pod => table::pod_headers(wide),
            Kind::Event => table::event_headers(wide),
            Kind::Manifest => table::manifest_headers(wide),
            // Declared kinds: unreachable until one is registered.
            #[allow(unreachable_patterns)]
            declared => table::declared_headers(declared),
        };
        if self.all_namespaces {
            h.insert(0, "NAMESPACE".to_string());
        }
        h
    }

    fn row(&self, obj: &Obj, now: jiff::Timestamp) -> Vec<String> {
        let wide = self.wide();
        let mut row = match &obj.item {
            Item::Job(j) => table::job_row(j, now, wide),
            Item::CronJob(c) => table::cronjob_row(c, now, wide),
            Item::Pod(p) => table::pod_row(p, now, wide, &self.node),
            Item::Event(e) => table::event_row(e, now, wide),
            Item::Manifest(m) => table::manifest_row(m, now, wide),
            Item::Declared(kind, m) => table::declared_row(*kind, &obj.value, now, wide)
                .unwrap_or_else(|_| vec![m.name().to_string()]),
        };
        if self.all_namespaces {
            row.insert(0, obj.namespace().to_string());
        }
        row
    }

    fn name_line(&self, obj: &Obj) -> String {
        format!("{}/{}\n", self.kind.name_prefix(), obj.name())
    }

    /// One object: a table (with or without header), a JSON or YAML document, or a name.
    /// `separate` puts `---` before a YAML document that follows another.
    fn one(
        &self,
        obj: &Obj,
        now: jiff::Timestamp,
        header: bool,
        separate: bool,
    ) -> anyhow::Result<String> {
        Ok(match self.output {
            Some(Output::Json) => to_json(&obj.value),
            Some(Output::Yaml) if separate => format!("---\n{}", to_yaml(&obj.value)),
            Some(Output::Yaml) => to_yaml(&obj.value),
            Some(Output::Name) => self.name_line(obj),
            None | Some(Output::Wide) => {
                let mut rows = Vec::new();
                if header {
                    rows.push(self.headers());
                }
                rows.push(self.row(obj, now));
                table::render(&rows)
            }
        })
    }

    /// Several objects; `None` when there is nothing to print and kubectl would say
    /// "No resources found" instead (JSON and YAML print an empty List).
    fn list(&self, objects: &[Obj], now: jiff::Timestamp) -> anyhow::Result<Option<String>> {
        let as_list = || {
            json!({
                "apiVersion": "v1",
                "kind": "List",
                "metadata": {"resourceVersion": ""},
                "items": objects.iter().map(|o| o.value.clone()).collect::<Vec<_>>(),
            })
        };
        match self.output {
            Some(Output::Json) => return Ok(Some(to_json(&as_list()))),
            Some(Output::Yaml) => return Ok(Some(to_yaml(&as_list()))),
            _ => {}
        }
        if objects.is_empty() {
            return Ok(None);
        }
        if self.output == Some(Output::Name) {
            return Ok(Some(objects.iter().map(|o| self.name_line(o)).collect()));
        }
        let mut rows = Vec::with_capacity(objects.len() + 1);
        if !self.no_headers {
            rows.push(self.headers());
        }
        rows.extend(objects.iter().map(|o| self.row(o, now)));
        Ok(Some(table::render(&rows)))
    }
}

/// Prints each change of the watch stream as a row. A stream the server ends with a 410
/// `Expired` (this watcher fell behind) is opened again: it starts over with every current
/// object as `ADDED`, and those unchanged since they were last printed are skipped.
async fn watch(
    ctx: &mut Ctx<'_>,
    printer: &Printer,
    scope: Option<&str>,
    name: Option<&str>,
    selector: Option<&(String, Selector)>,
    initial: HashMap<(String, String), Value>,
    mut printed: bool,
) -> anyhow::Result<()> {
    let kind = printer.kind;
    let mut query = vec![("watch", "true".to_string())];
    if let Some((text, _)) = selector {
        query.push(("labelSelector", text.clone()));
    }
    if let Some(name) = name {
        query.push(("fieldSelector", format!("metadata.name={name}")));
    }
    let path = proto::with_query(&collection_path(kind, scope), &query);
    // Each object as last printed (or listed), so that a stream's opening ADDED events for
    // what did not change print nothing.
    let mut known = initial;
    'stream: loop {
        let mut lines = ctx.client.stream_lines(&path).await?;
        while let Some(event) = lines.next_json::<WatchEvent<Value>>().await? {
            match event.type_.as_str() {
                "ERROR" => {
                    let status: Status =
                        serde_json::from_value(event.object).unwrap_or_else(|_| {
                            Status::failure(
                                500,
                                "InternalError",
                                "the watch stream reported an error",
                            )
                        });
                    if status.code == 410 {
                        continue 'stream;
                    }
                    return Err(ApiError::Status(Box::new(status)).into());
                }
                "BOOKMARK" => continue,
                _ => {}
            }
            let obj = Obj::decode(kind, event.object)?;
            if name.is_some_and(|n| n != obj.name())
                || selector.is_some_and(|(_, s)| !obj.matches(s))
            {
                continue;
            }
            let key = (obj.namespace().to_string(), obj.name().to_string());
            if event.type_ == "ADDED" && known.get(&key) == Some(&obj.value) {
                continue;
            }
            let header = !printed && !printer.no_headers;
            let text = printer.one(&obj, ctx.clock.now(), header, printed)?;
            ctx.print(&text)?;
            printed = true;
            if event.type_ == "DELETED" {
                known.remove(&key);
            } else {
                known.insert(key, obj.value);
            }
        }
        return Ok(());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cli::testing::{reported, serve};
    use axum::Router;
    use axum::extract::{Path, RawQuery};
    use axum::http::StatusCode;
    use axum::routing::get;

    fn job_json(ns: &str, name: &str, labels: Value) -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "creationTimestamp": "2024-01-15T09:58:00Z"},
            "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            "status": {"succeeded": 1, "startTime": "2024-01-15T09:58:00Z",
                       "completionTime": "2024-01-15T09:58:09Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}
        })
    }

    fn router() -> Router {
        Router::new()
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs",
                get(|Path(ns): Path<String>, RawQuery(q): RawQuery| async move {
                    let q = q.unwrap_or_default();
                    if q.contains("watch=true") {
                        // The current object, unchanged, then one change.
                        let mut changed = job_json(&ns, "pi", json!({"app": "x"}));
                        changed["status"]["succeeded"] = json!(2);
                        let body = format!(
                            "{}\n{}\n",
                            json!({"type": "ADDED", "object": job_json(&ns, "pi", json!({"app": "x"}))}),
                            json!({"type": "MODIFIED", "object": changed}),
                        );
                        return (StatusCode::OK, body);
                    }
                    let items = if ns == "empty" {
                        vec![]
                    } else {
                        vec![job_json(&ns, "pi", json!({"app": "x"})), job_json(&ns, "other", json!({"app": "y"}))]
                    };
                    let list = json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": items});
                    (StatusCode::OK, list.to_string())
                }),
            )
            .route(
                "/apis/batch/v1/jobs",
                get(|| async {
                    axum::Json(json!({"apiVersion": "batch/v1", "kind": "JobList", "items": [
                        job_json("b", "z", json!({})), job_json("a", "y", json!({}))
                    ]}))
                }),
            )
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
                get(|Path((ns, name)): Path<(String, String)>| async move {
                    if name == "pi" {
                        (StatusCode::OK, axum::Json(job_json(&ns, "pi", json!({"app": "x"}))))
                    } else {
                        let status = Status::failure(404, "NotFound", format!("jobs.batch \"{name}\" not found"));
                        (StatusCode::NOT_FOUND, axum::Json(serde_json::to_value(status).unwrap()))
                    }
                }),
            )
    }

    fn args(resource: &str, name: Option<&str>) -> GetArgs {
        GetArgs {
            resource: resource.into(),
            name: name.map(Into::into),
            ns: NamespaceArg {
                namespace: "default".into(),
            },
            all_namespaces: false,
            output: None,
            selector: None,
            watch: false,
            no_headers: false,
        }
    }

    #[tokio::test]
    async fn lists_jobs_as_a_table() {
        let mut h = serve(router());
        let mut a = args("jobs", None);
        a.selector = Some("app=x".into());
        run(&mut h.ctx(), a).await.unwrap();
        assert_eq!(
            h.out(),
            "NAME   STATUS     COMPLETIONS   DURATION   AGE\npi     Complete   1/1           9s         2m\n"
        );
    }

    /// A daemon that lays the list out (kubectl's `as=Table`) is printed from its rows; the
    /// objects are not asked for.
    #[tokio::test]
    async fn prints_the_rows_of_a_server_side_table() {
        let rows = get(
            |headers: axum::http::HeaderMap, RawQuery(q): RawQuery| async move {
                let accept = headers
                    .get("accept")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                assert!(crate::api::table::wants_table(accept), "{accept}");
                assert_eq!(q.as_deref(), Some("labelSelector=app%3Dx"));
                axum::Json(json!({
                    "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
                    "columnDefinitions": table::columns(Kind::Job),
                    "rows": [{"cells": ["pi", "Complete", "1/1", "9s", "2m", "c", "busybox", "app=x"],
                              "object": {"metadata": {"name": "pi", "namespace": "team"}}}]
                }))
            },
        );
        let router = Router::new()
            .route("/apis/batch/v1/namespaces/{ns}/jobs", rows.clone())
            .route("/apis/batch/v1/jobs", rows);
        let mut h = serve(router);
        let mut a = args("jobs", None);
        a.selector = Some("app=x".into());
        run(&mut h.ctx(), a).await.unwrap();
        assert_eq!(
            h.out(),
            "NAME   STATUS     COMPLETIONS   DURATION   AGE\npi     Complete   1/1           9s         2m\n"
        );
        h.out.clear();
        let mut a = args("jobs", None);
        a.selector = Some("app=x".into());
        a.output = Some(Output::Wide);
        a.all_namespaces = true;
        run(&mut h.ctx(), a).await.unwrap();
        assert!(
            h.out().starts_with("NAMESPACE   NAME   STATUS") && h.out().contains("team        pi "),
            "{}",
            h.out()
        );
        assert!(
            h.out().contains("SELECTOR") && h.out().contains("app=x"),
            "{}",
            h.out()
        );
    }

    #[tokio::test]
    async fn all_namespaces_adds_a_column_and_sorts() {
        let mut h = serve(router());
        let mut a = args("job", None);
        a.all_namespaces = true;
        a.output = Some(Output::Name);
        run(&mut h.ctx(), a).await.unwrap();
        assert_eq!(h.out(), "job.batch/y\njob.batch/z\n");
        let mut a = args("jobs.batch", None);
        a.all_namespaces = true;
        run(&mut h.ctx(), a).await.unwrap();
        assert!(h.out().contains("NAMESPACE   NAME"), "{}", h.out());
    }

    #[tokio::test]
    async fn empty_namespace_says_so_on_stderr() {
        let mut h = serve(router());
        let mut a = args("jobs", None);
        a.ns.namespace = "empty".into();
        run(&mut h.ctx(), a).await.unwrap();
        assert_eq!(h.out(), "");
        assert_eq!(h.err(), "No resources found in empty namespace.\n");
        let mut a = args("jobs", None);
        a.ns.namespace = "empty".into();
        a.output = Some(Output::Json);
        run(&mut h.ctx(), a).await.unwrap();
        assert!(h.out().contains("\"kind\": \"List\""), "{}", h.out());
    }

    #[tokio::test]
    async fn named_job_json_yaml_and_not_found() {
        let mut h = serve(router());
        let mut a = args("job/pi", None);
        a.output = Some(Output::Json);
        run(&mut h.ctx(), a).await.unwrap();
        let printed: Value = serde_json::from_str(&h.out()).unwrap();
        assert_eq!(printed["metadata"]["name"], "pi");
        assert!(
            h.out()
                .starts_with("{\n    \"apiVersion\": \"batch/v1\",\n")
        );
        h.out.clear();
        let mut a = args("jobs", Some("pi"));
        a.output = Some(Output::Yaml);
        run(&mut h.ctx(), a).await.unwrap();
        assert!(
            h.out()
                .starts_with("apiVersion: batch/v1\nkind: Job\nmetadata:\n"),
            "{}",
            h.out()
        );

        let err = run(&mut h.ctx(), args("jobs", Some("x")))
            .await
            .unwrap_err();
        assert_eq!(
            reported(&err),
            "Error from server (NotFound): jobs.batch \"x\" not found\n"
        );
        let err = run(&mut h.ctx(), args("deployments", None))
            .await
            .unwrap_err();
        assert_eq!(
            reported(&err),
            "error: the server doesn't have a resource type \"deployments\"\n"
        );
    }

    /// A watch that falls behind is ended by the server with ERROR 410 Expired: `get -w`
    /// watches again and goes on, without printing again what did not change.
    #[tokio::test]
    async fn watch_continues_after_410_expired() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let opened = Arc::new(AtomicUsize::new(0));
        let router = Router::new().route(
            "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
            get(|| async { axum::Json(job_json("default", "pi", json!({"app": "x"}))) }),
        );
        let count = opened.clone();
        let router = router.route(
            "/apis/batch/v1/namespaces/{ns}/jobs",
            get(move || {
                let n = count.fetch_add(1, Ordering::SeqCst);
                async move {
                    let with = |succeeded: i64| {
                        let mut j = job_json("default", "pi", json!({"app": "x"}));
                        j["status"]["succeeded"] = json!(succeeded);
                        j
                    };
                    let expired = Status::failure(410, "Expired", "too old resource version");
                    let events = if n == 0 {
                        vec![
                            json!({"type": "ADDED", "object": with(1)}),
                            json!({"type": "MODIFIED", "object": with(2)}),
                            json!({"type": "ERROR", "object": expired}),
                        ]
                    } else {
                        vec![
                            json!({"type": "ADDED", "object": with(2)}),
                            json!({"type": "MODIFIED", "object": with(3)}),
                        ]
                    };
                    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
                    (StatusCode::OK, body)
                }
            }),
        );
        let mut h = serve(router);
        let mut a = args("jobs", Some("pi"));
        a.watch = true;
        run(&mut h.ctx(), a).await.unwrap();
        let out = h.out();
        let counts: Vec<&str> = out
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(2))
            .collect();
        assert_eq!(counts, ["1/1", "2/1", "3/1"], "{out}");
        assert_eq!(opened.load(Ordering::SeqCst), 2, "watched again once");
    }

    #[tokio::test]
    async fn watch_skips_unchanged_initial_objects() {
        let mut h = serve(router());
        let mut a = args("jobs", Some("pi"));
        a.watch = true;
        run(&mut h.ctx(), a).await.unwrap();
        let out = h.out();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("NAME"));
        assert!(
            lines[1].starts_with("pi ") && lines[1].contains("1/1"),
            "{out}"
        );
        assert!(
            lines[2].starts_with("pi ") && lines[2].contains("2/1"),
            "{out}"
        );
    }
}
