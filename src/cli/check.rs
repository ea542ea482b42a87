//! `kiln check`: validates an experiment and prints what a sweep of it would do: its data,
//! metrics, plan, space, settings and devices.

use crate::device::Backend;
use crate::device::DeviceName;
use crate::error::{Error, Result};
use crate::experiment::SamplerKind;
use crate::experiment::{self, Experiment};
use crate::names::Named;
use crate::objective::registry::{Objectives, Prepared};
use crate::space::ParamValue;
use crate::train::objective::BurnObjective;
use crate::train::settings::{SETTINGS, Section};
use crate::train::spec::SplitSpec;
use std::path::Path;
use std::sync::Arc;

/// `kiln check`: validate an experiment, load its data, print the space and the plan.
pub fn check(objectives: &Objectives, file: &Path) -> Result<u8> {
    let experiment = Experiment::load(file)?;
    // The built-in trainer's data and settings are shown too.
    let burn = (experiment.objective.kind == "train")
        .then(|| BurnObjective::new(&experiment).map(Arc::new))
        .transpose()?;
    let prepared: Prepared = match &burn {
        Some(burn) => crate::objective::registry::prepare(&experiment, Arc::clone(burn) as _)?,
        None => objectives.build(&experiment)?,
    };
    let metrics = &prepared.metrics;
    let e = &experiment;
    crate::say!("{}: {} is valid.\n", e.name, file.display());
    if let Some(warning) = e.warning() {
        crate::say!("warning: {warning}\n");
    }
    match &burn {
        Some(burn) => print_data(burn),
        None => {
            let options: Vec<String> = e
                .objective
                .options
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            crate::say!("objective  {} ({})", e.objective.kind, options.join(", "));
            if let Some(line) = prepared.objective.describe() {
                crate::say!("           {line}");
            }
        }
    }
    let goals: Vec<String> = e
        .objective
        .goals()
        .iter()
        .map(|g| format!("{} {}", g.direction.name(), g.metric))
        .collect();
    crate::say!(
        "metric     {}  (reported: {})",
        goals.join(", "),
        metrics.join(", ")
    );
    if e.objective.is_multi() {
        crate::say!(
            "           several objectives: trials rank by Pareto front; their values are read at the best epoch by {}",
            e.objective.metric
        );
    }
    if e.objective.by_default {
        crate::say!("           (the default: the file has no [objective])");
    }
    print_plan(e, prepared.max_epochs);
    crate::say!("\nspace ({} dimensions)", e.space.dimensions.len());
    for d in &e.space.dimensions {
        let points = d
            .points
            .map(|p| format!(", {p} grid points"))
            .unwrap_or_default();
        let when: Vec<String> = d.when.iter().map(ToString::to_string).collect();
        let when = if when.is_empty() {
            String::new()
        } else {
            format!("  when {}", when.join(" and "))
        };
        crate::say!("  {:<16} {}{points}{when}", d.name, d.distribution);
    }
    if let Some(burn) = &burn {
        print_settings(e, burn);
    }
    check_devices(e, burn.as_deref())
}

/// The GPUs this machine has, and a computation on each device the trainer will use.
fn check_devices(e: &Experiment, burn: Option<&BurnObjective>) -> Result<u8> {
    let gpus: Vec<String> = (crate::device::nvidia_gpus().iter().enumerate())
        .map(|(n, model)| format!("cuda:{n} {model}"))
        .collect();
    let built: Vec<&str> = (Backend::ALL.iter())
        .filter(|b| crate::device::built_with(**b))
        .map(|b| b.name())
        .collect();
    crate::say!("\ndevices");
    crate::say!("  backends built in  {}", built.join(", "));
    crate::say!(
        "  NVIDIA GPUs        {}",
        if gpus.is_empty() {
            "none found".to_string()
        } else {
            gpus.join(", ")
        }
    );
    let Some(ParamValue::Str(backend)) = burn.and_then(|b| b.spec().settings.get("backend")) else {
        return Ok(0);
    };
    let Some(backend) = Backend::from_name(backend).filter(|b| b.on_gpu()) else {
        return Ok(0);
    };
    let mut names: Vec<Option<DeviceName>> = Vec::new();
    for name in e.budget.devices.iter().filter_map(|n| n.parse().ok()) {
        if !names.contains(&Some(name)) {
            names.push(Some(name));
        }
    }
    if names.is_empty() {
        names.push(None);
    }
    let mut failed = 0;
    for name in names {
        let shown = name.map_or(format!("{} (its first device)", backend.name()), |n| {
            n.to_string()
        });
        match crate::device::probe(backend, name) {
            Ok(()) => crate::say!("  {shown:<18} computes"),
            Err(why) => {
                failed += 1;
                let why = why.to_string();
                crate::say!("  {shown:<18} FAILED: {}", why.lines().next().unwrap_or(""));
            }
        }
    }
    if failed > 0 {
        return Err(Error::runtime(format!(
            "{failed} device(s) could not compute; a sweep's trials would fail there"
        )));
    }
    Ok(0)
}

/// The columns a model learns from, as `kiln check` names them: at most 12 of each kind.
fn feature_list(data: &crate::train::data::Dataset) -> String {
    fn some(names: &[String]) -> String {
        let shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
        match names.len() - shown.len() {
            0 => shown.join(", "),
            more => format!("{} and {more} more", shown.join(", ")),
        }
    }
    match (data.features.is_empty(), data.categorical.is_empty()) {
        (false, true) => some(&data.features),
        (true, false) => format!("categorical {}", some(&data.categorical)),
        _ => format!(
            "{}; categorical {}",
            some(&data.features),
            some(&data.categorical)
        ),
    }
}

/// The built-in trainer's data, as `kiln check` shows it.
fn print_data(burn: &BurnObjective) {
    let (spec, data) = (&burn.spec().data, burn.data());
    let classes = if data.class_names.is_empty() {
        String::new()
    } else {
        format!(", {} classes", data.class_names.len())
    };
    let split = match &spec.split {
        SplitSpec::Fractions { .. } => "by seeded fractions",
        SplitSpec::Column(_) => "by column",
    };
    crate::say!(
        "data       {}: {} features{classes}, {}\n           split {split}: train {}, val {}, test {}",
        spec.path.display(),
        data.n_features(),
        match &data.task_inferred {
            Some(why) => format!("{} (inferred: {why}; set [data] task to choose)", data.task),
            None => data.task.to_string(),
        },
        data.train.rows,
        data.val.rows,
        data.test.as_ref().map_or(0, |t| t.rows)
    );
    crate::say!("features   {}", feature_list(data));
    match (data.dropped_rows, data.filled_cells) {
        (0, 0) => {}
        (dropped, filled) => {
            let rows = if dropped == 1 { "row" } else { "rows" };
            let cells = if filled == 1 { "cell" } else { "cells" };
            crate::say!(
                "missing    {dropped} {rows} left out, {filled} {cells} filled with the train split's mean ([data] missing = \"{}\")",
                spec.missing.name()
            )
        }
    }
    if let Some(es) = &burn.spec().early_stopping {
        crate::say!(
            "patience   stop a trial after {} epochs without {} improving by more than {}",
            es.patience,
            es.monitor,
            es.min_delta
        );
    }
}

/// The sampler's line of `kiln check`'s plan: its kind, seed and settings (for `auto`, what it
/// chose and why).
fn describe_sampler(e: &Experiment) -> String {
    let sampler = match e.sampler.kind {
        SamplerKind::Auto => {
            let phases: Vec<String> = crate::sampler::auto::plan(e)
                .iter()
                .filter(|p| p.from < e.budget.trials)
                .map(|p| match p.from {
                    0 => format!("{} ({})", describe_kind(e, p.kind), p.why),
                    _ => format!("then {} ({})", p.kind, p.why),
                })
                .collect();
            format!("auto sampler: {}", phases.join("; "))
        }
        kind => describe_kind(e, kind),
    };
    match e.sampler.lag {
        Some(lag) => format!(
            "{sampler}, deterministic: trial N is proposed from trials 0..N-{lag} once they have ended"
        ),
        None => sampler,
    }
}

/// A sampler of `kind` with the experiment's settings, as `kiln check` names it.
fn describe_kind(e: &Experiment, kind: SamplerKind) -> String {
    match kind {
        SamplerKind::Auto => "auto".to_string(),
        SamplerKind::Grid => format!(
            "grid sampler over {} points",
            experiment::grid_size(&e.space, e.sampler.points).unwrap_or(0)
        ),
        SamplerKind::Tpe => format!(
            "{} sampler (seed {}; {} random trials first, gamma {}, {} candidates)",
            if e.objective.is_multi() {
                "tpe (MOTPE)"
            } else {
                "tpe"
            },
            e.seed,
            e.sampler.startup_trials,
            e.sampler.gamma,
            e.sampler.candidates
        ),
        SamplerKind::Cmaes => format!(
            "cmaes sampler (seed {}; sigma0 {}, {} trials per generation, restart {})",
            e.seed,
            e.sampler.cmaes.sigma0,
            e.sampler
                .cmaes
                .popsize
                .map_or("4 + 3 ln n".to_string(), |p| p.to_string()),
            e.sampler.cmaes.restart.name()
        ),
        SamplerKind::Gp => format!(
            "gp sampler (seed {}; {} random trials first, then a Matern 5/2 Gaussian process {})",
            e.seed,
            e.sampler.startup_trials,
            match e.objective.is_multi() {
                true => "per objective and expected hypervolume improvement",
                false => "and log expected improvement",
            }
        ),
        SamplerKind::Nsga2 => format!(
            "nsga2 sampler (seed {}; generations of {} trials, the first drawn at random)",
            e.seed, e.sampler.population
        ),
        kind @ (SamplerKind::Random | SamplerKind::Sobol) => {
            format!("{kind} sampler (seed {})", e.seed)
        }
    }
}

/// When failing trials stop the sweep, as `kiln check` shows it.
/// `kiln check`'s line on the stopping rules.
fn describe_stop_rules(budget: &crate::budget::Budget) -> String {
    use crate::budget::RegretThreshold;
    let rules = &budget.stop;
    let mut said = vec![format!("after {} trials", budget.trials)];
    if let Some(limit) = budget.max_time {
        said.push(format!(
            "after {} (max_time)",
            crate::progress::format_duration(limit.as_secs_f64())
        ));
    }
    if let Some(t) = rules.target {
        said.push(format!("once the best reaches {t} (target)"));
    }
    if let Some(n) = rules.no_improvement {
        said.push(format!(
            "after {n} trials without a better one (no_improvement)"
        ));
    }
    if let Some(threshold) = rules.regret_bound {
        let by = match threshold {
            RegretThreshold::Noise => "the noise between trials".to_string(),
            RegretThreshold::Value(v) => v.to_string(),
        };
        said.push(format!(
            "once more trials are unlikely to beat the best by more than {by} (regret_bound; from {} complete trials)",
            crate::sampler::REGRET_MIN_TRIALS
        ));
    }
    said.join(", or ")
}

fn describe_failures(budget: &crate::budget::Budget) -> String {
    let retries = match budget.retries {
        0 => "a failed trial is final ([budget] retries = 0)".to_string(),
        n => format!("a failed trial runs again up to {n} times from its last checkpoint"),
    };
    let program = crate::output::program();
    let stop = match budget.max_failures {
        0 => "the sweep never stops for them ([budget] max_failures = 0)".to_string(),
        n => format!(
            "the sweep stops after {n} in a row, or {} before any success ([budget] max_failures); `{program} retry` reruns them",
            n.min(crate::budget::FIRST_FAILURES)
        ),
    };
    format!("{retries}; {stop}")
}

/// The sampler, budget, pruner and storage, as `kiln check` shows them.
fn print_plan(e: &Experiment, max_epochs: Option<u32>) {
    let sampler = describe_sampler(e);
    crate::say!(
        "plan       {sampler}; {} trials, {} at once{}; pruner {}",
        e.budget.trials,
        e.budget.workers,
        e.budget
            .max_time
            .map(|t| format!(
                ", at most {}",
                crate::progress::format_duration(t.as_secs_f64())
            ))
            .unwrap_or_default(),
        crate::pruner::describe(e, max_epochs)
    );
    crate::say!("failures   {}", describe_failures(&e.budget));
    crate::say!("stops      {}", describe_stop_rules(&e.budget));
    if !e.budget.devices.is_empty() {
        crate::say!(
            "devices    {} (worker N gets the Nth; each sees its own in KILN_DEVICE)",
            e.budget.devices.join(", ")
        );
    }
    if let Some(url) = &e.storage_url {
        crate::say!(
            "storage    {url} (password from PGPASSWORD); workers join with: {} worker --storage {url} --sweep {}",
            crate::output::program(),
            e.name
        );
    }
    for dir in &e.sampler.warm_start {
        crate::say!("warm start from the complete trials of {}", dir.display());
    }
    for (i, given) in e.enqueue.iter().enumerate() {
        crate::say!(
            "queued     trial {i} takes {} (the rest drawn)",
            crate::space::shown(given)
        );
    }
    for c in &e.constraints {
        let bounds: Vec<String> = [
            c.min.map(|m| format!(">= {m}")),
            c.max.map(|m| format!("<= {m}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        crate::say!(
            "constraint {} {} (a trial outside ranks after the feasible ones)",
            c.metric,
            bounds.join(" and ")
        );
    }
}

/// The built-in trainer's settings, resolved, as `kiln check` shows them.
fn print_settings(e: &Experiment, burn: &BurnObjective) {
    let spec = burn.spec();
    for section in [Section::Model, Section::Train] {
        crate::say!(
            "\n[{}] resolved settings (searched ones show their default)",
            section.name()
        );
        for setting in SETTINGS.iter().filter(|s| s.section == section) {
            let value = spec
                .settings
                .get(setting.name)
                .map_or("(none)".to_string(), |v| v.to_string());
            let origin = if e.space.names().any(|n| n == setting.name) {
                "searched"
            } else if spec.fixed.contains_key(setting.name) {
                "set"
            } else {
                "default"
            };
            crate::say!(
                "  {:<16} {:<12} {:<9} {}",
                setting.name,
                value,
                origin,
                setting.help
            );
        }
    }
}
