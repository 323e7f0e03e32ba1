//! Settled records held packed: a finished Job or pod no longer changes, yet typed it costs
//! 5–7 KB of small allocations (10,000 finished one-pod Jobs: 120 MB), and an old event
//! 1.1 KB. Packed, it is its stored JSON compressed with LZ4 against a typical record of its
//! kind (`pack/*.dict`, made from records of the examples): about 300 bytes, since what one
//! finished record says is mostly what the dictionary says (keys, defaults, condition
//! messages) or what it says itself again (the uid six times, the applied copy of the Job).
//!
//! Unpacking costs about a microsecond for the JSON and a few more to decode it, so a record
//! is unpacked when touched (a get, a sync, a delete) and the served JSON of lists and watches
//! is cut from the unpacked JSON without decoding at all. The packed form never reaches the
//! disk: the store gets the same JSON as from the typed record, byte for byte. So the
//! dictionaries may change from one version to the next: nothing packed outlives the
//! process.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::world::Served;
use crate::api::Kind;

/// A record kind that can be packed.
pub trait Packable: Serialize + DeserializeOwned {
    const KIND: Kind;
    /// The field of the record's JSON that holds the object as served (`job`, `pod`);
    /// `None`: the record is the object (an event).
    const SERVED: Option<&'static str>;
    /// A typical record of this kind, which LZ4 matches against.
    const DICT: &'static [u8];
    /// The object as served, as typed.
    type Object: DeserializeOwned;
    /// The served object of a typed record.
    fn object(&self) -> &Self::Object;
    /// It as `Served`.
    fn serve(object: &Self::Object) -> Served<'_>;
}

/// Bytes before the LZ4 block: the JSON's length, then the served object's range in it.
const HEADER: usize = 12;

/// A record as its JSON, compressed: `[len, served start, served end]` (u32, little endian),
/// then the LZ4 block. One allocation of exactly its size.
pub struct Packed<T> {
    bytes: Box<[u8]>,
    kind: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({} bytes)", self.bytes.len())
    }
}

fn word(bytes: &[u8], i: usize) -> usize {
    let mut w = [0u8; 4];
    w.copy_from_slice(&bytes[i * 4..i * 4 + 4]);
    u32::from_le_bytes(w) as usize
}

impl<T> Packed<T> {
    /// The packed bytes, to be copied elsewhere (`World::rebuild`).
    pub fn raw(&self) -> &[u8] {
        &self.bytes
    }

    /// A record again from what [`Self::raw`] gave.
    pub fn from_raw(bytes: &[u8]) -> Packed<T> {
        Packed {
            bytes: bytes.into(),
            kind: PhantomData,
        }
    }
}

impl<T: Packable> Packed<T> {
    /// Packs `record`; an error only for a record too large for the header (4 GiB of JSON)
    /// or one whose JSON lacks the served field, neither of which the daemon makes.
    pub fn pack(record: &T) -> Result<Packed<T>, String> {
        let json = serde_json::to_string(record).map_err(|e| e.to_string())?;
        let (start, end) = served_range::<T>(&json)?;
        let words = [json.len(), start, end]
            .map(|n| u32::try_from(n).map_err(|_| format!("a record of {n} bytes")));
        let mut bytes = Vec::with_capacity(HEADER + json.len() / 4);
        for w in words {
            bytes.extend_from_slice(&w?.to_le_bytes());
        }
        bytes.extend_from_slice(&lz4_flex::block::compress_with_dict(
            json.as_bytes(),
            T::DICT,
        ));
        Ok(Packed {
            bytes: bytes.into_boxed_slice(),
            kind: PhantomData,
        })
    }

    /// Calls `f` with the record's JSON (`served`: the served object's only), exactly as
    /// `serde_json::to_string` wrote it. One allocation, for the unpacked bytes.
    pub fn with_json<R>(&self, served: bool, f: impl FnOnce(&str) -> R) -> Result<R, String> {
        let len = word(&self.bytes, 0);
        let raw = lz4_flex::block::decompress_with_dict(&self.bytes[HEADER..], len, T::DICT)
            .map_err(|e| format!("unpacking a record: {e}"))?;
        let (start, end) = if served {
            (word(&self.bytes, 1), word(&self.bytes, 2))
        } else {
            (0, raw.len())
        };
        let part = raw
            .get(start..end)
            .ok_or("unpacking a record: the served range is out of bounds")?;
        let json = std::str::from_utf8(part).map_err(|e| format!("unpacking a record: {e}"))?;
        Ok(f(json))
    }

    /// The record's JSON.
    pub fn json(&self) -> Result<String, String> {
        self.with_json(false, str::to_string)
    }

    /// The typed record.
    pub fn unpack(&self) -> Result<T, String> {
        self.with_json(false, |j| serde_json::from_str(j))?
            .map_err(|e| format!("decoding a packed record: {e}"))
    }

    /// Part of the served object, decoded into `P` (whose fields name only what is needed:
    /// everything else is skipped, not decoded).
    pub fn peek<P: DeserializeOwned>(&self) -> Result<P, String> {
        self.with_json(true, |j| serde_json::from_str(j))?
            .map_err(|e| format!("decoding a packed record: {e}"))
    }

    /// Bytes held (for tests and measurements).
    #[cfg(test)]
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}

/// Where the field `T::SERVED` is in the record's JSON.
fn served_range<T: Packable>(json: &str) -> Result<(usize, usize), String> {
    let Some(field) = T::SERVED else {
        return Ok((0, json.len()));
    };
    let fields: std::collections::BTreeMap<&str, &RawValue> =
        serde_json::from_str(json).map_err(|e| e.to_string())?;
    let raw = fields
        .get(field)
        .ok_or_else(|| format!("a record without {field}"))?
        .get();
    // `raw` borrows from `json`: its offset is the distance between the two.
    let start = raw.as_ptr() as usize - json.as_ptr() as usize;
    Ok((start, start + raw.len()))
}

/// A packed record as `Served` holds it: whatever its kind, it gives its JSON and, decoded,
/// the typed object.
pub trait Unpack {
    fn kind(&self) -> Kind;
    /// Calls `f` with the served object's JSON.
    fn with_served_json(&self, f: &mut dyn FnMut(&str)) -> Result<(), String>;
    /// Calls `f` with the decoded object as served.
    fn with_served(&self, f: &mut dyn FnMut(Served<'_>)) -> Result<(), String>;
    /// The served object's labels.
    fn labels(&self) -> Result<crate::api::Labels, String>;
}

impl<T: Packable> Unpack for Packed<T> {
    fn kind(&self) -> Kind {
        T::KIND
    }

    fn with_served_json(&self, f: &mut dyn FnMut(&str)) -> Result<(), String> {
        self.with_json(true, f)
    }

    fn with_served(&self, f: &mut dyn FnMut(Served<'_>)) -> Result<(), String> {
        // Only the served object is decoded, not the whole record.
        let object: T::Object = self.peek()?;
        f(T::serve(&object));
        Ok(())
    }

    fn labels(&self) -> Result<crate::api::Labels, String> {
        #[derive(serde::Deserialize)]
        struct Object {
            metadata: Meta,
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            #[serde(default)]
            labels: crate::api::Labels,
        }
        self.peek::<Object>().map(|o| o.metadata.labels)
    }
}

/// Serializes JSON text as it is (through serde_json's raw value, which only serde_json's
/// serializers take, and they are the only ones used).
pub fn serialize_json<S: serde::Serializer>(json: &str, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let raw: &RawValue = serde_json::from_str(json).map_err(S::Error::custom)?;
    raw.serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::world::{JobRecord, PodRecord};

    /// The records of the state jobvisor 0.2 wrote (`tests/data/state-v2`), newest of each key.
    fn golden_records(prefix: &str) -> Vec<String> {
        let journal = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/state-v2/journal.jsonl");
        let mut records = std::collections::BTreeMap::new();
        for line in std::fs::read_to_string(journal).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            for op in v["ops"].as_array().unwrap() {
                let k = op["k"].as_str().unwrap().to_string();
                if k.starts_with(prefix) {
                    records.insert(k, op["v"].clone());
                }
            }
        }
        records.into_values().map(|v| v.to_string()).collect()
    }

    fn round_trip<T: Packable + std::fmt::Debug + PartialEq>(json: &str) -> usize {
        let record: T = serde_json::from_str(json).unwrap();
        let packed = Packed::pack(&record).unwrap();
        assert_eq!(packed.unpack().unwrap(), record);
        assert_eq!(
            packed.json().unwrap(),
            serde_json::to_string(&record).unwrap()
        );
        let served = serde_json::to_string(&T::serve(record.object())).unwrap();
        assert_eq!(packed.with_json(true, str::to_string).unwrap(), served);
        packed.size()
    }

    /// A packed record gives back exactly the JSON and the typed record it was made from,
    /// in a fraction of the bytes.
    #[test]
    fn records_round_trip_through_packing() {
        for (prefix, pack) in [
            ("jobs/", round_trip::<JobRecord> as fn(&str) -> usize),
            ("pods/", round_trip::<PodRecord>),
        ] {
            let records = golden_records(prefix);
            assert!(!records.is_empty());
            for json in records {
                let size = pack(&json);
                assert!(
                    size * 4 < json.len(),
                    "{size} bytes packed of {}",
                    json.len()
                );
            }
        }
    }

    /// Labels are read from the packed JSON without decoding the rest.
    #[test]
    fn labels_of_a_packed_record() {
        let json = &golden_records("pods/")[0];
        let record: PodRecord = serde_json::from_str(json).unwrap();
        let packed = Packed::pack(&record).unwrap();
        assert_eq!(Unpack::labels(&packed).unwrap(), record.pod.metadata.labels);
        assert!(!record.pod.metadata.labels.is_empty());
    }
}
