//! Declared kinds (`api::declared`), generically: the registry [`visit`], and the parsing,
//! defaults, validation and table cells every such kind gets through it. A declared
//! object travels as its canonical JSON (its typed form serialized), so the daemon, the
//! store and the printers hold one table for all of them.

use jiff::Timestamp;
use serde_json::Value;

use super::validate::{self, Findings};
use crate::api::declared::Declared;
use crate::api::{ANNOTATION_SOURCE, Kind, ObjectMeta};

/// A declared kind's admission rules, as the API server applies them.
pub trait Admit: Declared {
    /// Defaults beyond metadata (`SetDefaults_<Kind>`); none unless the kind has some.
    fn default(&mut self) {}
    /// Create validation beyond `ValidateObjectMeta`: `<path>: <message>` field errors in
    /// the API server's words.
    fn validate(&self) -> Vec<String>;
    /// Update validation of `self` replacing `old` (`Validate<Kind>Update`), beyond
    /// [`Self::validate`].
    fn validate_update(&self, _old: &Self) -> Vec<String> {
        Vec::new()
    }
}

/// Something done with the type of one declared kind.
pub trait Visit {
    type Out;
    fn visit<T: Admit>(self) -> Self::Out;
}

/// The registry of declared kinds: one arm per kind. `None` for any other kind.
pub fn visit<V: Visit>(kind: Kind, v: V) -> Option<V::Out> {
    match kind {
        Kind::ConfigMap => Some(v.visit::<crate::api::configmap::ConfigMap>()),
        _ => None,
    }
}

/// Whether files declare `kind` and nothing controls it.
pub fn is_declared(kind: Kind) -> bool {
    struct Probe;
    impl Visit for Probe {
        type Out = ();
        fn visit<T: Admit>(self) {}
    }
    visit(kind, Probe).is_some()
}

/// One declared object from a file: defaulted and validated, identity not yet assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredObject {
    pub kind: Kind,
    pub metadata: ObjectMeta,
    /// The object as its type serializes it, with the [`ANNOTATION_SOURCE`] annotation.
    pub object: Value,
}

/// Defaults and validates one object of a declared `kind` (its typed JSON from parsing):
/// the object, and what validation found.
pub(crate) fn admit(
    kind: Kind,
    typed: Value,
    file: &str,
) -> Result<(DeclaredObject, Findings), String> {
    struct Admitting<'a> {
        typed: Value,
        file: &'a str,
    }
    impl Visit for Admitting<'_> {
        type Out = Result<(DeclaredObject, Findings), serde_json::Error>;
        fn visit<T: Admit>(self) -> Self::Out {
            let mut object: T = serde_json::from_value(self.typed)?;
            let meta = object.metadata_mut();
            super::defaults::clear_server_metadata(meta);
            if meta.namespace.as_deref().unwrap_or("").is_empty() {
                meta.namespace = Some("default".into());
            }
            object.default();
            let mut findings = Findings::default();
            validate::object_meta(object.metadata(), T::KIND.resource().name, &mut findings);
            findings.errors.extend(object.validate());
            object
                .metadata_mut()
                .annotations
                .insert(ANNOTATION_SOURCE.to_string(), self.file.to_string());
            let declared = DeclaredObject {
                kind: T::KIND,
                metadata: object.metadata().clone(),
                object: serde_json::to_value(&object)?,
            };
            Ok((declared, findings))
        }
    }
    // The JSON came from the kind's own type a moment ago, so it reads back.
    match visit(kind, Admitting { typed, file }) {
        Some(admitted) => admitted.map_err(|e| format!("internal error: {e}")),
        None => Err(format!("internal error: {kind:?} is not a declared kind")),
    }
}

/// The API server's update validation of `new` replacing `old`, both of a declared `kind`.
pub fn validate_update(kind: Kind, old: &Value, new: &Value) -> Vec<String> {
    struct Update<'a>(&'a Value, &'a Value);
    impl Visit for Update<'_> {
        type Out = Vec<String>;
        fn visit<T: Admit>(self) -> Vec<String> {
            let old = T::deserialize(self.0);
            let new = T::deserialize(self.1);
            match (old, new) {
                (Ok(old), Ok(new)) => new.validate_update(&old),
                (Err(e), _) | (_, Err(e)) => vec![format!("internal error: {e}")],
            }
        }
    }
    visit(kind, Update(old, new)).unwrap_or_default()
}

/// `new` given the identity of a new object: uid and creationTimestamp.
pub fn with_identity(object: &Value, uid: &str, now: Timestamp) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("uid".into(), Value::String(uid.into()));
        meta.insert("creationTimestamp".into(), Value::String(now.to_string()));
    }
    object
}

/// kubectl's table columns of a declared `kind` between NAME and AGE.
pub fn columns(kind: Kind) -> &'static [&'static str] {
    struct Columns;
    impl Visit for Columns {
        type Out = &'static [&'static str];
        fn visit<T: Admit>(self) -> Self::Out {
            T::COLUMNS
        }
    }
    visit(kind, Columns).unwrap_or(&[])
}

/// What `describe` prints for one object of a declared `kind` after its metadata.
pub fn describe(kind: Kind, object: &Value) -> Result<String, String> {
    struct Describe<'a>(&'a Value);
    impl Visit for Describe<'_> {
        type Out = Result<String, String>;
        fn visit<T: Admit>(self) -> Self::Out {
            T::deserialize(self.0)
                .map(|o| o.describe())
                .map_err(|e| e.to_string())
        }
    }
    visit(kind, Describe(object)).unwrap_or_else(|| Err(format!("{kind:?} is not a declared kind")))
}

/// The cells under [`columns`] of one object of a declared `kind`, as served.
pub fn cells(kind: Kind, object: &Value) -> Result<Vec<String>, String> {
    struct Cells<'a>(&'a Value);
    impl Visit for Cells<'_> {
        type Out = Result<Vec<String>, String>;
        fn visit<T: Admit>(self) -> Self::Out {
            T::deserialize(self.0)
                .map(|o| o.cells())
                .map_err(|e| e.to_string())
        }
    }
    visit(kind, Cells(object)).unwrap_or_else(|| Err(format!("{kind:?} is not a declared kind")))
}
