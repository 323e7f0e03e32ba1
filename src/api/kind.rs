//! Every kind jobvisor serves, registered once: its names, group/version, REST paths and
//! store keys. The server's routes, the client's paths, the store's keys, the watch channels
//! and the CLI's resource names all come from [`RESOURCES`], so a new kind is one row here
//! (plus its types, its manifest rules, its controller and its table columns, each in the
//! module for that concern).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Job,
    CronJob,
    Pod,
    Event,
    /// A file of the manifests directory (jobvisor's own, cluster-scoped resource).
    Manifest,
    ConfigMap,
}

/// One kind as the API names and serves it.
#[derive(Debug)]
pub struct Resource {
    pub kind: Kind,
    /// `Job`: the `kind` field of its objects.
    pub name: &'static str,
    /// `batch/v1`: the `apiVersion` field of its objects.
    pub api_version: &'static str,
    /// `jobs`: the REST resource and the first segment of its store keys.
    pub plural: &'static str,
    pub singular: &'static str,
    /// Short names kubectl also accepts (`po`).
    pub short_names: &'static [&'static str],
    /// The API group, empty for the core group.
    pub group: &'static str,
    pub namespaced: bool,
}

/// The registry: one row per kind, in [`Kind`] order.
pub const RESOURCES: [Resource; 6] = [
    Resource {
        kind: Kind::Job,
        name: "Job",
        api_version: "batch/v1",
        plural: "jobs",
        singular: "job",
        short_names: &[],
        group: "batch",
        namespaced: true,
    },
    Resource {
        kind: Kind::CronJob,
        name: "CronJob",
        api_version: "batch/v1",
        plural: "cronjobs",
        singular: "cronjob",
        short_names: &["cj"],
        group: "batch",
        namespaced: true,
    },
    Resource {
        kind: Kind::Pod,
        name: "Pod",
        api_version: "v1",
        plural: "pods",
        singular: "pod",
        short_names: &["po"],
        group: "",
        namespaced: true,
    },
    Resource {
        kind: Kind::Event,
        name: "Event",
        api_version: "v1",
        plural: "events",
        singular: "event",
        short_names: &["ev"],
        group: "",
        namespaced: true,
    },
    Resource {
        kind: Kind::Manifest,
        name: "ManifestFile",
        api_version: "jobvisor.io/v1",
        plural: "manifests",
        singular: "manifest",
        short_names: &[],
        group: "jobvisor.io",
        namespaced: false,
    },
    Resource {
        kind: Kind::ConfigMap,
        name: "ConfigMap",
        api_version: "v1",
        plural: "configmaps",
        singular: "configmap",
        short_names: &["cm"],
        group: "",
        namespaced: true,
    },
];

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Job,
        Kind::CronJob,
        Kind::Pod,
        Kind::Event,
        Kind::Manifest,
        Kind::ConfigMap,
    ];

    pub fn resource(self) -> &'static Resource {
        &RESOURCES[self as usize]
    }

    /// kubectl's accepted spellings, case-insensitive: `job`, `jobs`, `jobs.batch`,
    /// `jobs.v1.batch`, `po`…
    pub fn parse(text: &str) -> Option<Kind> {
        let t = text.to_ascii_lowercase();
        RESOURCES.iter().map(|r| r.kind).find(|k| {
            let r = k.resource();
            let mut names: Vec<String> = [r.plural, r.singular]
                .into_iter()
                .chain(r.short_names.iter().copied())
                .map(str::to_string)
                .collect();
            if !r.group.is_empty() {
                for n in [r.plural, r.singular] {
                    names.push(format!("{n}.{}", r.group));
                }
                // `jobs.v1.batch`: kubectl's resource.version.group.
                let version = r.api_version.rsplit('/').next().unwrap_or("v1");
                names.push(format!("{}.{version}.{}", r.plural, r.group));
            }
            names.contains(&t)
        })
    }

    /// `/apis/batch/v1/jobs` or `/apis/batch/v1/namespaces/{ns}/jobs`.
    pub fn collection_path(self, namespace: Option<&str>) -> String {
        self.resource().collection_path(namespace)
    }

    pub fn object_path(self, namespace: &str, name: &str) -> String {
        self.resource().object_path(namespace, name)
    }

    /// kubectl's `-o name` prefix: `job.batch`, `pod`.
    pub fn name_prefix(self) -> String {
        self.resource().name_prefix()
    }

    pub fn namespaced(self) -> bool {
        self.resource().namespaced
    }

    /// What the API answers for the kind a manifest names (`apiVersion` + `kind`).
    pub fn from_type(api_version: &str, kind: &str) -> Option<Kind> {
        RESOURCES
            .iter()
            .find(|r| r.api_version == api_version && r.name == kind)
            .map(|r| r.kind)
    }
}

/// The qualified resource, as messages name it (`jobs.batch`).
impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.qualified())
    }
}

impl Resource {
    /// The resource as Kubernetes names it in messages: `jobs.batch "x" not found`, `pods "x"`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// kubectl's `-o name` prefix and the words of apply/delete: `job.batch/x`, `pod/x`.
    pub fn name_prefix(&self) -> String {
        if self.group.is_empty() {
            self.singular.to_string()
        } else {
            format!("{}.{}", self.singular, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.name)
    }

    /// `/api/v1` for the core group, `/apis/<group>/<version>` for the others.
    pub fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.api_version)
        } else {
            format!("/apis/{}", self.api_version)
        }
    }

    /// `/apis/batch/v1/jobs` (every namespace) or `/apis/batch/v1/namespaces/{ns}/jobs`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!(
                "{}/namespaces/{}/{}",
                self.prefix(),
                crate::proto::encode(ns),
                self.plural
            ),
            None => format!("{}/{}", self.prefix(), self.plural),
        }
    }

    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        format!(
            "{}/{}",
            self.collection_path(Some(namespace)),
            crate::proto::encode(name)
        )
    }

    /// The server's route patterns: the collection across namespaces, in one namespace, and
    /// one object (axum's `{ns}` and `{name}` captures).
    pub fn routes(&self) -> [String; 3] {
        let all = format!("{}/{}", self.prefix(), self.plural);
        let ns = format!("{}/namespaces/{{ns}}/{}", self.prefix(), self.plural);
        let one = format!("{ns}/{{name}}");
        [all, ns, one]
    }

    /// `jobs/<ns>/<name>`: the object's key in the store.
    pub fn store_key(&self, namespace: &str, name: &str) -> String {
        format!("{}/{namespace}/{name}", self.plural)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_kind_order() {
        for k in Kind::ALL {
            assert_eq!(k.resource().kind, k);
        }
    }

    #[test]
    fn kubectl_spellings() {
        for (text, kind) in [
            ("job", Kind::Job),
            ("Jobs", Kind::Job),
            ("job.batch", Kind::Job),
            ("jobs.batch", Kind::Job),
            ("jobs.v1.batch", Kind::Job),
            ("po", Kind::Pod),
            ("pod", Kind::Pod),
            ("pods", Kind::Pod),
            ("ev", Kind::Event),
            ("events", Kind::Event),
            ("manifest", Kind::Manifest),
            ("manifests.jobvisor.io", Kind::Manifest),
            ("cm", Kind::ConfigMap),
            ("configmaps", Kind::ConfigMap),
        ] {
            assert_eq!(Kind::parse(text), Some(kind), "{text}");
        }
        for text in ["deploy", "pods.batch", "jobs.v2.batch", ""] {
            assert_eq!(Kind::parse(text), None, "{text}");
        }
    }

    #[test]
    fn paths_and_names() {
        let job = Kind::Job.resource();
        assert_eq!(job.collection_path(None), "/apis/batch/v1/jobs");
        assert_eq!(
            job.object_path("default", "a b"),
            "/apis/batch/v1/namespaces/default/jobs/a%20b"
        );
        assert_eq!(job.qualified(), "jobs.batch");
        assert_eq!(job.name_prefix(), "job.batch");
        assert_eq!(job.list_kind(), "JobList");
        let pod = Kind::Pod.resource();
        assert_eq!(pod.collection_path(Some("x")), "/api/v1/namespaces/x/pods");
        assert_eq!(
            pod.routes()[2],
            "/api/v1/namespaces/{ns}/pods/{name}".to_string()
        );
        assert_eq!(pod.qualified(), "pods");
        assert_eq!(pod.store_key("ns", "p"), "pods/ns/p");
        let m = Kind::Manifest.resource();
        assert_eq!(
            m.collection_path(Some("ignored")),
            "/apis/jobvisor.io/v1/manifests"
        );
        assert_eq!(Kind::from_type("v1", "Pod"), Some(Kind::Pod));
        assert_eq!(Kind::from_type("batch/v1", "Pod"), None);
    }
}
