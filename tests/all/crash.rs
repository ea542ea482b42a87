//! Crash safety with real processes: SIGKILL at random moments, Ctrl-C, torn journals, locks.
//! An interrupted sweep, resumed, must end exactly as if it had never been interrupted.

use crate::common::{
    Env, assert_same_sweep, digits_experiment, kiln, leaderboard_by_trial, run, sweep, text, write,
};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn start(args: &[&str]) -> Child {
    start_with(args, &[])
}

fn start_with(args: &[&str], env: Env<'_>) -> Child {
    crate::common::start_in(Path::new(env!("CARGO_BIN_EXE_kiln")), args, env)
}

fn finish(args: &[&str]) {
    let output = run(args);
    assert!(output.status.success(), "{}", text(&output));
}

/// Kills `kiln run`/`kiln resume` with SIGKILL at random moments, then resumes to the end.
fn kill_repeatedly(file: &Path, results: &Path, kills: usize, seed: u64, env: Env<'_>) -> usize {
    crate::common::kill_repeatedly(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        file,
        results,
        kills,
        seed,
        env,
    )
}

fn kill_test(workers: u32, seed: u64) {
    // Wide layers make each checkpoint about 1 MB, so some kills land while one is written.
    // The random sampler: trial N's parameters depend on N alone, so sweeps of two workers
    // compare trial for trial (a model-based sampler gets that from `deterministic = true`,
    // tests/all/deterministic.rs).
    let experiment = digits_experiment("kill", 12, workers, 10)
        .replace("hidden = 32", "hidden = 256")
        .replace("[space]\n", "[sampler]\nkind = \"random\"\n[space]\n");
    kill_and_compare(&experiment, workers, seed, &[]);
}

/// Kills a sweep of `experiment` ten times, resumes it, and checks it against an uninterrupted
/// run; returns the reference leaderboard's rows by trial.
fn kill_and_compare(
    experiment: &str,
    workers: u32,
    seed: u64,
    env: Env<'_>,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "k.toml", experiment);
    let reference = dir.path().join("reference");
    sweep(&file, &reference, &[]);
    let interrupted = dir.path().join("interrupted");
    let torn = kill_repeatedly(&file, &interrupted, 10, seed, env);
    println!("workers = {workers}: 10 kills, {torn} left a torn journal line or checkpoint file");
    assert_same_sweep(&interrupted, &reference, 12);
    leaderboard_by_trial(&reference)
}

#[test]
fn sigkill_at_ten_random_moments_then_resume_equals_an_uninterrupted_sweep_one_worker() {
    kill_test(1, 11);
}

#[test]
fn sigkill_at_ten_random_moments_then_resume_equals_an_uninterrupted_sweep_two_workers() {
    kill_test(2, 22);
}

#[test]
fn pruning_decisions_survive_kills_neither_forgotten_nor_repeated() {
    // One worker: each decision depends only on the trials before, so the uninterrupted sweep
    // is the reference for every decision.
    let experiment = format!(
        "{}\n[pruner]\nkind = \"median\"\nwarmup_epochs = 1\nmin_trials = 2\n",
        digits_experiment("pruned-kill", 12, 1, 10).replace("hidden = 32", "hidden = 256")
    );
    let reference = kill_and_compare(&experiment, 1, 33, &[]);
    let pruned = reference
        .values()
        .filter(|r| r["state"] == "pruned")
        .count();
    assert!(pruned >= 2, "the sweep should prune: {pruned} pruned");
}

#[test]
fn resuming_from_older_checkpoints_redoes_epochs_to_the_same_sweep() {
    // Checkpoints after the first epoch only (and where a trial is told to stop): each resumed
    // trial retrains the epochs the journal already holds. They must come out the same, and
    // the pruner must not decide them again.
    let experiment = format!(
        "{}\n[pruner]\nkind = \"median\"\nwarmup_epochs = 1\nmin_trials = 2\n",
        digits_experiment("sparse-kill", 12, 1, 10).replace("hidden = 32", "hidden = 256")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "k.toml", &experiment);
    let reference = dir.path().join("reference");
    sweep(&file, &reference, &[]);
    let interrupted = dir.path().join("interrupted");
    kill_repeatedly(
        &file,
        &interrupted,
        10,
        44,
        &[("KILN_CHECKPOINT_RATIO", "1e12")],
    );
    assert_same_sweep(&interrupted, &reference, 12);
    let journal = std::fs::read_to_string(interrupted.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("\"checkpointed\":false"),
        "every epoch was checkpointed: the test does not test older checkpoints"
    );
}

#[test]
fn a_torn_journal_tail_is_ignored_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "t.toml", &digits_experiment("torn", 3, 1, 3));
    let reference = dir.path().join("reference");
    sweep(&file, &reference, &[]);
    let results = dir.path().join("r");
    sweep(&file, &results, &["--trials", "2"]);
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(results.join("journal.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut journal, br#"{"event":"trial_created","trial":2,"se"#).unwrap();
    finish(&["resume", results.to_str().unwrap(), "-q", "--trials", "3"]);
    assert_same_sweep(&results, &reference, 3);
}

#[test]
fn a_second_process_is_refused_and_a_dead_ones_lock_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "l.toml", &digits_experiment("lock", 50, 1, 20));
    let results = dir.path().join("r");
    let mut first = start(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "-q",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(results.join("kiln.lock")).is_ok_and(|l| l.starts_with("pid"))
        || !std::fs::read_to_string(results.join("journal.jsonl"))
            .is_ok_and(|j| j.contains("sweep_started"))
    {
        assert!(Instant::now() < deadline, "no lock and start appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = run(&["resume", results.to_str().unwrap(), "-q"]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        stderr.contains(&format!(
            "being swept by another kiln process (pid {}",
            first.id()
        )),
        "{stderr}"
    );

    first.kill().unwrap();
    first.wait().unwrap();
    // The lock file still names the dead process; it must not block.
    assert!(
        std::fs::read_to_string(results.join("kiln.lock"))
            .unwrap()
            .contains(&first.id().to_string())
    );
    finish(&["resume", results.to_str().unwrap(), "-q", "--trials", "2"]);
}

#[test]
fn a_deleted_lock_file_leaves_the_folder_locked() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "l.toml",
        &digits_experiment("unlock", 50, 1, 20),
    );
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    let mut first = start(&["run", file.to_str().unwrap(), "--results", r, "-q"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(results.join("journal.jsonl"))
        .is_ok_and(|j| j.contains("trial_started"))
    {
        assert!(Instant::now() < deadline, "the sweep did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    // People delete a "stale" lock file.
    std::fs::remove_file(results.join("kiln.lock")).unwrap();
    let second = run(&["resume", r, "-q"]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("being swept by another kiln process"),
        "{}",
        text(&second)
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first sweep stopped"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    finish(&["resume", r, "-q", "--trials", "2"]);
}

#[test]
fn a_different_experiment_is_refused_and_nothing_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "a.toml",
        &digits_experiment("same-name", 2, 1, 2),
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let before: Vec<Vec<u8>> = ["journal.jsonl", "leaderboard.csv", "experiment.toml"]
        .iter()
        .map(|f| std::fs::read(results.join(f)).unwrap())
        .collect();
    let other = write(
        dir.path(),
        "b.toml",
        &digits_experiment("same-name", 2, 1, 3),
    );
    let output = run(&[
        "run",
        other.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("`train.epochs`: 2 -> 3"),
        "{}",
        text(&output)
    );
    let after: Vec<Vec<u8>> = ["journal.jsonl", "leaderboard.csv", "experiment.toml"]
        .iter()
        .map(|f| std::fs::read(results.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
    // The same experiment with a larger budget continues the sweep.
    let more = write(
        dir.path(),
        "c.toml",
        &digits_experiment("same-name", 3, 1, 2),
    );
    sweep(&more, &results, &[]);
    assert_eq!(leaderboard_by_trial(&results).len(), 3);
}

/// Presses Ctrl-C `presses` times during a sweep; returns its output, then checks that a
/// resume finishes the same sweep as an uninterrupted one.
fn interrupt_then_resume(presses: usize) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    // Long enough (about 2 s) that the presses land mid-sweep.
    let experiment = digits_experiment("sigint", 8, 2, 12).replace("hidden = 32", "hidden = 256");
    let file = write(dir.path(), "s.toml", &experiment);
    let reference = dir.path().join("reference");
    sweep(&file, &reference, &[]);
    let results = dir.path().join("r");
    let child = start(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "-q",
    ]);
    std::thread::sleep(Duration::from_millis(400));
    for _ in 0..presses {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    let status = run(&["status", results.to_str().unwrap()]);
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status_text.contains("continue with: kiln resume"),
        "{status_text}"
    );
    finish(&["resume", results.to_str().unwrap(), "-q"]);
    assert_same_sweep(&results, &reference, 8);
    output
}

#[test]
fn ctrl_c_exits_130_after_checkpointing_and_resume_finishes_the_same_sweep() {
    let output = interrupt_then_resume(1);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Continue with: kiln resume"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_the_journal_stays_valid() {
    let output = interrupt_then_resume(2);
    // No orderly stop: the process ended inside the signal handler, saying how to continue.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Stopped. "), "{}", text(&output));
    assert!(
        stderr.contains("Stopped at once. The running trials continue from their last checkpoints with: kiln resume "),
        "{}",
        text(&output)
    );
}

#[test]
fn sigterm_to_the_whole_process_group_stops_the_sweep_and_fails_no_trial() {
    // Slurm (time limit, scancel) and systemd signal every process of the job: the workers too.
    let dir = tempfile::tempdir().unwrap();
    let experiment = digits_experiment("term", 4, 2, 30).replace("patience = 3", "patience = 1000");
    let file = write(dir.path(), "t.toml", &experiment);
    let reference = dir.path().join("reference");
    sweep(&file, &reference, &[]);
    let results = dir.path().join("r");
    let child = kiln()
        .args([
            "run",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "-q",
        ])
        .process_group(0)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let reports = || {
        std::fs::read_to_string(results.join("journal.jsonl"))
            .unwrap_or_default()
            .matches("epoch_reported")
            .count()
    };
    while reports() < 4 {
        assert!(Instant::now() < deadline, "no epochs reported");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: signals the process group the child leads.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    let journal = std::fs::read_to_string(results.join("journal.jsonl")).unwrap();
    assert!(
        !journal.contains("\"failed\""),
        "a stop failed a trial:\n{journal}"
    );
    finish(&["resume", results.to_str().unwrap(), "-q"]);
    assert_same_sweep(&results, &reference, 4);
}

#[test]
fn a_worker_killed_from_outside_fails_only_its_trial_and_names_the_likely_killer() {
    // The kernel's out-of-memory killer sends SIGKILL to the largest process: a worker.
    let dir = tempfile::tempdir().unwrap();
    let experiment = digits_experiment("oom", 3, 1, 30).replace("patience = 3", "patience = 1000");
    let file = write(dir.path(), "o.toml", &experiment);
    let results = dir.path().join("r");
    let child = start(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "-q",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let worker = loop {
        assert!(Instant::now() < deadline, "no worker reported an epoch");
        let journal = std::fs::read_to_string(results.join("journal.jsonl")).unwrap_or_default();
        let worker = std::fs::read_dir("/proc").unwrap().flatten().find(|p| {
            let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
            let parent = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().nth(1));
            parent == Some(&child.id().to_string())
        });
        if let Some(worker) = worker.filter(|_| journal.contains("epoch_reported")) {
            break worker.file_name().to_string_lossy().parse::<i32>().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // SAFETY: signals the worker process found above.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let rows = leaderboard_by_trial(&results);
    let states: Vec<&str> = rows.values().map(|r| r["state"].as_str()).collect();
    assert_eq!(
        states.iter().filter(|s| **s == "complete").count(),
        2,
        "{rows:?}"
    );
    let failed = rows.values().find(|r| r["state"] == "failed").unwrap();
    assert!(
        failed["note"].contains("SIGKILL") && failed["note"].contains("out-of-memory killer"),
        "{}",
        failed["note"]
    );
}

/// A small tmpfs of this test's own, unmounted when dropped; `None` where mounting is not
/// allowed (not root).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk(dir))
    }

    fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

/// Runs `experiment` on a disk of `size` until it is full: the sweep must stop with exit code 1
/// and an error naming each of `said` and how to go on, leaving what `check` checks. Then the
/// disk grows to `room`, `kiln resume` finishes, and the sweep equals one whose disk never
/// filled. Skipped where no tmpfs can be mounted.
fn full_disk_then_room(
    (size, room): (&str, &str),
    experiment: &str,
    said: &[&str],
    trials: u64,
    check: impl Fn(&Path),
) {
    let Some(disk) = SmallDisk::mount(size) else {
        eprintln!("SKIPPED full_disk: cannot mount a tmpfs here (needs root)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "f.toml", experiment);
    let reference = dir.path().join("reference");
    sweep(&file, &reference, &[]);
    let results = disk.0.path().join("r");
    let r = results.to_str().unwrap();
    let output = run(&["run", file.to_str().unwrap(), "--results", r, "-q"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let resume = format!("kiln resume {r}");
    for expected in said.iter().copied().chain([resume.as_str()]) {
        assert!(stderr.contains(expected), "no `{expected}` in:\n{stderr}");
    }
    check(&results);
    disk.grow(room);
    finish(&["resume", r, "-q"]);
    assert_same_sweep(&results, &reference, trials);
}

#[test]
fn a_full_disk_stops_the_sweep_and_every_trial_resumes_once_there_is_room() {
    // Wide layers: each checkpoint is about 1 MB, so the second one does not fit.
    let experiment = digits_experiment("full", 6, 2, 4).replace("hidden = 32", "hidden = 256");
    full_disk_then_room(
        ("2m", "200m"),
        &experiment,
        &["No space left on device"],
        6,
        |results| {
            let journal = std::fs::read_to_string(results.join("journal.jsonl")).unwrap();
            assert!(
                !journal.contains("trial_finished"),
                "a full disk ended a trial:\n{journal}"
            );
        },
    );
}

#[test]
fn a_journal_that_meets_a_full_disk_says_how_to_go_on_and_resumes_exactly() {
    // No files per trial: the journal is what fills the disk.
    let experiment = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/branin.toml"),
    )
    .unwrap()
    .replace("trials = 100", "trials = 400");
    full_disk_then_room(
        ("64k", "20m"),
        &experiment,
        &[
            "cannot write the journal",
            "No space left on device",
            "continue with: kiln resume",
        ],
        400,
        |_| {},
    );
}

#[test]
fn a_journal_with_a_missing_or_impossible_event_is_refused_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "j.toml", &digits_experiment("journal", 2, 1, 3));
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let journal = std::fs::read_to_string(results.join("journal.jsonl")).unwrap();
    let lines: Vec<&str> = journal.lines().collect();
    let second_epoch = lines
        .iter()
        .position(|l| l.contains("\"epoch_reported\"") && l.contains("\"epoch\":2"))
        .unwrap();
    let missing: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != second_epoch)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    // Trial 0's first epoch copied to just before its end would shrink it to one epoch.
    let first_epoch = lines
        .iter()
        .position(|l| l.contains("\"epoch_reported\"") && l.contains("\"epoch\":1,"))
        .unwrap();
    let finished = lines
        .iter()
        .position(|l| l.contains("\"trial_finished\""))
        .unwrap();
    let mut repeated: Vec<&str> = lines.clone();
    repeated.insert(finished, lines[first_epoch]);
    let repeated: String = repeated.iter().map(|l| format!("{l}\n")).collect();
    let unknown_trial = journal.replacen("\"trial\":1,", "\"trial\":99,", 2);
    let far_epoch = journal.replacen("\"epoch\":3,", "\"epoch\":999,", 1);
    for (what, broken, fragment) in [
        ("a missing report", missing, "follows epoch 1"),
        ("an unknown trial", unknown_trial, "trial 99"),
        ("an impossible epoch", far_epoch, "epoch 999"),
        (
            "a repeated report",
            repeated,
            "epoch 1 of trial 0 is reported again after epoch 3",
        ),
    ] {
        std::fs::write(results.join("journal.jsonl"), &broken).unwrap();
        let output = run(&["status", results.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{what}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("journal.jsonl:")
                && stderr.contains("the journal is corrupt")
                && stderr.contains(fragment),
            "{what}: {stderr}"
        );
    }
}

#[test]
fn changed_data_is_refused_on_resume_naming_it_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("digits.csv");
    std::fs::copy(crate::common::data("digits.csv"), &csv).unwrap();
    let experiment = digits_experiment("data", 3, 1, 2)
        .replace(&crate::common::data("digits.csv"), csv.to_str().unwrap());
    let file = write(dir.path(), "d.toml", &experiment);
    let results = dir.path().join("r");
    sweep(&file, &results, &["--trials", "1"]);
    let journal = std::fs::read(results.join("journal.jsonl")).unwrap();
    // One pixel of one row changed.
    let changed = std::fs::read_to_string(&csv)
        .unwrap()
        .replacen("0,0,5,13", "0,0,6,13", 1);
    std::fs::write(&csv, changed).unwrap();
    let output = run(&["resume", results.to_str().unwrap(), "-q"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("data changed since the sweep started"),
        "{}",
        text(&output)
    );
    assert_eq!(
        std::fs::read(results.join("journal.jsonl")).unwrap(),
        journal
    );
}

#[test]
fn two_runs_started_together_on_one_folder_never_mix_and_the_loser_names_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "t.toml",
        &digits_experiment("together", 2, 1, 2),
    );
    let f = file.to_str().unwrap();
    for round in 0..10 {
        let results = dir.path().join(format!("r{round}"));
        let r = results.to_str().unwrap();
        let children: Vec<Child> = (0..2)
            .map(|_| start(&["run", f, "--results", r, "-q"]))
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            match output.status.code() {
                Some(0) => {}
                Some(1) => assert!(
                    stderr.contains("being swept by another kiln process (pid"),
                    "round {round}: {stderr}"
                ),
                code => panic!("round {round}: exit {code:?}: {stderr}"),
            }
        }
        // Whoever won, the folder holds one whole sweep.
        finish(&["resume", r, "-q"]);
        assert_eq!(leaderboard_by_trial(&results).len(), 2, "round {round}");
    }
}

#[test]
fn links_planted_in_a_results_folder_are_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "l.toml", &digits_experiment("links", 1, 1, 2));
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let victim = write(dir.path(), "victim.txt", "precious\n");
    let next = results.join("trials/1");
    std::fs::create_dir_all(&next).unwrap();
    let history = results.join("plots/history.svg");
    for link in [
        next.join("checkpoint.0.bin"),
        next.join("checkpoint.1.bin"),
        history.clone(),
        results.join("kiln.log"),
    ] {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
    }
    let output = run(&["resume", results.to_str().unwrap(), "--trials", "2", "-q"]);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "{}",
        text(&output)
    );
    // The plot replaced its link with a file of its own; the trial whose checkpoints are
    // links fails and says why.
    assert!(std::fs::symlink_metadata(&history).unwrap().is_file());
    assert!(std::fs::read_to_string(&history).unwrap().contains("<svg"));
    let rows = leaderboard_by_trial(&results);
    assert_eq!(rows["0"]["state"], "complete", "{rows:?}");
    assert_eq!(rows["1"]["state"], "failed", "{rows:?}");
    assert!(
        rows["1"]["note"].contains("checkpoint.0.bin is a symbolic link"),
        "{}",
        rows["1"]["note"]
    );
    assert!(
        text(&output).contains("kiln.log is a symbolic link"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_copied_project_resumes_against_its_own_data_not_the_originals() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("project");
    std::fs::create_dir(&original).unwrap();
    std::fs::copy(
        crate::common::data("digits.csv"),
        original.join("digits.csv"),
    )
    .unwrap();
    let toml = digits_experiment("copied", 1, 1, 1).replace(
        &format!("path = \"{}\"", crate::common::data("digits.csv")),
        "path = \"digits.csv\"",
    );
    assert!(toml.contains("path = \"digits.csv\""));
    let file = write(&original, "e.toml", &toml);
    sweep(&file, &original.join("results"), &[]);
    let copy = dir.path().join("copy");
    let status = std::process::Command::new("cp")
        .args(["-r"])
        .arg(&original)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    // The original's data changes afterwards: the copy must not see it.
    let digits = std::fs::read_to_string(original.join("digits.csv")).unwrap();
    let half: Vec<&str> = digits.lines().take(800).collect();
    std::fs::write(original.join("digits.csv"), half.join("\n") + "\n").unwrap();
    let results = copy.join("results");
    let output = run(&["resume", results.to_str().unwrap(), "--trials", "2", "-q"]);
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains(&format!(
            "relative paths resolve against {}",
            std::fs::canonicalize(&copy).unwrap().display()
        )),
        "{said}"
    );
    let rows = leaderboard_by_trial(&results);
    assert_eq!(rows["1"]["state"], "complete", "{rows:?}");
}
