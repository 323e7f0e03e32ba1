//! `jobvisor describe cronjob|job|pod|configmap [NAME…]`: kubectl's `describeCronJob`,
//! `describeJob`, `describePod` and `describeConfigMap` layout (spec §6.4), with the
//! object's events at the end. A declared kind (ConfigMap…) prints its metadata here and
//! the rest from its type (`api::declared::Declared::describe`).
//!
//! A CronJob gets one block kubectl does not print, `Next Schedules:`, the next three times
//! its schedule fires after now, computed here with the daemon's own schedule module in the
//! CronJob's `timeZone` (else the local zone, the daemon's on this host) and printed in RFC
//! 3339 with that zone's offset: `<none>` while it is suspended, `never` when the schedule
//! never fires.
//!
//! Like kubectl the text goes through a tabwriter (padding 2) so that `Key:` columns line up
//! within each block, and the events table is laid out on its own. Events come from the
//! events list with `fieldSelector=involvedObject.name=NAME` and are filtered here again by
//! kind, namespace and uid, so a server that ignores the selector, or an older object of
//! the same name, does not show foreign events. Without a name, every object of the kind in
//! the namespace is described, as kubectl does. Times are printed in the local zone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::bail;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;
use tabwriter::TabWriter;

use super::format::{human_duration, rfc1123z_in, since};
use super::table::{selector_string, sort_events};
use super::{Ctx, Kind, NamespaceArg, Reported, split_type_name};
use crate::api::{
    ANNOTATION_EXEC, Container, ContainerState, ContainerStatus, CronJob, Event, Job, Labels, List,
    Pod, PodTemplateSpec,
};
use crate::proto;

#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// cronjob, job, pod or configmap (kubectl's aliases work), or TYPE/NAME.
    #[arg(value_name = "TYPE")]
    pub resource: String,
    /// The objects to describe (all in the namespace when omitted).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub ns: NamespaceArg,
}

pub async fn run(ctx: &mut Ctx<'_>, args: DescribeArgs) -> anyhow::Result<()> {
    let (kind, mut names) = match split_type_name(&args.resource) {
        Some((kind, name)) => (kind, vec![name.to_string()]),
        None => (Kind::parse_or_err(&args.resource)?, Vec::new()),
    };
    names.extend(args.names);
    let declared = crate::manifest::declared::is_declared(kind);
    if !matches!(kind, Kind::CronJob | Kind::Job | Kind::Pod) && !declared {
        bail!(
            "describe supports cronjobs, jobs, pods and configmaps; use `jobvisor get {}`",
            kind.resource()
        );
    }
    let ns = args.ns.namespace.as_str();
    if names.is_empty() {
        let path = kind.collection_path(Some(ns));
        let list: List<Value> = ctx.client.get_json(&path).await?;
        names = list
            .items
            .iter()
            .filter_map(|v| {
                v.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect();
        names.sort();
        if names.is_empty() {
            ctx.eprint(&format!("No resources found in {ns} namespace."))?;
            return Ok(());
        }
    }
    let single = names.len() == 1;
    let mut failed = false;
    let mut first = true;
    for name in &names {
        match describe_one(ctx, kind, ns, name).await {
            Ok(text) => {
                // kubectl separates descriptions with two blank lines.
                if !first {
                    ctx.print("\n\n")?;
                }
                first = false;
                ctx.print(&text)?;
            }
            Err(e) if single => return Err(e),
            Err(e) => {
                failed = true;
                let mut line = Vec::new();
                super::report(&e, &mut line);
                ctx.err.write_all(&line)?;
            }
        }
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}

async fn describe_one(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    ns: &str,
    name: &str,
) -> anyhow::Result<String> {
    match kind {
        Kind::CronJob => {
            let cj: CronJob = ctx.client.get_json(&kind.object_path(ns, name)).await?;
            let events = events_for(ctx, "CronJob", ns, name, cj.metadata.uid()).await;
            let now = ctx.clock.now();
            let next = next_schedules(&cj, now, &crate::schedule::local_zone());
            Ok(describe_cronjob(
                &cj,
                &next,
                events.as_deref(),
                now,
                &TimeZone::system(),
            ))
        }
        _ if crate::manifest::declared::is_declared(kind) => {
            let object: Value = ctx.client.get_json(&kind.object_path(ns, name)).await?;
            let meta = match object.get("metadata") {
                Some(m) => serde_json::from_value(m.clone())?,
                None => crate::api::ObjectMeta::default(),
            };
            let r = kind.resource();
            let events = events_for(ctx, r.name, ns, name, meta.uid()).await;
            let body = crate::manifest::declared::describe(kind, &object).map_err(|e| {
                anyhow::anyhow!(
                    "the daemon sent {} \"{name}\" in an unexpected shape: {e}",
                    r.qualified()
                )
            })?;
            Ok(describe_declared(
                &meta,
                &body,
                events.as_deref(),
                ctx.clock.now(),
            ))
        }
        Kind::Job => {
            let job: Job = ctx.client.get_json(&proto::job_path(ns, name)).await?;
            let events = events_for(ctx, "Job", ns, name, job.metadata.uid()).await;
            // Left out, as the events are, when it cannot be had (a daemon without it).
            let backoff: Option<proto::JobBackoff> = ctx
                .client
                .get_json(&proto::job_backoff_path(ns, name))
                .await
                .ok();
            Ok(describe_job(
                &job,
                backoff.and_then(|b| b.pending).as_ref(),
                events.as_deref(),
                ctx.clock.now(),
                &TimeZone::system(),
            ))
        }
        _ => {
            let pod: Pod = ctx.client.get_json(&proto::pod_path(ns, name)).await?;
            let events = events_for(ctx, "Pod", ns, name, pod.metadata.uid()).await;
            Ok(describe_pod(
                &pod,
                events.as_deref(),
                ctx.clock.now(),
                &TimeZone::system(),
            ))
        }
    }
}

/// The object's events, oldest first; `None` when they could not be fetched (kubectl then
/// leaves the Events section out rather than failing the whole describe).
async fn events_for(
    ctx: &mut Ctx<'_>,
    kind: &str,
    ns: &str,
    name: &str,
    uid: &str,
) -> Option<Vec<Event>> {
    let path = proto::with_query(
        &proto::events_path(Some(ns)),
        &[("fieldSelector", format!("involvedObject.name={name}"))],
    );
    let list: List<Event> = ctx.client.get_json(&path).await.ok()?;
    let mut events: Vec<Event> = list
        .items
        .into_iter()
        .filter(|e| {
            let o = &e.involved_object;
            o.name == name
                && o.kind == kind
                && (o.namespace.is_empty() || o.namespace == ns)
                && (o.uid.is_empty() || uid.is_empty() || o.uid == uid)
        })
        .collect();
    sort_events(&mut events);
    Some(events)
}

/// Go `text/tabwriter` as `kubectl describe` sets it up: no minimum width, padding 2.
fn tabbed(text: &str) -> String {
    let mut tw = TabWriter::new(Vec::new()).minwidth(0).padding(2);
    let _ = tw.write_all(text.as_bytes());
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// kubectl's `printLabelsMultiline`: the first pair after the title, the others below it.
fn labels_multiline(w: &mut String, title: &str, labels: &Labels) {
    let _ = write!(w, "{title}:\t");
    if labels.is_empty() {
        w.push_str("<none>\n");
        return;
    }
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            w.push('\t');
        }
        let _ = writeln!(w, "{k}={v}");
    }
}

/// Go's RFC1123Z; `kubectl describe` prints times in the local zone.
fn time(ts: Option<Timestamp>, tz: &TimeZone) -> Option<String> {
    ts.map(|t| rfc1123z_in(t, tz.clone()))
}

/// An object of a declared kind (ConfigMap…): its metadata as kubectl prints every
/// object's, then what its kind adds (`body`), then its events.
pub fn describe_declared(
    meta: &crate::api::ObjectMeta,
    body: &str,
    events: Option<&[Event]>,
    now: Timestamp,
) -> String {
    let mut w = String::new();
    let _ = writeln!(w, "Name:\t{}", meta.name());
    let _ = writeln!(w, "Namespace:\t{}", meta.namespace());
    labels_multiline(&mut w, "Labels", &meta.labels);
    labels_multiline(&mut w, "Annotations", &meta.annotations);
    w.push_str(body);
    finish(w, events, now)
}

/// kubectl's `describeJob`, and one line of jobvisor's own while a pod waits out the
/// pod-failure backoff: `Pod Failure Backoff:  attempt N of M, next pod in Xs`.
pub fn describe_job(
    job: &Job,
    backoff: Option<&proto::PendingBackoff>,
    events: Option<&[Event]>,
    now: Timestamp,
    tz: &TimeZone,
) -> String {
    let mut w = String::new();
    let spec = &job.spec;
    let status = job.status.clone().unwrap_or_default();
    let _ = writeln!(w, "Name:\t{}", job.metadata.name());
    let _ = writeln!(w, "Namespace:\t{}", job.metadata.namespace());
    let selector = spec
        .selector
        .as_ref()
        .map(selector_string)
        .unwrap_or_default();
    let _ = writeln!(w, "Selector:\t{selector}");
    labels_multiline(&mut w, "Labels", &job.metadata.labels);
    labels_multiline(&mut w, "Annotations", &job.metadata.annotations);
    if let Some(p) = spec.parallelism {
        let _ = writeln!(w, "Parallelism:\t{p}");
    }
    match spec.completions {
        Some(c) => {
            let _ = writeln!(w, "Completions:\t{c}");
        }
        None => w.push_str("Completions:\t<unset>\n"),
    }
    if let Some(mode) = &spec.completion_mode {
        let _ = writeln!(w, "Completion Mode:\t{mode}");
    }
    if let Some(suspend) = spec.suspend {
        let _ = writeln!(w, "Suspend:\t{suspend}");
    }
    if let Some(limit) = spec.backoff_limit {
        let _ = writeln!(w, "Backoff Limit:\t{limit}");
    }
    if let Some(ttl) = spec.ttl_seconds_after_finished {
        let _ = writeln!(w, "TTL Seconds After Finished:\t{ttl}");
    }
    if let Some(start) = time(status.start_time, tz) {
        let _ = writeln!(w, "Start Time:\t{start}");
    }
    if let Some(done) = time(status.completion_time, tz) {
        let _ = writeln!(w, "Completed At:\t{done}");
    }
    if let (Some(start), Some(done)) = (status.start_time, status.completion_time) {
        let _ = writeln!(
            w,
            "Duration:\t{}",
            human_duration(done.duration_since(start))
        );
    }
    if let Some(deadline) = spec.active_deadline_seconds {
        let _ = writeln!(w, "Active Deadline Seconds:\t{deadline}s");
    }
    let _ = writeln!(
        w,
        "Pods Statuses:\t{} Active ({} Ready) / {} Succeeded / {} Failed",
        status.active, status.ready, status.succeeded, status.failed
    );
    // kubectl prints the completed indexes of an Indexed Job (and no failed indexes).
    if spec.completion_mode.as_deref() == Some("Indexed") {
        let _ = writeln!(
            w,
            "Completed Indexes:\t{}",
            cap_indexes(&status.completed_indexes, 50)
        );
    }
    if let Some(b) = backoff {
        let index = b.index.map(|i| format!("index {i}, ")).unwrap_or_default();
        let _ = writeln!(
            w,
            "Pod Failure Backoff:\t{index}attempt {} of {}, next pod in {}",
            b.attempt,
            b.attempts,
            time_until(b.next_pod_at, now)
        );
    }
    pod_template(&mut w, &spec.template, tz);
    finish(w, events, now)
}

/// Whole seconds to go, rounded up (a wait of 50 ms is "1s", never "0s" while it lasts),
/// in kubectl's human format.
fn time_until(at: Timestamp, now: Timestamp) -> String {
    let left = at.duration_since(now);
    let secs = left.as_secs() + i64::from(left.subsec_nanos() > 0);
    human_duration(jiff::SignedDuration::from_secs(secs.max(0)))
}

/// kubectl's `capIndexesListOrNone`: `<none>` when empty, else cut at the first comma at or
/// after `soft_limit` characters, with `...`.
fn cap_indexes(indexes: &str, soft_limit: usize) -> String {
    if indexes.is_empty() {
        return "<none>".into();
    }
    match indexes.get(soft_limit..).and_then(|rest| rest.find(',')) {
        Some(at) => format!("{}...", &indexes[..soft_limit + at + 1]),
        None => indexes.to_string(),
    }
}

/// kubectl's `DescribePodTemplate`, as `describe job` and `describe cronjob` print it.
fn pod_template(w: &mut String, template: &PodTemplateSpec, tz: &TimeZone) {
    w.push_str("Pod Template:\n");
    labels_multiline(w, "  Labels", &template.metadata.labels);
    if !template.metadata.annotations.is_empty() {
        labels_multiline(w, "  Annotations", &template.metadata.annotations);
    }
    let exec = BTreeMap::new();
    containers(w, &template.spec.containers, &[], &exec, "  ", tz);
}

/// What `Next Schedules:` says.
#[derive(Debug, Clone, PartialEq)]
pub enum NextSchedules {
    /// The next fire times (up to three), RFC 3339 in the CronJob's zone.
    At(Vec<String>),
    Suspended,
    /// The schedule never fires (`0 0 30 2 *`).
    Never,
    /// The schedule or the zone cannot be read here.
    Error(String),
}

/// How many upcoming fire times `describe cronjob` lists.
const NEXT_SCHEDULES: usize = 3;

/// The next fire times of `cj` after `now`, in its `timeZone`, else in `local`.
pub fn next_schedules(cj: &CronJob, now: Timestamp, local: &TimeZone) -> NextSchedules {
    if cj.spec.suspended() {
        return NextSchedules::Suspended;
    }
    let zone = match &cj.spec.time_zone {
        Some(name) => match crate::schedule::time_zone(name) {
            Ok(zone) => zone,
            Err(e) => return NextSchedules::Error(e),
        },
        None => local.clone(),
    };
    let schedule = match crate::schedule::Schedule::parse(&cj.spec.schedule) {
        Ok(s) => s,
        Err(e) => return NextSchedules::Error(e.to_string()),
    };
    let mut times = Vec::new();
    let mut after = now;
    while times.len() < NEXT_SCHEDULES {
        let Some(next) = schedule.next_after(after, &zone) else {
            break;
        };
        times.push(rfc3339_in(next, &zone));
        after = next;
    }
    if times.is_empty() {
        NextSchedules::Never
    } else {
        NextSchedules::At(times)
    }
}

/// Go's `time.RFC3339` in `zone`: its offset, `Z` when that is zero.
fn rfc3339_in(t: Timestamp, zone: &TimeZone) -> String {
    let z = t.to_zoned_datetime(zone.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// kubectl's `printBoolPtr`.
fn bool_ptr(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// An optional number as kubectl prints it: the value (with `unit`), else `<unset>`.
fn or_unset<N: std::fmt::Display>(value: Option<N>, unit: &str) -> String {
    value.map_or_else(|| "<unset>".to_string(), |n| format!("{n}{unit}"))
}

/// kubectl's `describeCronJob` (with `describeJobTemplate` and `printActiveJobs`), plus the
/// `Next Schedules:` block.
pub fn describe_cronjob(
    cj: &CronJob,
    next: &NextSchedules,
    events: Option<&[Event]>,
    now: Timestamp,
    tz: &TimeZone,
) -> String {
    let mut w = String::new();
    let spec = &cj.spec;
    let status = cj.status.clone().unwrap_or_default();
    let _ = writeln!(w, "Name:\t{}", cj.metadata.name());
    let _ = writeln!(w, "Namespace:\t{}", cj.metadata.namespace());
    labels_multiline(&mut w, "Labels", &cj.metadata.labels);
    labels_multiline(&mut w, "Annotations", &cj.metadata.annotations);
    let _ = writeln!(w, "Schedule:\t{}", spec.schedule);
    let policy = spec
        .concurrency_policy
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let _ = writeln!(w, "Concurrency Policy:\t{policy}");
    let _ = writeln!(w, "Suspend:\t{}", bool_ptr(spec.suspend));
    let _ = writeln!(
        w,
        "Successful Job History Limit:\t{}",
        or_unset(spec.successful_jobs_history_limit, "")
    );
    let _ = writeln!(
        w,
        "Failed Job History Limit:\t{}",
        or_unset(spec.failed_jobs_history_limit, "")
    );
    let _ = writeln!(
        w,
        "Starting Deadline Seconds:\t{}",
        or_unset(spec.starting_deadline_seconds, "s")
    );
    let template = &spec.job_template.spec;
    let selector = template
        .selector
        .as_ref()
        .map_or_else(|| "<unset>".to_string(), selector_string);
    let _ = writeln!(w, "Selector:\t{selector}");
    let _ = writeln!(w, "Parallelism:\t{}", or_unset(template.parallelism, ""));
    let _ = writeln!(w, "Completions:\t{}", or_unset(template.completions, ""));
    if let Some(deadline) = template.active_deadline_seconds {
        let _ = writeln!(w, "Active Deadline Seconds:\t{deadline}s");
    }
    pod_template(&mut w, &template.template, tz);
    let last = time(status.last_schedule_time, tz).unwrap_or_else(|| "<unset>".into());
    let _ = writeln!(w, "Last Schedule Time:\t{last}");
    match next {
        NextSchedules::At(times) => {
            for (i, t) in times.iter().enumerate() {
                let title = if i == 0 { "Next Schedules:" } else { "" };
                let _ = writeln!(w, "{title}\t{t}");
            }
        }
        NextSchedules::Suspended => w.push_str("Next Schedules:\t<none>\n"),
        NextSchedules::Never => w.push_str("Next Schedules:\tnever\n"),
        NextSchedules::Error(e) => {
            let _ = writeln!(w, "Next Schedules:\t<error: {e}>");
        }
    }
    let active: Vec<&str> = status.active.iter().map(|r| r.name.as_str()).collect();
    if active.is_empty() {
        w.push_str("Active Jobs:\t<none>\n");
    } else {
        let _ = writeln!(w, "Active Jobs:\t{}", active.join(", "));
    }
    finish(w, events, now)
}

pub fn describe_pod(pod: &Pod, events: Option<&[Event]>, now: Timestamp, tz: &TimeZone) -> String {
    let mut w = String::new();
    let st = &pod.status;
    let _ = writeln!(w, "Name:\t{}", pod.metadata.name());
    let _ = writeln!(w, "Namespace:\t{}", pod.metadata.namespace());
    match pod.spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        Some(node) => {
            let _ = writeln!(w, "Node:\t{node}/{}", st.host_ip.as_deref().unwrap_or(""));
        }
        None => w.push_str("Node:\t<none>\n"),
    }
    if let Some(start) = time(st.start_time, tz) {
        let _ = writeln!(w, "Start Time:\t{start}");
    }
    labels_multiline(&mut w, "Labels", &pod.metadata.labels);
    // Shown per container as `Host Command:`; kubectl likewise leaves out an annotation
    // it shows no one (last-applied-configuration, `describe.go` skipAnnotations).
    let mut annotations = pod.metadata.annotations.clone();
    let exec: BTreeMap<String, Vec<String>> = annotations
        .remove(ANNOTATION_EXEC)
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    labels_multiline(&mut w, "Annotations", &annotations);
    match pod.metadata.deletion_timestamp {
        Some(deleted) if !st.phase.is_terminal() => {
            let _ = writeln!(
                w,
                "Status:\tTerminating (lasts {})",
                since(Some(deleted), now)
            );
            if let Some(grace) = pod.metadata.deletion_grace_period_seconds {
                let _ = writeln!(w, "Termination Grace Period:\t{grace}s");
            }
        }
        _ => {
            let _ = writeln!(w, "Status:\t{}", st.phase.as_str());
        }
    }
    if let Some(reason) = st.reason.as_deref().filter(|r| !r.is_empty()) {
        let _ = writeln!(w, "Reason:\t{reason}");
    }
    if let Some(message) = st.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = writeln!(w, "Message:\t{message}");
    }
    let owners = &pod.metadata.owner_references;
    if let Some(owner) = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or(owners.first())
    {
        let _ = writeln!(w, "Controlled By:\t{}/{}", owner.kind, owner.name);
    }
    containers(
        &mut w,
        &pod.spec.containers,
        &st.container_statuses,
        &exec,
        "",
        tz,
    );
    if !st.conditions.is_empty() {
        w.push_str("Conditions:\n  Type\tStatus\n");
        for c in &st.conditions {
            let _ = writeln!(w, "  {} \t{} ", c.type_, c.status);
        }
    }
    finish(w, events, now)
}

/// kubectl's `describeContainers`; `space` is the indent of the section ("  " in a template).
/// `exec`: what each container's latest run executed on the host (a pod's
/// [`ANNOTATION_EXEC`]), shown after kubectl's `Command:` and `Args:` as `Host Command:`.
fn containers(
    w: &mut String,
    list: &[Container],
    statuses: &[ContainerStatus],
    exec: &BTreeMap<String, Vec<String>>,
    space: &str,
    tz: &TimeZone,
) {
    if list.is_empty() {
        let _ = writeln!(w, "{space}Containers:\t<none>");
        return;
    }
    let _ = writeln!(w, "{space}Containers:");
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in list {
        let status = statuses.iter().find(|s| s.name == c.name);
        let _ = writeln!(w, "  {name_indent}{}:", c.name);
        if let Some(id) = status.and_then(|s| s.container_id.as_deref()) {
            let _ = writeln!(w, "    Container ID:\t{id}");
        }
        let _ = writeln!(w, "    Image:\t{}", c.image.as_deref().unwrap_or("<none>"));
        for (title, words) in [("Command", &c.command), ("Args", &c.args)] {
            if let Some(words) = words.as_ref().filter(|w| !w.is_empty()) {
                let _ = writeln!(w, "    {title}:");
                // One line per line of each word; a word's final newline adds no empty line.
                let lines = words
                    .iter()
                    .flat_map(|word| word.strip_suffix('\n').unwrap_or(word).split('\n'));
                for line in lines {
                    let _ = writeln!(w, "      {line}");
                }
            }
        }
        if let Some(argv) = exec.get(&c.name) {
            let _ = writeln!(w, "    Host Command:\t{}", shell_line(argv));
        }
        if let Some(dir) = c.working_dir.as_deref().filter(|d| !d.is_empty()) {
            let _ = writeln!(w, "    Working Dir:\t{dir}");
        }
        if let Some(s) = status {
            state(w, "State", &s.state, tz);
            if s.last_state.terminated.is_some() {
                state(w, "Last State", &s.last_state, tz);
            }
            let _ = writeln!(w, "    Ready:\t{}", if s.ready { "True" } else { "False" });
            let _ = writeln!(w, "    Restart Count:\t{}", s.restart_count);
        }
        if c.env.is_empty() {
            w.push_str("    Environment:\t<none>\n");
        } else {
            w.push_str("    Environment:\n");
            for e in &c.env {
                match (&e.value, &e.value_from) {
                    (_, Some(from)) => {
                        let _ = writeln!(w, "      {}:\t<set from {}>", e.name, from);
                    }
                    (value, None) => {
                        let value = value.as_deref().unwrap_or("");
                        for (i, line) in value.split('\n').enumerate() {
                            if i == 0 {
                                let _ = writeln!(w, "      {}:\t{line}", e.name);
                            } else {
                                let _ = writeln!(w, "      \t{line}");
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An argv as one line a shell reads back as the same words: plain words bare, others in
/// single quotes, and words with control characters (a script's newlines) in bash's `$'…'`,
/// so the line stays one line.
fn shell_line(argv: &[String]) -> String {
    let quote = |word: &str| {
        let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
        if !word.is_empty() && word.chars().all(plain) {
            word.to_string()
        } else if word.chars().any(char::is_control) {
            let mut out = String::from("$'");
            for c in word.chars() {
                match c {
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\\' | '\'' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                    c => out.push(c),
                }
            }
            out.push('\'');
            out
        } else {
            format!("'{}'", word.replace('\'', "'\\''"))
        }
    };
    argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// kubectl's `describeStatus`.
fn state(w: &mut String, title: &str, state: &ContainerState, tz: &TimeZone) {
    if state.running.is_some() {
        let _ = writeln!(w, "    {title}:\tRunning");
        if let Some(t) = time(state.running.as_ref().and_then(|r| r.started_at), tz) {
            let _ = writeln!(w, "      Started:\t{t}");
        }
    } else if let Some(waiting) = &state.waiting {
        let _ = writeln!(w, "    {title}:\tWaiting");
        if let Some(reason) = waiting
            .reason
            .as_ref()
            .map(|r| r.as_str())
            .filter(|r| !r.is_empty())
        {
            let _ = writeln!(w, "      Reason:\t{reason}");
        }
    } else if let Some(t) = &state.terminated {
        let _ = writeln!(w, "    {title}:\tTerminated");
        if let Some(reason) = t
            .reason
            .as_ref()
            .map(|r| r.as_str())
            .filter(|r| !r.is_empty())
        {
            let _ = writeln!(w, "      Reason:\t{reason}");
        }
        if let Some(message) = t.message.as_deref().filter(|m| !m.is_empty()) {
            let _ = writeln!(w, "      Message:\t{message}");
        }
        let _ = writeln!(w, "      Exit Code:\t{}", t.exit_code);
        if let Some(signal) = t.signal.filter(|&s| s > 0) {
            let _ = writeln!(w, "      Signal:\t{signal}");
        }
        if let Some(started) = time(t.started_at, tz) {
            let _ = writeln!(w, "      Started:\t{started}");
        }
        if let Some(finished) = time(t.finished_at, tz) {
            let _ = writeln!(w, "      Finished:\t{finished}");
        }
    } else {
        let _ = writeln!(w, "    {title}:\tWaiting");
    }
}

/// Lays out the body and appends kubectl's `DescribeEvents`. An empty list stays in the
/// body's last column block (kubectl writes it before flushing), a table gets its own.
fn finish(mut body: String, events: Option<&[Event]>, now: Timestamp) -> String {
    match events {
        None => tabbed(&body),
        Some([]) => {
            body.push_str("Events:\t<none>\n");
            tabbed(&body)
        }
        Some(events) => {
            let mut t = String::from(
                "Events:\n  Type\tReason\tAge\tFrom\tMessage\n  ----\t------\t----\t----\t-------\n",
            );
            for e in events {
                let first = since(
                    e.first_timestamp
                        .or(e.last_timestamp)
                        .or(e.metadata.creation_timestamp),
                    now,
                );
                let age = if e.count > 1 {
                    format!(
                        "{} (x{} over {first})",
                        since(e.last_timestamp, now),
                        e.count
                    )
                } else {
                    first
                };
                let message = e.message.trim().replace(['\t', '\n'], " ");
                let _ = writeln!(
                    t,
                    "  {}\t{}\t{age}\t{}\t{message}",
                    e.type_, e.reason, e.source.component
                );
            }
            tabbed(&body) + &tabbed(&t)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::{
        ContainerStateTerminated, EnvVar, JobStatus, LabelSelector, ObjectReference, OwnerReference,
    };
    use crate::cli::testing::{reported, serve};
    use axum::Router;
    use axum::extract::{Path, RawQuery};
    use axum::http::StatusCode;
    use axum::routing::get;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sample_job() -> Job {
        let mut job = Job::default();
        job.metadata.name = Some("pi".into());
        job.metadata.namespace = Some("default".into());
        job.metadata.uid = Some("u1".into());
        job.metadata.labels.insert("job-name".into(), "pi".into());
        job.metadata
            .labels
            .insert("controller-uid".into(), "u1".into());
        let mut sel = LabelSelector::default();
        sel.match_labels
            .insert("batch.kubernetes.io/controller-uid".into(), "u1".into());
        job.spec.selector = Some(sel);
        job.spec.parallelism = Some(1);
        job.spec.completion_mode = Some("NonIndexed".into());
        job.spec.suspend = Some(false);
        job.spec.backoff_limit = Some(6);
        job.spec
            .template
            .metadata
            .labels
            .insert("job-name".into(), "pi".into());
        job.spec.template.spec.containers.push(Container {
            name: "pi".into(),
            image: Some("perl:5.34.0".into()),
            command: Some(vec!["perl".into(), "-wle".into(), "print 1".into()]),
            env: vec![EnvVar {
                name: "GREETING".into(),
                value: Some("hi".into()),
                value_from: None,
            }],
            ..Default::default()
        });
        job.status = Some(JobStatus {
            succeeded: 1,
            start_time: Some(ts("2024-01-15T09:58:00Z")),
            completion_time: Some(ts("2024-01-15T09:59:05Z")),
            ..Default::default()
        });
        job
    }

    fn sample_event(reason: &str, message: &str, at: &str, count: i32) -> Event {
        Event {
            involved_object: ObjectReference {
                kind: "Job".into(),
                name: "pi".into(),
                namespace: "default".into(),
                uid: "u1".into(),
                api_version: None,
            },
            reason: reason.into(),
            message: message.into(),
            type_: "Normal".into(),
            source: crate::api::EventSource {
                component: "job-controller".into(),
            },
            first_timestamp: Some(ts("2024-01-15T09:58:00Z")),
            last_timestamp: Some(ts(at)),
            count,
            ..Default::default()
        }
    }

    #[test]
    fn job_layout() {
        let now = ts("2024-01-15T10:00:00Z");
        let events = [
            sample_event(
                "SuccessfulCreate",
                "Created pod: pi-xf9p4",
                "2024-01-15T09:58:00Z",
                1,
            ),
            sample_event("Completed", "Job completed", "2024-01-15T09:59:50Z", 4),
        ];
        let text = describe_job(&sample_job(), None, Some(&events), now, &TimeZone::UTC);
        let want = "\
Name:             pi
Namespace:        default
Selector:         batch.kubernetes.io/controller-uid=u1
Labels:           controller-uid=u1
                  job-name=pi
Annotations:      <none>
Parallelism:      1
Completions:      <unset>
Completion Mode:  NonIndexed
Suspend:          false
Backoff Limit:    6
Start Time:       Mon, 15 Jan 2024 09:58:00 +0000
Completed At:     Mon, 15 Jan 2024 09:59:05 +0000
Duration:         65s
Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed
Pod Template:
  Labels:  job-name=pi
  Containers:
   pi:
    Image:  perl:5.34.0
    Command:
      perl
      -wle
      print 1
    Environment:
      GREETING:  hi
Events:
  Type    Reason            Age               From            Message
  ----    ------            ----              ----            -------
  Normal  SuccessfulCreate  2m                job-controller  Created pod: pi-xf9p4
  Normal  Completed         10s (x4 over 2m)  job-controller  Job completed
";
        assert_eq!(text, want);
    }

    /// An Indexed Job: `Completed Indexes:` after the pod statuses, `<none>` while empty,
    /// cut after 50 characters as kubectl's `capIndexesListOrNone` does.
    #[test]
    fn job_completed_indexes_line() {
        let now = ts("2024-01-15T10:00:00Z");
        let mut job = sample_job();
        let line = |job: &Job| {
            let text = describe_job(job, None, None, now, &TimeZone::UTC);
            let lines: Vec<&str> = text.lines().collect();
            let at = lines.iter().position(|l| l.starts_with("Pods Statuses:"));
            at.and_then(|i| lines.get(i + 1)).map(|l| l.to_string())
        };
        assert_eq!(line(&job).as_deref(), Some("Pod Template:"));
        job.spec.completion_mode = Some("Indexed".into());
        assert_eq!(line(&job).as_deref(), Some("Completed Indexes:  <none>"));
        job.status.as_mut().unwrap().completed_indexes = "0,2-4".into();
        assert_eq!(line(&job).as_deref(), Some("Completed Indexes:  0,2-4"));
        let long: Vec<String> = (0..40).map(|i| (i * 2).to_string()).collect();
        job.status.as_mut().unwrap().completed_indexes = long.join(",");
        assert_eq!(
            line(&job).as_deref(),
            Some("Completed Indexes:  0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,34,36,...")
        );
        assert_eq!(cap_indexes("0-9", 50), "0-9");
        assert_eq!(cap_indexes("1,3", 1), "1,...");
        assert_eq!(cap_indexes("1,3", 3), "1,3");
    }

    /// `describeJob` prints the TTL only when set, after the backoff limit.
    #[test]
    fn job_ttl_line_only_when_set() {
        let now = ts("2024-01-15T10:00:00Z");
        let text = describe_job(&sample_job(), None, None, now, &TimeZone::UTC);
        assert!(!text.contains("TTL Seconds After Finished"), "{text}");
        let mut job = sample_job();
        job.spec.ttl_seconds_after_finished = Some(100);
        let text = describe_job(&job, None, None, now, &TimeZone::UTC);
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("TTL Seconds After Finished:"))
            .unwrap_or_else(|| panic!("no TTL line: {text}"));
        assert!(lines[at - 1].starts_with("Backoff Limit:"), "{text}");
        assert_eq!(
            lines[at].split_whitespace().collect::<Vec<_>>(),
            ["TTL", "Seconds", "After", "Finished:", "100"]
        );
    }

    /// While a pod waits out the pod-failure backoff, one line after `Pods Statuses:`
    /// says which attempt it is and when it comes; none otherwise.
    #[test]
    fn job_pending_backoff_line() {
        let now = ts("2024-01-15T10:00:00Z");
        let pending = |after_ms: i64| proto::PendingBackoff {
            index: None,
            attempt: 3,
            attempts: 7,
            next_pod_at: now + jiff::SignedDuration::from_millis(after_ms),
        };
        for (after_ms, want) in [
            (18_000, "attempt 3 of 7, next pod in 18s"),
            (17_001, "attempt 3 of 7, next pod in 18s"),
            (50, "attempt 3 of 7, next pod in 1s"),
            (0, "attempt 3 of 7, next pod in 0s"),
            (-2_000, "attempt 3 of 7, next pod in 0s"),
            (200_000, "attempt 3 of 7, next pod in 3m20s"),
            (3_600_000, "attempt 3 of 7, next pod in 60m"),
        ] {
            let text = describe_job(
                &sample_job(),
                Some(&pending(after_ms)),
                None,
                now,
                &TimeZone::UTC,
            );
            let lines: Vec<&str> = text.lines().collect();
            let at = lines
                .iter()
                .position(|l| l.starts_with("Pod Failure Backoff:"))
                .unwrap_or_else(|| panic!("no backoff line: {text}"));
            assert!(lines[at - 1].starts_with("Pods Statuses:"), "{text}");
            assert_eq!(
                lines[at],
                format!("Pod Failure Backoff:  {want}"),
                "{after_ms} ms"
            );
        }
        let text = describe_job(&sample_job(), None, None, now, &TimeZone::UTC);
        assert!(!text.contains("Backoff:"), "{text}");
        // backoffLimitPerIndex: the index whose pod comes next, and its own attempts.
        let per_index = proto::PendingBackoff {
            index: Some(4),
            attempt: 2,
            attempts: 4,
            next_pod_at: now + jiff::SignedDuration::from_secs(9),
        };
        let text = describe_job(&sample_job(), Some(&per_index), None, now, &TimeZone::UTC);
        assert!(
            text.contains("Pod Failure Backoff:  index 4, attempt 2 of 4, next pod in 9s"),
            "{text}"
        );
    }

    #[test]
    fn job_without_events_keeps_the_last_block_aligned() {
        let now = ts("2024-01-15T10:00:00Z");
        let text = describe_job(&sample_job(), None, Some(&[]), now, &TimeZone::UTC);
        assert!(
            text.ends_with("    Environment:\n      GREETING:  hi\nEvents:          <none>\n"),
            "{text}"
        );
        let text = describe_job(&sample_job(), None, None, now, &TimeZone::UTC);
        assert!(!text.contains("Events:"));
    }

    #[test]
    fn pod_layout() {
        let now = ts("2024-01-15T10:00:00Z");
        let mut pod = Pod::default();
        pod.metadata.name = Some("pi-xf9p4".into());
        pod.metadata.namespace = Some("default".into());
        pod.metadata.owner_references.push(OwnerReference {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            name: "pi".into(),
            uid: "u1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        });
        pod.spec.containers.push(Container {
            name: "pi".into(),
            image: Some("perl".into()),
            args: Some(vec!["a\nb".into()]),
            ..Default::default()
        });
        pod.status.phase = crate::api::PodPhase::Failed;
        pod.status.container_statuses.push(ContainerStatus {
            name: "pi".into(),
            state: ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    signal: Some(9),
                    reason: Some("Error".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            restart_count: 2,
            ..Default::default()
        });
        let text = describe_pod(&pod, Some(&[]), now, &TimeZone::UTC);
        let want = "\
Name:           pi-xf9p4
Namespace:      default
Node:           <none>
Labels:         <none>
Annotations:    <none>
Status:         Failed
Controlled By:  Job/pi
Containers:
  pi:
    Image:  perl
    Args:
      a
      b
    State:          Terminated
      Reason:       Error
      Exit Code:    137
      Signal:       9
    Ready:          False
    Restart Count:  2
    Environment:    <none>
Events:             <none>
";
        assert_eq!(text, want);
    }

    fn sample_cronjob() -> CronJob {
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default", "uid": "c1", "labels": {"team": "a"}},
            "spec": {
                "schedule": "0 3 * * *", "timeZone": "Asia/Tokyo", "concurrencyPolicy": "Forbid",
                "suspend": false, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                "startingDeadlineSeconds": 200,
                "jobTemplate": {"spec": {
                    "activeDeadlineSeconds": 60,
                    "template": {
                        "metadata": {"labels": {"app": "hello"}},
                        "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "hello", "image": "busybox:1.28", "command": ["date"]}]}
                    }
                }}
            },
            "status": {
                "lastScheduleTime": "2024-01-14T18:00:00Z",
                "active": [
                    {"kind": "Job", "namespace": "default", "name": "hello-28420560", "uid": "j1"},
                    {"kind": "Job", "namespace": "default", "name": "hello-28421000", "uid": "j2"}
                ]
            }
        }))
        .unwrap()
    }

    #[test]
    fn cronjob_layout_with_the_next_schedules() {
        let now = ts("2024-01-15T10:00:00Z");
        let cj = sample_cronjob();
        let next = next_schedules(&cj, now, &TimeZone::UTC);
        let mut event = sample_event(
            "MissedSchedules",
            "Missed 2 schedules between 2024-01-13T03:00:00+09:00 and 2024-01-14T03:00:00+09:00; ran the one at 2024-01-14T03:00:00+09:00",
            "2024-01-15T09:58:00Z",
            1,
        );
        event.involved_object.kind = "CronJob".into();
        event.type_ = "Warning".into();
        event.source.component = "cronjob-controller".into();
        let text = describe_cronjob(&cj, &next, Some(&[event]), now, &TimeZone::UTC);
        let want = "\
Name:                          hello
Namespace:                     default
Labels:                        team=a
Annotations:                   <none>
Schedule:                      0 3 * * *
Concurrency Policy:            Forbid
Suspend:                       False
Successful Job History Limit:  3
Failed Job History Limit:      1
Starting Deadline Seconds:     200s
Selector:                      <unset>
Parallelism:                   <unset>
Completions:                   <unset>
Active Deadline Seconds:       60s
Pod Template:
  Labels:  app=hello
  Containers:
   hello:
    Image:  busybox:1.28
    Command:
      date
    Environment:     <none>
Last Schedule Time:  Sun, 14 Jan 2024 18:00:00 +0000
Next Schedules:      2024-01-16T03:00:00+09:00
                     2024-01-17T03:00:00+09:00
                     2024-01-18T03:00:00+09:00
Active Jobs:         hello-28420560, hello-28421000
Events:
  Type     Reason           Age   From                Message
  ----     ------           ----  ----                -------
  Warning  MissedSchedules  2m    cronjob-controller  Missed 2 schedules between 2024-01-13T03:00:00+09:00 and 2024-01-14T03:00:00+09:00; ran the one at 2024-01-14T03:00:00+09:00
";
        assert_eq!(text, want);
    }

    #[test]
    fn next_schedules_in_the_zone_suspended_and_never() {
        let now = ts("2024-03-30T23:30:00Z");
        let mut cj = sample_cronjob();
        // Tokyo: the offset of the zone, whatever the local one.
        assert_eq!(
            next_schedules(&cj, now, &TimeZone::UTC),
            NextSchedules::At(vec![
                "2024-04-01T03:00:00+09:00".into(),
                "2024-04-02T03:00:00+09:00".into(),
                "2024-04-03T03:00:00+09:00".into(),
            ])
        );
        // No timeZone: the local zone, here Berlin across its spring-forward night; UTC
        // prints as Z, as Go's RFC 3339 does.
        cj.spec.time_zone = None;
        cj.spec.schedule = "30 2 * * *".into();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            next_schedules(&cj, now, &berlin),
            NextSchedules::At(vec![
                "2024-04-01T02:30:00+02:00".into(),
                "2024-04-02T02:30:00+02:00".into(),
                "2024-04-03T02:30:00+02:00".into(),
            ]),
            "02:30 does not exist on the 31st"
        );
        assert_eq!(
            next_schedules(&cj, now, &TimeZone::UTC),
            NextSchedules::At(vec![
                "2024-03-31T02:30:00Z".into(),
                "2024-04-01T02:30:00Z".into(),
                "2024-04-02T02:30:00Z".into(),
            ])
        );
        cj.spec.schedule = "0 0 30 2 *".into();
        assert_eq!(next_schedules(&cj, now, &berlin), NextSchedules::Never);
        cj.spec.suspend = Some(true);
        assert_eq!(next_schedules(&cj, now, &berlin), NextSchedules::Suspended);
        cj.spec.suspend = None;
        cj.spec.time_zone = Some("Mars/Olympus".into());
        assert!(matches!(
            next_schedules(&cj, now, &berlin),
            NextSchedules::Error(_)
        ));

        let line = |next: &NextSchedules| {
            let text = describe_cronjob(&cj, next, None, now, &TimeZone::UTC);
            text.lines()
                .find(|l| l.starts_with("Next Schedules:"))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            line(&NextSchedules::Suspended),
            "Next Schedules:      <none>"
        );
        assert_eq!(line(&NextSchedules::Never), "Next Schedules:      never");
        assert_eq!(
            line(&NextSchedules::Error(
                "unknown time zone Mars/Olympus".into()
            )),
            "Next Schedules:      <error: unknown time zone Mars/Olympus>"
        );
    }

    /// A container run through an image alias: kubectl's `Image:` and `Args:`, then the
    /// command line that ran on the host, from the daemon's annotation (not listed among
    /// the annotations, as kubectl leaves out last-applied-configuration).
    #[test]
    fn pod_shows_the_host_command_of_each_container() {
        let now = ts("2024-01-15T10:00:00Z");
        let mut pod = Pod::default();
        pod.metadata.name = Some("hi-x".into());
        pod.metadata
            .annotations
            .insert("jobvisor.io/source".into(), "/m/hi.yaml".into());
        pod.metadata.annotations.insert(
            ANNOTATION_EXEC.into(),
            r#"{"main":["sh","-c","echo hi"],"other":["true"]}"#.into(),
        );
        pod.spec.containers.push(Container {
            name: "main".into(),
            image: Some("busybox".into()),
            args: Some(vec!["sh".into(), "-c".into(), "echo hi".into()]),
            ..Default::default()
        });
        pod.spec.containers.push(Container {
            name: "later".into(),
            image: Some("busybox".into()),
            command: Some(vec!["sleep".into(), "1".into()]),
            ..Default::default()
        });
        let text = describe_pod(&pod, None, now, &TimeZone::UTC);
        let want = "\
Name:         hi-x
Namespace:    default
Node:         <none>
Labels:       <none>
Annotations:  jobvisor.io/source=/m/hi.yaml
Status:       Pending
Containers:
  main:
    Image:  busybox
    Args:
      sh
      -c
      echo hi
    Host Command:  sh -c 'echo hi'
    Environment:   <none>
  later:
    Image:  busybox
    Command:
      sleep
      1
    Environment:  <none>
";
        assert_eq!(text, want);
    }

    #[test]
    fn shell_line_quotes_as_a_shell_reads_it() {
        let cases: [(&[&str], &str); 6] = [
            (&["sh", "-c", "echo hi"], "sh -c 'echo hi'"),
            (
                &["/bin/sh", "-c", "n=$(shuf -i 1-6 -n 1)", "throw-dice"],
                "/bin/sh -c 'n=$(shuf -i 1-6 -n 1)' throw-dice",
            ),
            (&["echo", "it's"], r"echo 'it'\''s'"),
            (&["printf", ""], "printf ''"),
            (
                &["sh", "-c", "echo a\necho 'b'"],
                r"sh -c $'echo a\necho \'b\''",
            ),
            (&["a=b", "x@y:1.0/z_%+,"], "a=b x@y:1.0/z_%+,"),
        ];
        for (argv, want) in cases {
            let argv: Vec<String> = argv.iter().map(|w| w.to_string()).collect();
            assert_eq!(shell_line(&argv), want);
        }
    }

    #[tokio::test]
    async fn describe_fetches_and_filters_events() {
        let router = Router::new()
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
                get(|Path((_ns, name)): Path<(String, String)>| async move {
                    if name == "pi" {
                        (StatusCode::OK, axum::Json(serde_json::to_value(sample_job()).unwrap()))
                    } else {
                        let s = crate::api::Status::failure(404, "NotFound", format!("jobs.batch \"{name}\" not found"));
                        (StatusCode::NOT_FOUND, axum::Json(serde_json::to_value(s).unwrap()))
                    }
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/events",
                get(|RawQuery(q): RawQuery| async move {
                    assert_eq!(q.as_deref(), Some("fieldSelector=involvedObject.name%3Dpi"));
                    let mine = sample_event("Completed", "Job completed", "2024-01-15T09:59:50Z", 1);
                    let mut pod_event = mine.clone();
                    pod_event.involved_object.kind = "Pod".into();
                    pod_event.reason = "PodThing".into();
                    let mut old = mine.clone();
                    old.involved_object.uid = "u0".into();
                    old.reason = "OldJob".into();
                    axum::Json(json!({"apiVersion": "v1", "kind": "EventList", "items": [mine, pod_event, old]}))
                }),
            );
        let mut h = serve(router);
        let args = DescribeArgs {
            resource: "jobs".into(),
            names: vec!["pi".into()],
            ns: NamespaceArg {
                namespace: "default".into(),
            },
        };
        run(&mut h.ctx(), args).await.unwrap();
        let out = h.out();
        assert!(out.contains("Completed"), "{out}");
        assert!(
            !out.contains("PodThing") && !out.contains("OldJob"),
            "{out}"
        );

        let args = DescribeArgs {
            resource: "job/nope".into(),
            names: vec![],
            ns: NamespaceArg {
                namespace: "default".into(),
            },
        };
        let err = run(&mut h.ctx(), args).await.unwrap_err();
        assert_eq!(
            reported(&err),
            "Error from server (NotFound): jobs.batch \"nope\" not found\n"
        );
    }
}

#[cfg(test)]
mod declared_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// kubectl's `describeConfigMap` layout: metadata, each data key ruled off, binary keys
    /// by size, then the events.
    #[test]
    fn a_configmap_is_described_as_kubectl_does() {
        let object = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": "default", "labels": {"app": "demo"}},
            "data": {"a": "x", "b": "two\nlines"},
            "binaryData": {"c": "aGk="},
        });
        let meta: crate::api::ObjectMeta =
            serde_json::from_value(object["metadata"].clone()).unwrap();
        let body = crate::manifest::declared::describe(Kind::ConfigMap, &object).unwrap();
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            describe_declared(&meta, &body, Some(&[]), now),
            "Name:         app\nNamespace:    default\nLabels:       app=demo\nAnnotations:  <none>\n\
             \nData\n====\na:\n----\nx\n\nb:\n----\ntwo\nlines\n\n\nBinaryData\n====\nc: 2 bytes\n\n\
             Events:  <none>\n"
        );
    }
}
