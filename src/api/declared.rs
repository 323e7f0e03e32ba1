//! Kinds a manifest file declares and nothing controls (ConfigMap; Secret next): the object
//! is what the file says, given an identity, served and stored; no controller acts on it.
//!
//! Each such kind implements [`Declared`] on its types (here, in `api/`) and
//! `manifest::declared::Admit` (its defaults and validation, in `manifest/`), and has one
//! arm in `manifest::declared::visit`, the registry every generic place dispatches through:
//! parsing, the daemon's one table of declared objects, apply, delete, and the table
//! printers. Its names, paths, store keys, routes and watch channel come from its row of
//! [`super::kind::RESOURCES`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Kind, ObjectMeta};

/// A kind whose objects are declared by files and controlled by nothing.
pub trait Declared:
    Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug + 'static
{
    const KIND: Kind;
    /// kubectl's table columns between NAME and AGE (`printers.go`).
    const COLUMNS: &'static [&'static str];

    fn metadata(&self) -> &ObjectMeta;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// The cells under [`Self::COLUMNS`].
    fn cells(&self) -> Vec<String>;
    /// What `describe` prints after Name, Namespace, Labels and Annotations (kubectl's
    /// `describe<Kind>`), tab-separated for its tabwriter; nothing unless the kind has more.
    fn describe(&self) -> String {
        String::new()
    }
}
