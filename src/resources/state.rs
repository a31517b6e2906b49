//! A resource's state, typed: the inputs its outputs echo, and what the provider computed, each
//! computed output declared once (name, type, secrecy) with [`computed_outputs!`]. One
//! conversion, [`State::to_outputs`], makes the outputs the engine stores at preview, create,
//! update and refresh alike, sealing what derives from a secret input.

use super::inputs::Field;
use super::outputs::{derived_outputs_secret, Computed, Secrecy};
use super::Created;
use crate::values::{PropertyMap, Value};

/// A computed output's Rust type: how it is written to, and read back from, a property value.
pub trait OutputValue: Sized {
    /// The property value.
    fn to_value(&self) -> Value;
    /// The typed value of a stored property (secret wrappers removed); `None` when mistyped.
    fn from_value(value: &Value) -> Option<Self>;
}

impl OutputValue for String {
    fn to_value(&self) -> Value {
        Value::String(self.clone())
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl OutputValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl OutputValue for f64 {
    fn to_value(&self) -> Value {
        Value::Number(*self)
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

impl OutputValue for u64 {
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            // Counts and sizes: the protocol carries them as doubles.
            Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 => Some(*n as u64),
            _ => None,
        }
    }
}

impl OutputValue for Vec<String> {
    fn to_value(&self) -> Value {
        Value::from(self.clone())
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Array(items) => items.iter().map(String::from_value).collect(),
            _ => None,
        }
    }
}

/// A nullable output: `None` is an explicit null (e.g. no digest before an unwatched build ends).
impl<T: OutputValue> OutputValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_value)
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// `field` as a property value: absent, unknown, or the value.
pub fn slot<T: OutputValue>(field: &Field<T>) -> Field<Value> {
    match field {
        Field::Absent => Field::Absent,
        Field::Unknown => Field::Unknown,
        Field::Known(v) => Field::Known(v.to_value()),
    }
}

/// The output `name` of stored outputs, typed: absent when missing or mistyped.
pub fn stored<T: OutputValue>(outputs: &PropertyMap, name: &str) -> Field<T> {
    match outputs.get(name).map(Value::reveal) {
        None => Field::Absent,
        Some(Value::Unknown) => Field::Unknown,
        Some(value) => T::from_value(&value).map_or(Field::Absent, Field::Known),
    }
}

/// What one resource type computes, as [`computed_outputs!`] declares it.
pub trait ComputedOutputs: Send + Sync {
    /// Every computed output in declaration order, with its value.
    fn slots(&self) -> Vec<(Computed, Field<Value>)>;
    /// The claim tag this resource holds on its digest.
    fn claim_mut(&mut self) -> &mut Field<String>;
}

/// Declares a resource's computed outputs once: a struct with one [`Field`] per output, its
/// table (`TABLE`: name and secrecy, in order), `unknown()` (preview's start), `parse` (from
/// stored outputs) and its [`ComputedOutputs`] implementation. The struct must declare
/// `claim_tag: String = plain("claimTag")`.
#[macro_export]
macro_rules! computed_outputs {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $secrecy:ident($output:literal), )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $crate::resources::inputs::Field<$ty>, )+
        }

        impl $name {
            /// Every computed output and when it is secret, in order.
            pub const TABLE: &'static [$crate::resources::outputs::Computed] =
                &[ $( $crate::resources::outputs::$secrecy($output), )+ ];

            /// Every output unknown: what preview starts from.
            pub fn unknown() -> Self {
                Self { $( $field: $crate::resources::inputs::Field::Unknown, )+ }
            }

            /// The computed outputs recorded in stored `outputs` (a missing one is absent).
            pub fn parse(outputs: &$crate::values::PropertyMap) -> Self {
                Self { $( $field: $crate::resources::state::stored(outputs, $output), )+ }
            }
        }

        impl $crate::resources::state::ComputedOutputs for $name {
            fn slots(
                &self,
            ) -> Vec<(
                $crate::resources::outputs::Computed,
                $crate::resources::inputs::Field<$crate::values::Value>,
            )> {
                vec![ $( (
                    $crate::resources::outputs::$secrecy($output),
                    $crate::resources::state::slot(&self.$field),
                ), )+ ]
            }

            fn claim_mut(&mut self) -> &mut $crate::resources::inputs::Field<String> {
                &mut self.claim_tag
            }
        }
    };
}

/// One resource's state: the echoed inputs and the computed outputs.
pub struct State {
    /// The inputs the outputs echo, as the engine sent them (secret wrappers kept).
    pub inputs: PropertyMap,
    /// Whether an input that decides the image is secret, so the derived outputs are too.
    pub derived_secret: bool,
    /// What the provider computed.
    pub computed: Box<dyn ComputedOutputs>,
}

impl State {
    /// A state made from `inputs` (Check's news) and what was computed from them.
    pub fn new(
        inputs: PropertyMap,
        news: &PropertyMap,
        computed: Box<dyn ComputedOutputs>,
    ) -> Self {
        State {
            inputs,
            derived_secret: derived_outputs_secret(news),
            computed,
        }
    }

    /// A stored state: `inputs` are the stored outputs named in `input_names` but not in `skip`.
    /// The stored outputs echo the inputs they were made from, so they decide the secrecy.
    pub fn stored(
        outputs: &PropertyMap,
        input_names: &[&str],
        skip: &[&str],
        computed: Box<dyn ComputedOutputs>,
    ) -> Self {
        let inputs = super::image_args::echo_inputs(outputs, input_names, skip);
        State {
            inputs,
            derived_secret: derived_outputs_secret(outputs),
            computed,
        }
    }

    /// The outputs: the echoed inputs plus every computed output that is not absent; unknowns
    /// stay bare unknowns (preview shows them as computed), and derived values are sealed
    /// when [`State::derived_secret`].
    pub fn to_outputs(&self) -> PropertyMap {
        let mut out = self.inputs.clone();
        for (computed, value) in self.computed.slots() {
            let value = match value {
                Field::Absent => continue,
                Field::Unknown => Value::Unknown,
                Field::Known(v) => {
                    v.secret_if(self.derived_secret && computed.secrecy == Secrecy::Derived)
                }
            };
            out.insert(computed.name.into(), value);
        }
        out
    }

    /// The claim tag this resource holds on its digest.
    pub fn claim_mut(&mut self) -> &mut Field<String> {
        self.computed.claim_mut()
    }
}

/// A resource as an operation leaves it: its id and its typed state.
pub struct Built {
    /// The resource id.
    pub id: String,
    /// Its state.
    pub state: State,
}

impl Built {
    /// The answer the engine gets: the id and the outputs.
    pub fn into_created(self) -> Created {
        Created {
            outputs: self.state.to_outputs(),
            id: self.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::computed_outputs! {
        /// A two-output test resource.
        pub struct TestComputed {
            /// A derived output.
            digest: Option<String> = derived("digest"),
            /// A plain count.
            files: u64 = plain("files"),
            /// The claim.
            claim_tag: String = plain("claimTag"),
        }
    }

    fn secret(v: &str) -> Value {
        Value::Secret(Box::new(v.into()))
    }

    #[test]
    fn the_table_follows_the_declaration() {
        let names: Vec<&str> = TestComputed::TABLE.iter().map(|c| c.name).collect();
        assert_eq!(names, ["digest", "files", "claimTag"]);
        assert_eq!(TestComputed::TABLE[0].secrecy, Secrecy::Derived);
    }

    #[test]
    fn a_secret_input_seals_derived_outputs_only_and_absent_ones_are_left_out() {
        let mut news = PropertyMap::new();
        news.insert("dockerfileInline".into(), secret("FROM scratch"));
        let computed = TestComputed {
            digest: Field::Known(Some("sha256:ab".into())),
            files: Field::Known(3),
            claim_tag: Field::Absent,
        };
        let out = State::new(news.clone(), &news, Box::new(computed)).to_outputs();
        assert_eq!(out["digest"], secret("sha256:ab"));
        assert_eq!(out["files"], Value::from(3u64));
        assert!(!out.contains_key("claimTag"));
        assert_eq!(out["dockerfileInline"], secret("FROM scratch"));
    }

    #[test]
    fn preview_unknowns_stay_bare_and_nulls_are_kept() {
        let news = PropertyMap::new();
        let mut computed = TestComputed::unknown();
        computed.files = Field::Known(0);
        let out = State::new(news.clone(), &news, Box::new(computed.clone())).to_outputs();
        assert_eq!(out["digest"], Value::Unknown);
        assert_eq!(out["claimTag"], Value::Unknown);
        computed.digest = Field::Known(None);
        let out = State::new(news.clone(), &news, Box::new(computed)).to_outputs();
        assert_eq!(out["digest"], Value::Null);
    }

    #[test]
    fn stored_outputs_parse_back_to_the_same_state() {
        let mut news = PropertyMap::new();
        news.insert("context".into(), secret("ctx"));
        let computed = TestComputed {
            digest: Field::Known(Some("sha256:ab".into())),
            files: Field::Known(7),
            claim_tag: Field::Known("imagebuild-claim-1".into()),
        };
        let made = State::new(news.clone(), &news, Box::new(computed.clone()));
        let outputs = made.to_outputs();
        let parsed = TestComputed::parse(&outputs);
        assert_eq!(parsed, computed, "secret wrappers are removed when read");
        let again = State::stored(&outputs, &["context"], &[], Box::new(parsed));
        assert_eq!(
            again.to_outputs(),
            outputs,
            "refresh writes what create wrote"
        );
        let missing = TestComputed::parse(&PropertyMap::new());
        assert_eq!(missing.files, Field::Absent);
    }
}
