//! Helpers shared by the integration tests: run the real `kiln` binary in temporary folders.

use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Environment of the interrupted runs (the reference runs without it).
pub type Env<'a> = &'a [(&'a str, &'a str)];

/// How many epochs the journal of `results` holds.
pub fn reported_epochs(results: &Path) -> usize {
    std::fs::read_to_string(results.join("journal.jsonl"))
        .unwrap_or_default()
        .matches("\"event\":\"epoch_reported\"")
        .count()
}

/// Starts `kiln run file --results results -q` from `kiln` (stderr to `stderr`) and returns it
/// once the journal holds `epochs` epochs; fails after `within`.
pub fn run_until_reported(
    mut kiln: Command,
    (file, results): (&Path, &Path),
    stderr: Stdio,
    epochs: usize,
    within: Duration,
) -> Child {
    let child = kiln
        .args(["run", file.to_str().unwrap(), "--results"])
        .arg(results)
        .arg("-q")
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + within;
    while reported_epochs(results) < epochs {
        assert!(
            Instant::now() < deadline,
            "{}: no {epochs} reports in the journal after {within:?}",
            results.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// The kiln binary under test, run as a person runs it from their PATH: its `argv[0]` is
/// `kiln`, the name the commands it prints begin with.
pub fn kiln() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    std::os::unix::process::CommandExt::arg0(&mut command, "kiln");
    command
}

/// Runs kiln with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    kiln().args(args).output().expect("kiln runs")
}

/// Runs `kiln run EXPERIMENT --results RESULTS --quiet EXTRA...` and asserts it succeeds.
pub fn sweep(experiment: &Path, results: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        experiment.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let output = run(&args);
    assert!(output.status.success(), "{}", text(&output));
}

/// A data file shipped with the repository.
pub fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments/data")
        .join(name)
        .display()
        .to_string()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A small, fast digits sweep: `trials` trials of `epochs` epochs on `workers` workers.
pub fn digits_experiment(name: &str, trials: u32, workers: u32, epochs: u32) -> String {
    format!(
        r#"name = "{name}"
seed = 5

[objective]
metric = "val_accuracy"

[budget]
trials = {trials}
workers = {workers}

[data]
path = "{data}"
target = "label"
task = "classification"

[model]
hidden = 32

[train]
epochs = {epochs}
batch_size = 16

[early_stopping]
monitor = "val_loss"
patience = 3

[space]
learning_rate = {{ log_uniform = [1e-3, 3e-2] }}
dropout = {{ uniform = [0.0, 0.3] }}
"#,
        data = data("digits.csv")
    )
}

/// The rows of a CSV file, as maps from column to value.
pub fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            headers
                .iter()
                .zip(r.unwrap().iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The leaderboard's rows by trial number, without the columns that measure time.
pub fn leaderboard_by_trial(dir: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    csv_rows(&dir.join("leaderboard.csv"))
        .into_iter()
        .map(|mut row| {
            row.remove("duration_s");
            (row["trial"].clone(), row)
        })
        .collect()
}

/// Runs kiln and checks it exits 2 with `fragment` in its message, without a panic.
pub fn refused(args: &[&str], fragment: &str) {
    let output = run(args);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(fragment), "{args:?}: {}", text(&output));
    assert!(!stderr.contains("panicked"), "{}", text(&output));
}

/// stdout and stderr as text, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Trial numbers in the journal's `trial_created` events, in order.
pub fn created_trials(results: &Path) -> Vec<u64> {
    std::fs::read_to_string(results.join("journal.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "trial_created")
        .map(|e| e["trial"].as_u64().unwrap())
        .collect()
}

/// Kills `PROGRAM run`/`PROGRAM resume` (kiln, or a program built on kiln's command line) with
/// SIGKILL at random moments until `kills` kills landed while it was working, checking each
/// time that no process is left working for the killed sweep, then resumes to the end.
/// Returns how many kills left a torn write.
pub fn kill_repeatedly(
    program: &Path,
    file: &Path,
    results: &Path,
    kills: usize,
    seed: u64,
    env: Env<'_>,
) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (file, dir) = (file.to_str().unwrap(), results.to_str().unwrap());
    let (mut landed, mut torn) = (0, 0);
    for _ in 0..60 {
        if landed == kills {
            break;
        }
        // A kill before the sweep recorded its start leaves nothing to resume: run again.
        let started = std::fs::read_to_string(results.join("journal.jsonl"))
            .is_ok_and(|j| j.contains("sweep_started"));
        let mut child = if !started {
            start_in(program, &["run", file, "--results", dir, "-q"], env)
        } else {
            start_in(program, &["resume", dir, "-q"], env)
        };
        std::thread::sleep(Duration::from_millis(rng.random_range(40..260)));
        if child.try_wait().unwrap().is_some() {
            panic!("the sweep ended after {landed} kills; make it longer");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        landed += 1;
        assert_no_process_works_in(results);
        let journal = std::fs::read(results.join("journal.jsonl")).unwrap_or_default();
        // A slot file that does not load was being written when the kill landed.
        let torn_checkpoint = std::fs::read_dir(results.join("trials")).is_ok_and(|trials| {
            trials.flatten().any(|t| {
                (0..2).any(|slot| {
                    let file = kiln::checkpoint::path(&t.path(), slot);
                    file.exists() && kiln::checkpoint::Checkpoint::load_file(&file).is_none()
                })
            })
        });
        if journal.last().is_some_and(|&b| b != b'\n') || torn_checkpoint {
            torn += 1;
        }
    }
    assert_eq!(landed, kills);
    let output = Command::new(program)
        .args(["resume", dir, "-q"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    torn
}

pub fn assert_same_sweep(interrupted: &Path, reference: &Path, trials: u64) {
    let (a, b) = (
        leaderboard_by_trial(interrupted),
        leaderboard_by_trial(reference),
    );
    assert_eq!(a.len() as u64, trials);
    // Every differing cell, so that a difference in one trial is not shown as another's rank.
    let mut differences = Vec::new();
    for (trial, row) in &b {
        let other = a.get(trial).cloned().unwrap_or_default();
        for (k, v) in row.iter().filter(|(k, v)| other.get(*k) != Some(v)) {
            differences.push(format!("trial {trial} {k}: {:?} against {v}", other.get(k)));
        }
    }
    assert!(
        differences.is_empty(),
        "the sweeps differ:\n{}",
        differences.join("\n")
    );
    let created = created_trials(interrupted);
    let unique: BTreeSet<u64> = created.iter().copied().collect();
    assert_eq!(
        created.len(),
        unique.len(),
        "a trial was created twice: {created:?}"
    );
    assert_eq!(unique, (0..trials).collect(), "a trial number is missing");
    assert_eq!(
        curves_without_time(interrupted),
        curves_without_time(reference),
        "curves.csv differs"
    );
}

/// `curves.csv` without the column that measures time.
pub fn curves_without_time(dir: &Path) -> Vec<BTreeMap<String, String>> {
    csv_rows(&dir.join("curves.csv"))
        .into_iter()
        .map(|mut row| {
            row.remove("elapsed_s");
            row
        })
        .collect()
}

/// Starts `PROGRAM ARGS` with `env`, stdout discarded and stderr piped (`argv[0]` its file
/// name, as run from the PATH).
pub fn start_in(program: &Path, args: &[&str], env: Env<'_>) -> Child {
    let mut command = Command::new(program);
    std::os::unix::process::CommandExt::arg0(&mut command, program.file_name().unwrap());
    command
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Fails if a process still runs with an environment or command line naming `results` (a
/// worker or a training script of a killed sweep, which could write behind a resumed one).
pub fn assert_no_process_works_in(results: &Path) {
    let needle = results.to_str().unwrap().as_bytes();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let working: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|p| p.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter(|p| {
                ["environ", "cmdline"].iter().any(|f| {
                    std::fs::read(p.path().join(f))
                        .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
                })
            })
            .map(|p| p.file_name().to_string_lossy().to_string())
            .collect();
        if working.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes {working:?} still work for the killed sweep in {}",
            results.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many pixels of a PNG image are not (nearly) white, and how many it has.
pub fn inked_pixels(png: impl std::io::Read) -> (usize, usize) {
    let mut reader = png::Decoder::new(png).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let inked = pixels[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|&c| c < 200))
        .count();
    (inked, (info.width * info.height) as usize)
}
