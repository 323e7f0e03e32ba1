//! Manifest text → typed [`Job`]s: YAML streams and JSON, each object dispatched on its
//! `apiVersion`/`kind`, with errors as `file:line:col: field.path: message`.
//!
//! Typed multi-document YAML with field paths needs two passes (see DEPENDENCIES.md §1):
//! pass 1 reads every document as an untyped value to learn its kind and starting line;
//! pass 2 deserializes the same text again, and `Manifest`'s `Deserialize` takes the next
//! kind from a thread-local queue and wraps `Job` in `serde_path_to_error`. A Job is never
//! deserialized from the pass-1 value, because that would lose line and column.

use std::cell::RefCell;
use std::collections::VecDeque;

use serde::de::{Deserialize, Deserializer, IgnoredAny};
use serde_json::Value;
use serde_path_to_error::Segment;
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};

use super::declared;
use super::strict::Strict;
use crate::api::{CRONJOB_API_VERSION, CronJob, JOB_API_VERSION, Job, Kind, POD_API_VERSION, Pod};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Json,
}

/// Where an object sits in its file, for messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    /// 1-based number among the file's non-empty documents.
    pub document: usize,
    /// 1-based line where the document's content starts (YAML only).
    pub line: Option<u64>,
    /// Index in the `items` of a `kind: List` document.
    pub item: Option<usize>,
}

/// What the text of one file yields before defaulting and validation.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Each Job with the object as written (what kubectl would send, as JSON).
    pub jobs: Vec<(Origin, Job, Value)>,
    /// Each bare Pod, likewise.
    pub pods: Vec<(Origin, Pod, Value)>,
    /// Each CronJob, likewise.
    pub cronjobs: Vec<(Origin, CronJob, Value)>,
    /// Each object of a declared kind (`manifest::declared`): its typed form as JSON, and
    /// the object as written.
    pub declared: Vec<(Origin, Kind, Value, Value)>,
    /// Fully formatted, naming the file. Non-empty means the file is rejected.
    pub errors: Vec<String>,
    /// More than one non-empty document: messages then say which one.
    pub multi_document: bool,
}

pub(crate) fn parse(file: &str, text: &str, format: Format) -> Parsed {
    match format {
        Format::Yaml => parse_yaml(file, text),
        Format::Json => parse_json(file, text),
    }
}

/// Each object of a file untyped, from pass 1 alone: enough to name the objects
/// (`delete -f`) without judging the rest of them. `errors` holds syntax errors and kinds
/// jobvisor does not run.
#[derive(Debug, Default)]
pub(crate) struct Untyped {
    pub objects: Vec<(Origin, Kind, Value)>,
    pub errors: Vec<String>,
    pub multi_document: bool,
}

pub(crate) fn untyped(file: &str, text: &str, format: Format) -> Untyped {
    let docs = match format {
        Format::Yaml => yaml_documents(file, text),
        Format::Json => json_documents(file, text),
    };
    let mut out = Untyped::default();
    let docs = match docs {
        Ok(docs) => docs,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    out.multi_document = docs.len() > 1;
    let plans = plan(file, docs, out.multi_document, &mut out.errors);
    for (n, plan) in plans.into_iter().enumerate() {
        let origin = Origin {
            document: n + 1,
            line: plan.line,
            item: None,
        };
        match plan.slot {
            Slot::Object { kind, .. } => out.objects.push((origin, kind, plan.value)),
            Slot::List => {
                let values = list_items(plan.value);
                for (i, (slot, value)) in plan.items.iter().zip(values).enumerate() {
                    if let Slot::Object { kind, .. } = slot {
                        let origin = Origin {
                            item: Some(i),
                            ..origin
                        };
                        out.objects.push((origin, *kind, value));
                    }
                }
            }
            Slot::Skip => {}
        }
    }
    out
}

// ---------------------------------------------------------------- dispatch

/// What pass 2 must do with the next object it meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A Job or a Pod (an item of a List when `item` is set).
    Object { kind: Kind, item: Option<usize> },
    /// A `kind: List`; its item slots follow in the queue.
    List,
    /// Already reported from pass 1 (wrong kind); only skipped over.
    Skip,
}

/// One object as pass 2 returns it, shaped like pass 1's slots.
enum Manifest {
    Job(Box<Job>),
    CronJob(Box<CronJob>),
    Pod(Box<Pod>),
    /// An object of a declared kind, read through its type and kept as JSON.
    Declared(Kind, Value),
    List(Vec<Manifest>),
    Skipped,
}

#[derive(Default)]
struct DispatchState {
    slots: VecDeque<Slot>,
    /// Path of the first deserialization error inside a Job, from the document root.
    error_path: Option<Vec<Segment>>,
}

thread_local! {
    // `Deserialize` takes no context argument, so pass 2 finds its slots here.
    static DISPATCH: RefCell<DispatchState> = RefCell::new(DispatchState::default());
}

/// Installs the slot queue for one pass-2 run and clears it again on drop, even on panic,
/// so a later load on this thread never sees stale slots.
struct DispatchGuard;

impl DispatchGuard {
    fn install(slots: VecDeque<Slot>) -> DispatchGuard {
        DISPATCH.with(|d| {
            *d.borrow_mut() = DispatchState {
                slots,
                error_path: None,
            }
        });
        DispatchGuard
    }

    fn take_error_path(&self) -> Option<Vec<Segment>> {
        DISPATCH.with(|d| d.borrow_mut().error_path.take())
    }
}

impl Drop for DispatchGuard {
    fn drop(&mut self) {
        DISPATCH.with(|d| *d.borrow_mut() = DispatchState::default());
    }
}

fn next_slot() -> Option<Slot> {
    DISPATCH.with(|d| d.borrow_mut().slots.pop_front())
}

fn stash_error_path(path: Vec<Segment>) {
    DISPATCH.with(|d| {
        let mut d = d.borrow_mut();
        // The innermost failure is the first one stashed; outer layers only propagate it.
        if d.error_path.is_none() {
            d.error_path = Some(path);
        }
    });
}

impl<'de> Deserialize<'de> for Manifest {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        match next_slot() {
            Some(Slot::Object {
                kind: Kind::Pod,
                item,
            }) => typed::<D, Pod>(de, item).map(|p| Manifest::Pod(Box::new(p))),
            Some(Slot::Object {
                kind: Kind::CronJob,
                item,
            }) => typed::<D, CronJob>(de, item).map(|c| Manifest::CronJob(Box::new(c))),
            Some(Slot::Object { kind, item }) if declared::is_declared(kind) => {
                match declared::visit(
                    kind,
                    TypedDeclared {
                        de,
                        item,
                        lifetime: std::marker::PhantomData,
                    },
                ) {
                    Some(read) => read.map(|v| Manifest::Declared(kind, v)),
                    None => Err(serde::de::Error::custom(
                        "internal error: not a declared kind",
                    )),
                }
            }
            Some(Slot::Object { item, .. }) => {
                typed::<D, Job>(de, item).map(|j| Manifest::Job(Box::new(j)))
            }
            Some(Slot::List) => ListDoc::deserialize(de).map(|l| Manifest::List(l.items)),
            Some(Slot::Skip) => IgnoredAny::deserialize(de).map(|_| Manifest::Skipped),
            None => Err(serde::de::Error::custom(
                "internal error: the two parsing passes disagree on the number of documents",
            )),
        }
    }
}

/// One object of a known kind, its scalars as strictly typed as the API server reads them
/// ([`Strict`]), remembering where inside it deserialization failed.
fn typed<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    de: D,
    item: Option<usize>,
) -> Result<T, D::Error> {
    serde_path_to_error::deserialize::<_, T>(Strict(de)).map_err(|e| {
        let mut path: Vec<Segment> = Vec::new();
        if let Some(index) = item {
            path.push(Segment::Map {
                key: "items".into(),
            });
            path.push(Segment::Seq { index });
        }
        path.extend(e.path().iter().cloned());
        stash_error_path(path);
        e.into_inner()
    })
}

/// [`typed`] for a declared kind, whose type only the registry knows.
struct TypedDeclared<'de, D> {
    de: D,
    item: Option<usize>,
    lifetime: std::marker::PhantomData<&'de ()>,
}

impl<'de, D: Deserializer<'de>> declared::Visit for TypedDeclared<'de, D> {
    type Out = Result<Value, D::Error>;
    fn visit<T: declared::Admit>(self) -> Self::Out {
        let object = typed::<D, T>(self.de, self.item)?;
        serde_json::to_value(&object).map_err(serde::de::Error::custom)
    }
}

/// A `kind: List` in pass 2: only `items` matters, and each item pops its own slot.
#[derive(serde::Deserialize)]
struct ListDoc {
    #[serde(default)]
    items: Vec<Manifest>,
}

/// Decides from pass 1's untyped value what pass 2 does with a document.
/// `Err` is the message (without location prefix) for an object jobvisor does not run.
fn classify(value: &Value) -> Result<Slot, String> {
    let Some(object) = value.as_object() else {
        return Err(format!(
            "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
            json_type(value)
        ));
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if let Some(kind) = Kind::from_type(api_version, kind).filter(|k| declared::is_declared(*k)) {
        return Ok(Slot::Object { kind, item: None });
    }
    match (api_version, kind) {
        (JOB_API_VERSION, "Job") => Ok(Slot::Object {
            kind: Kind::Job,
            item: None,
        }),
        (POD_API_VERSION, "Pod") => Ok(Slot::Object {
            kind: Kind::Pod,
            item: None,
        }),
        (CRONJOB_API_VERSION, "CronJob") => Ok(Slot::Object {
            kind: Kind::CronJob,
            item: None,
        }),
        ("v1", "List") => Ok(Slot::List),
        (_, "") => Err(format!("kind not set: {}", runs())),
        ("", _) => Err(format!(
            "apiVersion not set for kind {}: {}",
            go_quote(kind),
            runs()
        )),
        _ => Err(format!(
            "kind {} (apiVersion {}) is not supported: {}",
            go_quote(kind),
            go_quote(api_version),
            runs()
        )),
    }
}

/// The kinds a file may define, as messages say them: those jobvisor runs, then the
/// declared ones it keeps.
pub(crate) fn runs() -> String {
    let mut text = "jobvisor runs batch/v1 Job, batch/v1 CronJob and v1 Pod".to_string();
    let kept: Vec<String> = crate::api::kind::RESOURCES
        .iter()
        .filter(|r| declared::is_declared(r.kind))
        .map(|r| format!("{} {}", r.api_version, r.name))
        .collect();
    if !kept.is_empty() {
        text.push_str(&format!(", and keeps {}", kept.join(", ")));
    }
    text
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// Pass-1 facts about one non-empty document.
struct DocPlan {
    line: Option<u64>,
    slot: Slot,
    /// For a List: one slot per item (Job or Skip).
    items: Vec<Slot>,
    /// The document as written, untyped.
    value: Value,
}

/// Classifies every document (and List item), reporting wrong kinds into `errors`.
fn plan(
    file: &str,
    docs: Vec<(Option<u64>, Value)>,
    multi: bool,
    errors: &mut Vec<String>,
) -> Vec<DocPlan> {
    let mut plans = Vec::with_capacity(docs.len());
    for (n, (line, value)) in docs.into_iter().enumerate() {
        let origin = Origin {
            document: n + 1,
            line,
            item: None,
        };
        let slot = classify(&value).unwrap_or_else(|msg| {
            errors.push(format!("{}{msg}", object_prefix(file, origin, multi, true)));
            Slot::Skip
        });
        let mut items = Vec::new();
        if slot == Slot::List {
            let list = value.get("items").and_then(Value::as_array);
            for (i, item) in list.into_iter().flatten().enumerate() {
                let origin = Origin {
                    item: Some(i),
                    ..origin
                };
                items.push(match classify(item) {
                    Ok(Slot::Object { kind, .. }) => Slot::Object {
                        kind,
                        item: Some(i),
                    },
                    Ok(_) => {
                        let msg = "a List inside a List is not supported";
                        errors.push(format!("{}{msg}", object_prefix(file, origin, multi, true)));
                        Slot::Skip
                    }
                    Err(msg) => {
                        errors.push(format!("{}{msg}", object_prefix(file, origin, multi, true)));
                        Slot::Skip
                    }
                });
            }
        }
        plans.push(DocPlan {
            line,
            slot,
            items,
            value,
        });
    }
    plans
}

fn slot_queue(plans: &[DocPlan]) -> VecDeque<Slot> {
    let mut queue = VecDeque::new();
    for p in plans {
        queue.push_back(p.slot);
        queue.extend(p.items.iter().copied());
    }
    queue
}

/// Pairs pass 2's objects with pass 1's origins and values.
fn collect(plans: Vec<DocPlan>, manifests: Vec<Manifest>, parsed: &mut Parsed) {
    if plans.len() != manifests.len() {
        parsed.errors.push(
            "internal error: the two parsing passes disagree on the number of documents".into(),
        );
        return;
    }
    for (n, (plan, manifest)) in plans.into_iter().zip(manifests).enumerate() {
        let origin = Origin {
            document: n + 1,
            line: plan.line,
            item: None,
        };
        match manifest {
            Manifest::Job(job) => parsed.jobs.push((origin, *job, plan.value)),
            Manifest::Pod(pod) => parsed.pods.push((origin, *pod, plan.value)),
            Manifest::CronJob(cj) => parsed.cronjobs.push((origin, *cj, plan.value)),
            Manifest::Declared(kind, typed) => {
                parsed.declared.push((origin, kind, typed, plan.value))
            }
            Manifest::List(items) => {
                let mut values = list_items(plan.value);
                for (i, item) in items.into_iter().enumerate() {
                    let origin = Origin {
                        item: Some(i),
                        ..origin
                    };
                    let value = values.get_mut(i).map(Value::take).unwrap_or_default();
                    match item {
                        Manifest::Job(job) => parsed.jobs.push((origin, *job, value)),
                        Manifest::Pod(pod) => parsed.pods.push((origin, *pod, value)),
                        Manifest::CronJob(cj) => parsed.cronjobs.push((origin, *cj, value)),
                        Manifest::Declared(kind, typed) => {
                            parsed.declared.push((origin, kind, typed, value))
                        }
                        Manifest::List(_) | Manifest::Skipped => {}
                    }
                }
            }
            Manifest::Skipped => {}
        }
    }
}

/// The `items` of a `kind: List` document.
fn list_items(list: Value) -> Vec<Value> {
    match list {
        Value::Object(mut doc) => match doc.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------- YAML

fn yaml_options() -> serde_saphyr::Options {
    // Default budgets guard against alias bombs and deep nesting. Kubernetes reads YAML
    // with YAML 1.1 habits, hence legacy octal; snippets are for terminals, not for one-line
    // API and CLI messages.
    serde_saphyr::options! {
        with_snippet: false,
        legacy_octal_numbers: true,
    }
}

/// Pass 1 of a YAML stream: each non-empty document untyped, with the line it starts on.
fn yaml_documents(file: &str, text: &str) -> Result<Vec<(Option<u64>, Value)>, String> {
    let docs: Vec<Spanned<Value>> = serde_saphyr::from_multiple_with_options(text, yaml_options())
        .map_err(|e| yaml_error(file, text, &e, None))?;
    Ok(docs
        .into_iter()
        .map(|s| (Some(s.referenced.line()).filter(|l| *l > 0), s.value))
        .collect())
}

fn parse_yaml(file: &str, text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let docs = match yaml_documents(file, text) {
        Ok(docs) => docs,
        Err(e) => {
            parsed.errors.push(e);
            return parsed;
        }
    };
    let multi = docs.len() > 1;
    parsed.multi_document = multi;
    let plans = plan(file, docs, multi, &mut parsed.errors);

    let guard = DispatchGuard::install(slot_queue(&plans));
    let result: Result<Vec<Manifest>, _> =
        serde_saphyr::from_multiple_with_options(text, yaml_options());
    match result {
        Ok(manifests) => collect(plans, manifests, &mut parsed),
        Err(e) => {
            let path = guard.take_error_path();
            parsed
                .errors
                .push(yaml_error(file, text, &e, path.as_deref()));
        }
    }
    parsed
}

/// Unwraps the snippet and alias wrappers, which carry no message of their own.
fn original(mut err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    loop {
        match err {
            serde_saphyr::Error::WithSnippet { error, .. }
            | serde_saphyr::Error::AliasError { error, .. } => err = error,
            _ => return err,
        }
    }
}

/// The scanner's tab errors, which it places where the scalar, block or token began: for
/// a tab indenting the line after `key: value`, that is the line before the tab.
const MISPLACED_TAB_ERRORS: [&str; 3] = [
    "while scanning a plain scalar, found a tab",
    "a block scalar content cannot start with a tab",
    "tabs disallowed within this context (block indentation)",
];

/// The first tab indenting a line with content, from `line` on: the character those errors
/// are about. Lines holding only blanks or a comment may be indented with tabs.
fn indenting_tab(text: &str, line: u64) -> Option<(u64, u64)> {
    let skip = usize::try_from(line.saturating_sub(1)).ok()?;
    text.lines().enumerate().skip(skip).find_map(|(i, l)| {
        let rest = l.trim_start_matches([' ', '\t']);
        if rest.is_empty() || rest.starts_with('#') {
            return None;
        }
        // The indentation is ASCII, so its byte offset is its column.
        let col = l[..l.len() - rest.len()].find('\t')?;
        Some((u64::try_from(i).ok()? + 1, u64::try_from(col).ok()? + 1))
    })
}

fn yaml_error(
    file: &str,
    text: &str,
    err: &serde_saphyr::Error,
    path: Option<&[Segment]>,
) -> String {
    let mut location = err
        .location()
        .map(|l| (l.line(), l.column()))
        .filter(|(line, _)| *line > 0);
    let inner = original(err);
    let unknown = match inner {
        serde_saphyr::Error::SerdeUnknownField { field, .. } => Some(field.clone()),
        _ => None,
    };
    let message = match inner {
        // The parser's own wording tells the developer to change DuplicateKeyPolicy.
        serde_saphyr::Error::DuplicateMappingKey { key: Some(k), .. } => {
            format!("duplicate key {}", go_quote(k))
        }
        // A scalar explicitly tagged (`!!int abc`) that its tag cannot read; the parser names
        // the Rust type only (`invalid u64`). Untagged ones are judged by `strict`.
        serde_saphyr::Error::InvalidScalar { ty, .. } => match *ty {
            "bool" | "boolean" => "expected a boolean (true or false)".to_string(),
            t if t.starts_with(['i', 'u']) => "expected an integer".to_string(),
            other => format!("invalid {other}"),
        },
        _ => UserMessageFormatter
            .format_message(inner)
            .replace('\n', " "),
    };
    let message = match location {
        Some((line, _)) if MISPLACED_TAB_ERRORS.contains(&message.as_str()) => {
            if let Some(tab) = indenting_tab(text, line) {
                location = Some(tab);
            }
            // go-yaml's words, which kubectl prints for the same mistake.
            "found a tab character that violates indentation".to_string()
        }
        _ => message,
    };
    located(file, location, path, unknown, message)
}

// ---------------------------------------------------------------- JSON

/// Pass 1 of a JSON file: its one object, untyped (none if the file is blank).
fn json_documents(file: &str, text: &str) -> Result<Vec<(Option<u64>, Value)>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| json_error(file, &e, None))?;
    Ok(vec![(None, value)])
}

fn parse_json(file: &str, text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let docs = match json_documents(file, text) {
        Ok(docs) if docs.is_empty() => return parsed,
        Ok(docs) => docs,
        Err(e) => {
            parsed.errors.push(e);
            return parsed;
        }
    };
    let plans = plan(file, docs, false, &mut parsed.errors);

    let guard = DispatchGuard::install(slot_queue(&plans));
    match serde_json::from_str::<Manifest>(text) {
        Ok(manifest) => collect(plans, vec![manifest], &mut parsed),
        Err(e) => {
            let path = guard.take_error_path();
            parsed.errors.push(json_error(file, &e, path.as_deref()));
        }
    }
    parsed
}

fn json_error(file: &str, err: &serde_json::Error, path: Option<&[Segment]>) -> String {
    let location = Some((err.line() as u64, err.column() as u64)).filter(|(l, _)| *l > 0);
    // serde_json appends " at line L column C"; the location goes in front instead.
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_string());
    located(file, location, path, unknown, message)
}

// ---------------------------------------------------------------- messages

/// `file:line:col: path: message`; an unknown field names the object that holds it, as
/// `kubectl --validate=strict` does: `spec.template.spec: unknown field "restartPolcy"`.
fn located(
    file: &str,
    location: Option<(u64, u64)>,
    path: Option<&[Segment]>,
    unknown_field: Option<String>,
    message: String,
) -> String {
    let mut out = String::from(file);
    if let Some((line, col)) = location {
        out.push_str(&format!(":{line}:{col}"));
    }
    out.push_str(": ");
    let mut segments = path.unwrap_or(&[]);
    let message = match unknown_field {
        Some(field) => {
            if let Some((Segment::Map { key }, parent)) = segments.split_last()
                && *key == field
            {
                segments = parent;
            }
            format!("unknown field {}", go_quote(&field))
        }
        None => message,
    };
    let path = render_path(segments);
    if !path.is_empty() {
        out.push_str(&path);
        out.push_str(": ");
    }
    out.push_str(&message);
    out
}

/// Kubernetes field-path notation: `spec.template.spec.containers[0].name`.
fn render_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Unknown => out.push_str("[?]"),
        }
    }
    out
}

/// Prefix naming one object: `file: ` for a single document; in a multi-document file
/// `file: document 2: ` (`by_number`) or `file:12: ` (the line where it starts); then
/// `items[3]: ` for an item of a List.
pub(crate) fn object_prefix(file: &str, origin: Origin, multi: bool, by_number: bool) -> String {
    let mut out = String::from(file);
    if multi {
        match (by_number, origin.line) {
            (false, Some(line)) => out.push_str(&format!(":{line}")),
            _ => out.push_str(&format!(": document {}", origin.document)),
        }
    }
    if let Some(i) = origin.item {
        out.push_str(&format!(": items[{i}]"));
    }
    out.push_str(": ");
    out
}

/// Go's `%q`: how Kubernetes quotes string values in messages.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Parsed {
        parse("x.yaml", text, Format::Yaml)
    }

    fn json(text: &str) -> Parsed {
        parse("x.json", text, Format::Json)
    }

    const JOB: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: a\n";

    #[test]
    fn errors_name_file_line_column_and_path() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "unknown field, nested",
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      restartPolcy: Never\n",
                r#"x.yaml:8:7: spec.template.spec: unknown field "restartPolcy""#,
            ),
            (
                "unknown field, top level",
                "apiVersion: batch/v1\nkind: Job\nstatuss: {}\n",
                r#"x.yaml:3:1: unknown field "statuss""#,
            ),
            (
                "unknown field in a list element",
                "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          imagePullPolcy: Always\n",
                r#"x.yaml:8:11: spec.template.spec.containers[0]: unknown field "imagePullPolcy""#,
            ),
            (
                "type error, quoted string for an integer",
                "apiVersion: batch/v1\nkind: Job\nspec:\n  parallelism: \"two\"\n",
                "x.yaml:4:16: spec.parallelism: cannot unmarshal string into a field of type int32",
            ),
            (
                "type error, map for a list",
                "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          command: {sh: x}\n",
                "x.yaml:8:20: spec.template.spec.containers[0].command: expected sequence start",
            ),
            (
                "type error, boolean",
                "apiVersion: batch/v1\nkind: Job\nspec:\n  suspend: maybe\n",
                "x.yaml:4:12: spec.suspend: cannot unmarshal string into a field of type bool",
            ),
            (
                "duplicate key",
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\n  name: y\n",
                r#"x.yaml:5:3: duplicate key "name""#,
            ),
            (
                "syntax error",
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n name: x\n  bad: [\n",
                "x.yaml:5:6: mapping values are not allowed in this context",
            ),
        ];
        for (name, text, want) in cases {
            let p = yaml(text);
            assert_eq!(p.errors, vec![want.to_string()], "case {name:?}");
            assert!(p.jobs.is_empty(), "case {name:?}");
        }
    }

    /// A Job whose first container has `field` (one line, or several indented alike) at line 8,
    /// column 9.
    fn in_container(field: &str) -> String {
        let field = field.replace('\n', "\n        ");
        format!(
            "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        {field}\n"
        )
    }

    /// What the API server's strict JSON decoder refuses after kubectl turned the YAML into
    /// JSON (a quoted scalar is a string, a plain one a number or a boolean when it reads as
    /// one), and what it takes.
    #[test]
    fn scalars_have_the_types_the_api_server_decodes() {
        const INT32: &str = "cannot unmarshal string into a field of type int32";
        const INT64: &str = "cannot unmarshal string into a field of type int64";
        const NUMBER: &str = "cannot unmarshal number into a field of type string";
        let spec = |line: &str| format!("apiVersion: batch/v1\nkind: Job\nspec:\n  {line}\n");
        let meta = |line: &str| format!("apiVersion: batch/v1\nkind: Job\nmetadata:\n  {line}\n");
        let pod = |line: &str| {
            format!(
                "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      {line}\n"
            )
        };
        let c = "spec.template.spec.containers[0]";
        let cases: Vec<(&str, String, String)> = vec![
            ("completions", spec("completions: \"3\""), format!("x.yaml:4:16: spec.completions: {INT32}")),
            ("parallelism", spec("parallelism: '2'"), format!("x.yaml:4:16: spec.parallelism: {INT32}")),
            ("backoffLimit", spec("backoffLimit: \"6\""), format!("x.yaml:4:17: spec.backoffLimit: {INT32}")),
            ("activeDeadlineSeconds", spec("activeDeadlineSeconds: \"60\""), format!("x.yaml:4:26: spec.activeDeadlineSeconds: {INT64}")),
            ("ttlSecondsAfterFinished", spec("ttlSecondsAfterFinished: \"1\""), format!("x.yaml:4:28: spec.ttlSecondsAfterFinished: {INT32}")),
            ("a word for an integer", spec("completions: three"), format!("x.yaml:4:16: spec.completions: {INT32}")),
            ("a fraction", spec("completions: 1.5"), "x.yaml:4:16: spec.completions: cannot unmarshal number 1.5 into a field of type int32".into()),
            ("out of int32", spec("completions: 2147483648"), "x.yaml:4:16: spec.completions: cannot unmarshal number 2147483648 into a field of type int32".into()),
            ("a quoted boolean", spec("suspend: \"true\""), "x.yaml:4:12: spec.suspend: cannot unmarshal string into a field of type bool".into()),
            ("a number for a boolean", spec("manualSelector: 1"), "x.yaml:4:19: spec.manualSelector: cannot unmarshal number into a field of type bool".into()),
            ("a string for a list", spec("template: {spec: {containers: x}}"), "x.yaml:4:33: spec.template.spec.containers: expected sequence start".into()),
            ("terminationGracePeriodSeconds", pod("terminationGracePeriodSeconds: \"30\""), format!("x.yaml:6:38: spec.template.spec.terminationGracePeriodSeconds: {INT64}")),
            ("pod activeDeadlineSeconds", pod("activeDeadlineSeconds: \"5\""), format!("x.yaml:6:30: spec.template.spec.activeDeadlineSeconds: {INT64}")),
            ("tolerationSeconds", pod("tolerations: [{key: k, tolerationSeconds: \"5\"}]"), format!("x.yaml:6:49: spec.template.spec.tolerations[0].tolerationSeconds: {INT64}")),
            ("nodeSelector value", pod("nodeSelector: {disk: 1}"), format!("x.yaml:6:28: spec.template.spec.nodeSelector.disk: {NUMBER}")),
            ("containerPort", in_container("ports: [{containerPort: \"80\"}]"), format!("x.yaml:8:33: {c}.ports[0].containerPort: {INT32}")),
            ("hostPort", in_container("ports:\n- containerPort: 80\n  hostPort: '8080'"), format!("x.yaml:10:21: {c}.ports[0].hostPort: {INT32}")),
            ("a port misspelt", in_container("ports: [{containerPrt: 80}]"), format!("x.yaml:8:18: {c}.ports[0]: unknown field \"containerPrt\"")),
            ("name", meta("name: 123"), format!("x.yaml:4:9: metadata.name: {NUMBER}")),
            ("name as a YAML 1.1 boolean", meta("name: yes"), "x.yaml:4:9: metadata.name: cannot unmarshal bool into a field of type string".into()),
            ("namespace", meta("namespace: 1e3"), "x.yaml:4:14: metadata.namespace: cannot unmarshal number 1000 into a field of type string".into()),
            ("label value", meta("labels: {tier: 2}"), format!("x.yaml:4:18: metadata.labels.tier: {NUMBER}")),
            ("annotation value", meta("annotations: {x: true}"), "x.yaml:4:20: metadata.annotations.x: cannot unmarshal bool into a field of type string".into()),
            ("a mapping for a string", meta("name: {a: b}"), "x.yaml:4:9: metadata.name: cannot unmarshal object into a field of type string".into()),
            ("env value", in_container("env: [{name: E, value: 3}]"), format!("x.yaml:8:32: {c}.env[0].value: {NUMBER}")),
            ("command item", in_container("command: [sleep, 5]"), format!("x.yaml:8:26: {c}.command[1]: {NUMBER}")),
            ("args item", in_container("args: [--verbose, true]"), format!("x.yaml:8:27: {c}.args[1]: cannot unmarshal bool into a field of type string")),
            ("a bare Pod's integer", "apiVersion: v1\nkind: Pod\nspec:\n  terminationGracePeriodSeconds: \"30\"\n".into(), format!("x.yaml:4:34: spec.terminationGracePeriodSeconds: {INT64}")),
            ("image", in_container("image: 1.36"), "x.yaml:8:16: spec.template.spec.containers[0].image: cannot unmarshal number 1.36 into a field of type string".into()),
        ];
        for (name, text, want) in &cases {
            let p = yaml(text);
            assert_eq!(p.errors, vec![want.clone()], "case {name:?}:\n{text}");
        }

        // Accepted as kubectl sends them.
        let ok: Vec<(&str, String)> = vec![
            (
                "integers",
                spec("completions: 3\n  parallelism: 0x10\n  backoffLimit: 010"),
            ),
            (
                "quoted strings that read as numbers",
                in_container("command: [\"sleep\", \"5\"]\nenv: [{name: E, value: \"3\"}]"),
            ),
            ("a string of digits as a name", meta("name: \"123\"")),
            (
                "label keys are strings in JSON whatever YAML wrote",
                meta("labels: {1: a, true: b}"),
            ),
            (
                "null leaves a field unset or zero",
                in_container("image: ~\nworkingDir:\nenv: [{name: E, value: null}]"),
            ),
            ("booleans", spec("suspend: false\n  manualSelector: True")),
            ("a tagged string", meta("name: !!str 123")),
        ];
        for (name, text) in &ok {
            let p = yaml(text);
            assert!(p.errors.is_empty(), "case {name:?}: {:?}\n{text}", p.errors);
            assert_eq!(p.jobs.len(), 1, "case {name:?}");
        }
        let p = yaml(&spec(
            "completions: 3\n  parallelism: 0x10\n  backoffLimit: 010",
        ));
        let s = &p.jobs[0].1.spec;
        assert_eq!(
            (s.completions, s.parallelism, s.backoff_limit),
            (Some(3), Some(16), Some(8))
        );

        // JSON is read the same way, with the same words.
        let json_cases = [
            (
                r#"{"apiVersion":"batch/v1","kind":"Job","spec":{"completions":"3"}}"#,
                format!("x.json:1:63: spec.completions: {INT32}"),
            ),
            (
                r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":3}}"#,
                format!("x.json:1:58: metadata.name: {NUMBER}"),
            ),
            (
                r#"{"apiVersion":"batch/v1","kind":"Job","spec":{"suspend":0}}"#,
                "x.json:1:57: spec.suspend: cannot unmarshal number into a field of type bool"
                    .into(),
            ),
        ];
        for (text, want) in json_cases {
            assert_eq!(json(text).errors, vec![want], "{text}");
        }
    }

    /// A syntax error names the line that holds the offending character; the scanner reports
    /// some tab errors where the scalar or block before the tab began.
    #[test]
    fn syntax_errors_point_at_the_offending_line() {
        const TAB: &str = "found a tab character that violates indentation";
        let cases: Vec<(&str, &str, String)> = vec![
            (
                "tab indenting a key",
                "metadata:\n\tname: x\n",
                format!("x.yaml:2:1: {TAB}"),
            ),
            (
                "tab after a plain scalar's line",
                "metadata:\n  name: x\n\tnamespace: y\n",
                format!("x.yaml:3:1: {TAB}"),
            ),
            (
                "tab after spaces",
                "metadata:\n  name: x\n  \tnamespace: y\n",
                format!("x.yaml:3:3: {TAB}"),
            ),
            (
                "tab after a blank line",
                "metadata:\n  name: x\n\n\tnamespace: y\n",
                format!("x.yaml:4:1: {TAB}"),
            ),
            (
                "tab deeper down",
                "spec:\n  template:\n\t  spec: {}\n",
                format!("x.yaml:3:1: {TAB}"),
            ),
            (
                "tab starting a block scalar",
                "metadata:\n  name: |\n\tx\n",
                format!("x.yaml:3:1: {TAB}"),
            ),
            (
                "unclosed quote",
                "metadata:\n  name: \"x\n",
                "x.yaml:2:9: unclosed quote".into(),
            ),
            (
                "unclosed flow mapping",
                "metadata: {name: x\n",
                "x.yaml:1:11: unclosed bracket '{'".into(),
            ),
            (
                "a value after a value",
                "metadata:\n  name: a: b\n",
                "x.yaml:2:10: mapping values are not allowed in this context".into(),
            ),
            (
                "a key less indented",
                "metadata:\n  name: x\n namespace: y\n",
                "x.yaml:3:2: while parsing a block mapping, did not find expected key".into(),
            ),
            (
                "a reserved indicator",
                "metadata:\n  name: @x\n",
                "x.yaml:2:9: unexpected character: `@'".into(),
            ),
        ];
        for (name, body, want) in &cases {
            let text = format!("apiVersion: batch/v1\nkind: Job\n{body}");
            // The lines above were written for a document starting at the body.
            let want = shift_line(want, 2);
            assert_eq!(yaml(&text).errors, vec![want], "case {name:?}:\n{text}");
        }
        // Tabs are fine where YAML allows them: blank lines, comments, after a key's colon.
        let ok = "apiVersion: batch/v1\nkind: Job\n\t\n\t# note\nmetadata:\n  name:\tx\n";
        assert_eq!(yaml(ok).errors, Vec::<String>::new());
    }

    /// `x.yaml:L:C: …` with `by` added to L.
    fn shift_line(message: &str, by: u64) -> String {
        let rest = message.strip_prefix("x.yaml:").unwrap_or(message);
        let (line, rest) = rest.split_once(':').unwrap_or(("0", rest));
        let line: u64 = line.parse().unwrap_or(0);
        format!("x.yaml:{}:{rest}", line + by)
    }

    #[test]
    fn wrong_kinds_are_named_by_document() {
        let text = format!(
            "---\n{JOB}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: p}}\nspec: {{replicas: 1}}\n\
             ---\napiVersion: batch/v2\nkind: CronJob\n---\nmetadata: {{name: x}}\n---\nkind: Job\n\
             ---\napiVersion: batch/v1beta1\nkind: Job\n---\n- 1\n"
        );
        let p = yaml(&text);
        assert_eq!(
            p.errors,
            vec![
                format!(r#"x.yaml: document 2: kind "Deployment" (apiVersion "apps/v1") is not supported: {}"#, runs()),
                format!(r#"x.yaml: document 3: kind "CronJob" (apiVersion "batch/v2") is not supported: {}"#, runs()),
                format!("x.yaml: document 4: kind not set: {}", runs()),
                format!(r#"x.yaml: document 5: apiVersion not set for kind "Job": {}"#, runs()),
                format!(r#"x.yaml: document 6: kind "Job" (apiVersion "batch/v1beta1") is not supported: {}"#, runs()),
                "x.yaml: document 7: expected a Kubernetes object (a mapping with apiVersion and kind), found a sequence".to_string(),
            ]
        );
        // The Job document itself parsed; the caller drops it because of the errors.
        assert_eq!(p.jobs.len(), 1);
    }

    #[test]
    fn single_document_kind_error_has_no_number() {
        let p = yaml("apiVersion: apps/v1\nkind: Deployment\nspec: {replicas: 1}\n");
        assert_eq!(
            p.errors,
            vec![format!(
                r#"x.yaml: kind "Deployment" (apiVersion "apps/v1") is not supported: {}"#,
                runs()
            )]
        );
    }

    #[test]
    fn a_cronjob_is_read_with_field_paths() {
        let p = yaml(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '* * * * *'\n  startingDeadlineSeconds: \"10\"\n",
        );
        assert_eq!(p.cronjobs.len(), 0);
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert!(
            p.errors[0].contains("spec.startingDeadlineSeconds"),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn multi_document_origins_skip_empty_documents() {
        let text = format!("# header\n---\n{JOB}---\n# nothing here\n---\n\n\n{JOB}...\n");
        let p = yaml(&text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.multi_document);
        let origins: Vec<(usize, Option<u64>)> = p
            .jobs
            .iter()
            .map(|(o, _, _)| (o.document, o.line))
            .collect();
        assert_eq!(origins, vec![(1, Some(3)), (2, Some(12))]);
    }

    #[test]
    fn comments_and_empty_files_yield_nothing() {
        for text in ["", "\n\n", "# just a comment\n", "---\n---\n# x\n", "~\n"] {
            let p = yaml(text);
            assert!(
                p.errors.is_empty() && p.jobs.is_empty(),
                "{text:?}: {:?}",
                p.errors
            );
        }
        let p = json("  \n");
        assert!(p.errors.is_empty() && p.jobs.is_empty());
    }

    #[test]
    fn later_documents_report_their_own_line() {
        let text = format!("{JOB}---\n{JOB}spec:\n  backoffLimit: x\n");
        let p = yaml(&text);
        assert_eq!(
            p.errors,
            vec!["x.yaml:11:17: spec.backoffLimit: cannot unmarshal string into a field of type int32".to_string()]
        );
    }

    #[test]
    fn budgets_stop_alias_bombs_and_deep_nesting() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            bomb.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{prev}"); 9].join(",")
            ));
        }
        let p = yaml(&bomb);
        assert_eq!(p.errors.len(), 1);
        assert!(
            p.errors[0].contains("too large or too complex"),
            "{:?}",
            p.errors
        );

        let deep = format!("{JOB}spec: {}{}\n", "[".repeat(5000), "]".repeat(5000));
        let p = yaml(&deep);
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].starts_with("x.yaml:5:"), "{:?}", p.errors);
    }

    #[test]
    fn json_object_and_list() {
        let p = json(r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"a"}}"#);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.jobs.len(), 1);
        assert_eq!(p.jobs[0].1.metadata.name(), "a");

        let list = r#"{"apiVersion":"v1","kind":"List","metadata":{},"items":[
  {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"a"}},
  {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"b"}}]}"#;
        let p = json(list);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let items: Vec<(Option<usize>, &str)> = p
            .jobs
            .iter()
            .map(|(o, j, _)| (o.item, j.metadata.name()))
            .collect();
        assert_eq!(items, vec![(Some(0), "a"), (Some(1), "b")]);
    }

    #[test]
    fn json_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\n \"spec\":{\"template\":{\"spec\":{\"restartPolcy\":1}}}}",
                r#"x.json:2:43: spec.template.spec: unknown field "restartPolcy""#,
            ),
            (
                "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\"},\n{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"spec\":{\"x\":1}}]}",
                r#"x.json:2:49: items[1].spec: unknown field "x""#,
            ),
            (
                "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":\"v1\",\"kind\":\"Service\"}]}",
                &format!(
                    r#"x.json: items[0]: kind "Service" (apiVersion "v1") is not supported: {}"#,
                    runs()
                ),
            ),
            (
                "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"spec\":{\"parallelism\":\"two\"}}",
                "x.json:1:65: spec.parallelism: cannot unmarshal string into a field of type int32",
            ),
            (
                "{\"apiVersion\":\"batch/v1\",\n",
                "x.json:2:0: EOF while parsing a value",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(json(text).errors, vec![want.to_string()], "{text}");
        }
    }

    #[test]
    fn yaml_list_documents_work_too() {
        let text = "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: batch/v1\n    kind: Job\n    metadata: {name: a}\n    spec: {paralelism: 2}\n";
        assert_eq!(
            yaml(text).errors,
            vec![r#"x.yaml:7:12: items[0].spec: unknown field "paralelism""#.to_string()]
        );
    }

    #[test]
    fn dispatch_state_is_cleared_after_an_error() {
        let bad = yaml("apiVersion: batch/v1\nkind: Job\nspec: {x: 1}\n");
        assert_eq!(bad.errors.len(), 1);
        DISPATCH.with(|d| {
            let d = d.borrow();
            assert!(d.slots.is_empty() && d.error_path.is_none());
        });
        assert!(yaml(JOB).errors.is_empty());
    }

    #[test]
    fn go_quote_matches_go() {
        let cases = [
            ("plain", r#""plain""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("tab\tnl\n", r#""tab\tnl\n""#),
            ("\u{1}\u{7f}", r#""\x01\x7f""#),
            ("é", r#""é""#),
            ("\u{85}", r#""\u0085""#),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want);
        }
    }
}
