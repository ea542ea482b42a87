//! A trial's resolved settings: defaults, overridden by the fixed values of the file, overridden
//! by its sampled parameters; typed access by name.

use crate::names::Named;
use crate::space::{ParamValue, Params};
use crate::text::quote_list;
pub use crate::train::settings::SettingError;
use crate::train::settings::{SETTINGS, spec};
use std::collections::BTreeMap;

/// Resolved settings: defaults, overridden by the fixed values of the file, overridden by a
/// trial's sampled parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    values: BTreeMap<String, ParamValue>,
}

impl Settings {
    /// Defaults overridden by `fixed` (already checked).
    pub fn with_defaults(fixed: &BTreeMap<String, ParamValue>) -> Settings {
        let mut values: BTreeMap<String, ParamValue> = SETTINGS
            .iter()
            .filter_map(|s| s.default.map(|d| (s.name.to_string(), d.value())))
            .collect();
        values.extend(fixed.iter().map(|(k, v)| (k.clone(), v.clone())));
        Settings { values }
    }

    /// Exactly these values, without defaults (an objective's own options).
    pub fn from_values(values: BTreeMap<String, ParamValue>) -> Settings {
        Settings { values }
    }

    /// These settings with a trial's parameters applied on top.
    pub fn with_params(&self, params: &Params) -> Settings {
        let mut values = self.values.clone();
        for (name, value) in params {
            // Integers sampled for a float setting (e.g. `choice = [0, 1]`) become floats.
            let value = match spec(name) {
                Some(spec) => spec.check(value).unwrap_or_else(|_| value.clone()),
                None => value.clone(),
            };
            values.insert(name.clone(), value);
        }
        Settings { values }
    }

    /// A setting's value, if set.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name)
    }

    /// A float setting (absent: None).
    pub fn float(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(ParamValue::as_f64)
    }

    /// An integer setting (absent: None).
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(ParamValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// A name setting (absent: None).
    pub fn name(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(ParamValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// A name setting as its enum; an error if it is absent or not one of the enum's names.
    pub fn named<T: Named>(&self, name: &str) -> Result<T, SettingError> {
        let value = self
            .name(name)
            .ok_or_else(|| SettingError::Unset(name.to_string()))?;
        T::from_name(value).ok_or_else(|| SettingError::Invalid {
            name: name.to_string(),
            allowed: format!("one of {}, got `{value}`", quote_list(T::NAMES)),
        })
    }

    /// A boolean setting (absent: None).
    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(ParamValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// All values, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ParamValue)> {
        self.values.iter()
    }
}
