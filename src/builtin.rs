//! kiln's own objectives (`train`, `function`, `command`), registered the way a program of
//! your own registers its (`Objectives::with`): `objective/` knows none of them by name.

use crate::objective::registry::Objectives;
use crate::objective::{command, function};
use crate::train::objective::BurnObjective;
use std::sync::Arc;

impl Objectives {
    /// kiln's own: `train`, `function` and `command`.
    pub fn builtin() -> Objectives {
        Objectives::empty()
            .with_builder("train", |e| Ok(Arc::new(BurnObjective::new(e)?)))
            .with_builder("function", |e| {
                Ok(Arc::new(function::FunctionObjective::new(e)?))
            })
            .with_builder("command", |e| {
                Ok(Arc::new(command::CommandObjective::new(e)?))
            })
    }
}

impl Default for Objectives {
    fn default() -> Self {
        Objectives::builtin()
    }
}
