//! Scalars typed as strictly as the API server's decoder.
//!
//! kubectl turns YAML into JSON (`sigs.k8s.io/yaml`: a quoted `"3"` stays a string, a plain
//! `3` becomes a number, `yes` a boolean) and the API server decodes that JSON strictly: a
//! string where an `int32` belongs is refused (`json: cannot unmarshal string into Go struct
//! field JobSpec.spec.completions of type int32`), and so is a number where a string belongs.
//! serde-saphyr's typed deserializers read a scalar's text whatever its quoting, so
//! `completions: "3"` and `name: 123` would both pass; none of its options changes that for
//! integers.
//!
//! [`Strict`] wraps a deserializer and asks for every scalar untyped (`deserialize_any`, which
//! infers the type from the quoting as kubectl does), then lets through only the JSON type the
//! field has. Containers are passed through with their elements wrapped again, so it holds at
//! every depth. Map keys are not checked: JSON object keys are strings whatever YAML wrote
//! (`1: a` in labels is `"1": "a"`). `null` gives a scalar its zero value, as Go's decoder
//! does; an `Option` field reads it as unset before it gets here. The same wrapper runs over
//! JSON files, so both say the same thing.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// The JSON type a field wants, named as the message names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Bool,
    /// An integer that fits the Go type named here.
    Int {
        go: &'static str,
        min: i128,
        max: i128,
    },
    Float,
    String,
}

impl Want {
    fn int(go: &'static str, min: i128, max: i128) -> Want {
        Want::Int { go, min, max }
    }

    fn go_type(self) -> &'static str {
        match self {
            Want::Bool => "bool",
            Want::Int { go, .. } => go,
            Want::Float => "float64",
            Want::String => "string",
        }
    }
}

/// Go's wording: `cannot unmarshal string into … of type int32`; `found` is what the JSON
/// holds (`string`, `number`, `number 1.5`, `bool`).
fn mismatch<E: de::Error>(found: &str, want: Want) -> E {
    E::custom(format_args!(
        "cannot unmarshal {found} into a field of type {}",
        want.go_type()
    ))
}

/// A deserializer whose scalars must have the JSON type of the field they fill.
pub(crate) struct Strict<D>(pub D);

macro_rules! scalar {
    ($($method:ident => $want:expr),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.deserialize_any(Expect { want: $want, inner: visitor })
        }
    )*};
}

macro_rules! wrapped {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(Wrap(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    scalar! {
        deserialize_bool => Want::Bool,
        deserialize_i8 => Want::int("int8", i8::MIN.into(), i8::MAX.into()),
        deserialize_i16 => Want::int("int16", i16::MIN.into(), i16::MAX.into()),
        deserialize_i32 => Want::int("int32", i32::MIN.into(), i32::MAX.into()),
        deserialize_i64 => Want::int("int64", i64::MIN.into(), i64::MAX.into()),
        deserialize_u8 => Want::int("uint8", 0, u8::MAX.into()),
        deserialize_u16 => Want::int("uint16", 0, u16::MAX.into()),
        deserialize_u32 => Want::int("uint32", 0, u32::MAX.into()),
        deserialize_u64 => Want::int("uint64", 0, u64::MAX.into()),
        deserialize_f32 => Want::Float,
        deserialize_f64 => Want::Float,
        deserialize_char => Want::String,
        deserialize_str => Want::String,
        deserialize_string => Want::String,
    }

    wrapped! {
        deserialize_any, deserialize_bytes, deserialize_byte_buf, deserialize_option,
        deserialize_unit, deserialize_seq, deserialize_map,
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_struct(name, fields, Wrap(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, Wrap(visitor))
    }

    // Field names and skipped values are not data of a field: left as the parser reads them.
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_identifier(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Passes everything to `V`, wrapping whatever reaches further into the input.
struct Wrap<V>(V);

/// Forwards the scalar callbacks of a visitor unchanged.
macro_rules! forward_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            self.0.visit_bool(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.0.visit_i64(v)
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
            self.0.visit_i128(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.0.visit_u64(v)
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
            self.0.visit_u128(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            self.0.visit_f64(v)
        }
        fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
            self.0.visit_char(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            self.0.visit_str(v)
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            self.0.visit_borrowed_str(v)
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            self.0.visit_string(v)
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            self.0.visit_bytes(v)
        }
        fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
            self.0.visit_borrowed_bytes(v)
        }
        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            self.0.visit_byte_buf(v)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_none()
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            self.0.visit_unit()
        }
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_scalars!();

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Strict(d))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Strict(d))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Wrap(seq))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Wrap(map))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Wrap(data))
    }
}

/// A seed whose deserializer is wrapped: how elements, values and variants stay strict.
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<A> {
    type Error = A::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0.next_element_seed(Seed(seed))
    }
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<A> {
    type Error = A::Error;
    // Keys as the parser reads them: JSON keys are strings whatever YAML wrote.
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(seed)
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.next_value_seed(Seed(seed))
    }
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<A> {
    type Error = A::Error;
    type Variant = Wrap<A::Variant>;
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), Self::Error> {
        self.0.variant_seed(seed).map(|(v, rest)| (v, Wrap(rest)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<A> {
    type Error = A::Error;
    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, Self::Error> {
        self.0.tuple_variant(len, Wrap(v))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.struct_variant(fields, Wrap(v))
    }
}

/// Takes a scalar only if its JSON type is `want`, then hands it to the field's own visitor.
struct Expect<V> {
    want: Want,
    inner: V,
}

impl<V> Expect<V> {
    fn integer<'de, E: de::Error>(self, v: i128) -> Result<V::Value, E>
    where
        V: Visitor<'de>,
    {
        match self.want {
            Want::Int { min, max, .. } if v < min || v > max => {
                Err(mismatch(&format!("number {v}"), self.want))
            }
            Want::Int { .. } => match i64::try_from(v) {
                Ok(v) => self.inner.visit_i64(v),
                Err(_) => self.inner.visit_u64(u64::try_from(v).map_err(E::custom)?),
            },
            Want::Float => self.inner.visit_f64(v as f64),
            want => Err(mismatch("number", want)),
        }
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Expect<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.want.go_type())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        match self.want {
            Want::Bool => self.inner.visit_bool(v),
            want => Err(mismatch("bool", want)),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.integer(v.into())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.integer(v.into())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        self.integer(v)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        match i128::try_from(v) {
            Ok(v) => self.integer(v),
            Err(_) => Err(mismatch(&format!("number {v}"), self.want)),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        match self.want {
            Want::Float => self.inner.visit_f64(v),
            want => Err(mismatch(&format!("number {v}"), want)),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match self.want {
            Want::String => self.inner.visit_str(v),
            want => Err(mismatch("string", want)),
        }
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        match self.want {
            Want::String => self.inner.visit_borrowed_str(v),
            want => Err(mismatch("string", want)),
        }
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        match self.want {
            Want::String => self.inner.visit_string(v),
            want => Err(mismatch("string", want)),
        }
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
        match self.want {
            Want::String => self.inner.visit_char(v),
            want => Err(mismatch("string", want)),
        }
    }
    /// `null` (or an empty YAML value) leaves a Go field at its zero value.
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        match self.want {
            Want::Bool => self.inner.visit_bool(false),
            Want::Int { .. } => self.inner.visit_i64(0),
            Want::Float => self.inner.visit_f64(0.0),
            Want::String => self.inner.visit_str(""),
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(mismatch("array", self.want))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(mismatch("object", self.want))
    }
}
