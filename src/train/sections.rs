//! The built-in trainer's sections (`[data]`, `[model]`, `[train]`, `[early_stopping]`) as
//! the experiment holds them, and the trainer's rules on settings that only some choices use.

use crate::error::Result;
use crate::experiment::source::scalar;
use crate::space::{Condition, Dimension, Distribution, ParamValue, Space};

/// The sections only the built-in trainer reads, kept as written for it to validate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainerSections {
    /// `[data]`.
    pub data: Option<toml::Table>,
    /// `[model]`.
    pub model: toml::Table,
    /// `[train]`.
    pub train: toml::Table,
    /// `[early_stopping]`.
    pub early_stopping: Option<toml::Table>,
}

impl TrainerSections {
    /// The first of these sections the file has, by name.
    pub fn first_present(&self) -> Option<&'static str> {
        [
            ("data", self.data.is_some()),
            ("model", !self.model.is_empty()),
            ("train", !self.train.is_empty()),
            ("early_stopping", self.early_stopping.is_some()),
        ]
        .into_iter()
        .find(|(_, present)| *present)
        .map(|(name, _)| name)
    }
}

impl crate::experiment::source::Builder {
    /// The built-in trainer's settings that only some choices use ([`crate::train::settings::APPLIES`]),
    /// searched without `when`: conditional on the choices that use them when those are
    /// searched too; refused when the fixed choice ignores them.
    pub(crate) fn conditions_of_settings(
        &self,
        space: &mut Space,
        train: &toml::Table,
    ) -> Result<()> {
        for &(setting, parent, users) in crate::train::settings::APPLIES {
            let Some(i) = space.dimensions.iter().position(|d| d.name == setting) else {
                self.check_fixed_setting(space, train, (setting, parent, users))?;
                continue;
            };
            if !space.dimensions[i].when.is_empty() {
                continue;
            }
            let uses = |v: &ParamValue| used_by(users, v);
            match space.dimensions.iter().find(|d| d.name == parent) {
                Some(Dimension {
                    distribution: Distribution::Choice(choices),
                    ..
                }) => {
                    let values: Vec<ParamValue> =
                        choices.iter().filter(|v| uses(v)).cloned().collect();
                    if values.is_empty() {
                        return Err(self.err(
                            &["space", setting],
                            format!("`{setting}` is searched, but no searched `{parent}` uses it (only {} do)", users.join(", ")),
                        ));
                    }
                    if values.len() < choices.len() {
                        space.dimensions[i].when = vec![Condition {
                            parent: parent.to_string(),
                            values,
                        }];
                    }
                }
                Some(_) => {}
                None => {
                    if let Some(fixed) = fixed_value(train, parent).filter(|f| !uses(f)) {
                        return Err(self.err(
                            &["space", setting],
                            format!("`{setting}` is searched, but {parent} = \"{fixed}\" ignores it (only {} use it): search {parent} too, or drop {setting}", users.join(", ")),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A setting fixed in `[train]` that no choice of its parent uses (`momentum` with
    /// `optimizer = "adam"`) would be read by nothing: refused, at the setting.
    pub(crate) fn check_fixed_setting(
        &self,
        space: &Space,
        train: &toml::Table,
        (setting, parent, users): (&str, &str, &[&str]),
    ) -> Result<()> {
        if !train.contains_key(setting) {
            return Ok(());
        }
        let parents: Vec<ParamValue> = match space.dimensions.iter().find(|d| d.name == parent) {
            Some(Dimension {
                distribution: Distribution::Choice(choices),
                ..
            }) => choices.clone(),
            Some(_) => return Ok(()),
            None => fixed_value(train, parent).into_iter().collect(),
        };
        if parents.is_empty() || parents.iter().any(|p| used_by(users, p)) {
            return Ok(());
        }
        let names: Vec<String> = parents.iter().map(|p| format!("\"{p}\"")).collect();
        Err(self.err(
            &["train", setting],
            format!(
                "`{setting}` is set, but {parent} = {} ignores it (only {} use it): remove {setting}, or change {parent}",
                names.join(" or "),
                users.join(", ")
            ),
        ))
    }
}

/// Whether `value` of a parent setting is one of the choices (`users`) that read a setting.
fn used_by(users: &[&str], value: &ParamValue) -> bool {
    users.iter().any(|u| *u == value.to_string())
}

/// A `[train]` setting's fixed value, else its default.
fn fixed_value(train: &toml::Table, name: &str) -> Option<ParamValue> {
    (train.get(name).and_then(scalar)).or_else(|| crate::train::settings::default_of(name))
}
