//! One hyperparameter value ([`ParamValue`]): what a distribution yields and a setting holds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One hyperparameter value: what a distribution yields and what a setting holds. Written
/// as the plain JSON or TOML value; read back by its type (an integer that fits `i64` is an
/// `Int`, any other number a `Float`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A boolean (`choice = [true, false]`).
    Bool(bool),
    /// An integer (`int`, or integer choices).
    Int(i64),
    /// A float (`uniform`, `log_uniform`, or float choices).
    Float(f64),
    /// A string (`choice = ["adam", "sgd"]`).
    Str(String),
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // By the value's own type, without buffering it as `untagged` would: the journal
        // holds a parameter per trial and dimension.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ParamValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, a number or a string")
            }
            fn visit_bool<E>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ParamValue, E> {
                Ok(i64::try_from(v).map_or(ParamValue::Float(v as f64), ParamValue::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ParamValue, E> {
                Ok(ParamValue::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<ParamValue, E> {
                Ok(ParamValue::Str(v))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl ParamValue {
    /// The value as a float, for numeric values.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Bool(_) => "a boolean",
            ParamValue::Int(_) => "an integer",
            ParamValue::Float(_) => "a float",
            ParamValue::Str(_) => "a string",
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Str(s) => write!(f, "{s}"),
        }
    }
}
