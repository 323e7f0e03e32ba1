//! kubectl's table printers for the kinds jobvisor serves: the columns, the STATUS rules
//! (`printJob`, `printPod` in Kubernetes' `pkg/printers/internalversion/printers.go`)
//! and Go `text/tabwriter` layout with kubectl's settings.
//!
//! Every function here is pure: it takes the object and `now`, so the rules are table-tested.
//! The CLI prints with them, and the daemon lays out server-side Tables (kubectl's
//! `as=Table`) with the same rows.

use std::io::Write;

use crate::api::table::{Table, TableColumn};
use crate::api::{CronJob, Event, Job, Kind, LabelSelector, ManifestFile, Pod};
use jiff::{SignedDuration, Timestamp};
use tabwriter::TabWriter;

/// Lays rows out like kubectl: Go tabwriter with minwidth 6, padding 3. The tabwriter crate
/// adds its padding after the minimum width, Go before it, so minwidth 3 + padding 3 here is
/// Go's `max(width + 3, 6)`.
pub fn render(rows: &[Vec<String>]) -> String {
    let mut tw = TabWriter::new(Vec::new()).minwidth(3).padding(3);
    for row in rows {
        // Cells must not break the layout: a tab or newline in a message would.
        let cells: Vec<String> = row.iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        let _ = writeln!(tw, "{}", cells.join("\t"));
    }
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn strs(headers: &[&str]) -> Vec<String> {
    headers.iter().map(|h| h.to_string()).collect()
}

// ---------------------------------------------------------------- server-side tables

/// The columns of `kind` as a `Table` describes them (`Last Seen`; kubectl prints names in
/// capitals): every column of `-o wide`, those of the plain table at priority 0. The rows
/// the daemon sends are this module's wide rows, whose columns are the plain ones plus
/// others, in that order.
pub fn columns(kind: Kind) -> Vec<TableColumn> {
    let (plain, wide) = match kind {
        Kind::Job => (job_headers(false), job_headers(true)),
        Kind::CronJob => (cronjob_headers(false), cronjob_headers(true)),
        Kind::Pod => (pod_headers(false), pod_headers(true)),
        Kind::Event => (event_headers(false), event_headers(true)),
        Kind::Manifest => (manifest_headers(false), manifest_headers(true)),
        // Declared kinds: unreachable until one is registered.
        #[allow(unreachable_patterns)]
        declared => (declared_headers(declared), declared_headers(declared)),
    };
    wide.iter()
        .map(|h| TableColumn {
            name: title_case(h),
            type_: "string".into(),
            format: if h == "NAME" {
                "name".into()
            } else {
                String::new()
            },
            description: String::new(),
            priority: i32::from(!plain.contains(h)),
        })
        .collect()
}

fn title_case(header: &str) -> String {
    header
        .split(' ')
        .map(|w| {
            let lower = w.to_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints a `Table` as kubectl does: the priority-0 columns (all with `wide`), names in
/// capitals, NAMESPACE first for `-A`. `None` when it has no rows.
pub fn render_table(
    table: &Table,
    wide: bool,
    all_namespaces: bool,
    no_headers: bool,
) -> Option<String> {
    if table.rows.is_empty() {
        return None;
    }
    let shown: Vec<usize> = table
        .column_definitions
        .iter()
        .enumerate()
        .filter(|(_, c)| wide || c.priority == 0)
        .map(|(i, _)| i)
        .collect();
    let mut rows = Vec::with_capacity(table.rows.len() + 1);
    if !no_headers {
        let mut h: Vec<String> = shown
            .iter()
            .map(|&i| table.column_definitions[i].name.to_uppercase())
            .collect();
        if all_namespaces {
            h.insert(0, "NAMESPACE".into());
        }
        rows.push(h);
    }
    for r in &table.rows {
        let mut row: Vec<String> = shown
            .iter()
            .map(|&i| match r.cells.get(i) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            })
            .collect();
        if all_namespaces {
            row.insert(0, r.namespace().to_string());
        }
        rows.push(row);
    }
    Some(render(&rows))
}

// ---------------------------------------------------------------- jobs

pub fn job_headers(wide: bool) -> Vec<String> {
    let mut h = strs(&["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
    if wide {
        h.extend(strs(&["CONTAINERS", "IMAGES", "SELECTOR"]));
    }
    h
}

pub fn job_row(job: &Job, now: Timestamp, wide: bool) -> Vec<String> {
    let mut row = vec![
        job.metadata.name().to_string(),
        job_status(job).to_string(),
        job_completions(job),
        job_duration(job, now),
        since(job.metadata.creation_timestamp, now),
    ];
    if wide {
        row.extend(container_cells(&job.spec.template.spec.containers));
        row.push(format_selector(job.spec.selector.as_ref()));
    }
    row
}

/// The wide CONTAINERS and IMAGES cells (kubectl's `layoutContainerCells`).
fn container_cells(containers: &[crate::api::Container]) -> [String; 2] {
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or("<none>"))
        .collect();
    [names.join(","), images.join(",")]
}

/// kubectl's `printCronJob` (`pkg/printers/internalversion/printers.go`).
pub fn cronjob_headers(wide: bool) -> Vec<String> {
    let mut h = strs(&[
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "AGE",
    ]);
    if wide {
        h.extend(strs(&["CONTAINERS", "IMAGES", "SELECTOR"]));
    }
    h
}

pub fn cronjob_row(cj: &CronJob, now: Timestamp, wide: bool) -> Vec<String> {
    let status = cj.status.as_ref();
    let last = status.and_then(|s| s.last_schedule_time);
    let mut row = vec![
        cj.metadata.name().to_string(),
        cj.spec.schedule.clone(),
        cj.spec.time_zone.clone().unwrap_or_else(|| "<none>".into()),
        match cj.spec.suspend {
            None => "<unset>".into(),
            Some(true) => "True".into(),
            Some(false) => "False".into(),
        },
        status.map_or(0, |s| s.active.len()).to_string(),
        if last.is_some() {
            since(last, now)
        } else {
            "<none>".into()
        },
        since(cj.metadata.creation_timestamp, now),
    ];
    if wide {
        let template = &cj.spec.job_template.spec;
        row.extend(container_cells(&template.template.spec.containers));
        row.push(format_selector(template.selector.as_ref()));
    }
    row
}

/// The metadata a row shows, decoded from JSON by [`job_row_from_json`] and
/// [`pod_row_from_json`].
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RowJsonMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    creation_timestamp: Option<Timestamp>,
    #[serde(default)]
    deletion_timestamp: Option<Timestamp>,
}

/// `job_row` of a Job given as its JSON, decoding only what the row shows: the daemon's
/// Table of 10,000 finished Jobs, which it holds as JSON (`daemon/pack.rs`), costs half of
/// what decoding each whole Job would. Whatever `job_row` reads must be decoded here too
/// (`a_row_from_json_is_the_row_of_the_job` checks it).
pub fn job_row_from_json(
    json: &str,
    now: Timestamp,
    wide: bool,
) -> Result<Vec<String>, serde_json::Error> {
    use crate::api::{
        Container, JobCondition, JobConditionType, JobSpec, JobStatus, ObjectMeta, PodSpec,
        PodTemplateSpec,
    };
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Shown {
        metadata: RowJsonMeta,
        #[serde(default)]
        spec: Spec,
        #[serde(default)]
        status: Option<Status>,
    }
    #[derive(Deserialize, Default)]
    struct Spec {
        #[serde(default)]
        completions: Option<i32>,
        #[serde(default)]
        parallelism: Option<i32>,
        #[serde(default)]
        selector: Option<LabelSelector>,
        #[serde(default)]
        template: Template,
    }
    #[derive(Deserialize, Default)]
    struct Template {
        #[serde(default)]
        spec: TemplateSpec,
    }
    #[derive(Deserialize, Default)]
    struct TemplateSpec {
        #[serde(default)]
        containers: Vec<ShownContainer>,
    }
    #[derive(Deserialize)]
    struct ShownContainer {
        name: String,
        #[serde(default)]
        image: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        #[serde(default)]
        conditions: Vec<Condition>,
        #[serde(default)]
        start_time: Option<Timestamp>,
        #[serde(default)]
        completion_time: Option<Timestamp>,
        #[serde(default)]
        succeeded: i32,
    }
    #[derive(Deserialize)]
    struct Condition {
        #[serde(rename = "type")]
        type_: JobConditionType,
        status: String,
    }

    let shown: Shown = serde_json::from_str(json)?;
    let containers = shown.spec.template.spec.containers.into_iter();
    let job = Job {
        metadata: ObjectMeta {
            name: shown.metadata.name,
            creation_timestamp: shown.metadata.creation_timestamp,
            deletion_timestamp: shown.metadata.deletion_timestamp,
            ..Default::default()
        },
        spec: JobSpec {
            completions: shown.spec.completions,
            parallelism: shown.spec.parallelism,
            selector: shown.spec.selector,
            template: PodTemplateSpec {
                spec: PodSpec {
                    containers: containers
                        .map(|c| Container {
                            name: c.name,
                            image: c.image,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        },
        status: shown.status.map(|st| JobStatus {
            conditions: st
                .conditions
                .into_iter()
                .map(|c| JobCondition {
                    type_: c.type_,
                    status: c.status,
                    last_probe_time: None,
                    last_transition_time: None,
                    reason: String::new(),
                    message: String::new(),
                })
                .collect(),
            start_time: st.start_time,
            completion_time: st.completion_time,
            succeeded: st.succeeded,
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(job_row(&job, now, wide))
}

/// STATUS, first match wins (spec §6.2, kubectl PR #132832 for SuccessCriteriaMet).
pub fn job_status(job: &Job) -> &'static str {
    use crate::api::JobConditionType as C;
    let has = |t: C| {
        job.status
            .as_ref()
            .is_some_and(|s| s.condition(t).is_some())
    };
    if has(C::Complete) {
        "Complete"
    } else if has(C::Failed) {
        "Failed"
    } else if job.metadata.deletion_timestamp.is_some() {
        "Terminating"
    } else if has(C::Suspended) {
        "Suspended"
    } else if has(C::FailureTarget) {
        "FailureTarget"
    } else if has(C::SuccessCriteriaMet) {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

/// `succeeded/completions`; a work queue (no completions) counts to 1.
pub fn job_completions(job: &Job) -> String {
    let succeeded = job.status.as_ref().map_or(0, |s| s.succeeded);
    match (job.spec.completions, job.spec.parallelism) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, Some(p)) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, _) => format!("{succeeded}/1"),
    }
}

/// Empty before start; completion − start once complete; otherwise it keeps growing (a
/// Failed Job has no completionTime, so kubectl's DURATION keeps counting for it too).
pub fn job_duration(job: &Job, now: Timestamp) -> String {
    let Some(status) = &job.status else {
        return String::new();
    };
    match (status.start_time, status.completion_time) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    }
}

/// `metav1.FormatLabelSelector`: `a=b,c in (x,y)`, `<none>` when it selects nothing.
pub fn format_selector(selector: Option<&LabelSelector>) -> String {
    let text = selector.map(selector_string).unwrap_or_default();
    if text.is_empty() {
        "<none>".to_string()
    } else {
        text
    }
}

/// `LabelSelectorAsSelector(s).String()`: requirements sorted by key, values sorted.
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut reqs: Vec<(String, String)> = selector
        .match_labels
        .iter()
        .map(|(k, v)| (k.clone(), format!("{k}={v}")))
        .collect();
    for e in &selector.match_expressions {
        let mut values = e.values.clone();
        values.sort();
        let values = values.join(",");
        let text = match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        };
        reqs.push((e.key.clone(), text));
    }
    reqs.sort();
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------- pods

pub fn pod_headers(wide: bool) -> Vec<String> {
    let mut h = strs(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    if wide {
        h.extend(strs(&["IP", "NODE"]));
    }
    h
}

/// `node` is what NODE shows when the pod does not name one: this host.
pub fn pod_row(pod: &Pod, now: Timestamp, wide: bool, node: &str) -> Vec<String> {
    let summary = pod_summary(pod, now);
    let mut row = vec![
        pod.metadata.name().to_string(),
        format!("{}/{}", summary.ready, pod.spec.containers.len()),
        summary.status,
        summary.restarts,
        since(pod.metadata.creation_timestamp, now),
    ];
    if wide {
        row.push(
            pod.status
                .host_ip
                .clone()
                .unwrap_or_else(|| "<none>".into()),
        );
        row.push(
            pod.spec
                .node_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| node.to_string()),
        );
    }
    row
}

/// `pod_row` of a pod given as its JSON, decoding only what the row reads (the status, the
/// number of containers, the node, the name and times), not the labels, owner and container
/// specs: the daemon holds finished pods as JSON (`daemon/pack.rs`). Whatever `pod_row`
/// reads must be decoded here too (`a_pod_row_from_json_is_the_row_of_the_pod` checks it).
pub fn pod_row_from_json(
    json: &str,
    now: Timestamp,
    wide: bool,
    node: &str,
) -> Result<Vec<String>, serde_json::Error> {
    use crate::api::{Container, ObjectMeta, PodSpec, PodStatus};
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Shown {
        #[serde(default)]
        metadata: RowJsonMeta,
        #[serde(default)]
        spec: Spec,
        #[serde(default)]
        status: PodStatus,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        #[serde(default)]
        containers: Vec<serde::de::IgnoredAny>,
        #[serde(default)]
        node_name: Option<String>,
    }

    let shown: Shown = serde_json::from_str(json)?;
    let pod = Pod {
        metadata: ObjectMeta {
            name: shown.metadata.name,
            creation_timestamp: shown.metadata.creation_timestamp,
            deletion_timestamp: shown.metadata.deletion_timestamp,
            ..Default::default()
        },
        spec: PodSpec {
            containers: vec![Container::default(); shown.spec.containers.len()],
            node_name: shown.spec.node_name,
            ..Default::default()
        },
        status: shown.status,
        ..Default::default()
    };
    Ok(pod_row(&pod, now, wide, node))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    pub ready: usize,
    pub status: String,
    pub restarts: String,
}

/// READY, STATUS and RESTARTS of `printPod` (spec §6.3). Containers are scanned last to
/// first so the first one in spec order that is waiting or terminated names the STATUS.
pub fn pod_summary(pod: &Pod, now: Timestamp) -> PodSummary {
    let mut reason = pod
        .status
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| pod.status.phase.as_str().to_string());
    let mut restarts = 0i64;
    let mut ready = 0usize;
    let mut has_running = false;
    let mut last_restart: Option<Timestamp> = None;
    for cs in pod.status.container_statuses.iter().rev() {
        restarts += i64::from(cs.restart_count);
        if let Some(finished) = cs
            .last_state
            .terminated
            .as_ref()
            .and_then(|t| t.finished_at)
        {
            last_restart = Some(last_restart.map_or(finished, |l: Timestamp| l.max(finished)));
        }
        let waiting = cs
            .waiting_reason()
            .map(|r| r.as_str().to_string())
            .filter(|r| !r.is_empty());
        if let Some(w) = waiting {
            reason = w;
        } else if let Some(t) = &cs.state.terminated {
            reason = match t
                .reason
                .as_ref()
                .map(|r| r.as_str())
                .filter(|r| !r.is_empty())
            {
                Some(r) => r.to_string(),
                None => match t.signal.filter(|&s| s != 0) {
                    Some(s) => format!("Signal:{s}"),
                    None => format!("ExitCode:{}", t.exit_code),
                },
            };
        } else if cs.ready && cs.state.running.is_some() {
            has_running = true;
            ready += 1;
        }
    }
    // One container finished while another still runs: the pod is not "Completed" yet.
    if reason == "Completed" && has_running {
        let pod_ready = pod
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == crate::api::PodConditionType::Ready && c.status == "True");
        reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
    }
    if pod.metadata.deletion_timestamp.is_some() {
        if pod.status.reason.as_deref() == Some("NodeLost") {
            reason = "Unknown".to_string();
        } else if !pod.status.phase.is_terminal() {
            reason = "Terminating".to_string();
        }
    }
    let restarts = match last_restart {
        Some(at) if restarts > 0 => format!(
            "{restarts} ({} ago)",
            human_duration(now.duration_since(at))
        ),
        _ => restarts.to_string(),
    };
    PodSummary {
        ready,
        status: reason,
        restarts,
    }
}

// ---------------------------------------------------------------- events

pub fn event_headers(wide: bool) -> Vec<String> {
    if wide {
        strs(&[
            "LAST SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "SUBOBJECT",
            "SOURCE",
            "MESSAGE",
            "FIRST SEEN",
            "COUNT",
            "NAME",
        ])
    } else {
        strs(&["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"])
    }
}

pub fn event_row(ev: &Event, now: Timestamp, wide: bool) -> Vec<String> {
    let object = format!(
        "{}/{}",
        ev.involved_object.kind.to_lowercase(),
        ev.involved_object.name
    );
    let message = ev.message.trim().to_string();
    let last_seen = since(event_time(ev), now);
    if wide {
        vec![
            last_seen,
            ev.type_.to_string(),
            ev.reason.clone(),
            object,
            String::new(),
            ev.source.component.clone(),
            message,
            since(ev.first_timestamp.or(ev.last_timestamp), now),
            ev.count.max(1).to_string(),
            ev.metadata.name().to_string(),
        ]
    } else {
        vec![
            last_seen,
            ev.type_.to_string(),
            ev.reason.clone(),
            object,
            message,
        ]
    }
}

/// When an event last happened: what `get events` sorts by and LAST SEEN shows.
pub fn event_time(ev: &Event) -> Option<Timestamp> {
    ev.last_timestamp
        .or(ev.first_timestamp)
        .or(ev.metadata.creation_timestamp)
}

/// Oldest first, as kubectl lists events (newest at the bottom, next to the prompt).
pub fn sort_events(events: &mut [Event]) {
    events.sort_by(|a, b| {
        event_time(a)
            .cmp(&event_time(b))
            .then_with(|| a.metadata.name().cmp(b.metadata.name()))
    });
}

// ---------------------------------------------------------------- manifests

/// A declared kind's table (ConfigMap…): NAME, its own columns, AGE; `-o wide` adds none.
pub fn declared_headers(kind: Kind) -> Vec<String> {
    let mut h = vec!["NAME".to_string()];
    h.extend(strs(crate::manifest::declared::columns(kind)));
    h.push("AGE".to_string());
    h
}

/// One object of a declared `kind`, as served, under [`declared_headers`]. `_wide`: such
/// kinds add no columns for `-o wide`.
pub fn declared_row(
    kind: Kind,
    object: &serde_json::Value,
    now: Timestamp,
    _wide: bool,
) -> Result<Vec<String>, String> {
    let meta = object
        .get("metadata")
        .map(<crate::api::ObjectMeta as serde::Deserialize>::deserialize)
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let mut row = vec![meta.name().to_string()];
    row.extend(crate::manifest::declared::cells(kind, object)?);
    row.push(since(meta.creation_timestamp, now));
    Ok(row)
}

pub fn manifest_headers(wide: bool) -> Vec<String> {
    let mut h = strs(&["PATH", "STATE", "OBJECTS", "ERRORS", "AGE"]);
    if wide {
        h.extend(strs(&["WARNINGS", "MESSAGE"]));
    }
    h
}

/// OBJECTS as `job/a,job/b`; AGE since the file was last applied; wide adds the first error
/// (or the reason it is pending, ignored or unavailable, or the first warning) so a broken file is explained without `-o yaml`.
pub fn manifest_row(m: &ManifestFile, now: Timestamp, wide: bool) -> Vec<String> {
    let objects: Vec<String> = m
        .objects
        .iter()
        .map(|o| format!("{}/{}", o.kind.to_lowercase(), o.name))
        .collect();
    let mut row = vec![
        m.path.clone(),
        m.state.to_string(),
        if objects.is_empty() {
            "<none>".to_string()
        } else {
            objects.join(",")
        },
        m.errors.len().to_string(),
        since(m.applied_time, now),
    ];
    if wide {
        row.push(m.warnings.len().to_string());
        row.push(
            m.errors
                .first()
                .or(m.message.as_ref())
                .or(m.warnings.first())
                .cloned()
                .unwrap_or_else(|| "<none>".into()),
        );
    }
    row
}

/// kubectl's `duration.HumanDuration` (apimachinery `pkg/util/duration`): `65s`, `2m5s`,
/// `45m`, `3h20m`, `30h`, `3d4h`, `30d`, `2y30d`, `8y`.
pub fn human_duration(d: SignedDuration) -> String {
    // Up to one second in the future counts as "now": clocks of two processes differ a bit.
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// kubectl's `translateTimestampSince`: the age of a timestamp, `<unknown>` when unset.
pub fn since(ts: Option<Timestamp>, now: Timestamp) -> String {
    match ts {
        Some(ts) => human_duration(now.duration_since(ts)),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, JobCondition, JobStatus, LabelSelectorRequirement, ObjectReference,
        PodCondition, PodPhase,
    };
    use jiff::SignedDuration;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2024-01-15T10:00:00Z";

    fn cond(t: &str, status: &str) -> JobCondition {
        JobCondition {
            type_: t.into(),
            status: status.into(),
            last_probe_time: None,
            last_transition_time: None,
            reason: String::new(),
            message: String::new(),
        }
    }

    fn job_with(conds: &[(&str, &str)], deleting: bool) -> Job {
        let mut job = Job::default();
        job.metadata.name = Some("pi".into());
        if deleting {
            job.metadata.deletion_timestamp = Some(ts(NOW));
        }
        job.status = Some(JobStatus {
            conditions: conds.iter().map(|(t, s)| cond(t, s)).collect(),
            ..JobStatus::default()
        });
        job
    }

    #[test]
    fn job_status_precedence() {
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a str);
        let cases: &[Case] = &[
            (&[], false, "Running"),
            (
                &[("SuccessCriteriaMet", "True"), ("Complete", "True")],
                false,
                "Complete",
            ),
            (
                &[("FailureTarget", "True"), ("Failed", "True")],
                true,
                "Failed",
            ),
            (&[("Complete", "True")], true, "Complete"),
            (&[], true, "Terminating"),
            (&[("Suspended", "True")], true, "Terminating"),
            (&[("Suspended", "True")], false, "Suspended"),
            (&[("Suspended", "False")], false, "Running"),
            (
                &[("Suspended", "True"), ("FailureTarget", "True")],
                false,
                "Suspended",
            ),
            (&[("FailureTarget", "True")], false, "FailureTarget"),
            (
                &[("SuccessCriteriaMet", "True")],
                false,
                "SuccessCriteriaMet",
            ),
            (&[("Complete", "False")], false, "Running"),
        ];
        for (conds, deleting, want) in cases {
            assert_eq!(
                job_status(&job_with(conds, *deleting)),
                *want,
                "{conds:?} {deleting}"
            );
        }
        let mut no_status = job_with(&[], false);
        no_status.status = None;
        assert_eq!(job_status(&no_status), "Running");
    }

    #[test]
    fn job_completions_column() {
        let cases = [
            (Some(3), Some(2), 1, "1/3"),
            (Some(1), None, 1, "1/1"),
            (None, None, 0, "0/1"),
            (None, Some(1), 1, "1/1"),
            (None, Some(3), 1, "1/1 of 3"),
        ];
        for (completions, parallelism, succeeded, want) in cases {
            let mut job = job_with(&[], false);
            job.spec.completions = completions;
            job.spec.parallelism = parallelism;
            job.status.as_mut().unwrap().succeeded = succeeded;
            assert_eq!(job_completions(&job), want);
        }
    }

    #[test]
    fn job_duration_column() {
        let now = ts(NOW);
        let mut job = job_with(&[], false);
        assert_eq!(job_duration(&job, now), "");
        let status = job.status.as_mut().unwrap();
        status.start_time = Some(ts("2024-01-15T09:56:48Z"));
        assert_eq!(job_duration(&job, now), "3m12s");
        job.status.as_mut().unwrap().completion_time = Some(ts("2024-01-15T09:56:57Z"));
        assert_eq!(job_duration(&job, now), "9s");
        job.status = None;
        assert_eq!(job_duration(&job, now), "");
    }

    #[test]
    fn job_table_layout() {
        let now = ts(NOW);
        let mut pi = job_with(&[("Complete", "True")], false);
        pi.spec.completions = Some(1);
        pi.metadata.creation_timestamp = Some(now - SignedDuration::from_secs(120));
        let st = pi.status.as_mut().unwrap();
        st.succeeded = 1;
        st.start_time = Some(now - SignedDuration::from_secs(119));
        st.completion_time = Some(now - SignedDuration::from_secs(110));
        let mut wq = job_with(&[], false);
        wq.metadata.name = Some("wq".into());
        wq.spec.parallelism = Some(3);
        wq.metadata.creation_timestamp = Some(now - SignedDuration::from_secs(20));
        let st = wq.status.as_mut().unwrap();
        st.succeeded = 1;
        st.start_time = Some(now - SignedDuration::from_secs(20));
        let mut rows = vec![job_headers(false)];
        rows.push(job_row(&pi, now, false));
        rows.push(job_row(&wq, now, false));
        assert_eq!(
            render(&rows),
            "\
NAME   STATUS     COMPLETIONS   DURATION   AGE
pi     Complete   1/1           9s         2m
wq     Running    1/1 of 3      20s        20s
"
        );
    }

    /// The row of a Job's JSON, decoded in part, is the row of the whole Job, in every state
    /// the printer tells apart.
    #[test]
    fn a_row_from_json_is_the_row_of_the_job() {
        let now = ts(NOW);
        let mut jobs = Vec::new();
        for conditions in [
            &[][..],
            &[("Complete", "True")],
            &[("Failed", "True")],
            &[("Complete", "False"), ("SuccessCriteriaMet", "True")],
            &[("FailureTarget", "True")],
            &[("Suspended", "True")],
        ] {
            for deleted in [false, true] {
                jobs.push(job_with(conditions, deleted));
            }
        }
        let mut done = job_with(&[("Complete", "True")], false);
        done.metadata.creation_timestamp = Some(now - SignedDuration::from_secs(120));
        let st = done.status.as_mut().unwrap();
        st.succeeded = 2;
        st.start_time = Some(now - SignedDuration::from_secs(119));
        st.completion_time = Some(now - SignedDuration::from_secs(110));
        done.spec.completions = Some(3);
        jobs.push(done);
        let mut queue = job_with(&[], false);
        queue.spec.parallelism = Some(4);
        queue.status.as_mut().unwrap().start_time = Some(now - SignedDuration::from_secs(5));
        queue.spec.selector = Some(LabelSelector {
            match_labels: [("a".to_string(), "b".to_string())].into_iter().collect(),
            match_expressions: vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: vec!["y".into(), "x".into()],
            }],
        });
        queue.spec.template.spec.containers = vec![
            crate::api::Container {
                name: "a".into(),
                image: Some("busybox".into()),
                ..Default::default()
            },
            crate::api::Container {
                name: "b".into(),
                ..Default::default()
            },
        ];
        jobs.push(queue);
        let mut bare = job_with(&[], false);
        bare.status = None;
        jobs.push(bare);
        for job in &jobs {
            let json = serde_json::to_string(job).unwrap();
            for wide in [false, true] {
                assert_eq!(
                    job_row_from_json(&json, now, wide).unwrap(),
                    job_row(job, now, wide),
                    "{json}"
                );
            }
        }
    }

    /// A server-side Table prints exactly what the objects print: the plain columns are the
    /// wide row's priority-0 cells, in order, for every kind.
    #[test]
    fn a_table_prints_like_the_objects() {
        use crate::api::table::{RowMeta, RowObject, TableRow};
        let now = ts(NOW);
        let mut pi = job_with(&[("Complete", "True")], false);
        pi.metadata.creation_timestamp = Some(now - SignedDuration::from_secs(120));
        let ev = event("b", Some("2024-01-15T09:59:50Z"), "Job");
        // (kind, wide row, plain row, wide headers, plain headers)
        type Case = (Kind, Vec<String>, Vec<String>, Vec<String>, Vec<String>);
        let cases: Vec<Case> = vec![
            (
                Kind::Job,
                job_row(&pi, now, true),
                job_row(&pi, now, false),
                job_headers(true),
                job_headers(false),
            ),
            (
                Kind::Event,
                event_row(&ev, now, true),
                event_row(&ev, now, false),
                event_headers(true),
                event_headers(false),
            ),
        ];
        for (kind, wide_row, plain_row, wide_h, plain_h) in cases {
            let table = Table {
                api_version: "meta.k8s.io/v1".into(),
                kind: "Table".into(),
                metadata: serde_json::Value::Null,
                column_definitions: columns(kind),
                rows: vec![TableRow {
                    cells: wide_row.iter().cloned().map(Into::into).collect(),
                    object: RowObject {
                        metadata: RowMeta {
                            name: "x".into(),
                            namespace: "team".into(),
                        },
                    },
                }],
            };
            let plain = render_table(&table, false, false, false).unwrap();
            assert_eq!(plain, render(&[plain_h, plain_row.clone()]), "{kind:?}");
            let wide = render_table(&table, true, false, false).unwrap();
            assert_eq!(wide, render(&[wide_h, wide_row]), "{kind:?}");
            let mut ns_row = plain_row;
            ns_row.insert(0, "team".into());
            assert_eq!(
                render_table(&table, false, true, true).unwrap(),
                render(&[ns_row]),
                "-A --no-headers"
            );
            let empty = Table {
                rows: vec![],
                ..table
            };
            assert_eq!(render_table(&empty, false, false, false), None);
        }
        let names: Vec<(String, i32)> = columns(Kind::Event)
            .into_iter()
            .map(|c| (c.name, c.priority))
            .collect();
        assert_eq!(names[0], ("Last Seen".to_string(), 0));
        assert_eq!(names[4], ("Subobject".to_string(), 1));
        assert_eq!(names[6], ("Message".to_string(), 0));
    }

    #[test]
    fn wide_job_columns_and_selectors() {
        let mut job = job_with(&[], false);
        job.spec.template.spec.containers = vec![
            crate::api::Container {
                name: "a".into(),
                image: Some("busybox".into()),
                ..Default::default()
            },
            crate::api::Container {
                name: "b".into(),
                ..Default::default()
            },
        ];
        let mut sel = LabelSelector::default();
        sel.match_labels.insert("z".into(), "1".into());
        sel.match_labels
            .insert("batch.kubernetes.io/controller-uid".into(), "u".into());
        sel.match_expressions.push(LabelSelectorRequirement {
            key: "env".into(),
            operator: "In".into(),
            values: vec!["prod".into(), "dev".into()],
        });
        sel.match_expressions.push(LabelSelectorRequirement {
            key: "gone".into(),
            operator: "DoesNotExist".into(),
            values: vec![],
        });
        job.spec.selector = Some(sel);
        let row = job_row(&job, ts(NOW), true);
        assert_eq!(row[5], "a,b");
        assert_eq!(row[6], "busybox,<none>");
        assert_eq!(
            row[7],
            "batch.kubernetes.io/controller-uid=u,env in (dev,prod),!gone,z=1"
        );
        assert_eq!(format_selector(None), "<none>");
        assert_eq!(format_selector(Some(&LabelSelector::default())), "<none>");
    }

    fn running() -> ContainerState {
        ContainerState {
            running: Some(ContainerStateRunning { started_at: None }),
            ..Default::default()
        }
    }
    fn waiting(reason: &str) -> ContainerState {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: None,
            }),
            ..Default::default()
        }
    }
    fn terminated(code: i32, reason: Option<&str>, signal: Option<i32>) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: reason.map(Into::into),
                signal,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
    fn cstatus(name: &str, state: ContainerState, ready: bool) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state,
            ready,
            ..Default::default()
        }
    }
    fn pod(phase: PodPhase, statuses: Vec<ContainerStatus>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("pi-abcde".into());
        p.status.phase = phase;
        p.spec.containers = statuses
            .iter()
            .map(|s| crate::api::Container {
                name: s.name.clone(),
                ..Default::default()
            })
            .collect();
        p.status.container_statuses = statuses;
        p
    }

    #[test]
    fn pod_status_rules() {
        use PodPhase::*;
        let now = ts(NOW);
        let cases: Vec<(&str, Pod, usize, &str)> = vec![
            ("pending, no status", pod(Pending, vec![]), 0, "Pending"),
            (
                "creating",
                pod(
                    Pending,
                    vec![cstatus("c", waiting("ContainerCreating"), false)],
                ),
                0,
                "ContainerCreating",
            ),
            (
                "running",
                pod(Running, vec![cstatus("c", running(), true)]),
                1,
                "Running",
            ),
            (
                "running, not ready",
                pod(Running, vec![cstatus("c", running(), false)]),
                0,
                "Running",
            ),
            (
                "completed",
                pod(
                    Succeeded,
                    vec![cstatus("c", terminated(0, Some("Completed"), None), false)],
                ),
                0,
                "Completed",
            ),
            (
                "error",
                pod(
                    Failed,
                    vec![cstatus("c", terminated(1, Some("Error"), None), false)],
                ),
                0,
                "Error",
            ),
            (
                "start error",
                pod(
                    Failed,
                    vec![cstatus(
                        "c",
                        terminated(128, Some("StartError"), None),
                        false,
                    )],
                ),
                0,
                "StartError",
            ),
            (
                "exit code without reason",
                pod(Failed, vec![cstatus("c", terminated(3, None, None), false)]),
                0,
                "ExitCode:3",
            ),
            (
                "signal without reason",
                pod(
                    Failed,
                    vec![cstatus("c", terminated(137, None, Some(9)), false)],
                ),
                0,
                "Signal:9",
            ),
            (
                "crash loop",
                pod(
                    Running,
                    vec![cstatus("c", waiting("CrashLoopBackOff"), false)],
                ),
                0,
                "CrashLoopBackOff",
            ),
            (
                "first container in spec order wins",
                pod(
                    Running,
                    vec![
                        cstatus("a", waiting("CrashLoopBackOff"), false),
                        cstatus("b", terminated(1, Some("Error"), None), false),
                    ],
                ),
                0,
                "CrashLoopBackOff",
            ),
            (
                "one completed while another runs, no Ready condition",
                pod(
                    Running,
                    vec![
                        cstatus("a", terminated(0, Some("Completed"), None), false),
                        cstatus("b", running(), true),
                    ],
                ),
                1,
                "NotReady",
            ),
        ];
        for (what, p, ready, want) in cases {
            let s = pod_summary(&p, now);
            assert_eq!(s.status, want, "{what}");
            assert_eq!(s.ready, ready, "{what}");
        }

        let mut p = pod(
            Running,
            vec![
                cstatus("a", terminated(0, Some("Completed"), None), false),
                cstatus("b", running(), true),
            ],
        );
        p.status.conditions.push(PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: None,
            reason: None,
            message: None,
        });
        assert_eq!(pod_summary(&p, now).status, "Running");

        let mut p = pod(Running, vec![cstatus("c", running(), true)]);
        p.metadata.deletion_timestamp = Some(now);
        assert_eq!(pod_summary(&p, now).status, "Terminating");
        let mut p = pod(
            Failed,
            vec![cstatus("c", terminated(143, Some("Error"), None), false)],
        );
        p.metadata.deletion_timestamp = Some(now);
        assert_eq!(pod_summary(&p, now).status, "Error");
        let mut p = pod(Failed, vec![]);
        p.status.reason = Some("DeadlineExceeded".into());
        assert_eq!(pod_summary(&p, now).status, "DeadlineExceeded");
    }

    #[test]
    fn pod_restarts_and_row() {
        let now = ts(NOW);
        let mut cs = cstatus("c", running(), true);
        cs.restart_count = 2;
        cs.last_state = terminated(1, Some("Error"), None);
        cs.last_state.terminated.as_mut().unwrap().finished_at =
            Some(now - SignedDuration::from_secs(15));
        let mut p = pod(PodPhase::Running, vec![cs]);
        p.metadata.creation_timestamp = Some(now - SignedDuration::from_secs(90));
        assert_eq!(
            pod_row(&p, now, false, "host"),
            ["pi-abcde", "1/1", "Running", "2 (15s ago)", "90s"]
        );
        assert_eq!(pod_row(&p, now, true, "host")[5..], ["<none>", "host"]);
        let p = pod(
            PodPhase::Succeeded,
            vec![cstatus("c", terminated(0, Some("Completed"), None), false)],
        );
        assert_eq!(
            pod_row(&p, now, false, "h")[..4],
            ["pi-abcde", "0/1", "Completed", "0"]
        );
    }

    /// The row of a pod's JSON, decoded in part, is the row of the whole pod.
    #[test]
    fn a_pod_row_from_json_is_the_row_of_the_pod() {
        use PodPhase::*;
        let now = ts(NOW);
        let mut restarted = cstatus("c", running(), true);
        restarted.restart_count = 2;
        restarted.last_state = terminated(1, Some("Error"), None);
        restarted
            .last_state
            .terminated
            .as_mut()
            .unwrap()
            .finished_at = Some(now - SignedDuration::from_secs(15));
        let mut pods = vec![
            pod(Pending, vec![]),
            pod(
                Pending,
                vec![cstatus("c", waiting("ContainerCreating"), false)],
            ),
            pod(Running, vec![restarted]),
            pod(
                Succeeded,
                vec![cstatus("c", terminated(0, Some("Completed"), None), false)],
            ),
            pod(
                Failed,
                vec![cstatus("c", terminated(137, None, Some(9)), false)],
            ),
            pod(
                Running,
                vec![
                    cstatus("a", terminated(0, Some("Completed"), None), false),
                    cstatus("b", running(), true),
                ],
            ),
        ];
        let mut ready = pods[5].clone();
        ready.status.conditions.push(PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: None,
            reason: None,
            message: None,
        });
        pods.push(ready);
        let mut deleted = pod(Running, vec![cstatus("c", running(), true)]);
        deleted.metadata.deletion_timestamp = Some(now);
        deleted.metadata.creation_timestamp = Some(now - SignedDuration::from_secs(90));
        deleted.spec.node_name = Some("elsewhere".into());
        deleted.status.host_ip = Some("127.0.0.1".into());
        pods.push(deleted);
        let mut lost = pod(Unknown, vec![]);
        lost.metadata.deletion_timestamp = Some(now);
        lost.status.reason = Some("NodeLost".into());
        pods.push(lost);
        for p in &pods {
            let json = serde_json::to_string(p).unwrap();
            for wide in [false, true] {
                assert_eq!(
                    pod_row_from_json(&json, now, wide, "host").unwrap(),
                    pod_row(p, now, wide, "host"),
                    "{json}"
                );
            }
        }
    }

    fn event(name: &str, last: Option<&str>, kind: &str) -> Event {
        let mut e = Event {
            involved_object: ObjectReference {
                kind: kind.into(),
                name: "simple-job".into(),
                ..Default::default()
            },
            reason: "SuccessfulCreate".into(),
            message: "Created pod: simple-job-abcde\n".into(),
            type_: "Normal".into(),
            last_timestamp: last.map(ts),
            count: 1,
            ..Default::default()
        };
        e.metadata.name = Some(name.into());
        e.source.component = "job-controller".into();
        e
    }

    #[test]
    fn events_sorted_and_rendered() {
        let now = ts(NOW);
        let mut evs = vec![
            event("b", Some("2024-01-15T09:59:50Z"), "Job"),
            event("a", Some("2024-01-15T09:59:00Z"), "Pod"),
            event("c", None, "Job"),
        ];
        sort_events(&mut evs);
        let names: Vec<_> = evs.iter().map(|e| e.metadata.name()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        assert_eq!(
            event_row(&evs[2], now, false),
            [
                "10s",
                "Normal",
                "SuccessfulCreate",
                "job/simple-job",
                "Created pod: simple-job-abcde"
            ]
        );
        assert_eq!(event_row(&evs[0], now, false)[0], "<unknown>");
        assert_eq!(
            event_row(&evs[1], now, true).len(),
            event_headers(true).len()
        );
    }

    #[test]
    fn manifest_rows() {
        let now = ts(NOW);
        let m = ManifestFile {
            path: "/etc/jobvisor/manifests.d/a.yaml".into(),
            state: crate::api::ManifestState::Invalid,
            objects: vec![
                ObjectReference {
                    kind: "Job".into(),
                    name: "a".into(),
                    ..Default::default()
                },
                ObjectReference {
                    kind: "Job".into(),
                    name: "b".into(),
                    ..Default::default()
                },
            ],
            errors: vec!["a.yaml:3:1: bad".into()],
            applied_time: Some(now - SignedDuration::from_secs(300)),
            ..Default::default()
        };
        assert_eq!(
            manifest_row(&m, now, true),
            [
                "/etc/jobvisor/manifests.d/a.yaml",
                "Invalid",
                "job/a,job/b",
                "1",
                "5m",
                "0",
                "a.yaml:3:1: bad"
            ]
        );
        let empty = ManifestFile::default();
        assert_eq!(
            manifest_row(&empty, now, false)[2..],
            ["<none>", "0", "<unknown>"]
        );
    }
}
