//! [`Labels`]: a small string map kept as a sorted vector, with the part of `BTreeMap`'s
//! interface the code uses.
//!
//! Every object carries several label and annotation maps of a few entries (a Job: its
//! labels, annotations, selector and template labels). A `BTreeMap` allocates a whole node
//! of 11 slots (544 bytes) for even one entry: with 10,000 finished Jobs and their pods that
//! was 27 MB. A vector holds exactly its entries (48 bytes each); lookups are binary searches
//! over a handful of keys. Iteration, serialization and equality are in key order, as
//! before, so JSON output is unchanged.

use std::borrow::Borrow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

/// `(&key, &value)`, as a `BTreeMap` iterates.
type Pair<'a> = (&'a String, &'a String);

fn as_refs((k, v): &(String, String)) -> Pair<'_> {
    (k, v)
}

impl Labels {
    pub fn new() -> Labels {
        Labels(Vec::new())
    }

    fn find<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&String>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).is_ok()
    }

    /// Sets `key`; returns the value it replaced.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(key.as_str()) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<String>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// In key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Pair<'_>> + ExactSizeIterator {
        self.0.iter().map(as_refs)
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(_, v)| v)
    }

    /// `key`'s place, to fill in if it is vacant.
    pub fn entry(&mut self, key: String) -> Entry<'_> {
        let at = self.find(key.as_str());
        Entry { map: self, key, at }
    }
}

/// A key's place in a [`Labels`], as `BTreeMap::entry` gives it.
pub struct Entry<'a> {
    map: &'a mut Labels,
    key: String,
    /// `Ok`: the key's index; `Err`: where it would go.
    at: Result<usize, usize>,
}

impl<'a> Entry<'a> {
    pub fn or_insert_with(self, value: impl FnOnce() -> String) -> &'a mut String {
        let i = match self.at {
            Ok(i) => i,
            Err(i) => {
                self.map.0.insert(i, (self.key, value()));
                i
            }
        };
        &mut self.map.0[i].1
    }

    pub fn or_insert(self, value: String) -> &'a mut String {
        self.or_insert_with(|| value)
    }
}

/// `labels["app"]` in tests, as with `BTreeMap` (it panics if the key is absent).
#[cfg(test)]
impl<Q> std::ops::Index<&Q> for Labels
where
    String: Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = String;

    fn index(&self, key: &Q) -> &String {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no such label"),
        }
    }
}

impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Labels {
        let mut m = Labels::new();
        m.extend(iter);
        m
    }
}

impl Extend<(String, String)> for Labels {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = Pair<'a>;
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> Pair<'a>,
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0
            .iter()
            .map(as_refs as fn(&'a (String, String)) -> Pair<'a>)
    }
}

impl IntoIterator for Labels {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(pairs: [(String, String); N]) -> Labels {
        pairs.into_iter().collect()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Labels, A::Error> {
                let mut m = Labels(Vec::with_capacity(access.size_hint().unwrap_or(0)));
                // As a map: a repeated key keeps its last value.
                while let Some((k, v)) = access.next_entry::<String, String>()? {
                    m.insert(k, v);
                }
                m.0.shrink_to_fit();
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Behaves as the `BTreeMap` it replaced: order, replacement, lookups, JSON.
    #[test]
    fn behaves_like_a_btree_map() {
        let pairs = [("b", "2"), ("a", "1"), ("c", "3"), ("a", "9")];
        let mut m = Labels::new();
        let mut want = BTreeMap::new();
        for (k, v) in pairs {
            assert_eq!(
                m.insert(k.into(), v.into()),
                want.insert(k.to_string(), v.to_string())
            );
        }
        assert!(m.iter().eq(want.iter()));
        assert_eq!(m.get("a"), want.get("a"));
        assert_eq!(m.get(&"zz".to_string()), None);
        assert!(m.contains_key("c") && !m.contains_key("d"));
        assert_eq!(m.len(), 3);
        assert_eq!(format!("{m:?}"), format!("{want:?}"));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, serde_json::to_string(&want).unwrap());
        let back: Labels = serde_json::from_str(r#"{"z":"1","y":"2","z":"3"}"#).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            [
                (&"y".to_string(), &"2".to_string()),
                (&"z".to_string(), &"3".to_string())
            ]
        );
        assert_eq!(m.entry("a".into()).or_insert_with(|| "x".into()), "9");
        assert_eq!(m.entry("aa".into()).or_insert("x".into()), "x");
        assert_eq!(m["aa"], "x");
        assert_eq!(m.remove("aa"), Some("x".into()));
        assert_eq!(m.remove("b"), Some("2".into()));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "c"]);
        let collected: Labels = want.clone().into_iter().collect();
        assert_eq!(collected.into_iter().collect::<BTreeMap<_, _>>(), want);
    }
}
