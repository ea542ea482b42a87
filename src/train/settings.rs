//! The built-in trainer's settings of `[model]` and `[train]`: their names, types, allowed
//! values and defaults.
//!
//! Every setting may be fixed in its section or searched in `[space]` under the same name, so
//! this one table validates both, gives `kiln check` the resolved values to print, and gives the
//! trainer typed access to a trial's values (defaults, then fixed values, then sampled ones).

pub use crate::device::Backend;
use crate::names::Named;
use crate::space::ParamValue;
use crate::text::{quote_list, quoted};

/// A setting that is absent, or holds a value it does not allow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingError {
    /// The setting has no value.
    #[error("the setting `{0}` is not set")]
    Unset(String),
    /// The setting's value is not one it allows.
    #[error("`{name}` must be {allowed}")]
    Invalid {
        /// The setting.
        name: String,
        /// What it allows (and, where it helps, what it was given).
        allowed: String,
    },
}

/// The section a setting lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[model]`
    Model,
    /// `[train]`
    Train,
}

impl Section {
    /// The section's name as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Section::Model => "model",
            Section::Train => "train",
        }
    }
}

/// The values a setting accepts.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An integer of at least `min`.
    Int {
        /// Smallest allowed value.
        min: i64,
    },
    /// A float in a range; `max` is exclusive.
    Float {
        /// Lower bound.
        min: f64,
        /// Whether the lower bound itself is allowed.
        min_inclusive: bool,
        /// Exclusive upper bound, if any.
        max: Option<f64>,
    },
    /// `true` or `false`.
    Bool,
    /// One of these names.
    Name(&'static [&'static str]),
}

/// One setting of `[model]` or `[train]`.
#[derive(Debug)]
pub struct Spec {
    /// Its key.
    pub name: &'static str,
    /// Its section.
    pub section: Section,
    /// What it accepts.
    pub kind: Kind,
    /// Its value when not given (None: absent, e.g. no gradient clipping).
    pub default: Option<Default>,
    /// One line for `kiln check` and error messages.
    pub help: &'static str,
}

/// A default value, spelled so that the table below can be a `static`.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A name.
    Name(&'static str),
}

impl Default {
    pub(crate) fn value(self) -> ParamValue {
        match self {
            Default::Int(i) => ParamValue::Int(i),
            Default::Float(f) => ParamValue::Float(f),
            Default::Bool(b) => ParamValue::Bool(b),
            Default::Name(s) => ParamValue::Str(s.to_string()),
        }
    }
}

const POSITIVE: Kind = Kind::Float {
    min: 0.0,
    min_inclusive: false,
    max: None,
};
const NON_NEGATIVE: Kind = Kind::Float {
    min: 0.0,
    min_inclusive: true,
    max: None,
};
const FRACTION: Kind = Kind::Float {
    min: 0.0,
    min_inclusive: true,
    max: Some(1.0),
};

macro_rules! spec {
    ($name:literal, $section:ident, $kind:expr, $default:expr, $help:literal) => {
        Spec {
            name: $name,
            section: Section::$section,
            kind: $kind,
            default: $default,
            help: $help,
        }
    };
}

crate::named! {
    /// The activation after each hidden layer.
    pub enum Activation {
        /// max(0, x)
        Relu = "relu",
        /// Gaussian error linear unit.
        Gelu = "gelu",
        /// Hyperbolic tangent.
        Tanh = "tanh",
        /// max(0.01 x, x)
        LeakyRelu = "leaky_relu",
    }
}

crate::named! {
    /// Model families (`[model] kind`).
    pub enum ModelKind {
        /// A multi-layer perceptron.
        Mlp = "mlp",
        /// A convolutional network over image-shaped rows, with an MLP head.
        Cnn = "cnn",
    }
}

crate::named! {
    /// Normalisation after each hidden layer, before its activation.
    pub enum Norm {
        /// None.
        None = "none",
        /// Batch normalisation (batch statistics in training, running ones in evaluation).
        Batch = "batch",
        /// Layer normalisation.
        Layer = "layer",
    }
}

crate::named! {
    /// Optimizers (`[train] optimizer`).
    pub enum Optimizer {
        /// Stochastic gradient descent, with optional (Nesterov) momentum.
        Sgd = "sgd",
        /// Adam, with L2 weight decay.
        Adam = "adam",
        /// Adam with decoupled weight decay (fused, kiln's own).
        AdamW = "adamw",
        /// RMSprop.
        RmsProp = "rmsprop",
    }
}

crate::named! {
    /// Learning-rate schedules after the warm-up (`[train] lr_schedule`).
    pub enum Schedule {
        /// The base rate throughout.
        Constant = "constant",
        /// Times `gamma` every `step_size` epochs.
        Step = "step",
        /// Times `gamma` every epoch.
        Exponential = "exponential",
        /// Half a cosine from the base rate to 0 at the last epoch.
        Cosine = "cosine",
    }
}

crate::named! {
    /// Training losses (`[train] loss`): `cross_entropy` for classification, the others for
    /// regression.
    pub enum Loss {
        /// Softmax cross-entropy (classification).
        CrossEntropy = "cross_entropy",
        /// Mean squared error.
        Mse = "mse",
        /// Mean absolute error.
        Mae = "mae",
        /// Huber loss with delta 1.
        Huber = "huber",
    }
}

/// Settings that only some choices of another use: (setting, the other, its choices that use
/// it). Searched without a `when`, they get this condition, so a trial of another choice
/// leaves them out instead of feeding samplers and importance a value nothing read.
pub static APPLIES: &[(&str, &str, &[&str])] = &[
    ("momentum", "optimizer", &["sgd", "rmsprop"]),
    ("nesterov", "optimizer", &["sgd"]),
    ("beta1", "optimizer", &["adam", "adamw"]),
    ("beta2", "optimizer", &["adam", "adamw"]),
    ("epsilon", "optimizer", &["adam", "adamw", "rmsprop"]),
    ("step_size", "lr_schedule", &["step"]),
    ("gamma", "lr_schedule", &["step", "exponential"]),
];

/// The default of setting `name`, if it has one.
pub fn default_of(name: &str) -> Option<ParamValue> {
    SETTINGS
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.default)
        .map(Default::value)
}

/// Every setting kiln knows.
pub static SETTINGS: &[Spec] = &[
    spec!(
        "kind",
        Model,
        Kind::Name(ModelKind::NAMES),
        Some(Default::Name("mlp")),
        "model family"
    ),
    spec!(
        "hidden",
        Model,
        Kind::Int { min: 1 },
        Some(Default::Int(128)),
        "width of each hidden layer"
    ),
    spec!(
        "layers",
        Model,
        Kind::Int { min: 0 },
        Some(Default::Int(2)),
        "number of hidden layers"
    ),
    spec!(
        "activation",
        Model,
        Kind::Name(Activation::NAMES),
        Some(Default::Name("relu")),
        "activation after each hidden layer"
    ),
    spec!(
        "norm",
        Model,
        Kind::Name(Norm::NAMES),
        Some(Default::Name("none")),
        "normalisation after each hidden layer"
    ),
    spec!(
        "dropout",
        Model,
        FRACTION,
        Some(Default::Float(0.0)),
        "dropout probability after each hidden layer"
    ),
    spec!(
        "channels",
        Model,
        Kind::Int { min: 1 },
        Some(Default::Int(16)),
        "CNN channels of the first convolution"
    ),
    spec!(
        "kernel_size",
        Model,
        Kind::Int { min: 1 },
        Some(Default::Int(3)),
        "CNN kernel size"
    ),
    spec!(
        "conv_layers",
        Model,
        Kind::Int { min: 1 },
        Some(Default::Int(2)),
        "CNN convolution layers"
    ),
    spec!(
        "embedding_dim",
        Model,
        Kind::Int { min: 1 },
        Some(Default::Int(8)),
        "width of categorical embeddings"
    ),
    spec!(
        "epochs",
        Train,
        Kind::Int { min: 1 },
        Some(Default::Int(20)),
        "maximum epochs per trial"
    ),
    spec!(
        "batch_size",
        Train,
        Kind::Int { min: 1 },
        Some(Default::Int(64)),
        "rows per mini-batch"
    ),
    spec!(
        "learning_rate",
        Train,
        POSITIVE,
        Some(Default::Float(1e-3)),
        "base learning rate"
    ),
    spec!(
        "optimizer",
        Train,
        Kind::Name(Optimizer::NAMES),
        Some(Default::Name("adamw")),
        "optimizer"
    ),
    spec!(
        "momentum",
        Train,
        FRACTION,
        Some(Default::Float(0.9)),
        "momentum (sgd, rmsprop)"
    ),
    spec!(
        "nesterov",
        Train,
        Kind::Bool,
        Some(Default::Bool(false)),
        "Nesterov momentum (sgd)"
    ),
    spec!(
        "beta1",
        Train,
        FRACTION,
        Some(Default::Float(0.9)),
        "first-moment decay (adam, adamw)"
    ),
    spec!(
        "beta2",
        Train,
        FRACTION,
        Some(Default::Float(0.999)),
        "second-moment decay (adam, adamw)"
    ),
    spec!(
        "epsilon",
        Train,
        POSITIVE,
        Some(Default::Float(1e-8)),
        "denominator guard (adam, adamw, rmsprop)"
    ),
    spec!(
        "lr_schedule",
        Train,
        Kind::Name(Schedule::NAMES),
        Some(Default::Name("constant")),
        "learning-rate schedule, per epoch"
    ),
    spec!(
        "step_size",
        Train,
        Kind::Int { min: 1 },
        Some(Default::Int(10)),
        "epochs between decays (step)"
    ),
    spec!(
        "gamma",
        Train,
        POSITIVE,
        Some(Default::Float(0.1)),
        "decay factor (step, exponential)"
    ),
    spec!(
        "warmup_epochs",
        Train,
        Kind::Int { min: 0 },
        Some(Default::Int(0)),
        "epochs of linear warm-up before the schedule"
    ),
    spec!(
        "weight_decay",
        Train,
        NON_NEGATIVE,
        Some(Default::Float(0.0)),
        "L2 penalty (decoupled for adamw)"
    ),
    spec!(
        "l1",
        Train,
        NON_NEGATIVE,
        Some(Default::Float(0.0)),
        "L1 penalty on weights"
    ),
    spec!(
        "label_smoothing",
        Train,
        FRACTION,
        Some(Default::Float(0.0)),
        "label smoothing (classification)"
    ),
    spec!(
        "grad_clip_norm",
        Train,
        POSITIVE,
        None,
        "clip gradients to this norm"
    ),
    spec!(
        "grad_clip_value",
        Train,
        POSITIVE,
        None,
        "clip gradients to this absolute value"
    ),
    spec!(
        "loss",
        Train,
        Kind::Name(Loss::NAMES),
        None,
        "loss (default: cross_entropy or mse by task)"
    ),
    spec!(
        "backend",
        Train,
        Kind::Name(Backend::NAMES),
        Some(Default::Name("flex")),
        "burn backend: flex or ndarray (CPU), wgpu or cuda (GPU, with their cargo features)"
    ),
];

/// The spec of a setting, if `name` is one.
pub fn spec(name: &str) -> Option<&'static Spec> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The names of a section's settings, for "allowed" lists.
pub fn names_in(section: Section) -> Vec<&'static str> {
    SETTINGS
        .iter()
        .filter(|s| s.section == section)
        .map(|s| s.name)
        .collect()
}

impl Spec {
    /// Checks a value against this setting; integers are accepted where floats are, and come
    /// back as floats. The error says what is allowed.
    pub fn check(&self, value: &ParamValue) -> Result<ParamValue, SettingError> {
        let invalid = |allowed: String| SettingError::Invalid {
            name: self.name.to_string(),
            allowed,
        };
        match (self.kind, value) {
            (Kind::Int { min }, ParamValue::Int(i)) if *i >= min => Ok(value.clone()),
            (Kind::Int { min }, _) => Err(invalid(format!("an integer >= {min}"))),
            (Kind::Float { .. }, ParamValue::Int(_) | ParamValue::Float(_)) => {
                let x = value.as_f64().unwrap_or(f64::NAN);
                if self.in_range(x) {
                    Ok(ParamValue::Float(x))
                } else {
                    Err(invalid(format!("{}, got {x}", self.range_text())))
                }
            }
            (Kind::Float { .. }, _) => Err(invalid(format!("a number {}", self.range_text()))),
            (Kind::Bool, ParamValue::Bool(_)) => Ok(value.clone()),
            (Kind::Bool, _) => Err(invalid("true or false".to_string())),
            (Kind::Name(names), ParamValue::Str(s)) if names.contains(&s.as_str()) => {
                Ok(value.clone())
            }
            (Kind::Name(names), _) => Err(invalid(format!(
                "one of {}, got {}",
                quote_list(names),
                quoted(value)
            ))),
        }
    }

    /// Whether `x` lies in a float setting's range.
    pub fn in_range(&self, x: f64) -> bool {
        match self.kind {
            Kind::Float {
                min,
                min_inclusive,
                max,
            } => {
                x.is_finite()
                    && (x > min || (min_inclusive && x == min))
                    && max.is_none_or(|m| x < m)
            }
            Kind::Int { min } => x >= min as f64,
            _ => true,
        }
    }

    fn range_text(&self) -> String {
        match self.kind {
            Kind::Float {
                min,
                min_inclusive,
                max: Some(max),
            } => format!("in {}{min}, {max})", if min_inclusive { "[" } else { "(" }),
            Kind::Float {
                min,
                min_inclusive,
                max: None,
            } => format!("{} {min}", if min_inclusive { ">=" } else { ">" }),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_ranges_and_coerces_ints() {
        let dropout = spec("dropout").unwrap();
        assert!(dropout.check(&ParamValue::Float(1.0)).is_err());
        assert_eq!(
            dropout.check(&ParamValue::Int(0)),
            Ok(ParamValue::Float(0.0))
        );
        let lr = spec("learning_rate").unwrap();
        assert!(lr.check(&ParamValue::Float(0.0)).is_err());
        assert!(
            spec("optimizer")
                .unwrap()
                .check(&ParamValue::Str("adamw".into()))
                .is_ok()
        );
    }
}
