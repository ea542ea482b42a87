//! kiln's benchmarks. Not timed tests: they print measurements and ratios taken in one run on
//! one machine, for the closing notes of the issues. Run all, or name some:
//!
//! ```sh
//! cargo bench --bench sweep                 # everything
//! cargo bench --bench sweep -- scaling      # 8 trials, workers = 2 against workers = 1
//! cargo bench --bench sweep -- throughput   # MLP 64-256-256-10 against PyTorch (needs torch)
//! cargo bench --bench sweep -- replay       # replaying a journal of 100,000 events
//! cargo bench --bench sweep -- checkpoint   # what per-epoch checkpointing adds to the quickstart
//! cargo bench --bench sweep -- regret       # random, sobol and tpe on branin and hartmann6
//! cargo bench --bench sweep -- overhead     # ms per trial of a no-op objective, against Optuna
//! cargo bench --bench sweep -- asha         # experiments/digits.toml with and without ASHA
//! cargo bench --bench sweep -- scale      # whole `kiln run` of 1,000 to 100,000 no-op trials
//! cargo bench --bench sweep -- parse      # parsing an experiment of 500 and 5,000 dimensions
//! cargo bench --bench sweep -- command    # a script as command trials against running it directly
//! cargo bench --bench sweep -- torch      # examples/python/digits_torch.toml, warm and cold, 1 and
//!                                           # 2 workers, against Optuna + PyTorch in-process
//!                                           # (needs torch optuna)
//! cargo bench --bench sweep -- dashboard  # `kiln dashboard` on 10,000 trials: memory, CPU, latency
//! cargo bench --bench sweep -- conditional # TPE with and without conditions on a branched problem
//! cargo bench --bench sweep -- deterministic # TPE on digits, deterministic (lag 1, 4) or not
//! cargo bench --bench sweep -- samplers   # median regret of gp, cmaes, tpe and auto against Optuna's
//!                                           # (needs optuna cmaes scipy torch; KILN_BENCH_SEEDS,
//!                                           # KILN_BENCH_SAMPLERS=tpe for some of them; Optuna's
//!                                           # AutoSampler needs KILN_BENCH_OPTUNAHUB, see peers/)
//! cargo bench --bench sweep -- separable  # sep-CMA-ES and CMA-ES, 20 dimensions, against Optuna's
//! cargo bench --bench sweep -- ask        # ms per proposal of tpe, gp and cmaes at 100, 200, 1,000 trials
//! cargo bench --bench sweep -- pareto     # hypervolume on ZDT1-3: nsga2, MOTPE and gp against
//!                                           # random and Optuna's NSGAIISampler and TPESampler
//!                                           # (needs optuna; KILN_BENCH_SEEDS, default 10)
//! cargo bench --bench sweep -- pareto-gp  # hypervolume of gp (EHVI) against Optuna's GPSampler
//!                                           # on ZDT1-3 and DTLZ2, 6 inputs, 80 trials
//! cargo bench --features wgpu,cuda --bench sweep -- gpu
//!                                           # the digits CNN and an MLP 64-1024x4-10 on each
//!                                           # backend whose device computes, against PyTorch
//!                                           # (CUDA); trials/hour with 1, 2, 4 trials per GPU
//!                                           # (scripts/gpu-check.sh runs it)
//! cargo build --release --example custom_objective && cargo bench --bench sweep -- custom
//!                                           # the custom example, workers = 1, 2 (and more, by
//!                                           # KILN_BENCH_WORKERS=1,2,4,8) in trials per hour
//! KILN_BENCH_POSTGRES=postgres://... cargo bench --bench sweep -- shared
//!                                           # trials/s of 1, 2, 4, 8 `kiln worker`s on one
//!                                           # PostgreSQL, against Optuna's RDB storage there
//! ```

use kiln::journal::{Event, FileJournal, Journal};
use kiln::space::{ParamValue, Params};
use kiln::state::SweepState;
use kiln::trial::{EndState, Metrics};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let dir = tempfile::tempdir().unwrap();
    if run("scaling") {
        scaling(dir.path());
    }
    if run("throughput") {
        throughput(dir.path());
    }
    if run("replay") {
        replay(dir.path());
    }
    if run("checkpoint") {
        checkpoint(dir.path());
    }
    if run("regret") {
        regret(dir.path());
    }
    if run("overhead") {
        overhead(dir.path());
    }
    if run("asha") {
        asha(dir.path());
    }
    #[cfg(feature = "postgres")]
    if run("shared") {
        shared(dir.path());
    }
    if run("scale") {
        scale(dir.path());
    }
    if run("parse") {
        parse(dir.path());
    }
    if run("command") {
        command(dir.path());
    }
    if run("torch") {
        torch(dir.path());
    }
    if run("custom") {
        custom(dir.path());
    }
    if run("dashboard") {
        dashboard(dir.path());
    }
    if run("conditional") {
        conditional();
    }
    if run("pareto") {
        pareto();
    }
    if run("pareto-gp") {
        pareto_gp();
    }
    if run("deterministic") {
        deterministic(dir.path());
    }
    if run("ask") {
        ask();
    }
    if wanted.iter().any(|w| w == "gpu") {
        gpu(dir.path());
    }
    if run("samplers") {
        samplers();
    }
    if run("separable") {
        separable();
    }
}

/// Median simple regret over KILN_BENCH_SEEDS seeds (default 10) of kiln's gp, cmaes, tpe, auto
/// and random samplers on branin, hartmann6, rosenbrock in 2 and 10 dimensions, sphere in 5 and
/// four BBOB-style functions in 5 (ellipsoid, rastrigin, ackley, Styblinski-Tang), each with its
/// budget of trials, beside Optuna's GPSampler, CmaEsSampler, TPESampler and OptunaHub's
/// AutoSampler with the same budgets and seeds (benches/peers/optuna_regret.py, run here when
/// optuna imports, or its output read from KILN_BENCH_OPTUNA_REGRET).
fn samplers() {
    use kiln::objective::function::Function;
    // KILN_BENCH_SAMPLERS: which of gp, cmaes, tpe and auto (all by default), each beside its peer.
    let chosen = std::env::var("KILN_BENCH_SAMPLERS").unwrap_or("gp,cmaes,tpe,auto".into());
    let problems = [
        ("branin", Function::Branin, 2, 60),
        ("hartmann6", Function::Hartmann6, 6, 60),
        ("rosenbrock2", Function::Rosenbrock, 2, 60),
        ("sphere5", Function::Sphere, 5, 60),
        ("rosenbrock10", Function::Rosenbrock, 10, 150u64),
        ("ellipsoid5", Function::Ellipsoid, 5, 60),
        ("rastrigin5", Function::Rastrigin, 5, 60),
        ("ackley5", Function::Ackley, 5, 60),
        ("styblinski5", Function::StyblinskiTang, 5, 60),
    ];
    regret_table(&problems, &chosen.split(',').collect::<Vec<_>>());
}

/// sep-CMA-ES against CMA-ES, and each against Optuna's (`use_separable_cma`), in 20
/// dimensions: the separable ellipsoid and rosenbrock, 300 trials each.
fn separable() {
    use kiln::objective::function::Function;
    let problems = [
        ("ellipsoid20", Function::Ellipsoid, 20, 300),
        ("rosenbrock20", Function::Rosenbrock, 20, 300u64),
    ];
    regret_table(&problems, &["cmaes", "cmaes-sep"]);
}

/// The median regret table of `samplers` (and random) on `problems`, (name, function,
/// inputs, trials), beside the Optuna peers of the same names.
fn regret_table(
    problems: &[(&str, kiln::objective::function::Function, usize, u64)],
    samplers: &[&str],
) {
    use kiln::objective::function::drive;
    use kiln::trial::{Direction, Goal};
    let seeds: u64 = std::env::var("KILN_BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let goal = Goal::new("value", Direction::Minimize);
    // (function, sampler) -> regrets and seconds per sweep.
    let mut rows: Vec<(String, String, Vec<f64>, f64)> = Vec::new();
    let mut add = |function: &str, sampler: &str, regret: f64, seconds: f64| match rows
        .iter_mut()
        .find(|(f, s, ..)| f == function && s == sampler)
    {
        Some((_, _, regrets, total)) => {
            regrets.push(regret);
            *total += seconds;
        }
        None => rows.push((function.into(), sampler.into(), vec![regret], seconds)),
    };
    for (name, function, inputs, budget) in problems {
        let space = function.domain(*inputs);
        for sampler in samplers.iter().copied().chain(["random"]) {
            for seed in 0..seeds {
                let started = Instant::now();
                let mut chosen = match sampler {
                    "auto" => auto_sampler(name, &space, seed),
                    _ => sampler_named(sampler, seed, &goal),
                };
                let state = drive(*function, &space, chosen.as_mut(), *budget);
                let seconds = started.elapsed().as_secs_f64();
                let best = state
                    .best("value", Direction::Minimize)
                    .map_or(f64::NAN, |b| b.1);
                add(
                    name,
                    &format!("kiln {sampler}"),
                    best - function.minimum(*inputs),
                    seconds,
                );
            }
        }
    }
    let names: Vec<&str> = problems.iter().map(|p| p.0).collect();
    let peer = peer_output(
        "KILN_BENCH_OPTUNA_REGRET",
        "optuna_regret.py",
        seeds,
        &[
            "--samplers",
            &samplers.join(","),
            "--functions",
            &names.join(","),
        ],
    );
    let mut asks = Vec::new();
    match &peer {
        Some(lines) => {
            for line in lines.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if let Some(kind) = v["ask"].as_str() {
                    asks.push(format!(
                        "optuna {kind} {:.1} ms at N = {}",
                        v["ms"].as_f64().unwrap_or(f64::NAN),
                        v["n"]
                    ));
                    continue;
                }
                let function = v["function"].as_str().unwrap_or("?");
                if v["seed"].as_u64().is_some_and(|s| s >= seeds) || !names.contains(&function) {
                    continue;
                }
                add(
                    function,
                    &format!("optuna {}", v["sampler"].as_str().unwrap_or("?")),
                    v["regret"].as_f64().unwrap_or(f64::NAN),
                    v["seconds"].as_f64().unwrap_or(f64::NAN),
                );
            }
        }
        None => println!(
            "  (Optuna did not run: pip install optuna cmaes scipy torch, or set KILN_BENCH_OPTUNA_REGRET)"
        ),
    }
    println!(
        "samplers: median simple regret over {seeds} seeds (lower is better), and seconds per sweep"
    );
    for (function, sampler, mut regrets, seconds) in rows {
        regrets.sort_by(f64::total_cmp);
        let n = regrets.len();
        let median = (regrets[(n - 1) / 2] + regrets[n / 2]) / 2.0;
        println!(
            "  {function:<13} {sampler:<14} {median:>12.6}  {:>9.3} s",
            seconds / n as f64
        );
    }
    for line in asks {
        println!("  ask: {line}");
    }
}

/// Milliseconds per proposal of each model-based sampler with 100, 200 and 1,000 complete
/// trials of hartmann6 (6 inputs) as history: the median of 5 proposals, each from a fresh
/// sampler (nothing kept from an earlier proposal).
fn ask() {
    use kiln::objective::function::{Function, drive};
    use kiln::sampler::RandomSampler;
    use kiln::trial::{Direction, Goal};
    let space = Function::Hartmann6.domain(6);
    let goal = Goal::new("value", Direction::Minimize);
    println!("ask: ms per proposal, hartmann6 history of N complete trials (median of 5)");
    for n in [100u64, 200, 1000] {
        let history = drive(Function::Hartmann6, &space, &mut RandomSampler::new(1), n);
        let mut line = format!("  N = {n:>5}:");
        for name in ["tpe", "gp", "cmaes"] {
            let mut times: Vec<f64> = (0..5)
                .map(|k| {
                    let mut sampler = sampler_named(name, 0, &goal);
                    let started = Instant::now();
                    sampler.sample(&space, n + k, &history.trials).unwrap();
                    started.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(f64::total_cmp);
            line.push_str(&format!("  {name} {:.1} ms", times[2]));
        }
        println!("{line}");
    }
}

/// What `[sampler] deterministic = true` costs in wall time: experiments/digits.toml (no
/// pruner) with TPE instead of random, KILN_BENCH_WORKERS workers (default 2), as usual and deterministic with lags
/// 4 and 1; the best accuracy of each, to see what the lag costs in search.
fn deterministic(dir: &Path) {
    let base = shipped_digits();
    let workers: usize = std::env::var("KILN_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    println!("deterministic: experiments/digits.toml with tpe and no pruner, {workers} workers");
    let mut first = None;
    for (label, extra) in [
        ("as usual", ""),
        ("deterministic, lag 4", "deterministic = true\nlag = 4\n"),
        ("deterministic, lag 1", "deterministic = true\nlag = 1\n"),
    ] {
        let sampler = format!("[sampler]\nkind = \"tpe\"\n{extra}");
        let random = "[sampler]\nkind = \"random\"\n";
        assert!(
            base.contains(random),
            "experiments/digits.toml samples at random"
        );
        let file = dir.join(format!("det-{}.toml", label.len()));
        std::fs::write(&file, base.replacen(random, &sampler, 1)).unwrap();
        let results = dir.join(format!("det-{}", label.len()));
        let wall = kiln_run(&file, &results, workers);
        let best = best_val_accuracy(&sweep_state(&results));
        let ratio = wall / *first.get_or_insert(wall);
        println!("  {label:<22} {wall:>6.1} s ({ratio:.2}x), best val_accuracy {best:.4}");
    }
}

/// The JSON lines of a peer script in benches/peers/: read from the file the environment
/// variable `file_var` names, else printed by running the script with `--seeds`; `None` when
/// neither works (the peer is not installed).
fn peer_output(file_var: &str, script: &str, seeds: u64, extra: &[&str]) -> Option<String> {
    match std::env::var(file_var) {
        Ok(path) => std::fs::read_to_string(&path).ok(),
        Err(_) => Command::new("python3")
            .arg(repo(&format!("benches/peers/{script}")))
            .args(["--seeds", &seeds.to_string()])
            .args(extra)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned()),
    }
}

/// The sampler `kind = "auto"` builds for a sweep of one objective, `value`, over `space`: the
/// same code path as `kiln run`'s.
fn auto_sampler(
    name: &str,
    space: &kiln::space::Space,
    seed: u64,
) -> Box<dyn kiln::sampler::Sampler> {
    let mut text = format!(
        "name = \"{name}\"\nseed = {seed}\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\ndirection = \"minimize\"\n[sampler]\nkind = \"auto\"\n[space]\n"
    );
    for d in &space.dimensions {
        if let kiln::space::Distribution::Uniform { low, high } = d.distribution {
            text.push_str(&format!(
                "{} = {{ uniform = [{low:?}, {high:?}] }}\n",
                d.name
            ));
        }
    }
    let experiment = kiln::Experiment::parse(&text, Path::new("auto.toml"), Path::new("."))
        .expect("an auto experiment");
    kiln::sampler::build(&experiment, &[])
}

/// A single-objective sampler by name (gp, cmaes, tpe; random otherwise), with the settings
/// an experiment gets by default.
fn sampler_named(
    name: &str,
    seed: u64,
    goal: &kiln::trial::Goal,
) -> Box<dyn kiln::sampler::Sampler> {
    use kiln::sampler::{
        CmaEsSampler, CmaSettings, GpSampler, RandomSampler, Restart, TpeSampler, TpeSettings,
    };
    match name {
        "gp" => Box::new(GpSampler::new(seed, goal.clone(), &[], 10)),
        "cmaes" | "cmaes-sep" => {
            let settings = CmaSettings {
                sigma0: 1.0 / 6.0,
                popsize: None,
                restart: Restart::Ipop,
                separable: name == "cmaes-sep",
            };
            Box::new(CmaEsSampler::new(seed, goal.clone(), &[], settings))
        }
        "tpe" => {
            let settings = TpeSettings {
                startup_trials: 10,
                gamma: 0.1,
                candidates: 24,
                multivariate: true,
            };
            Box::new(TpeSampler::new(seed, std::slice::from_ref(goal), settings))
        }
        _ => Box::new(RandomSampler::new(seed)),
    }
}

/// One hypervolume benchmark: problems of `inputs` inputs, the hypervolume after each of two
/// trial counts, kiln's samplers (random, and those named) beside Optuna's (`peer_samplers`).
struct Pareto {
    name: &'static str,
    problems: &'static [&'static str],
    inputs: usize,
    checkpoints: [usize; 2],
    kiln: &'static [&'static str],
    peer_samplers: &'static str,
    default_seeds: u64,
}

/// Hypervolume after 100 and 300 trials of ZDT1, ZDT2 and ZDT3 (30 inputs), against the
/// reference point (1.1, 11), which every input beats: kiln's random, nsga2, MOTPE and gp (EHVI), and
/// Optuna's NSGAIISampler and TPESampler with the same seeds (benches/peers/optuna_zdt.py,
/// run here when optuna imports, or its output read from KILN_BENCH_OPTUNA_ZDT). Mean over
/// seeds, and the seconds one 300-trial sweep of each takes.
fn pareto() {
    pareto_of(&Pareto {
        name: "pareto",
        problems: &["zdt1", "zdt2", "zdt3"],
        inputs: 30,
        checkpoints: [100, 300],
        kiln: &["nsga2", "tpe", "gp"],
        peer_samplers: "nsga2,motpe",
        default_seeds: 10,
    });
}

/// The GP with several objectives against Optuna's GPSampler (LogEHVI): hypervolume after 40
/// and 80 trials of ZDT1-3 and the three-objective DTLZ2, 6 inputs each (the GP's budgets are
/// small), reference (1.1, 11) for ZDT and (2.1, 2.1, 2.1) for DTLZ2, both beaten by every
/// input; MOTPE on both sides, and random, for scale. KILN_BENCH_SEEDS, default 5.
fn pareto_gp() {
    pareto_of(&Pareto {
        name: "pareto-gp",
        problems: &["zdt1", "zdt2", "zdt3", "dtlz2"],
        inputs: 6,
        checkpoints: [40, 80],
        kiln: &["tpe", "gp"],
        peer_samplers: "gp,motpe",
        default_seeds: 5,
    });
}

fn pareto_of(setup: &Pareto) {
    use kiln::objective::function::{Function, drive};
    let seeds: u64 = std::env::var("KILN_BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(setup.default_seeds);
    let [early_at, late_at] = setup.checkpoints;
    // (function, sampler) -> (hv at each checkpoint, seconds), summed over seeds.
    let mut rows: Vec<(String, String, [f64; 3])> = Vec::new();
    let mut add = |function: &str, sampler: &str, values: [f64; 3]| match rows
        .iter_mut()
        .find(|(f, s, _)| f == function && s == sampler)
    {
        Some((_, _, sum)) => (0..3).for_each(|i| sum[i] += values[i] / seeds as f64),
        None => rows.push((
            function.into(),
            sampler.into(),
            values.map(|v| v / seeds as f64),
        )),
    };
    for name in setup.problems {
        let function = Function::from_name(name).expect("a known function");
        let space = function.domain(setup.inputs);
        let goals: Vec<kiln::trial::Goal> = (function.metrics().iter())
            .map(|m| kiln::trial::Goal::new(m, kiln::trial::Direction::Minimize))
            .collect();
        let hypervolume = |trials: &[kiln::state::TrialRecord]| {
            let points: Vec<Vec<f64>> = trials.iter().filter_map(|t| t.losses(&goals)).collect();
            kiln::pareto::hypervolume(&points, pareto_reference(goals.len()))
        };
        for seed in 0..seeds {
            for kind in ["random"].iter().chain(setup.kiln) {
                let (label, mut sampler) = multi_objective_sampler(kind, seed, &goals);
                let started = Instant::now();
                let state = drive(function, &space, sampler.as_mut(), late_at as u64);
                let seconds = started.elapsed().as_secs_f64();
                let early = hypervolume(&state.trials[..early_at]);
                add(name, label, [early, hypervolume(&state.trials), seconds]);
            }
        }
    }
    let extra = [
        "--functions",
        &setup.problems.join(","),
        "--samplers",
        setup.peer_samplers,
        "--inputs",
        &setup.inputs.to_string(),
        "--checkpoints",
        &format!("{early_at},{late_at}"),
    ];
    match peer_output("KILN_BENCH_OPTUNA_ZDT", "optuna_zdt.py", seeds, &extra) {
        Some(lines) => {
            for line in lines.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if v["seed"].as_u64().is_some_and(|s| s >= seeds) {
                    continue;
                }
                let hv = |at: usize| v["hv"][at.to_string()].as_f64().unwrap_or(f64::NAN);
                add(
                    v["function"].as_str().unwrap_or("?"),
                    v["sampler"].as_str().unwrap_or("?"),
                    [
                        hv(early_at),
                        hv(late_at),
                        v["seconds"].as_f64().unwrap_or(f64::NAN),
                    ],
                );
            }
        }
        None => {
            println!("  (Optuna did not run: pip install optuna, or set KILN_BENCH_OPTUNA_ZDT)")
        }
    }
    println!(
        "{}: mean hypervolume over {seeds} seeds (larger is better), {} inputs",
        setup.name, setup.inputs
    );
    println!(
        "  {:<6} {:<20} {early_at:>9} {late_at:>9} {:>12}",
        "", "sampler", "s per sweep"
    );
    for (function, sampler, [early, late, seconds]) in &rows {
        println!("  {function:<6} {sampler:<20} {early:>9.4} {late:>9.4} {seconds:>12.3}");
    }
}

/// The hypervolume's reference point, beaten by every input: (1.1, 11) for ZDT, 2.1 in each of
/// DTLZ2's three objectives.
fn pareto_reference(objectives: usize) -> &'static [f64] {
    match objectives {
        2 => &[1.1, 11.0],
        _ => &[2.1, 2.1, 2.1],
    }
}

/// A sampler for several objectives by name (random, nsga2, tpe, gp), with the settings an
/// experiment gets by default, and its label.
fn multi_objective_sampler(
    kind: &str,
    seed: u64,
    goals: &[kiln::trial::Goal],
) -> (&'static str, Box<dyn kiln::sampler::Sampler>) {
    use kiln::sampler::{GpSampler, Nsga2Sampler, RandomSampler, TpeSampler, TpeSettings};
    let settings = TpeSettings {
        startup_trials: 10,
        gamma: 0.1,
        candidates: 24,
        multivariate: false,
    };
    match kind {
        "nsga2" => (
            "kiln nsga2",
            Box::new(Nsga2Sampler::new(seed, goals, 50, &[])),
        ),
        "tpe" => (
            "kiln tpe (MOTPE)",
            Box::new(TpeSampler::new(seed, goals, settings)),
        ),
        "gp" => (
            "kiln gp (EHVI)",
            Box::new(GpSampler::for_goals(seed, goals, &[], 10)),
        ),
        _ => ("kiln random", Box::new(RandomSampler::new(seed))),
    }
}

/// TPE on a branched problem, with the space's conditions (`when`) and without them (every
/// parameter always sampled, the objective reading only its branch's: how such a space was
/// written before conditions), against random: median best value over 20 seeds after 30 and
/// 60 trials. Branch a is 1 at best; branch b is 0 at (xb1, xb2) = (0.83, 0.31).
fn conditional() {
    use kiln::sampler::{RandomSampler, Sampler, TpeSampler, TpeSettings};
    use kiln::space::{Condition, Dimension, Distribution, Space};
    use kiln::trial::{Direction, Goal};
    let branch = Dimension::new(
        "branch",
        Distribution::Choice(vec![
            ParamValue::Str("a".into()),
            ParamValue::Str("b".into()),
        ]),
    );
    let under = |name: &str, value: &str, conditional: bool| {
        let mut d = Dimension::new(
            name,
            Distribution::Uniform {
                low: 0.0,
                high: 1.0,
            },
        );
        if conditional {
            d.when = vec![Condition {
                parent: "branch".into(),
                values: vec![ParamValue::Str(value.into())],
            }];
        }
        d
    };
    let space = |conditional: bool| Space {
        dimensions: vec![
            branch.clone(),
            under("xa", "a", conditional),
            under("xb1", "b", conditional),
            under("xb2", "b", conditional),
        ],
    };
    let f = |p: &Params| {
        let x = |name: &str| p[name].as_f64().unwrap();
        if p["branch"] == ParamValue::Str("a".into()) {
            1.0 + (x("xa") - 0.2).powi(2)
        } else {
            2.0 * ((x("xb1") - 0.83).powi(2) + (x("xb2") - 0.31).powi(2))
        }
    };
    let best_after = |sampler: &mut dyn Sampler, space: &Space| -> [f64; 2] {
        let mut state = SweepState::default();
        let mut best = f64::MAX;
        let mut at = [0.0; 2];
        for n in 0..60u64 {
            let params = sampler.sample(space, n, &state.trials).unwrap();
            let value = f(&params);
            best = best.min(value);
            for event in complete_trial_events(n, params, &[value]) {
                state.apply(&event);
            }
            if n + 1 == 30 {
                at[0] = best;
            }
            at[1] = best;
        }
        at
    };
    println!("conditional: median best over 20 seeds (the optimum is 0), after 30 and 60 trials");
    let settings = |multivariate| TpeSettings {
        startup_trials: 10,
        gamma: 0.1,
        candidates: 24,
        multivariate,
    };
    for (label, conditional, multivariate) in [
        ("random", false, false),
        ("tpe, no conditions", false, false),
        ("tpe, conditions", true, false),
        ("tpe multivariate, no conditions", false, true),
        ("tpe multivariate, conditions", true, true),
    ] {
        let mut at = [Vec::new(), Vec::new()];
        for seed in 0..20 {
            let space = space(conditional);
            let result = if label == "random" {
                best_after(&mut RandomSampler::new(seed), &space)
            } else {
                let mut tpe = TpeSampler::new(
                    seed,
                    &[Goal::new("value", Direction::Minimize)],
                    settings(multivariate),
                );
                best_after(&mut tpe, &space)
            };
            at[0].push(result[0]);
            at[1].push(result[1]);
        }
        let [thirty, sixty] = at;
        println!(
            "  {label:<32} after 30: {:.5}   after 60: {:.5}",
            median(thirty),
            median(sixty)
        );
    }
}

/// The journal events of one complete trial that reported `values` of `value`, one per epoch.
fn complete_trial_events(trial: u64, params: Params, values: &[f64]) -> Vec<Event> {
    let time = kiln::journal::now();
    let mut events = vec![Event::TrialCreated {
        trial,
        seed: trial,
        params,
        queued: false,
        time,
    }];
    for (i, &value) in values.iter().enumerate() {
        events.push(Event::EpochReported {
            trial,
            epoch: i as u32 + 1,
            elapsed_s: (i + 1) as f64 * 0.01,
            lr: None,
            metrics: Metrics::from([("value".to_string(), value)]),
            checkpointed: false,
            time,
        });
    }
    events.push(Event::TrialFinished {
        trial,
        state: EndState::Complete,
        note: None,
        n_params: None,
        metrics: Metrics::new(),
        time,
    });
    events
}

/// `kiln dashboard` serving a sweep of 10,000 trials (`KILN_BENCH_DASHBOARD` trials) while
/// the sweep grows by a trial of 5 epochs every 0.5 s, written with kiln's own journal
/// appends: the time from an append to its appearance in `/api/sweeps`, the answer times of
/// the page's calls, and the server's memory and CPU over 30 s with headless Chromium (when
/// installed) showing the page and polling it.
fn dashboard(dir: &Path) {
    let n: u64 = std::env::var("KILN_BENCH_DASHBOARD")
        .map(|v| v.parse().unwrap())
        .unwrap_or(10_000);
    println!("dashboard: {n} trials");
    let file = dir.join("dashboard.toml");
    std::fs::write(
        &file,
        format!("name = \"dash\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\nepochs = 5\n[budget]\ntrials = {n}\n[space]\nx1 = {{ log_uniform = [1e-4, 1.0] }}\nx2 = {{ uniform = [-1.0, 1.0] }}\nx3 = {{ uniform = [-1.0, 1.0] }}\n"),
    )
    .unwrap();
    let results = dir.join("dashboard");
    kiln_run(&file, &results, 1);
    let started = Instant::now();
    let mut server = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["dashboard", results.to_str().unwrap(), "--port", "0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stderr.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let address = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    println!(
        "  ready to serve after {:.2} s",
        started.elapsed().as_secs_f64()
    );
    for path in [
        "/api/sweeps",
        "/api/trials",
        "/api/sweep",
        "/api/trials?since=0",
    ] {
        let times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                http_body(&address, path);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let size = http_body(&address, path).len();
        println!(
            "  GET {path:<22} {:>8.1} ms median of 5, {:>9} bytes",
            median(times),
            size
        );
    }
    let mut journal = FileJournal::open(&results.join("journal.jsonl")).unwrap();
    let mut next = n;
    let mut grow = |journal: &mut FileJournal| {
        let events = trial_events(next);
        next += 1;
        journal.append(&events, false).unwrap();
        events.len() as u64
    };
    let version = |address: &str| -> u64 {
        let body = http_body(address, "/api/sweeps");
        let sweeps: serde_json::Value = serde_json::from_str(&body).unwrap();
        sweeps["sweeps"][0]["version"].as_u64().unwrap()
    };
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let target = version(&address) + grow(&mut journal);
        let appended = Instant::now();
        while version(&address) < target {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        latencies.push(appended.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(std::time::Duration::from_millis(137));
    }
    let worst = latencies.iter().cloned().fold(0.0, f64::max);
    println!(
        "  append to /api/sweeps: {:.0} ms median, {worst:.0} ms worst of 20",
        median(latencies)
    );
    let browser = chromium_showing(&format!("http://{address}/"), dir);
    let before = cpu_seconds(server.id());
    let window = Instant::now();
    while window.elapsed().as_secs() < 30 {
        grow(&mut journal);
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let cpu = cpu_seconds(server.id()) - before;
    println!(
        "  30 s{} while the sweep grew by a trial each 0.5 s: server CPU {:.1}% of one core, peak memory {} MB",
        if browser.is_some() {
            " with Chromium showing the page"
        } else {
            " (no Chromium here: the API alone)"
        },
        cpu / window.elapsed().as_secs_f64() * 100.0,
        peak_rss_mb(server.id())
    );
    if let Some(mut browser) = browser {
        let _ = browser.kill();
        let _ = browser.wait();
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// The events of one more trial of the dashboard bench: created, 5 epochs, complete.
fn trial_events(trial: u64) -> Vec<Event> {
    let x = (trial % 97) as f64 / 97.0;
    let params = Params::from([
        ("x1".to_string(), ParamValue::Float(1e-4 + x)),
        ("x2".to_string(), ParamValue::Float(x - 0.5)),
        ("x3".to_string(), ParamValue::Float(0.5 - x)),
    ]);
    let values: Vec<f64> = (1..=5).map(|epoch| x / epoch as f64).collect();
    complete_trial_events(trial, params, &values)
}

/// The body of `GET path` from `address` (HTTP/1.1, read to its `Content-Length`).
fn http_body(address: &str, path: &str) -> String {
    use std::io::{BufRead, Read, Write};
    let stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        &stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// Headless Chromium showing `url`, if installed.
fn chromium_showing(url: &str, dir: &Path) -> Option<std::process::Child> {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium").display()
        ))
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
}

/// CPU seconds (user and system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// The most memory process `pid` has held, in MB.
fn peak_rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// How the cost of a whole `kiln run` per trial grows with the trials: a no-op objective
/// (sphere, 2 inputs, 1 worker), process start and final reports included; random to 100,000
/// trials, TPE to 10,000 (`KILN_BENCH_SCALE=1000,10000` picks the sizes).
fn scale(dir: &Path) {
    println!("scale: whole `kiln run`, no-op objective, 1 worker, ms per trial");
    let sizes: Option<Vec<u64>> = std::env::var("KILN_BENCH_SCALE")
        .ok()
        .map(|v| v.split(',').map(|n| n.trim().parse().unwrap()).collect());
    for (sampler, default) in [
        ("random", vec![1_000u64, 10_000, 100_000]),
        ("tpe", vec![1_000, 10_000]),
    ] {
        let mut first = None;
        for n in sizes.clone().unwrap_or(default) {
            let file = dir.join(format!("scale-{sampler}-{n}.toml"));
            std::fs::write(
                &file,
                format!("name = \"scale\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[budget]\ntrials = {n}\n[sampler]\nkind = \"{sampler}\"\n[space]\nx1 = {{ uniform = [-1.0, 1.0] }}\nx2 = {{ uniform = [-1.0, 1.0] }}\n"),
            )
            .unwrap();
            let results = dir.join(format!("scale-{sampler}-{n}"));
            let per_trial = kiln_run(&file, &results, 1) * 1e3 / n as f64;
            let base = *first.get_or_insert((n, per_trial));
            println!(
                "  {sampler:<6} {n:>6} trials: {per_trial:.3} ms per trial ({:.2}x the cost at {})",
                per_trial / base.1,
                base.0
            );
            let _ = std::fs::remove_dir_all(&results);
        }
    }
}

/// How parsing an experiment grows with its dimensions: 10x the keys should cost about 10x.
fn parse(dir: &Path) {
    let mut seconds = Vec::new();
    for n in [500usize, 5000] {
        let mut text = String::from(
            "name = \"big\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[space]\n",
        );
        for i in 1..=n {
            text.push_str(&format!("x{i} = {{ uniform = [-1.0, 1.0] }}\n"));
        }
        let best = (0..5)
            .map(|_| {
                let started = Instant::now();
                kiln::Experiment::parse(&text, Path::new("big.toml"), dir).unwrap();
                started.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min);
        println!("parse: {n} dimensions in {:.2} ms (best of 5)", best * 1e3);
        seconds.push(best);
    }
    println!(
        "  10x the dimensions cost {:.1}x the time",
        seconds[1] / seconds[0]
    );
}

/// What running a script as kiln's command trials costs: the stdlib example, 20 epochs, one
/// trial at a time, as kiln's trials warm (the default) and cold (`warm = false`), against
/// running it in one Python process (the script's `main` called per trial: what an in-process
/// peer pays) and as a fresh `python3` per trial.
fn command(dir: &Path) {
    let script = repo("examples/python/sine_stdlib.py");
    let epochs = "20";
    let trial_env = |command: &mut Command, trial: u64, folder: &Path| {
        command
            .env("KILN_TRIAL", trial.to_string())
            .env("KILN_SEED", (trial * 7919).to_string())
            .env("KILN_PARAMS", r#"{"learning_rate": 0.01, "momentum": 0.5}"#)
            .env("KILN_TRIAL_DIR", folder)
            .env("KILN_RESUME_EPOCH", "0");
    };
    let fresh_folder = |name: String| {
        let folder = dir.join(name);
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        folder
    };
    let direct = |n: u64| {
        let started = Instant::now();
        for trial in 0..n {
            let folder = fresh_folder(format!("direct-{trial}"));
            let mut command = Command::new("python3");
            command.arg(&script).args(["--epochs", epochs]);
            trial_env(&mut command, trial, &folder);
            assert!(command.output().unwrap().status.success());
        }
        started.elapsed().as_secs_f64()
    };
    let in_process = |n: u64| {
        let folder = fresh_folder("in-process".into());
        let code = format!(
            "import os, runpy, sys\nsys.argv = [{script:?}, '--epochs', '{epochs}']\nfor t in range({n}):\n    d = os.path.join({folder:?}, str(t)); os.makedirs(d)\n    os.environ.update(KILN_TRIAL=str(t), KILN_SEED=str(t * 7919), KILN_TRIAL_DIR=d)\n    runpy.run_path({script:?}, run_name='__main__')\n",
            script = script.display().to_string(),
            folder = folder.display().to_string(),
        );
        let mut command = Command::new("python3");
        command.args(["-c", &code]);
        trial_env(&mut command, 0, &folder);
        let started = Instant::now();
        assert!(command.output().unwrap().status.success());
        started.elapsed().as_secs_f64()
    };
    println!(
        "command: the stdlib example script ({epochs} epochs), one trial at a time, ms per trial, {}",
        cpu_model()
    );
    for n in [10u64, 100] {
        let experiment = |warm: bool| {
            let file = dir.join(format!("command-{n}-{warm}.toml"));
            std::fs::write(
                &file,
                format!(
                    "name = \"c\"\n[objective]\ncommand = [\"python3\", \"{}\", \"--epochs\", \"{epochs}\"]\nwarm = {warm}\nmetrics = [\"train_loss\", \"val_loss\"]\nmetric = \"val_loss\"\n[budget]\ntrials = {n}\nworkers = 1\n[space]\nlearning_rate = {{ log_uniform = [1e-3, 1e-1] }}\nmomentum = {{ uniform = [0.0, 0.9] }}\n",
                    script.display()
                ),
            )
            .unwrap();
            file
        };
        let (warm, cold) = (experiment(true), experiment(false));
        let results = dir.join(format!("command-{n}"));
        // Alternate to spread the machine's noise over all; keep the best of each.
        let per_trial = |seconds: f64| seconds * 1e3 / n as f64;
        let mut best = [f64::MAX; 4];
        for _ in 0..3 {
            best[0] = best[0].min(per_trial(in_process(n)));
            best[1] = best[1].min(per_trial(kiln_run(&warm, &results, 1)));
            best[2] = best[2].min(per_trial(direct(n)));
            best[3] = best[3].min(per_trial(kiln_run(&cold, &results, 1)));
        }
        let [inside, warm, alone, cold] = best;
        println!(
            "  {n} trials: in one python3 {inside:.1} ms, kiln warm {warm:.1} ms ({:+.1} ms per trial); a python3 per trial {alone:.1} ms, kiln cold {cold:.1} ms ({:+.1} ms)",
            warm - inside,
            cold - alone,
        );
    }
}

/// examples/python/digits_torch.toml (20 trials of 20 epochs, TPE, median pruner) as kiln's
/// command trials, warm (the default) and cold (`warm = false`), with 1 and 2 workers, beside
/// benches/peers/optuna_digits_torch.py (the same training functions, space, trials and pruning,
/// in-process on Optuna's threads), each in the same run. Wall seconds of each whole process, the
/// epochs trained, the best val_accuracy; and a trial's start cost from kiln's side (trial start
/// to first report, less one epoch: the second epoch's time), for a worker's first trial and later
/// ones. Skipped without torch and optuna.
fn torch(dir: &Path) {
    let peer = repo("benches/peers/optuna_digits_torch.py");
    let has = |m: &str| {
        Command::new("python3")
            .args(["-c", &format!("import {m}")])
            .output()
    };
    if !["torch", "optuna"]
        .iter()
        .all(|m| has(m).is_ok_and(|o| o.status.success()))
    {
        println!("torch: skipped (pip install torch optuna)");
        return;
    }
    let shipped = std::fs::read_to_string(repo("examples/python/digits_torch.toml")).unwrap();
    let script = repo("examples/python/digits_torch.py");
    let experiment = shipped.replace(
        "\"digits_torch.py\"",
        &format!("{:?}", script.display().to_string()),
    );
    println!(
        "torch: {} trials, {}; wall seconds of each whole process",
        20,
        cpu_model()
    );
    for workers in [2usize, 1] {
        for warm in [true, false] {
            let file = dir.join(format!("torch-{warm}.toml"));
            let mut text = experiment.replace("grace = ", &format!("warm = {warm}\ngrace = "));
            if !warm {
                // The data module is for the warm server; a cold trial reads its data itself.
                text = text
                    .lines()
                    .filter(|l| !l.starts_with("preload"))
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            std::fs::write(&file, text).unwrap();
            let results = dir.join(format!("torch-{warm}-{workers}"));
            let wall = kiln_run(&file, &results, workers);
            let state = sweep_state(&results);
            let (first, later) = start_costs(&results, workers);
            println!(
                "  kiln {} {workers} worker(s): {wall:.1} s, {} epochs, best val_accuracy {:.4}; start cost: first trial of a worker {:.0} ms, later trials {:.0} ms (medians)",
                if warm { "warm" } else { "cold" },
                state.trials.iter().map(|t| t.epochs.len()).sum::<usize>(),
                best_val_accuracy(&state),
                first * 1e3,
                later * 1e3,
            );
        }
        let started = Instant::now();
        let output = Command::new("python3")
            .arg(&peer)
            .args([
                "--trials",
                "20",
                "--epochs",
                "20",
                "--jobs",
                &workers.to_string(),
            ])
            .output()
            .unwrap();
        let wall = started.elapsed().as_secs_f64();
        let line: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        println!(
            "  optuna + pytorch in-process, {workers} job(s): {wall:.1} s ({:.1} s in study.optimize), {} epochs, best val_accuracy {:.4}",
            line["optimize_s"].as_f64().unwrap_or(f64::NAN),
            line["epochs"],
            line["best"].as_f64().unwrap_or(f64::NAN),
        );
    }
}

/// Medians of a trial's start cost (first report less one epoch's time, from curves.csv), over
/// the first `workers` trials (each a worker's first: they start at once) and over the rest.
fn start_costs(results: &Path, workers: usize) -> (f64, f64) {
    let text = std::fs::read_to_string(results.join("curves.csv")).unwrap();
    let mut elapsed: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let (trial, time) = (cells[0].parse().unwrap(), cells[2].parse().unwrap());
        elapsed.entry(trial).or_default().push(time);
    }
    let cost = |times: &Vec<f64>| match times.as_slice() {
        [first, second, ..] => Some(first - (second - first)),
        _ => None,
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let first = elapsed
        .iter()
        .take(workers)
        .filter_map(|(_, t)| cost(t))
        .collect();
    let later = elapsed
        .iter()
        .skip(workers)
        .filter_map(|(_, t)| cost(t))
        .collect();
    (median(first), median(later))
}

/// The CPU's model name, as /proc/cpuinfo gives it.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The custom example (a program built on kiln's command line) with more worker processes:
/// trials per hour, 16 trials of 300 epochs, no pruner.
fn custom(dir: &Path) {
    let program = repo("target/release/examples/custom_objective");
    let program = std::env::var("CARGO_TARGET_DIR")
        .map(|t| PathBuf::from(t).join("release/examples/custom_objective"))
        .ok()
        .filter(|p| p.exists())
        .unwrap_or(program);
    if !program.exists() {
        println!(
            "custom: skipped (build it first: cargo build --release --example custom_objective)"
        );
        return;
    }
    let experiment = std::fs::read_to_string(repo("examples/custom_objective.toml"))
        .unwrap()
        .replace("[pruner]\nkind = \"median\"", "[pruner]\nkind = \"none\"")
        .replace("epochs = 30", "epochs = 300")
        .replace("trials = 12", "trials = 16");
    let file = dir.join("custom.toml");
    std::fs::write(&file, experiment).unwrap();
    let results = dir.join("custom");
    let workers: Vec<usize> = std::env::var("KILN_BENCH_WORKERS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let mut best = vec![f64::MAX; workers.len()];
    for _ in 0..2 {
        for (i, &w) in workers.iter().enumerate() {
            best[i] = best[i].min(program_run(&program, &file, &results, w));
        }
    }
    println!("custom: examples/custom_objective, 16 trials x 300 epochs (best of 2 runs each)");
    for (&w, &seconds) in workers.iter().zip(&best) {
        println!(
            "  workers = {w}: {seconds:.2} s, {:.0} trials per hour, {:.2}x workers = {}",
            16.0 * 3600.0 / seconds,
            best[0] / seconds,
            workers[0]
        );
    }
}

/// The GPU check's measurements (only when named: it needs a GPU to say much).
fn gpu(dir: &Path) {
    let digits = repo("experiments/data/digits.csv");
    let split = repo("experiments/data/digits_split.csv");
    let train_rows = std::fs::read_to_string(&split)
        .unwrap()
        .lines()
        .filter(|l| *l == "train")
        .count() as f64;
    let cnn = "[model]\nkind = \"cnn\"\nconv_layers = 2\nchannels = 16\nkernel_size = 3\nhidden = 64\nlayers = 1\n[train]\nbatch_size = 64\n";
    let mlp = "[model]\nhidden = 1024\nlayers = 4\n[train]\nbatch_size = 256\n";
    let experiment = |model: &str, backend: &str, budget: &str| {
        format!(
            "name = \"gpu\"\nseed = 3\n[objective]\nmetric = \"val_accuracy\"\n[budget]\n{budget}\n[data]\npath = \"{}\"\ntarget = \"label\"\ntask = \"classification\"\nimage = [1, 8, 8]\n{model}epochs = 10\noptimizer = \"adamw\"\nlearning_rate = 1e-3\nbackend = \"{backend}\"\n",
            digits.display()
        )
    };
    let file = dir.join("gpu.toml");
    let works = |backend: &str| {
        std::fs::write(&file, experiment(mlp, backend, "trials = 1")).unwrap();
        let check = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["check", file.to_str().unwrap()])
            .output()
            .unwrap();
        check.status.success()
    };
    let backends: Vec<&str> = ["flex", "wgpu", "cuda"]
        .into_iter()
        .filter(|b| works(b))
        .collect();
    println!("gpu: backends that compute here: {}", backends.join(", "));
    let torch_cuda = |model: &str| -> Option<f64> {
        let shape: &[&str] = match model {
            "cnn" => &["--model", "cnn", "--batch-size", "64"],
            _ => &[
                "--model",
                "mlp",
                "--hidden",
                "1024",
                "--layers",
                "4",
                "--batch-size",
                "256",
            ],
        };
        let output = Command::new("python3")
            .arg(repo("benches/peers/torch_gpu.py"))
            .args(shape)
            .args([
                "--data",
                digits.to_str().unwrap(),
                "--split",
                split.to_str().unwrap(),
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .skip_while(|w| *w != "train_samples_per_s")
            .nth(1)?
            .parse()
            .ok()
    };
    let results = dir.join("gpu");
    for (name, model) in [("cnn", cnn), ("mlp", mlp)] {
        let torch = torch_cuda(name);
        for backend in &backends {
            std::fs::write(&file, experiment(model, backend, "trials = 1")).unwrap();
            kiln_run(&file, &results, 1);
            // The first epoch compiles kernels on a GPU: the median leaves it out.
            let (train, _) = epoch_seconds(&results);
            let rate = train_rows / median(train);
            let accuracy = best_val_accuracy(&sweep_state(&results));
            let against = torch.map_or("PyTorch CUDA skipped (no CUDA torch)".to_string(), |t| {
                format!("{:.2}x PyTorch CUDA's {t:.0}", rate / t)
            });
            println!(
                "  {name:<3} on {backend:<4}: {rate:>8.0} samples/s train+eval, val_accuracy {accuracy:.4}; {against}"
            );
        }
    }
    let Some(gpu) = backends.iter().rev().find(|b| **b != "flex") else {
        println!("  trials per hour sharing a GPU: skipped (no GPU backend computes here)");
        return;
    };
    let device = if *gpu == "cuda" { "cuda:0" } else { "wgpu" };
    for per_device in [1, 2, 4] {
        let budget =
            format!("trials = 8\ndevices = [\"{device}\"]\ntrials_per_device = {per_device}");
        let searched = experiment(mlp, gpu, &budget).replace("learning_rate = 1e-3\n", "")
            + "[space]\nlearning_rate = { log_uniform = [1e-4, 1e-2] }\n";
        std::fs::write(&file, searched).unwrap();
        let seconds = kiln_run(&file, &results, per_device);
        println!(
            "  MLP, 8 trials x 10 epochs on {device}, {per_device} at once: {seconds:.1} s, {:.0} trials/hour",
            8.0 * 3600.0 / seconds
        );
    }
}

/// The best val_accuracy of a sweep's trials (0 without one).
fn best_val_accuracy(state: &SweepState) -> f64 {
    state
        .best("val_accuracy", kiln::trial::Direction::Maximize)
        .map_or(0.0, |b| b.1)
}

/// The sweep in results folder `results`, replayed from its journal.
fn sweep_state(results: &Path) -> SweepState {
    SweepState::replay(&FileJournal::read(&results.join("journal.jsonl")).unwrap())
}

/// `experiments/digits.toml` as shipped, its data path made absolute.
fn shipped_digits() -> String {
    let text = std::fs::read_to_string(repo("experiments/digits.toml")).unwrap();
    text.replace(
        "path = \"data/digits.csv\"",
        &format!(
            "path = \"{}\"",
            repo("experiments/data/digits.csv").display()
        ),
    )
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs a sweep with the real binary; returns its wall time in seconds.
fn kiln_run(experiment: &Path, results: &Path, workers: usize) -> f64 {
    program_run(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        experiment,
        results,
        workers,
    )
}

/// Seconds `PROGRAM run EXPERIMENT` takes with `workers` (kiln, or a program built on kiln).
fn program_run(program: &Path, experiment: &Path, results: &Path, workers: usize) -> f64 {
    let _ = std::fs::remove_dir_all(results);
    let started = Instant::now();
    let output = Command::new(program)
        .args([
            "run",
            experiment.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--quiet",
        ])
        .args(["--workers", &workers.to_string()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed().as_secs_f64()
}

fn scaling(dir: &Path) {
    let experiment = format!(
        r#"name = "scaling"
seed = 1
[objective]
metric = "val_accuracy"
[budget]
trials = 8
[data]
path = "{}"
target = "label"
task = "classification"
[model]
hidden = 256
[train]
epochs = 10
batch_size = 32
[space]
learning_rate = {{ log_uniform = [1e-4, 1e-2] }}
dropout = {{ uniform = [0.0, 0.3] }}
"#,
        repo("experiments/data/digits.csv").display()
    );
    let file = dir.join("scaling.toml");
    std::fs::write(&file, experiment).unwrap();
    let results = dir.join("scaling");
    // Alternate to spread the machine's noise over both; keep the best of each.
    let (mut one, mut two) = (f64::MAX, f64::MAX);
    for _ in 0..2 {
        one = one.min(kiln_run(&file, &results, 1));
        two = two.min(kiln_run(&file, &results, 2));
    }
    println!("scaling: 8 trials x 10 epochs, MLP 64-256-256-10, batch 32 (best of 2 runs each)");
    println!(
        "  workers = 1: {one:.2} s   workers = 2: {two:.2} s   ratio {:.2}x the wall time ({:.2}x faster)",
        two / one,
        one / two
    );
}

/// Per-epoch seconds of trial 0: training and evaluation (`elapsed_s` deltas), and end to end
/// (the journal's report times, which include checkpointing and reporting).
fn epoch_seconds(results: &Path) -> (Vec<f64>, Vec<f64>) {
    let journal = FileJournal::read(&results.join("journal.jsonl")).unwrap();
    let (mut elapsed, mut wall) = (Vec::new(), Vec::new());
    for e in &journal {
        if let Event::EpochReported {
            trial: 0,
            elapsed_s,
            time,
            ..
        } = e
        {
            elapsed.push(*elapsed_s);
            wall.push(*time);
        }
    }
    let deltas = |v: &[f64]| v.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>();
    (deltas(&elapsed), deltas(&wall))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn throughput(dir: &Path) {
    let script = repo("benches/peers/torch_mlp.py");
    let has_torch = Command::new("python3")
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    // The digits CSV with the fixed split of digits_split.csv as a column, so both read the same rows.
    let digits = std::fs::read_to_string(repo("experiments/data/digits.csv")).unwrap();
    let split = std::fs::read_to_string(repo("experiments/data/digits_split.csv")).unwrap();
    // PyTorch's script trains on `train` and evaluates `val` each epoch; the `test` rows are
    // left out here too, so both do the same work (kiln would evaluate a test split each epoch).
    let merged: String = digits
        .lines()
        .zip(split.lines())
        .filter(|(_, s)| *s != "test")
        .map(|(d, s)| format!("{d},{s}\n"))
        .collect();
    let data = dir.join("digits_with_split.csv");
    std::fs::write(&data, merged).unwrap();
    let train_rows = split.lines().filter(|l| *l == "train").count() as f64;
    println!(
        "throughput: MLP 64-256-256-10, AdamW (lr 1e-3, weight decay 0.01), 20 epochs, one thread, digits train split ({train_rows} rows), val evaluated each epoch; best of {ROUNDS} alternating rounds"
    );
    for (dropout, clip) in [(0.0, 0.0), (0.1, 1.0)] {
        for batch in [32, 256] {
            let clip_line = if clip > 0.0 {
                format!("grad_clip_norm = {clip}\n")
            } else {
                String::new()
            };
            let experiment = format!(
                "name = \"tp\"\n[objective]\nmetric = \"val_accuracy\"\n[budget]\ntrials = 1\nworkers = 1\n[data]\npath = \"{}\"\ntarget = \"label\"\ntask = \"classification\"\nsplit_column = \"split\"\n[model]\nhidden = 256\nlayers = 2\ndropout = {dropout}\n[train]\nepochs = 20\nbatch_size = {batch}\nlearning_rate = 1e-3\nweight_decay = 0.01\n{clip_line}",
                data.display()
            );
            let file = dir.join("tp.toml");
            std::fs::write(&file, experiment).unwrap();
            let results = dir.join("tp");
            let mut torch_args = vec![
                script.display().to_string(),
                "--data".into(),
                repo("experiments/data/digits.csv").display().to_string(),
                "--split".into(),
                repo("experiments/data/digits_split.csv")
                    .display()
                    .to_string(),
                "--batch-size".into(),
                batch.to_string(),
                "--epochs".into(),
                "20".into(),
                "--threads".into(),
                "1".into(),
            ];
            if dropout > 0.0 {
                torch_args.extend([
                    "--dropout".into(),
                    dropout.to_string(),
                    "--clip".into(),
                    clip.to_string(),
                ]);
            }
            // This machine's speed drifts by tens of percent over seconds, so kiln and PyTorch
            // take turns, ROUNDS times, and each side's best round counts (noise only slows).
            let (mut kiln_train, mut kiln_wall, mut torch, mut ratios) =
                (0.0f64, 0.0f64, None::<f64>, Vec::new());
            for _ in 0..ROUNDS {
                kiln_run(&file, &results, 1);
                let (train, wall) = epoch_seconds(&results);
                let wall = train_rows / median(wall);
                kiln_train = kiln_train.max(train_rows / median(train));
                kiln_wall = kiln_wall.max(wall);
                if has_torch {
                    let output = Command::new("python3").args(&torch_args).output().unwrap();
                    let rate = String::from_utf8_lossy(&output.stdout)
                        .split_whitespace()
                        .skip_while(|w| *w != "train_samples_per_s")
                        .nth(1)
                        .and_then(|n| n.parse::<f64>().ok());
                    if let Some(rate) = rate {
                        torch = Some(torch.unwrap_or(0.0).max(rate));
                        ratios.push(wall / rate);
                    }
                }
            }
            let label = if dropout > 0.0 {
                "dropout 0.1 + clip 1.0"
            } else {
                "no dropout"
            };
            match torch {
                Some(t) => println!(
                    "  batch {batch:>3}, {label:<22}: kiln {kiln_train:>7.0} samples/s train+eval ({:.2}x PyTorch), {kiln_wall:>7.0} end to end with checkpoints ({:.2}x; rounds {:.2}x to {:.2}x); PyTorch {t:.0}",
                    kiln_train / t,
                    kiln_wall / t,
                    ratios.iter().copied().fold(f64::INFINITY, f64::min),
                    ratios.iter().copied().fold(0.0, f64::max),
                ),
                None => println!(
                    "  batch {batch:>3}, {label:<22}: kiln {kiln_train:>7.0} samples/s train+eval, {kiln_wall:>7.0} end to end; PyTorch skipped (pip install torch)"
                ),
            }
        }
    }
}

/// Rounds of the throughput benchmark (kiln and PyTorch alternate).
const ROUNDS: usize = 5;

fn replay(dir: &Path) {
    let path = dir.join("replay.jsonl");
    let mut journal = FileJournal::open(&path).unwrap();
    let mut events = Vec::new();
    let metrics: Metrics = [
        "train_loss",
        "val_loss",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| (m.to_string(), 0.123456789 * (i + 1) as f64))
    .collect();
    let mut trial = 0;
    while events.len() < 100_000 {
        let params: Params = [
            (
                "learning_rate".to_string(),
                ParamValue::Float(0.00123456789),
            ),
            ("batch_size".to_string(), ParamValue::Int(64)),
        ]
        .into();
        events.push(Event::TrialCreated {
            trial,
            seed: trial * 7,
            params,
            queued: false,
            time: 1.0,
        });
        for epoch in 1..=48 {
            events.push(Event::EpochReported {
                trial,
                epoch,
                elapsed_s: epoch as f64,
                lr: Some(1e-3),
                metrics: metrics.clone(),
                checkpointed: true,
                time: 1.0,
            });
        }
        events.push(Event::TrialFinished {
            trial,
            state: EndState::Complete,
            note: None,
            n_params: Some(85_002),
            metrics: Metrics::new(),
            time: 1.0,
        });
        trial += 1;
    }
    events.truncate(100_000);
    journal.append(&events, true).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let state = SweepState::replay(&FileJournal::read(&path).unwrap());
        best = best.min(started.elapsed().as_secs_f64());
        assert_eq!(state.events, 100_000);
    }
    println!(
        "replay: 100,000 events ({:.1} MB, {trial} trials): read + parse + fold in {:.3} s (best of 3)",
        size as f64 / 1e6,
        best
    );
}

fn checkpoint(dir: &Path) {
    for workers in [1, 2] {
        checkpoint_with(dir, workers);
    }
}

fn checkpoint_with(dir: &Path, workers: usize) {
    let results = dir.join("quickstart");
    let wall = kiln_run(&repo("experiments/quickstart.toml"), &results, workers);
    let journal = FileJournal::read(&results.join("journal.jsonl")).unwrap();
    let state = SweepState::replay(&journal);
    // Per trial: epochs 2.. between consecutive reports. The report time comes after the
    // checkpoint is written; elapsed_s is measured before it. The difference is what saving a
    // checkpoint (and reporting the epoch) costs.
    let mut times: std::collections::BTreeMap<u64, Vec<(f64, f64)>> = Default::default();
    for e in &journal {
        if let Event::EpochReported {
            trial,
            elapsed_s,
            time,
            ..
        } = e
        {
            times.entry(*trial).or_default().push((*elapsed_s, *time));
        }
    }
    let (mut total, mut training) = (0.0, 0.0);
    for reports in times.values() {
        for w in reports.windows(2) {
            total += w[1].1 - w[0].1;
            training += w[1].0 - w[0].0;
        }
    }
    let epochs: usize = state.trials.iter().map(|t| t.epochs.len()).sum();
    let size = std::fs::metadata(results.join("trials/0/checkpoint.1.bin"))
        .unwrap()
        .len();
    println!(
        "checkpoint: quickstart, workers = {workers}, {} trials, {epochs} epochs, {wall:.2} s wall; checkpoint {:.0} KB; saving and reporting adds {:.1}% to epoch time ({:.2} ms per epoch)",
        state.trials.len(),
        size as f64 / 1e3,
        100.0 * (total - training) / training,
        1e3 * (total - training) / (epochs - times.len()) as f64
    );
}

/// Median simple regret (best value found minus the function's minimum) after 50 and 100
/// trials, over 20 seeds, for each sampler.
fn regret(dir: &Path) {
    use kiln::objective::function::{Function, FunctionObjective};
    use kiln::sweep::{Execution, SweepOptions};
    use std::sync::Arc;
    let spaces = [
        (
            "branin",
            Function::Branin,
            "x1 = { uniform = [-5.0, 10.0] }\nx2 = { uniform = [0.0, 15.0] }\n".to_string(),
        ),
        (
            "hartmann6",
            Function::Hartmann6,
            (1..=6)
                .map(|i| format!("x{i} = {{ uniform = [0.0, 1.0] }}\n"))
                .collect::<String>(),
        ),
    ];
    println!(
        "regret: median simple regret over 20 seeds (best found minus the minimum), one trial at a time"
    );
    for (name, function, space) in &spaces {
        for sampler in ["random", "sobol", "tpe", "tpe-mv"] {
            let started = Instant::now();
            let mut at = [Vec::new(), Vec::new()];
            for seed in 0..20 {
                let text = format!(
                    "name = \"r\"\nseed = {seed}\n[objective]\nmetric = \"value\"\nkind = \"function\"\nfunction = \"{name}\"\nepochs = 1\n[budget]\ntrials = 100\nworkers = 1\n[sampler]\nkind = \"{}\"\nmultivariate = {}\n[space]\n{space}",
                    sampler.trim_end_matches("-mv"),
                    sampler.ends_with("-mv")
                );
                let experiment =
                    kiln::Experiment::parse(&text, Path::new("regret.toml"), dir).unwrap();
                let results = dir.join(format!("regret-{name}-{sampler}-{seed}"));
                let options = SweepOptions {
                    results_dir: results,
                    quiet: true,
                    ..SweepOptions::default()
                };
                let objective = Arc::new(FunctionObjective::new(&experiment).unwrap());
                let outcome =
                    kiln::sweep::run(&experiment, &options, Execution::Threads(objective)).unwrap();
                let values: Vec<f64> = outcome
                    .state
                    .trials
                    .iter()
                    .map(|t| t.epochs[0].metrics["value"])
                    .collect();
                for (slot, n) in [50, 100].iter().enumerate() {
                    let best = values[..*n].iter().copied().fold(f64::MAX, f64::min);
                    at[slot].push(best - function.minimum(function.inputs().0));
                }
            }
            let [fifty, hundred] = at;
            println!(
                "  {name:<10} {sampler:<7} after 50: {:.5}   after 100: {:.5}   ({:.1} s for 20 x 100 trials)",
                median(fifty),
                median(hundred),
                started.elapsed().as_secs_f64()
            );
        }
        optimizer_crate_tpe(name, *function);
    }
}

/// The same regret for the `optimizer` crate's TPE (its defaults, seeded), in memory.
fn optimizer_crate_tpe(name: &str, function: kiln::objective::function::Function) {
    use optimizer::prelude::*;
    let bounds: Vec<(f64, f64)> = match function {
        kiln::objective::function::Function::Branin => vec![(-5.0, 10.0), (0.0, 15.0)],
        _ => vec![(0.0, 1.0); 6],
    };
    let started = Instant::now();
    let mut at = [Vec::new(), Vec::new()];
    for seed in 0..20u64 {
        let sampler = TpeSampler::builder().seed(seed).build().unwrap();
        let study: Study<f64> = Study::with_sampler(Direction::Minimize, sampler);
        let params: Vec<FloatParam> = bounds
            .iter()
            .enumerate()
            .map(|(i, &(low, high))| FloatParam::new(low, high).name(format!("x{}", i + 1)))
            .collect();
        study
            .optimize(100, |trial: &mut optimizer::Trial| {
                let x: Vec<f64> = params
                    .iter()
                    .map(|p| p.suggest(trial))
                    .collect::<optimizer::Result<_>>()?;
                Ok::<_, optimizer::Error>(function.evaluate(&x))
            })
            .unwrap();
        let mut trials = study.trials();
        trials.sort_by_key(|t| t.id);
        let values: Vec<f64> = trials.iter().map(|t| t.value).collect();
        for (slot, n) in [50, 100].iter().enumerate() {
            let best = values[..*n].iter().copied().fold(f64::MAX, f64::min);
            at[slot].push(best - function.minimum(function.inputs().0));
        }
    }
    let [fifty, hundred] = at;
    println!(
        "  {name:<10} optimizer crate tpe after 50: {:.5}   after 100: {:.5}   ({:.1} s)",
        median(fifty),
        median(hundred),
        started.elapsed().as_secs_f64()
    );
}

/// The no-op objective of `benches/peers/optuna_overhead.py`: five parameters, one report.
struct NoOp;

impl kiln::Objective for NoOp {
    fn metrics(&self, _: &kiln::Experiment) -> kiln::Result<Vec<String>> {
        Ok(vec!["value".into()])
    }

    fn run(&self, trial: &mut kiln::Trial<'_>) -> Result<kiln::TrialSummary, kiln::TrialError> {
        let cat = match trial.string("c")? {
            "relu" => 0.0,
            "tanh" => 0.5,
            _ => 1.0,
        };
        let value = (trial.float("a")?.log10() + 3.0).powi(2)
            + (trial.float("b")?.log10() + 4.0).powi(2)
            + 0.1 * (trial.int("k")? as f64 - 4.0).powi(2)
            + cat
            + (trial.float("u")? - 0.3).powi(2);
        trial.report(1, Metrics::from([("value".to_string(), value)]));
        Ok(kiln::TrialSummary::default())
    }
}

/// Milliseconds per trial of a no-op objective, journal on disk, one trial at a time; Optuna 5
/// with its journal-file storage on the same machine in the same run.
fn overhead(dir: &Path) {
    use kiln::sweep::{Execution, SweepOptions};
    use std::sync::Arc;
    println!(
        "overhead: ms per trial, no-op objective of 5 parameters, one trial at a time, durable journal"
    );
    let mut kiln_ms = std::collections::BTreeMap::new();
    for sampler in ["random", "tpe"] {
        for n in [100u64, 1000] {
            let text = format!(
                "name = \"o\"\nseed = 0\n[objective]\nmetric = \"value\"\nkind = \"noop\"\n[budget]\ntrials = {n}\nworkers = 1\n[sampler]\nkind = \"{sampler}\"\n[space]\na = {{ log_uniform = [1e-5, 1e-1] }}\nb = {{ log_uniform = [1e-6, 1e-2] }}\nk = {{ int = [1, 8] }}\nc = {{ choice = [\"relu\", \"tanh\", \"gelu\"] }}\nu = {{ uniform = [0.0, 1.0] }}\n"
            );
            let experiment =
                kiln::Experiment::parse(&text, Path::new("overhead.toml"), dir).unwrap();
            let mut runs = Vec::new();
            for repeat in 0..3 {
                let options = SweepOptions {
                    results_dir: dir.join(format!("overhead-{sampler}-{n}-{repeat}")),
                    quiet: true,
                    ..SweepOptions::default()
                };
                let started = Instant::now();
                kiln::sweep::run(&experiment, &options, Execution::Threads(Arc::new(NoOp)))
                    .unwrap();
                runs.push(started.elapsed().as_secs_f64() * 1e3 / n as f64);
            }
            kiln_ms.insert((sampler, n), median(runs));
        }
    }
    let script = repo("benches/peers/optuna_overhead.py");
    let optuna = Command::new("python3")
        .arg(&script)
        .args([
            "--samplers",
            "random",
            "tpe",
            "--storages",
            "journal",
            "--n-trials",
            "100",
            "1000",
            "--repeats",
            "3",
            "--repeats-large",
            "1",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success());
    let mut optuna_ms = std::collections::BTreeMap::new();
    if let Some(output) = &optuna {
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some(json) = line.strip_prefix("ROW ") {
                let row: serde_json::Value = serde_json::from_str(json).unwrap();
                let sampler = if row["sampler"] == "tpe" {
                    "tpe"
                } else {
                    "random"
                };
                let n = row["n_trials"].as_u64().unwrap();
                optuna_ms.insert(
                    (sampler, n),
                    row["per_trial_mean_ms_median"].as_f64().unwrap(),
                );
            }
        }
    }
    // A whole `kiln run` as a user starts it: process start, durable journal and final reports
    // included. The built-in sphere function of 5 uniform inputs stands in for the no-op.
    for sampler in ["random", "tpe"] {
        let n = 1000u64;
        let file = dir.join(format!("whole-{sampler}.toml"));
        std::fs::write(
            &file,
            format!("name = \"whole\"\nseed = 0\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[budget]\ntrials = {n}\n[sampler]\nkind = \"{sampler}\"\n[space]\nx1 = {{ uniform = [-1.0, 1.0] }}\nx2 = {{ uniform = [-1.0, 1.0] }}\nx3 = {{ uniform = [-1.0, 1.0] }}\nx4 = {{ uniform = [-1.0, 1.0] }}\nx5 = {{ uniform = [-1.0, 1.0] }}\n"),
        )
        .unwrap();
        let runs = (0..3)
            .map(|r| kiln_run(&file, &dir.join(format!("whole-{sampler}-{r}")), 1) * 1e3 / n as f64)
            .collect();
        let ms = median(runs);
        match optuna_ms.get(&(sampler, n)) {
            Some(o) => println!(
                "  {sampler:<6} {n:>5} trials, whole `kiln run`: {ms:.3} ms, Optuna's optimize() alone {o:.2} ms: kiln {:.0}x cheaper",
                o / ms
            ),
            None => println!("  {sampler:<6} {n:>5} trials, whole `kiln run`: {ms:.3} ms"),
        }
    }
    for ((sampler, n), ms) in &kiln_ms {
        match optuna_ms.get(&(*sampler, *n)) {
            Some(o) => println!(
                "  {sampler:<6} {n:>5} trials: kiln {ms:.3} ms, Optuna (journal file) {o:.2} ms: kiln {:.0}x cheaper",
                o / ms
            ),
            None => println!(
                "  {sampler:<6} {n:>5} trials: kiln {ms:.3} ms; Optuna skipped (pip install optuna)"
            ),
        }
    }
}

/// `experiments/digits.toml` as shipped (no pruning) and with ASHA: best val_accuracy and the
/// epochs trained in all.
fn asha(dir: &Path) {
    let base = shipped_digits();
    println!("asha: experiments/digits.toml (40 trials, up to 30 epochs, patience 5), 2 workers");
    for (label, pruner) in [
        ("no pruning", "kind = \"none\""),
        (
            "asha",
            "kind = \"asha\"\nmin_epochs = 3\nreduction_factor = 3",
        ),
    ] {
        let file = dir.join(format!("digits-{}.toml", label.replace(' ', "-")));
        std::fs::write(
            &file,
            base.replace("[pruner]\nkind = \"none\"", &format!("[pruner]\n{pruner}")),
        )
        .unwrap();
        let results = dir.join(format!("digits-{}", label.replace(' ', "-")));
        let wall = kiln_run(&file, &results, 2);
        let state = sweep_state(&results);
        let best = best_val_accuracy(&state);
        let epochs: usize = state.trials.iter().map(|t| t.epochs.len()).sum();
        let pruned = state.count(kiln::state::TrialState::Ended(EndState::Pruned));
        println!(
            "  {label:<10}: best val_accuracy {best:.4}, {epochs} epochs trained, {pruned} trials pruned, {wall:.1} s"
        );
    }
}

/// Trials per second of a no-op objective (the 5-input sphere, one report per trial, random
/// sampler) for 1, 2, 4 and 8 `kiln worker` processes sharing one sweep in PostgreSQL; Optuna's
/// RDB storage on the same server in the same run (one process: the peer script's setting).
#[cfg(feature = "postgres")]
fn shared(dir: &Path) {
    let Ok(url) = std::env::var("KILN_BENCH_POSTGRES") else {
        println!("shared: skipped (set KILN_BENCH_POSTGRES=postgres://USER@HOST:PORT/DB)");
        return;
    };
    let trials = 1000;
    let file = dir.join("noop.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"noop\"\nseed = 0\n[objective]\nmetric = \"value\"\ndirection = \"minimize\"\nkind = \"function\"\nfunction = \"sphere\"\nepochs = 1\n[budget]\ntrials = {trials}\nworkers = 1\n[space]\nx1 = {{ uniform = [-1.0, 1.0] }}\nx2 = {{ uniform = [-1.0, 1.0] }}\nx3 = {{ uniform = [-1.0, 1.0] }}\nx4 = {{ uniform = [-1.0, 1.0] }}\nx5 = {{ uniform = [-1.0, 1.0] }}\n"
        ),
    )
    .unwrap();
    let kiln = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
        command.current_dir(dir);
        command
    };
    println!(
        "shared: {trials} trials of a no-op objective, `kiln worker` processes on one PostgreSQL"
    );
    let mut one = 0.0;
    for workers in [1, 2, 4, 8] {
        let name = format!("bench-noop-{workers}");
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let _ = client.execute("DELETE FROM kiln_sweeps WHERE name = $1", &[&name]);
        let created = kiln()
            .args([
                "run",
                file.to_str().unwrap(),
                "--storage",
                &url,
                "--sweep-name",
                &name,
            ])
            .args(["--workers", "0"])
            .output()
            .unwrap();
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        let started = Instant::now();
        let children: Vec<_> = (0..workers)
            .map(|_| {
                kiln()
                    .args([
                        "worker",
                        "--storage",
                        &url,
                        "--sweep",
                        &name,
                        "--workers",
                        "1",
                        "-q",
                    ])
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        let rate = trials as f64 / started.elapsed().as_secs_f64();
        if workers == 1 {
            one = rate;
        }
        println!(
            "  {workers} worker processes: {rate:7.1} trials/s ({:.2}x one worker)",
            rate / one
        );
    }
    let optuna = Command::new("python3")
        .arg(repo("benches/peers/optuna_overhead.py"))
        .args(["--samplers", "random", "--storages", "rdb", "--rdb-url"])
        // SQLAlchemy 2.1 reads `postgresql://` as psycopg 3; the peer script names psycopg2.
        .arg(url.replacen("postgres://", "postgresql+psycopg2://", 1))
        .args(["--n-trials", &trials.to_string(), "--repeats-large", "1"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    let rate = optuna.and_then(|output| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("ROW "))
            .filter_map(|json| serde_json::from_str::<serde_json::Value>(json).ok())
            .find_map(|row| row["trials_per_s_median"].as_f64())
    });
    match rate {
        Some(rate) => println!(
            "  Optuna RDB, 1 process: {rate:7.1} trials/s; kiln with 1 worker is {:.1}x that",
            one / rate
        ),
        None => println!("  Optuna RDB skipped (pip install optuna psycopg2-binary)"),
    }
}
