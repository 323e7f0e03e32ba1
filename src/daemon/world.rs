//! The daemon's in-memory state: every object with the bookkeeping jobvisor keeps beside
//! it, plus the indexes the loop needs. The store persists these records as they are.
//!
//! Jobs and pods are reached through `World`'s methods only: a record that has settled (a
//! finished Job, a finished pod its Job has counted) is kept packed (`pack.rs`) and unpacked
//! when touched, so callers never know which form a record is in. `pack_settled` packs, at
//! the end of every turn, the records made typed since.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::api::{CronJob, Event, Job, Kind, ManifestFile, Pod, PodPhase};
use crate::controller::pod::finish_time;

use super::pack::{Packable, Packed, Unpack};
use super::retention::{self, DeletedLogs};
use crate::controller::events::DEDUP_WINDOW;

/// `(namespace, name)`
pub type Key = (String, String);

pub fn key(ns: &str, name: &str) -> Key {
    (ns.to_string(), name.to_string())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The Job as served: identity, defaults and status.
    pub job: Job,
    /// The defaulted Job as read from its file, before identity: what file changes compare against.
    pub applied: Job,
    /// The manifest file that defines it; `None` for a Job another object owns (through
    /// `metadata.ownerReferences`), which is deleted through the API or with its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
}

/// A CronJob as served, and the file that defines it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CronJobRecord {
    pub cronjob: CronJob,
    pub source: PathBuf,
}

/// An object of a declared kind (ConfigMap…, see `manifest::declared`): what its file says,
/// given an identity. Nothing controls it, so it changes only when its file does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeclaredRecord {
    /// The object as served: identity, and what its file says, defaulted.
    pub object: serde_json::Value,
    /// What its file says, defaulted, before identity: what file changes compare against.
    pub applied: serde_json::Value,
    /// The manifest file that defines it.
    pub source: PathBuf,
    /// `object`'s metadata, typed, for lists and selectors.
    #[serde(skip)]
    pub metadata: crate::api::ObjectMeta,
}

impl DeclaredRecord {
    pub fn new(
        object: serde_json::Value,
        applied: serde_json::Value,
        source: PathBuf,
    ) -> Result<DeclaredRecord, serde_json::Error> {
        let mut r = DeclaredRecord {
            object,
            applied,
            source,
            metadata: Default::default(),
        };
        r.read_metadata()?;
        Ok(r)
    }

    /// Sets `metadata` from `object`, after `object` changed or was loaded.
    pub fn read_metadata(&mut self) -> Result<(), serde_json::Error> {
        self.metadata = match self.object.get("metadata") {
            Some(m) => crate::api::ObjectMeta::deserialize(m)?,
            None => Default::default(),
        };
        Ok(())
    }
}

/// The declared kind and key of a store key (`configmaps/<ns>/<name>`).
fn declared_key(store_key: &str) -> Option<(Kind, Key)> {
    Kind::ALL
        .into_iter()
        .filter(|k| crate::manifest::declared::is_declared(*k))
        .find_map(|kind| {
            let rest = store_key.strip_prefix(kind.resource().plural)?;
            let (ns, name) = rest.strip_prefix('/')?.split_once('/')?;
            Some((kind, key(ns, name)))
        })
}

/// What jobvisor knows about one container run beyond the Kubernetes status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_start: Option<u64>,
    /// restartCount at the last CrashLoopBackOff reset.
    #[serde(default)]
    pub backoff_base: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    pub pod: Pod,
    #[serde(default)]
    pub runs: BTreeMap<String, RunInfo>,
    /// A bare Pod's manifest file and the defaulted Pod as read from it, before identity
    /// (what file changes compare against). `None` for a pod a Job created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileOwned>,
}

/// A bare Pod's definition: the kubelet's static pod, owned by its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileOwned {
    pub source: PathBuf,
    pub applied: Box<Pod>,
    /// What the file says since its spec changed: created when this pod is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<Box<Pod>>,
}

impl PodRecord {
    /// The manifest file that defines this pod, if it is a bare Pod.
    pub fn source(&self) -> Option<&std::path::Path> {
        self.file.as_ref().map(|f| f.source.as_path())
    }
}

impl Packable for JobRecord {
    const KIND: Kind = Kind::Job;
    const SERVED: Option<&'static str> = Some("job");
    const DICT: &'static [u8] = include_bytes!("pack/job.dict");
    type Object = Job;
    fn object(&self) -> &Job {
        &self.job
    }
    fn serve(job: &Job) -> Served<'_> {
        Served::Job(job)
    }
}

impl Packable for PodRecord {
    const KIND: Kind = Kind::Pod;
    const SERVED: Option<&'static str> = Some("pod");
    const DICT: &'static [u8] = include_bytes!("pack/pod.dict");
    type Object = Pod;
    fn object(&self) -> &Pod {
        &self.pod
    }
    fn serve(pod: &Pod) -> Served<'_> {
        Served::Pod(pod)
    }
}

impl Packable for Event {
    const KIND: Kind = Kind::Event;
    const SERVED: Option<&'static str> = None;
    const DICT: &'static [u8] = include_bytes!("pack/event.dict");
    type Object = Event;
    fn object(&self) -> &Event {
        self
    }
    fn serve(event: &Event) -> Served<'_> {
        Served::Event(event)
    }
}

/// A record as the world keeps it: typed while it may change, packed once settled.
enum Slot<T> {
    Live(Box<T>),
    Packed(Packed<T>),
}

impl<T: Packable + Clone> Slot<T> {
    fn get(&self) -> Option<Cow<'_, T>> {
        match self {
            Slot::Live(r) => Some(Cow::Borrowed(r)),
            Slot::Packed(p) => p.unpack().map(Cow::Owned).map_err(unpack_failed).ok(),
        }
    }

    /// The typed record, unpacked in place if it was packed.
    fn get_mut(&mut self) -> Option<&mut T> {
        if let Slot::Packed(p) = self {
            *self = Slot::Live(Box::new(p.unpack().map_err(unpack_failed).ok()?));
        }
        match self {
            Slot::Live(r) => Some(r),
            Slot::Packed(_) => None,
        }
    }

    fn into_inner(self) -> Option<T> {
        match self {
            Slot::Live(r) => Some(*r),
            Slot::Packed(p) => p.unpack().map_err(unpack_failed).ok(),
        }
    }

    fn served<'a>(&'a self, k: &'a Key) -> Served<'a>
    where
        Packed<T>: Unpack,
    {
        match self {
            Slot::Live(r) => T::serve(r.object()),
            Slot::Packed(p) => Served::Packed(k, p),
        }
    }

    fn json(&self) -> Option<Box<RawValue>> {
        match self {
            Slot::Live(r) => serde_json::value::to_raw_value(r).ok(),
            Slot::Packed(p) => p
                .json()
                .map_err(unpack_failed)
                .ok()
                .and_then(|j| RawValue::from_string(j).ok()),
        }
    }
}

/// A packed record that does not unpack is a bug (packing wrote it a moment ago from the
/// same types); it is logged loudly, and the record looks absent to the caller.
fn unpack_failed(e: String) {
    tracing::error!("{e}");
}

/// A Job that no longer changes by itself: finished, and not being deleted.
fn job_settled(r: &JobRecord) -> bool {
    r.job.status.as_ref().is_some_and(|s| s.is_finished())
        && r.job.metadata.deletion_timestamp.is_none()
        && r.job.metadata.finalizers.is_empty()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub file: ManifestFile,
    /// The bytes last read, to tell a real change from a touch.
    pub content: String,
    /// The objects this file defines now (those it applied successfully), by kind: stored
    /// flat, one list under each kind's plural (`"jobs": [...]`, `"pods": [...]`).
    #[serde(flatten)]
    pub defines: Defined,
    /// The Jobs of `file.ttl_deleted`, with the spec each had in the file when it was
    /// deleted: that spec read again does not run the Job again, another one does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ttl_deleted: Vec<TtlDeleted>,
}

/// A Job of this file deleted by its `ttlSecondsAfterFinished`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TtlDeleted {
    pub key: Key,
    pub spec: crate::api::JobSpec,
}

impl ManifestRecord {
    /// A record of `path` that defines nothing yet.
    pub fn new(path: &std::path::Path) -> ManifestRecord {
        ManifestRecord {
            file: ManifestFile {
                path: path.display().to_string(),
                ..Default::default()
            },
            content: String::new(),
            defines: Defined::default(),
            ttl_deleted: Vec::new(),
        }
    }

    /// The objects of `kind` this file defines now.
    pub fn defined(&self, kind: Kind) -> &[Key] {
        self.defines.keys(kind)
    }

    /// Whether this file defines any object now.
    pub fn defines_any(&self) -> bool {
        self.defines.0.values().any(|v| !v.is_empty())
    }
}

/// The objects a manifest file defines, by kind, in file order within a kind. Serialized
/// as one list per kind under its plural, as the record held them when each kind had a
/// field of its own: `jobs` always (a release that knew only Jobs requires it), the others
/// when not empty; unknown keys are left to the rest of the record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defined(pub BTreeMap<Kind, Vec<Key>>);

impl Defined {
    pub fn keys(&self, kind: Kind) -> &[Key] {
        self.0.get(&kind).map_or(&[], Vec::as_slice)
    }

    pub fn get_mut(&mut self, kind: Kind) -> &mut Vec<Key> {
        self.0.entry(kind).or_default()
    }

    /// Every object, kind by kind.
    pub fn iter(&self) -> impl Iterator<Item = (Kind, &Key)> {
        self.0
            .iter()
            .flat_map(|(kind, keys)| keys.iter().map(move |k| (*kind, k)))
    }
}

impl Serialize for Defined {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(
            Kind::Job.resource().plural,
            self.0.get(&Kind::Job).map_or(&[][..], Vec::as_slice),
        )?;
        for (kind, keys) in &self.0 {
            if *kind != Kind::Job && !keys.is_empty() {
                map.serialize_entry(kind.resource().plural, keys)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Defined {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Defined;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("lists of defined objects under each kind's plural")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Defined, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = a.next_key::<String>()? {
                    match crate::api::kind::RESOURCES
                        .iter()
                        .find(|r| r.plural == name)
                    {
                        Some(r) => {
                            let keys: Vec<Key> = a.next_value()?;
                            if !keys.is_empty() {
                                out.insert(r.kind, keys);
                            }
                        }
                        None => {
                            a.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Defined(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Events kept in memory (Kubernetes keeps them an hour); older ones fall off.
pub const MAX_EVENTS: usize = 10_000;

/// Records packed or removed after which the world is worth allocating again (`rebuild`).
const REBUILD_AFTER: usize = 1000;

/// Long-lived data laid flat: each piece length-prefixed, one after the other.
#[derive(Default)]
struct Flat {
    bytes: Vec<u8>,
}

impl Flat {
    fn count(&mut self, n: usize) {
        self.bytes.extend_from_slice(&(n as u64).to_le_bytes());
    }

    fn put(&mut self, piece: &[u8]) {
        self.count(piece.len());
        self.bytes.extend_from_slice(piece);
    }

    fn key(&mut self, k: &Key) {
        self.put(k.0.as_bytes());
        self.put(k.1.as_bytes());
    }

    fn reader(&self) -> FlatReader<'_> {
        FlatReader { rest: &self.bytes }
    }
}

/// Reads a [`Flat`] back in the order it was written.
struct FlatReader<'a> {
    rest: &'a [u8],
}

impl<'a> FlatReader<'a> {
    fn count(&mut self) -> usize {
        let (n, rest) = self.rest.split_at_checked(8).unwrap_or((&[], &[]));
        self.rest = rest;
        n.try_into().map_or(0, |b| u64::from_le_bytes(b) as usize)
    }

    fn take(&mut self) -> &'a [u8] {
        let n = self.count();
        let (piece, rest) = self.rest.split_at_checked(n).unwrap_or((&[], &[]));
        self.rest = rest;
        piece
    }

    /// Written from a `String`, so always UTF-8.
    fn string(&mut self) -> String {
        String::from_utf8_lossy(self.take()).into_owned()
    }

    fn os_string(&mut self) -> std::ffi::OsString {
        // SAFETY: written by `as_encoded_bytes` of an `OsStr`, in this process.
        unsafe { std::ffi::OsString::from_encoded_bytes_unchecked(self.take().to_vec()) }
    }

    fn key(&mut self) -> Key {
        (self.string(), self.string())
    }
}

/// A map of slots laid flat: its keys and packed records into `flat`, its typed records
/// (moved, not copied) returned with the number of entries.
fn flatten_slots<T>(
    slots: impl IntoIterator<Item = (Key, Slot<T>)>,
    flat: &mut Flat,
) -> (usize, Vec<Box<T>>) {
    let mut live = Vec::new();
    let mut n = 0;
    for (k, slot) in slots {
        n += 1;
        flat.key(&k);
        match slot {
            Slot::Packed(p) => flat.put(p.raw()),
            Slot::Live(r) => {
                flat.put(&[]);
                live.push(r);
            }
        }
    }
    (n, live)
}

/// The entries of [`flatten_slots`] again; an empty piece stands for the next typed record.
fn unflatten_slots<'a, T: 'a>(
    r: &'a mut FlatReader<'_>,
    n: usize,
    live: Vec<Box<T>>,
) -> impl Iterator<Item = (Key, Slot<T>)> + 'a {
    let mut live = live.into_iter();
    (0..n).filter_map(move |_| {
        let k = r.key();
        let raw = r.take();
        let slot = if raw.is_empty() {
            Slot::Live(live.next()?)
        } else {
            Slot::Packed(Packed::from_raw(raw))
        };
        Some((k, slot))
    })
}

#[derive(Default)]
pub struct World {
    /// Boxed while typed: a record is about 3 KB inline, and a B-tree's nodes are half empty
    /// after ordered inserts, so unboxed each Job cost another 2.7 KB of empty slots (10,000
    /// finished Jobs: 27 MB). Settled ones packed (`pack.rs`).
    jobs: BTreeMap<Key, Slot<JobRecord>>,
    /// A hash map: pods are looked up on every runtime event and Job sync. Boxed for the same
    /// reason: a hash table keeps up to half its slots empty, each the size of a record.
    pods: HashMap<Key, Slot<PodRecord>>,
    pub cronjobs: BTreeMap<Key, Box<CronJobRecord>>,
    /// Every object of a declared kind (ConfigMaps…), one table for all such kinds. Few and
    /// small, so kept typed as JSON and left out of `rebuild`.
    declared: BTreeMap<(Kind, Key), DeclaredRecord>,
    /// (controller uid, Job): the Jobs an object controls (a CronJob's), found without
    /// unpacking every Job. A Job orphaned later stays listed; callers check the Job itself.
    jobs_of_owner: BTreeSet<(String, Key)>,
    /// Jobs and pods made typed since the last `pack_settled`: the ones that may pack now.
    loose_jobs: Vec<Key>,
    loose_pods: Vec<Key>,
    /// Records packed or removed since the last `rebuild`.
    churn: usize,
    pub manifests: BTreeMap<PathBuf, ManifestRecord>,
    /// Manifests in `Conflict`: tried again whenever an object lets go of its name.
    pub conflicts: BTreeSet<PathBuf>,
    /// The newest events, typed: a new event is compared with the last `DEDUP_WINDOW` of
    /// them and a repeat counted in place. The others are packed when the loop is quiet.
    pub events: VecDeque<Event>,
    /// Older events, packed, oldest first, each under its `(namespace, name)`: with
    /// `events`, the newest `MAX_EVENTS`.
    old_events: VecDeque<(Key, Packed<Event>)>,
    /// job uid → its pods
    /// (job uid, pod): one set for all Jobs, as a set per Job cost a B-tree node (0.5 KB) for
    /// each one-pod Job
    pub pods_of_job: BTreeSet<(String, Key)>,
    /// job uid → its pods a Job sync must still see: all but the successes already counted
    pub pending_of_job: HashMap<String, BTreeSet<Key>>,
    /// job uid → its latest-finished counted success (it bounds the pod-failure backoff)
    pub last_success_of_job: HashMap<String, Key>,
    /// pod uid → pod key
    pub pod_by_uid: HashMap<String, Key>,
    /// pod uid → the logs of that pod, removed from the store, still in the spool
    pub deleted_logs: BTreeMap<String, DeletedLogs>,
}

/// Store keys come from the registry: `jobs/<ns>/<name>`, `pods/<ns>/<name>`,
/// `manifests/<path>`.
pub fn store_key(kind: Kind, k: &Key) -> String {
    kind.resource().store_key(&k.0, &k.1)
}
pub fn job_store_key(k: &Key) -> String {
    store_key(Kind::Job, k)
}
pub fn pod_store_key(k: &Key) -> String {
    store_key(Kind::Pod, k)
}
pub fn manifest_store_key(p: &std::path::Path) -> String {
    format!("{}/{}", Kind::Manifest.resource().plural, p.display())
}

/// One object as the API serves it, whatever its kind: lists, gets and watch events are
/// written once over this instead of once per kind.
#[derive(Clone, Copy)]
pub enum Served<'a> {
    Job(&'a Job),
    CronJob(&'a CronJob),
    Pod(&'a Pod),
    Event(&'a Event),
    /// An object of a declared kind (ConfigMap…).
    Declared(&'a DeclaredRecord),
    /// A settled Job or pod, packed (`pack.rs`): served as its JSON, decoded only to print it.
    Packed(&'a Key, &'a dyn Unpack),
}

impl Served<'_> {
    /// The metadata of a typed object; a packed one answers `name`, `namespace` and `labels`.
    pub fn meta(&self) -> Option<&crate::api::ObjectMeta> {
        match self {
            Served::Job(o) => Some(&o.metadata),
            Served::CronJob(o) => Some(&o.metadata),
            Served::Pod(o) => Some(&o.metadata),
            Served::Event(o) => Some(&o.metadata),
            Served::Declared(r) => Some(&r.metadata),
            Served::Packed(..) => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Served::Packed(k, _) => &k.1,
            o => o.meta().map_or("", |m| m.name()),
        }
    }

    pub fn namespace(&self) -> &str {
        match self {
            Served::Packed(k, _) => &k.0,
            o => o.meta().map_or("", |m| m.namespace()),
        }
    }

    pub fn labels(&self) -> Cow<'_, crate::api::Labels> {
        match self {
            Served::Packed(_, p) => {
                Cow::Owned(p.labels().map_err(unpack_failed).unwrap_or_default())
            }
            o => o
                .meta()
                .map_or(Cow::Owned(Default::default()), |m| Cow::Borrowed(&m.labels)),
        }
    }
}

impl Serialize for Served<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Served::Job(o) => o.serialize(s),
            Served::CronJob(o) => o.serialize(s),
            Served::Pod(o) => o.serialize(s),
            Served::Event(o) => o.serialize(s),
            Served::Declared(r) => r.object.serialize(s),
            Served::Packed(_, p) => {
                let mut s = Some(s);
                let mut out = None;
                p.with_served_json(&mut |json| {
                    out = s.take().map(|s| super::pack::serialize_json(json, s));
                })
                .map_err(serde::ser::Error::custom)?;
                out.ok_or_else(|| serde::ser::Error::custom("a packed record without JSON"))?
            }
        }
    }
}

/// The uid of the object that controls this one, if any.
fn controller_of(meta: &crate::api::ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// The uid of the Job that controls the pod. From the owner reference the daemon itself set,
/// never from a label a manifest could choose (`manualSelector`).
fn owner_uid(pod: &Pod) -> Option<&str> {
    controller_ref(pod).map(|o| o.uid.as_str())
}

fn controller_ref(pod: &Pod) -> Option<&crate::api::OwnerReference> {
    pod.metadata
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
}

impl World {
    /// Rebuilds the world from stored objects; unreadable records are reported and skipped.
    #[cfg(test)]
    pub fn from_objects(objects: &crate::store::Objects) -> (World, Vec<String>) {
        let mut w = World::default();
        let problems = objects
            .iter()
            .filter_map(|(k, v)| w.load_stored(k, v).err())
            .collect();
        (w, problems)
    }

    /// Adds one stored object (as the store hands them over at start); an unreadable record
    /// is an error naming its key. A settled record is packed at once, so a start never holds
    /// every record typed.
    pub fn load_stored(&mut self, k: &str, v: &RawValue) -> Result<(), String> {
        let result = if k.starts_with("jobs/") {
            serde_json::from_str::<JobRecord>(v.get()).map(|r| {
                let key = key(r.job.metadata.namespace(), r.job.metadata.name());
                self.insert_job(key.clone(), r);
                self.pack_job(&key);
            })
        } else if k.starts_with("cronjobs/") {
            serde_json::from_str::<CronJobRecord>(v.get()).map(|r| {
                let m = &r.cronjob.metadata;
                self.cronjobs
                    .insert(key(m.namespace(), m.name()), Box::new(r));
            })
        } else if k.starts_with("pods/") {
            serde_json::from_str::<PodRecord>(v.get()).map(|r| {
                let key = key(r.pod.metadata.namespace(), r.pod.metadata.name());
                self.insert_pod(r);
                self.pack_pod(&key);
            })
        } else if let Some(path) = k.strip_prefix("manifests/") {
            serde_json::from_str::<ManifestRecord>(v.get()).map(|r| {
                if r.file.state == crate::api::ManifestState::Conflict {
                    self.conflicts.insert(PathBuf::from(path));
                }
                self.manifests.insert(PathBuf::from(path), r);
            })
        } else if k.starts_with(retention::STORE_PREFIX) {
            serde_json::from_str::<DeletedLogs>(v.get()).map(|r| {
                self.deleted_logs.insert(r.uid.clone(), r);
            })
        } else if let Some((kind, dk)) = declared_key(k) {
            serde_json::from_str::<DeclaredRecord>(v.get())
                .and_then(|mut r| r.read_metadata().map(|()| r))
                .map(|r| {
                    self.declared.insert((kind, dk), r);
                })
        } else {
            Ok(())
        };
        result.map_err(|e| format!("stored object {k}: {e}"))
    }

    /// Manifest records kept under another directory — the root was moved or restored
    /// elsewhere, or `paths.manifests` changed — follow their file name into `dir`, with the
    /// Jobs they define. Without this every file would conflict with its own old record,
    /// which no rescan ever looks at again (and once the old file is gone, the old record
    /// would delete its Jobs and the conflicting new one re-create them: a re-run). When the
    /// new path has a record already, the Jobs go to it: a record that owns none (a
    /// `Conflict`, say) is replaced, else the Jobs are added to it. Returns the store keys that
    /// changed.
    pub fn rebase_manifests(&mut self, dir: &std::path::Path) -> Vec<String> {
        let strays: Vec<PathBuf> = self
            .manifests
            .keys()
            .filter(|p| p.parent() != Some(dir))
            .cloned()
            .collect();
        let mut changed = Vec::new();
        for old in strays {
            let Some(name) = old.file_name() else {
                continue;
            };
            let new = dir.join(name);
            let Some(mut rec) = self.manifests.remove(&old) else {
                continue;
            };
            for (kind, k) in rec.defines.iter() {
                if self.follow_source(kind, k, &old, &new) {
                    changed.push(store_key(kind, k));
                }
            }
            tracing::info!(from = %old.display(), to = %new.display(), "manifest record follows the manifests directory");
            changed.push(manifest_store_key(&old));
            changed.push(manifest_store_key(&new));
            match self.manifests.get_mut(&new) {
                Some(there) if there.defines_any() => {
                    for (kind, keys) in std::mem::take(&mut rec.defines.0) {
                        let list = there.defines.get_mut(kind);
                        for k in keys {
                            if !list.contains(&k) {
                                list.push(k);
                            }
                        }
                    }
                }
                _ => {
                    rec.file.path = new.display().to_string();
                    self.manifests.insert(new, rec);
                }
            }
        }
        self.conflicts = self
            .manifests
            .iter()
            .filter(|(_, m)| m.file.state == crate::api::ManifestState::Conflict)
            .map(|(p, _)| p.clone())
            .collect();
        changed
    }

    /// Records `new` as the file of the object `kind`/`k` if `old` defined it. Returns whether
    /// it did.
    fn follow_source(
        &mut self,
        kind: Kind,
        k: &Key,
        old: &std::path::Path,
        new: &std::path::Path,
    ) -> bool {
        match kind {
            Kind::Job => {
                if self
                    .job(k)
                    .is_some_and(|j| j.source.as_deref() == Some(old))
                    && let Some(job) = self.job_mut(k)
                {
                    job.source = Some(new.to_path_buf());
                    return true;
                }
                false
            }
            Kind::CronJob => match self.cronjobs.get_mut(k).filter(|c| c.source == old) {
                Some(cj) => {
                    cj.source = new.to_path_buf();
                    true
                }
                None => false,
            },
            Kind::Pod => {
                if self.pod(k).is_some_and(|p| p.source() == Some(old))
                    && let Some(file) = self.pod_mut(k).and_then(|p| p.file.as_mut())
                {
                    file.source = new.to_path_buf();
                    return true;
                }
                false
            }
            Kind::Event | Kind::Manifest => false,
            // Declared kinds: unreachable until one is registered.
            #[allow(unreachable_patterns)]
            declared => match self.declared.get_mut(&(declared, k.clone())) {
                Some(r) if r.source == old => {
                    r.source = new.to_path_buf();
                    true
                }
                _ => false,
            },
        }
    }

    /// The object of `kind` named `k`, as served.
    pub fn served(&self, kind: Kind, k: &Key) -> Option<Served<'_>> {
        match kind {
            Kind::Job => self.jobs.get_key_value(k).map(|(k, r)| r.served(k)),
            Kind::CronJob => self.cronjobs.get(k).map(|r| Served::CronJob(&r.cronjob)),
            Kind::Pod => self.pods.get_key_value(k).map(|(k, r)| r.served(k)),
            Kind::Event => self
                .events
                .iter()
                .find(|e| e.metadata.name() == k.1 && e.metadata.namespace() == k.0)
                .map(Served::Event)
                .or_else(|| {
                    let (k, p) = self.old_events.iter().find(|(old, _)| old == k)?;
                    Some(Served::Packed(k, p))
                }),
            Kind::Manifest => None,
            // Declared kinds: unreachable until one is registered.
            #[allow(unreachable_patterns)]
            declared => self.declared(declared, k).map(Served::Declared),
        }
    }

    /// Every object of `kind` in `ns` (all namespaces: `None`), in name order (events in
    /// the order they happened).
    pub fn served_all<'a>(
        &'a self,
        kind: Kind,
        ns: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = Served<'a>> + 'a> {
        let in_ns = move |k: &Key| ns.is_none_or(|n| n == k.0);
        match kind {
            Kind::Job => Box::new(
                self.jobs
                    .iter()
                    .filter(move |(k, _)| in_ns(k))
                    .map(|(k, r)| r.served(k)),
            ),
            Kind::CronJob => Box::new(
                self.cronjobs
                    .iter()
                    .filter(move |(k, _)| in_ns(k))
                    .map(|(_, r)| Served::CronJob(&r.cronjob)),
            ),
            Kind::Pod => {
                // Pods live in a hash map (looked up on every event); lists are sorted by name.
                let mut pods: Vec<_> = self.pods.iter().filter(|(k, _)| in_ns(k)).collect();
                pods.sort_unstable_by(|a, b| a.0.cmp(b.0));
                Box::new(pods.into_iter().map(|(k, r)| r.served(k)))
            }
            Kind::Event => Box::new(
                self.old_events
                    .iter()
                    .filter(move |(k, _)| in_ns(k))
                    .map(|(k, p)| Served::Packed(k, p))
                    .chain(
                        self.events
                            .iter()
                            .filter(move |e| ns.is_none_or(|n| n == e.metadata.namespace()))
                            .map(Served::Event),
                    ),
            ),
            Kind::Manifest => Box::new(std::iter::empty()),
            // Declared kinds: unreachable until one is registered.
            #[allow(unreachable_patterns)]
            declared => Box::new(
                self.declared
                    .range((declared, key("", ""))..)
                    .take_while(move |((kind, _), _)| *kind == declared)
                    .filter(move |((_, k), _)| in_ns(k))
                    .map(|(_, r)| Served::Declared(r)),
            ),
        }
    }

    /// The current JSON of a store key, `None` when it no longer exists.
    pub fn stored(&self, store_key: &str) -> Option<Box<RawValue>> {
        let split = |rest: &str| rest.split_once('/').map(|(a, b)| key(a, b));
        let json = if let Some(rest) = store_key.strip_prefix("jobs/") {
            return self.jobs.get(&split(rest)?)?.json();
        } else if let Some(rest) = store_key.strip_prefix("cronjobs/") {
            self.cronjobs
                .get(&split(rest)?)
                .map(serde_json::value::to_raw_value)
        } else if let Some(rest) = store_key.strip_prefix("pods/") {
            return self.pods.get(&split(rest)?)?.json();
        } else if let Some(path) = store_key.strip_prefix("manifests/") {
            self.manifests
                .get(std::path::Path::new(path))
                .map(serde_json::value::to_raw_value)
        } else if let Some(uid) = store_key.strip_prefix(retention::STORE_PREFIX) {
            self.deleted_logs
                .get(uid)
                .map(serde_json::value::to_raw_value)
        } else if let Some((kind, k)) = declared_key(store_key) {
            self.declared(kind, &k).map(serde_json::value::to_raw_value)
        } else {
            None
        };
        json.and_then(Result::ok)
    }

    // ------------------------------------------------------------------ declared kinds

    /// The object `k` of the declared `kind`.
    pub fn declared(&self, kind: Kind, k: &Key) -> Option<&DeclaredRecord> {
        self.declared.get(&(kind, k.clone()))
    }

    pub fn declared_mut(&mut self, kind: Kind, k: &Key) -> Option<&mut DeclaredRecord> {
        self.declared.get_mut(&(kind, k.clone()))
    }

    pub fn insert_declared(&mut self, kind: Kind, k: Key, r: DeclaredRecord) {
        self.declared.insert((kind, k), r);
    }

    pub fn remove_declared(&mut self, kind: Kind, k: &Key) -> Option<DeclaredRecord> {
        self.declared.remove(&(kind, k.clone()))
    }

    // ------------------------------------------------------------------ Jobs

    /// The Job `k` (unpacked into a copy if it is packed).
    pub fn job(&self, k: &Key) -> Option<Cow<'_, JobRecord>> {
        self.jobs.get(k)?.get()
    }

    /// The Job `k`, to change it: typed from now on, until it has settled again.
    pub fn job_mut(&mut self, k: &Key) -> Option<&mut JobRecord> {
        let slot = self.jobs.get_mut(k)?;
        if self.loose_jobs.last() != Some(k) {
            self.loose_jobs.push(k.clone());
        }
        slot.get_mut()
    }

    pub fn contains_job(&self, k: &Key) -> bool {
        self.jobs.contains_key(k)
    }

    pub fn contains_pod(&self, k: &Key) -> bool {
        self.pods.contains_key(k)
    }

    pub fn job_keys(&self) -> impl Iterator<Item = &Key> {
        self.jobs.keys()
    }

    /// The uid of every Job.
    pub fn job_uids(&self) -> std::collections::HashSet<String> {
        #[derive(Deserialize)]
        struct Object {
            metadata: Meta,
        }
        #[derive(Deserialize)]
        struct Meta {
            #[serde(default)]
            uid: Option<String>,
        }
        self.jobs
            .values()
            .filter_map(|slot| match slot {
                Slot::Live(r) => Some(r.job.metadata.uid().to_string()),
                Slot::Packed(p) => p
                    .peek::<Object>()
                    .map_err(unpack_failed)
                    .ok()
                    .and_then(|o| o.metadata.uid),
            })
            .collect()
    }

    pub fn insert_job(&mut self, k: Key, r: JobRecord) {
        if let Some(owner) = controller_of(&r.job.metadata) {
            self.jobs_of_owner.insert((owner.to_string(), k.clone()));
        }
        self.loose_jobs.push(k.clone());
        self.jobs.insert(k, Slot::Live(Box::new(r)));
    }

    pub fn remove_job(&mut self, k: &Key) -> Option<JobRecord> {
        self.churn += 1;
        let r = self.jobs.remove(k)?.into_inner()?;
        if let Some(owner) = controller_of(&r.job.metadata) {
            self.jobs_of_owner.remove(&(owner.to_string(), k.clone()));
        }
        Some(r)
    }

    /// The Jobs whose controller reference was `owner_uid` when they were made (a CronJob's);
    /// check each, a Job may have been orphaned since.
    pub fn jobs_of_owner(&self, owner_uid: &str) -> Vec<Key> {
        let from = (owner_uid.to_string(), key("", ""));
        self.jobs_of_owner
            .range(from..)
            .take_while(|(o, _)| o == owner_uid)
            .map(|(_, k)| k.clone())
            .filter(|k| self.jobs.contains_key(k))
            .collect()
    }

    // ------------------------------------------------------------------ pods

    /// The pod `k` (unpacked into a copy if it is packed).
    pub fn pod(&self, k: &Key) -> Option<Cow<'_, PodRecord>> {
        self.pods.get(k)?.get()
    }

    /// The pod `k`, to change it: typed from now on, until it has settled again.
    pub fn pod_mut(&mut self, k: &Key) -> Option<&mut PodRecord> {
        let slot = self.pods.get_mut(k)?;
        if self.loose_pods.last() != Some(k) {
            self.loose_pods.push(k.clone());
        }
        slot.get_mut()
    }

    pub fn has_pod(&self, k: &Key) -> bool {
        self.pods.contains_key(k)
    }

    /// Pods that may still change: every pod that is not terminal, or still has a finalizer
    /// or a deletion timestamp, or whose run may have a process, is among them (settled ones
    /// may be too).
    pub fn unsettled_pods(&self) -> impl Iterator<Item = (&Key, &PodRecord)> {
        self.pods.iter().filter_map(|(k, slot)| match slot {
            Slot::Live(r) => Some((k, &**r)),
            Slot::Packed(_) => None,
        })
    }

    pub fn insert_pod(&mut self, r: PodRecord) {
        let k = key(r.pod.metadata.namespace(), r.pod.metadata.name());
        if let Some(owner) = owner_uid(&r.pod) {
            self.pods_of_job.insert((owner.to_string(), k.clone()));
            self.pending_of_job
                .entry(owner.to_string())
                .or_default()
                .insert(k.clone());
        }
        self.pod_by_uid
            .insert(r.pod.metadata.uid().to_string(), k.clone());
        self.pods.insert(k.clone(), Slot::Live(Box::new(r)));
        self.loose_pods.push(k.clone());
        self.settle(&k);
    }

    /// Moves a pod out of its Job's pending set once its success has been counted.
    pub fn settle(&mut self, k: &Key) {
        let Some(rec) = self.pod(k) else {
            return;
        };
        let pod = &rec.pod;
        let counted_success =
            pod.status.phase == PodPhase::Succeeded && pod.metadata.finalizers.is_empty();
        let Some(owner) = owner_uid(pod).map(str::to_string) else {
            return;
        };
        if !counted_success {
            return;
        }
        let finished = finish_time(pod);
        drop(rec);
        if let Some(set) = self.pending_of_job.get_mut(&owner) {
            set.remove(k);
            // An empty set keeps its B-tree node (0.5 KB): a finished Job must not.
            if set.is_empty() {
                self.pending_of_job.remove(&owner);
            }
        }
        let later = match self
            .last_success_of_job
            .get(&owner)
            .and_then(|l| self.pod(l))
        {
            Some(last) => finish_time(&last.pod) < finished,
            None => true,
        };
        if later && let Some(old) = self.last_success_of_job.insert(owner, k.clone()) {
            // No longer what its Job's syncs look at: it may pack.
            self.loose_pods.push(old);
        }
    }

    pub fn remove_pod(&mut self, k: &Key) -> Option<PodRecord> {
        self.churn += 1;
        let r = self.pods.remove(k)?.into_inner()?;
        if let Some(owner) = owner_uid(&r.pod)
            && self.pods_of_job.remove(&(owner.to_string(), k.clone()))
            && self.pods_of(owner).next().is_none()
        {
            self.pending_of_job.remove(owner);
            self.last_success_of_job.remove(owner);
        }
        if let Some(owner) = owner_uid(&r.pod) {
            if let Some(set) = self.pending_of_job.get_mut(owner) {
                set.remove(k);
                if set.is_empty() {
                    self.pending_of_job.remove(owner);
                }
            }
            if self.last_success_of_job.get(owner) == Some(k) {
                self.last_success_of_job.remove(owner);
            }
        }
        self.pod_by_uid.remove(r.pod.metadata.uid());
        Some(r)
    }

    /// Pods owned by the Job with this uid, in name order.
    pub fn pod_keys_of(&self, job_uid: &str) -> Vec<Key> {
        self.pods_of(job_uid).cloned().collect()
    }

    fn pods_of<'a>(&'a self, job_uid: &'a str) -> impl Iterator<Item = &'a Key> + 'a {
        let first = (job_uid.to_string(), (String::new(), String::new()));
        self.pods_of_job
            .range(first..)
            .take_while(move |(uid, _)| uid == job_uid)
            .map(|(_, k)| k)
    }

    // ------------------------------------------------------------------ packing

    /// Packs every record made typed since the last call that has settled: a finished Job,
    /// and a finished pod that its Job has counted and no Job sync needs (see
    /// [`Self::pod_settled`]).
    pub fn pack_settled(&mut self) {
        for k in std::mem::take(&mut self.loose_jobs) {
            self.pack_job(&k);
        }
        for k in std::mem::take(&mut self.loose_pods) {
            self.pack_pod(&k);
        }
    }

    fn pack_job(&mut self, k: &Key) {
        let Some(Slot::Live(r)) = self.jobs.get(k) else {
            return;
        };
        if !job_settled(r) {
            return;
        }
        let uid = r.job.metadata.uid().to_string();
        match Packed::pack(&**r) {
            Ok(p) => {
                self.jobs.insert(k.clone(), Slot::Packed(p));
                self.churn += 1;
            }
            Err(e) => tracing::error!(namespace = %k.0, job_name = %k.1, "cannot pack: {e}"),
        }
        // Its pods that syncs kept typed no longer need to be.
        let pods = self.pending_of_job.get(&uid).into_iter().flatten();
        let last = self.last_success_of_job.get(&uid);
        let pods: Vec<Key> = pods.chain(last).cloned().collect();
        for pk in pods {
            self.pack_pod(&pk);
        }
    }

    fn pack_pod(&mut self, k: &Key) {
        let Some(Slot::Live(r)) = self.pods.get(k) else {
            return;
        };
        if !self.pod_settled(k, r) {
            return;
        }
        match Packed::pack(&**r) {
            Ok(p) => {
                self.pods.insert(k.clone(), Slot::Packed(p));
                self.churn += 1;
            }
            Err(e) => tracing::error!(namespace = %k.0, pod_name = %k.1, "cannot pack: {e}"),
        }
    }

    /// A pod that no longer changes by itself: terminal with no process left, counted (no
    /// finalizer), not being deleted or replaced; and, while its Job runs, none of the pods
    /// that Job's syncs read (its pending ones and its last success), which would otherwise
    /// be unpacked at every sync.
    fn pod_settled(&self, k: &Key, r: &PodRecord) -> bool {
        let p = &r.pod;
        let ended = p.status.phase.is_terminal()
            && p.metadata.deletion_timestamp.is_none()
            && p.metadata.finalizers.is_empty()
            && r.runs.values().all(|run| run.pid.is_none())
            && r.file.as_ref().is_none_or(|f| f.successor.is_none());
        if !ended {
            return false;
        }
        let Some(owner) = controller_ref(p) else {
            return true;
        };
        let read_by_syncs = self
            .pending_of_job
            .get(&owner.uid)
            .is_some_and(|s| s.contains(k))
            || self.last_success_of_job.get(&owner.uid) == Some(k);
        !read_by_syncs || self.job_finished(&key(&k.0, &owner.name), &owner.uid)
    }

    /// Whether the Job `k` with this uid is finished (packed ones are), or gone.
    fn job_finished(&self, k: &Key, uid: &str) -> bool {
        match self.jobs.get(k) {
            None => true,
            Some(Slot::Packed(_)) => true,
            Some(Slot::Live(r)) => {
                r.job.metadata.uid() != uid
                    || r.job.status.as_ref().is_some_and(|s| s.is_finished())
            }
        }
    }

    // ------------------------------------------------------------------ the heap

    /// Whether enough records were packed or removed since the last [`Self::rebuild`] that
    /// what remains is likely spread thin over the heap.
    pub fn worth_rebuilding(&self) -> bool {
        self.churn >= REBUILD_AFTER
    }

    /// Allocates every long-lived part of the world again, densely. Records settle in the
    /// middle of a burst, so each small piece that stays (a packed record, a key, an index
    /// entry, an event) lands between the burst's temporaries, and when those are freed
    /// nearly every page still holds one: after 10,000 one-pod Jobs ran, 53 MB in use kept
    /// 170 MiB resident, where a restart on the same state holds 48 MiB. Copying in place would
    /// fill the same holes, so everything is first laid flat in one buffer (its own mapping,
    /// past the mmap threshold) and freed, then made anew from it: malloc then carves the new
    /// pieces one after another from the free space the old ones left. Typed records (still
    /// changing) are moved, not copied; `deleted_logs` and `conflicts` are few.
    pub fn rebuild(&mut self) {
        self.pack_events();
        let mut flat = Flat::default();
        let (jobs, live_jobs) = flatten_slots(std::mem::take(&mut self.jobs), &mut flat);
        let (pods, live_pods) = flatten_slots(std::mem::take(&mut self.pods), &mut flat);
        let owned = std::mem::take(&mut self.pods_of_job);
        flat.count(owned.len());
        for (uid, k) in owned {
            flat.put(uid.as_bytes());
            flat.key(&k);
        }
        let pending = std::mem::take(&mut self.pending_of_job);
        flat.count(pending.len());
        for (uid, keys) in pending {
            flat.put(uid.as_bytes());
            flat.count(keys.len());
            keys.iter().for_each(|k| flat.key(k));
        }
        for map in [
            std::mem::take(&mut self.last_success_of_job),
            std::mem::take(&mut self.pod_by_uid),
        ] {
            flat.count(map.len());
            for (uid, k) in map {
                flat.put(uid.as_bytes());
                flat.key(&k);
            }
        }
        let manifests = std::mem::take(&mut self.manifests);
        flat.count(manifests.len());
        for (path, m) in manifests {
            flat.put(path.as_os_str().as_encoded_bytes());
            flat.put(serde_json::to_string(&m).unwrap_or_default().as_bytes());
        }
        let old_events = std::mem::take(&mut self.old_events);
        flat.count(old_events.len());
        for (k, p) in old_events {
            flat.key(&k);
            flat.put(p.raw());
        }
        let events = std::mem::take(&mut self.events);
        flat.count(events.len());
        for e in events {
            flat.put(serde_json::to_string(&e).unwrap_or_default().as_bytes());
        }
        self.loose_jobs = Vec::new();
        self.loose_pods = Vec::new();

        let mut r = flat.reader();
        self.jobs = unflatten_slots(&mut r, jobs, live_jobs).collect();
        self.pods = HashMap::with_capacity(pods);
        self.pods.extend(unflatten_slots(&mut r, pods, live_pods));
        // In order, so the B-tree is built full.
        self.pods_of_job = (0..r.count()).map(|_| (r.string(), r.key())).collect();
        let n = r.count();
        self.pending_of_job.reserve(n);
        for _ in 0..n {
            let uid = r.string();
            let keys = (0..r.count()).map(|_| r.key()).collect();
            self.pending_of_job.insert(uid, keys);
        }
        for map in [&mut self.last_success_of_job, &mut self.pod_by_uid] {
            let n = r.count();
            map.reserve(n);
            for _ in 0..n {
                let uid = r.string();
                map.insert(uid, r.key());
            }
        }
        for _ in 0..r.count() {
            let path = PathBuf::from(r.os_string());
            match serde_json::from_slice(r.take()) {
                Ok(m) => {
                    self.manifests.insert(path, m);
                }
                Err(e) => tracing::error!(file = %path.display(), "manifest record lost: {e}"),
            }
        }
        let n = r.count();
        self.old_events = VecDeque::with_capacity(n);
        for _ in 0..n {
            let k = r.key();
            self.old_events.push_back((k, Packed::from_raw(r.take())));
        }
        let n = r.count();
        self.events = VecDeque::with_capacity(n);
        for _ in 0..n {
            match serde_json::from_slice(r.take()) {
                Ok(e) => self.events.push_back(e),
                Err(e) => tracing::error!("event lost: {e}"),
            }
        }
        self.churn = 0;
    }

    /// Records an event; past `MAX_EVENTS` the oldest goes.
    pub fn push_event(&mut self, e: Event) {
        self.events.push_back(e);
        while self.events.len() + self.old_events.len() > MAX_EVENTS.max(DEDUP_WINDOW) {
            if self.old_events.pop_front().is_none() {
                self.events.pop_front();
            }
        }
    }

    /// Packs every event but the newest `DEDUP_WINDOW` (a typed event is 1.1 KB, packed about
    /// 250 bytes with its key). Done when the loop is quiet, not per event: a burst records
    /// three events a pod, and packing each at once cost 2% of its throughput.
    pub fn pack_events(&mut self) {
        while self.events.len() > DEDUP_WINDOW
            && let Some(old) = self.events.pop_front()
        {
            let k = key(old.metadata.namespace(), old.metadata.name());
            match Packed::pack(&old) {
                Ok(p) => self.old_events.push_back((k, p)),
                Err(e) => tracing::error!("cannot pack an event: {e}"),
            }
        }
        if self.events.capacity() > 4 * DEDUP_WINDOW {
            self.events.shrink_to_fit();
        }
    }
}

#[cfg(test)]
impl World {
    /// Every Job, typed (packed ones unpacked into copies), in key order.
    pub fn all_jobs(&self) -> Vec<JobRecord> {
        self.jobs
            .values()
            .filter_map(|s| s.get().map(Cow::into_owned))
            .collect()
    }

    /// Every pod, typed (packed ones unpacked into copies), in key order.
    pub fn all_pods(&self) -> Vec<PodRecord> {
        let mut keys: Vec<&Key> = self.pods.keys().collect();
        keys.sort();
        keys.into_iter()
            .filter_map(|k| self.pod(k).map(Cow::into_owned))
            .collect()
    }

    pub fn has_job(&self, k: &Key) -> bool {
        self.jobs.contains_key(k)
    }

    pub fn pod_keys(&self) -> impl Iterator<Item = &Key> {
        self.pods.keys()
    }

    pub fn packed_events(&self) -> usize {
        self.old_events.len()
    }

    /// Every event, typed (packed ones unpacked into copies), oldest first.
    pub fn all_events(&self) -> Vec<Event> {
        let old = self.old_events.iter().filter_map(|(_, p)| p.unpack().ok());
        old.chain(self.events.iter().cloned()).collect()
    }

    /// Every packed record made typed again (as if none had ever settled).
    pub fn unpack_all(&mut self) {
        for slot in self.jobs.values_mut() {
            slot.get_mut();
        }
        for slot in self.pods.values_mut() {
            slot.get_mut();
        }
    }

    /// Whether the Job or pod `k` is held packed.
    pub fn is_packed(&self, kind: Kind, k: &Key) -> bool {
        match kind {
            Kind::Job => matches!(self.jobs.get(k), Some(Slot::Packed(_))),
            _ => matches!(self.pods.get(k), Some(Slot::Packed(_))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Objects, Store};

    /// What the store loads from the state jobvisor 0.1.0 wrote (`tests/data/state-v1`).
    fn golden_objects() -> Objects {
        golden("state-v1")
    }

    /// What the store loads from a golden state directory under `tests/data`: `state-v1`
    /// from the first release (no checksums), `state-v2` from the release that added
    /// checksummed records (before bare Pods and ownership).
    fn golden(name: &str) -> Objects {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&golden).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        let (_store, objects) =
            Store::open(dir.path(), crate::store::StoreOptions::new(1 << 30)).unwrap();
        objects
    }

    /// A record left under an old directory hands its Jobs to the record at the new path,
    /// even when one is there already (a `Conflict` from a copy made while the old existed).
    #[test]
    fn a_stray_record_hands_its_jobs_to_the_new_path() {
        let (mut world, _) = World::from_objects(&golden_objects());
        let new_dir = std::path::Path::new("/srv/b/manifests");
        let (old, rec) = world.manifests.iter().next().unwrap();
        let (old, name, jobs) = (
            old.clone(),
            old.file_name().unwrap().to_owned(),
            rec.defined(Kind::Job).to_vec(),
        );
        assert!(!jobs.is_empty());
        let mut conflict = rec.clone();
        conflict.defines = Defined::default();
        conflict.file.state = crate::api::ManifestState::Conflict;
        world.manifests.insert(new_dir.join(&name), conflict);

        let changed = world.rebase_manifests(new_dir);
        assert!(!world.manifests.contains_key(&old));
        assert!(world.manifests.keys().all(|p| p.parent() == Some(new_dir)));
        let there = &world.manifests[&new_dir.join(&name)];
        assert_eq!(there.defined(Kind::Job), jobs);
        assert_eq!(there.file.state, crate::api::ManifestState::Applied);
        for k in &jobs {
            assert_eq!(world.job(k).unwrap().source, Some(new_dir.join(&name)));
            assert!(changed.contains(&job_store_key(k)));
        }
        assert!(changed.contains(&manifest_store_key(&old)));
    }

    /// A manifest record keeps the stored shape it had when each kind had a field of its
    /// own: one list under each kind's plural, `jobs` always, the others only when not empty;
    /// what it does not know is left alone, and a round trip changes nothing.
    #[test]
    fn manifest_record_stores_one_list_per_kind_plural() {
        let old = r#"{"file":{"path":"/m/a.yaml","state":"Applied"},"content":"x","jobs":[["default","j"]],"cronjobs":[["ns","c"]],"future":1}"#;
        let rec: ManifestRecord = serde_json::from_str(old).unwrap();
        assert_eq!(rec.defined(Kind::Job), [key("default", "j")]);
        assert_eq!(rec.defined(Kind::CronJob), [key("ns", "c")]);
        assert!(rec.defined(Kind::Pod).is_empty());
        let json: serde_json::Value = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["jobs"], serde_json::json!([["default", "j"]]));
        assert_eq!(json["cronjobs"], serde_json::json!([["ns", "c"]]));
        assert!(json.get("pods").is_none(), "{json}");
        let again: ManifestRecord = serde_json::from_value(json).unwrap();
        assert_eq!(again.defines, rec.defines);

        let mut empty = ManifestRecord::new(std::path::Path::new("/m/b.yaml"));
        empty.defines.get_mut(Kind::Pod);
        let json = serde_json::to_value(&empty).unwrap();
        assert_eq!(
            json["jobs"],
            serde_json::json!([]),
            "a release that knew only Jobs requires it"
        );
        assert!(json.get("pods").is_none(), "{json}");
    }

    /// State written by the release before this one (checksummed records; two finished Jobs,
    /// one of whose pods restarted once) loads as it was written.
    #[test]
    fn golden_state_v2_still_loads() {
        golden_state_loads("state-v2");
    }

    /// State written by jobvisor 0.1.0 (two finished Jobs) must load in every later version:
    /// an upgrade never loses or re-runs anything.
    #[test]
    fn golden_state_v1_still_loads() {
        golden_state_loads("state-v1");
    }

    fn golden_state_loads(name: &str) {
        let (world, problems) = World::from_objects(&golden(name));
        assert!(problems.is_empty(), "{problems:?}");
        let names: Vec<&str> = world.job_keys().map(|k| k.1.as_str()).collect();
        assert_eq!(names, ["onfailure-job", "simple-job"]);
        for r in world.all_jobs() {
            let status = r.job.status.as_ref().unwrap();
            assert!(
                status
                    .condition(crate::api::JobConditionType::Complete)
                    .is_some(),
                "{}",
                r.job.metadata.name()
            );
            assert_eq!(status.succeeded, 1);
        }
        assert_eq!(world.manifests.len(), 2);
        let pods = world.all_pods();
        assert!(
            pods.iter()
                .any(|p| p.pod.status.phase == PodPhase::Succeeded)
        );
        let on_failure = pods
            .iter()
            .find(|p| p.pod.metadata.name().starts_with("onfailure-job-"))
            .unwrap();
        assert_eq!(on_failure.pod.status.container_statuses[0].restart_count, 1);
        // Owners as this release models them: each Job by its file, each pod by its Job.
        for r in world.all_jobs() {
            let file = r.source.as_ref().expect("a Job from a file");
            assert!(
                world.manifests[file]
                    .defined(Kind::Job)
                    .iter()
                    .any(|k| k.1 == r.job.metadata.name())
            );
            assert_eq!(world.pod_keys_of(r.job.metadata.uid()).len(), 1);
        }
        assert!(pods.iter().all(|p| p.file.is_none()));
        assert!(
            world
                .manifests
                .values()
                .all(|m| m.defined(Kind::Pod).is_empty())
        );
    }
}
