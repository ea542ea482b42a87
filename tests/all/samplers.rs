//! What a user sees of the samplers' choices: `kind = "auto"` says in `kiln check` what it
//! picks, and then runs exactly that sampler.

use crate::common::{run, sweep, text, write};
use std::path::Path;

/// A sweep of `function` (ZDT1: two objectives) with `sampler` and `space`.
fn function_sweep(sampler: &str, space: &str, function: &str) -> String {
    let objective = match function {
        "zdt1" => "function = \"zdt1\"\nmetric = [\"f1\", \"f2\"]\ndirection = [\"minimize\", \"minimize\"]".to_string(),
        _ => format!("function = \"{function}\"\nmetric = \"value\"\ndirection = \"minimize\""),
    };
    format!(
        "name = \"s\"\nseed = 4\n[objective]\nkind = \"function\"\n{objective}\n[budget]\ntrials = 16\nworkers = 1\n[sampler]\nkind = \"{sampler}\"\nstartup_trials = 5\n[space]\n{space}"
    )
}

/// The parameters of every trial the sweep in `results` created, in order.
fn proposals(results: &Path) -> Vec<String> {
    std::fs::read_to_string(results.join("journal.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"trial_created\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["params"].to_string()
        })
        .collect()
}

#[test]
fn auto_picks_what_kiln_check_says_for_a_numeric_a_conditional_and_a_two_objective_space() {
    let numeric = "x1 = { uniform = [-5.0, 10.0] }\nx2 = { uniform = [0.0, 15.0] }\n";
    let conditional = "x1 = { uniform = [-5.0, 5.0] }\nx2 = { uniform = [-5.0, 5.0] }\nx3 = { choice = [0, 1] }\nx4 = { uniform = [-5.0, 5.0], when = { x3 = 1 } }\n";
    let zdt = "x1 = { uniform = [0.0, 1.0] }\nx2 = { uniform = [0.0, 1.0] }\nx3 = { uniform = [0.0, 1.0] }\n";
    for (label, space, function, picked, said) in [
        (
            "numeric",
            numeric,
            "branin",
            "gp",
            "auto sampler: gp sampler",
        ),
        (
            "conditional",
            conditional,
            "sphere",
            "tpe",
            "auto sampler: tpe sampler",
        ),
        (
            "two objectives",
            zdt,
            "zdt1",
            "gp",
            "auto sampler: gp sampler",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let auto = write(
            dir.path(),
            "auto.toml",
            &function_sweep("auto", space, function),
        );
        let check = run(&["check", auto.to_str().unwrap()]);
        assert!(check.status.success(), "{label}: {}", text(&check));
        let shown = String::from_utf8_lossy(&check.stdout);
        assert!(shown.contains(said), "{label}: kiln check says\n{shown}");
        // The same sweep with the sampler named outright proposes the same trials.
        let named = write(
            dir.path(),
            "named.toml",
            &function_sweep(picked, space, function),
        );
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        sweep(&auto, &a, &[]);
        sweep(&named, &b, &[]);
        assert_eq!(
            proposals(&a),
            proposals(&b),
            "{label}: auto is not {picked}"
        );
        assert_eq!(proposals(&a).len(), 16);
    }
}

#[test]
fn a_sweep_keeps_the_default_sampler_it_started_with_across_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let space = "x1 = { uniform = [-5.0, 10.0] }\nx2 = { uniform = [0.0, 15.0] }\n";
    let experiment = |sampler: &str, trials: u32| {
        format!(
            "name = \"u\"\nseed = 3\n[objective]\nkind = \"function\"\nfunction = \"branin\"\nmetric = \"value\"\n[budget]\ntrials = {trials}\nworkers = 1\n{sampler}[space]\n{space}"
        )
    };
    let named = |kind: &str| {
        let file = write(
            dir.path(),
            &format!("{kind}.toml"),
            &experiment(&format!("[sampler]\nkind = \"{kind}\"\n"), 16),
        );
        let results = dir.path().join(kind);
        sweep(&file, &results, &[]);
        proposals(&results)
    };
    let (random, gp) = (named("random"), named("gp"));
    assert_ne!(random[10..], gp[10..], "the GP models from trial 10 on");
    let default = write(dir.path(), "default.toml", &experiment("", 4));
    for (label, old_journal, expected) in [
        ("today's", false, &gp),
        ("an earlier kiln's", true, &random),
    ] {
        let results = dir.path().join(format!("default-{old_journal}"));
        sweep(&default, &results, &[]);
        if old_journal {
            // A journal written before `auto` was the default does not say which it had.
            let path = results.join("journal.jsonl");
            let text = std::fs::read_to_string(&path).unwrap();
            let older = text.replacen("\"default_sampler\":\"auto\",", "", 1);
            assert_ne!(older, text, "the journal names its default sampler");
            std::fs::write(&path, older).unwrap();
        }
        let output = run(&["resume", results.to_str().unwrap(), "--trials", "16", "-q"]);
        assert!(output.status.success(), "{label}: {}", text(&output));
        assert_eq!(
            &proposals(&results),
            expected,
            "{label} sweep resumed with another sampler"
        );
    }
    // A newer kiln's default, unknown here: refused, not replaced, and the journal kept as it was.
    let results = dir.path().join("default-newer");
    sweep(&default, &results, &[]);
    let path = results.join("journal.jsonl");
    let journal = std::fs::read_to_string(&path).unwrap();
    let newer = journal.replacen(
        "\"default_sampler\":\"auto\"",
        "\"default_sampler\":\"lattice\"",
        1,
    );
    std::fs::write(&path, &newer).unwrap();
    let output = run(&["resume", results.to_str().unwrap(), "--trials", "16", "-q"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("`lattice`"), "{}", text(&output));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), newer);
}
