//! Training scripts as trials (`[objective] command`): real `python3` processes, the protocol of
//! the README, SIGKILLs and SIGTERMs. Every failure stays inside its trial; a stop is never a
//! failure; a resumed sweep equals an uninterrupted one.

use crate::common::{
    Env, assert_no_process_works_in, assert_same_sweep, csv_rows, kill_repeatedly, kiln,
    leaderboard_by_trial, refused, run, run_until_reported, sweep, text, write,
};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The stdlib example script, by absolute path.
fn stdlib_script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/python/sine_stdlib.py")
        .display()
        .to_string()
}

/// A sweep of the stdlib example: `trials` trials of `epochs` epochs, `sleep` seconds each.
fn stdlib_experiment(trials: u32, workers: u32, epochs: u32, sleep: f64) -> String {
    format!(
        r#"name = "py"
seed = 8

[objective]
command = ["python3", "{script}", "--epochs", "{epochs}", "--sleep", "{sleep}"]
metrics = ["train_loss", "val_loss"]
metric = "val_loss"
epochs = {epochs}
grace = "2s"

[budget]
trials = {trials}
workers = {workers}

[pruner]
kind = "median"
warmup_epochs = 2
min_trials = 2

[space]
learning_rate = {{ log_uniform = [1e-3, 1e-1] }}
momentum = {{ uniform = [0.0, 0.95] }}
"#,
        script = stdlib_script()
    )
}

#[test]
fn a_command_sweep_trains_its_trials_and_every_command_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "py.toml", &stdlib_experiment(6, 2, 6, 0.0));
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let rows = csv_rows(&results.join("leaderboard.csv"));
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["state"] != "failed"), "{rows:?}");
    let best: f64 = rows[0]["val_loss"].parse().unwrap();
    // The variance of sin(3x) on [-1, 1] is about 0.5: six epochs of SGD do far better.
    assert!(best < 0.2, "best val_loss {best}");
    let log = std::fs::read_to_string(results.join("trials/0/log.txt")).unwrap();
    assert!(log.contains("trial 0: starting after epoch 0"), "{log}");
    assert!(
        !log.contains("kiln-report"),
        "reports are not logged: {log}"
    );

    let shown = |args: &[&str]| {
        let output = run(args);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let r = results.to_str().unwrap();
    assert!(shown(&["status", r]).contains("6 of 6"));
    assert!(shown(&["leaderboard", r]).contains("momentum"));
    assert!(shown(&["compare", r, "--curves", "--trials", "0"]).contains("py/0/val_loss"));
    assert!(shown(&["plot", r]).contains("report.html"));
    assert!(results.join("plots/curves.svg").exists());
}

/// A script that misbehaves in a different way in each trial.
const QUIRKS: &str = r#"
import json, os, sys, time
trial = int(os.environ["KILN_TRIAL"])
def report(epoch, **metrics):
    print("kiln-report " + json.dumps(dict(epoch=epoch, **metrics)), flush=True)
if trial == 1:
    print("loading the data", flush=True)
    print("ValueError: bad shape (3, 4)", file=sys.stderr, flush=True)
    sys.exit(3)
if trial == 2:
    report(1, loss=0.5)
    time.sleep(60)
if trial == 3:
    report(1, loss=0.5, accuracy=0.9)
if trial == 4:
    report(1, loss=0.5)
    report(3, loss=0.4)
if trial == 5:
    print("kiln-report {not json", flush=True)
    time.sleep(60)
if trial == 6:
    report(1, loss=0.5)
    import ctypes
    ctypes.string_at(0)
if trial == 7:
    report(1, loss=0.5)
    os._exit(3)
if trial == 8:
    report(1, loss=1.0)  # and again below
if trial == 9:
    for epoch in range(1, 6):
        report(epoch, loss=1.0 / epoch)
if trial == 10:
    sys.exit(0)
if trial == 11:
    report(1, loss=0.5)
    report(1, loss=0.6)
for epoch in range(1, 4):
    report(epoch, loss=1.0 / epoch)
"#;

#[test]
fn a_failing_a_hanging_and_a_misreporting_script_each_fail_their_own_trial() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "quirks.py", QUIRKS);
    let file = write(
        dir.path(),
        "q.toml",
        "name = \"q\"\n[objective]\ncommand = [\"python3\", \"quirks.py\"]\nmetrics = [\"loss\"]\nmetric = \"loss\"\ntimeout = \"3s\"\ngrace = \"1s\"\nepochs = 3\n[budget]\ntrials = 12\nworkers = 2\n[space]\nx = { uniform = [0.0, 1.0] }\n",
    );
    let results = dir.path().join("r");
    let started = Instant::now();
    sweep(&file, &results, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "hanging scripts were not stopped"
    );
    let rows = leaderboard_by_trial(&results);
    let note = |t: &str| (rows[t]["state"].as_str(), rows[t]["note"].as_str());
    assert_eq!(note("0"), ("complete", ""));
    // An epoch reported twice alike in one run is taken once.
    assert_eq!(note("8"), ("complete", ""));
    assert_eq!(rows["8"]["epochs"], "3");
    let expected = [
        (
            "1",
            "exited with code 3; stderr: ValueError: bad shape (3, 4)",
        ),
        ("2", "timed out after 3s"),
        ("3", "`accuracy` is not one of the declared metrics"),
        ("4", "reported epoch 3 after epoch 1"),
        ("5", "bad report line `kiln-report {not json`"),
        ("6", "was killed by signal 11"),
        ("7", "exited with code 3"),
        (
            "9",
            "reported epoch 4, past the last epoch of the objective (3",
        ),
        ("10", "no report: the command exited with code 0"),
        (
            "11",
            "reported epoch 1 again with loss 0.6 where the journal holds 0.5",
        ),
    ];
    for (trial, fragment) in expected {
        let (state, why) = note(trial);
        assert_eq!(state, "failed", "trial {trial}: {why}");
        assert!(why.contains(fragment), "trial {trial}: {why}");
    }
    let log = std::fs::read_to_string(results.join("trials/1/log.txt")).unwrap();
    assert!(
        log.contains("loading the data") && log.contains("bad shape"),
        "{log}"
    );
    // The epoch reported before the crash is kept.
    assert_eq!(rows["6"]["epochs"], "1");
    assert_eq!(rows["0"]["epochs"], "3");
}

/// Reports two epochs of values that differ on every run, then waits to be stopped; resumed,
/// it starts over instead of continuing.
const DRIFT: &str = r#"
import json, os, random, time
resumed = int(os.environ["KILN_RESUME_EPOCH"]) > 0
for epoch in (1, 2):
    print("kiln-report " + json.dumps({"epoch": epoch, "loss": random.random()}), flush=True)
if not resumed:
    time.sleep(60)
"#;

/// The journal's `epoch_reported` events.
#[test]
fn sigterm_stops_a_script_as_ctrl_c_does_and_a_resumed_run_that_differs_fails_without_a_splice() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "drift.py", DRIFT);
    let file = write(
        dir.path(),
        "d.toml",
        "name = \"d\"\n[objective]\ncommand = [\"python3\", \"drift.py\"]\nmetrics = [\"loss\"]\nmetric = \"loss\"\ngrace = \"5s\"\n[budget]\ntrials = 1\nworkers = 1\n[space]\nx = { uniform = [0.0, 1.0] }\n",
    );
    let results = dir.path().join("r");
    let r = results.to_str().unwrap();
    let child = run_until_reported(
        kiln(),
        (&file, &results),
        Stdio::piped(),
        2,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(200));
    let stopped = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(
        stopped.elapsed() < Duration::from_secs(4),
        "the script was not stopped with SIGTERM"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("kiln resume"));
    let journaled = csv_rows(&results.join("curves.csv"));
    assert_eq!(journaled.len(), 2);
    assert!(
        !std::fs::read_to_string(results.join("journal.jsonl"))
            .unwrap()
            .contains("trial_finished"),
        "a stop is not a trial's end"
    );

    let output = run(&["resume", r, "-q"]);
    // Its only trial failed: the sweep says so with exit 1.
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let row = &csv_rows(&results.join("leaderboard.csv"))[0];
    assert_eq!(row["state"], "failed");
    assert!(
        row["note"].contains("reported epoch 1 again with loss"),
        "{}",
        row["note"]
    );
    assert_eq!(
        csv_rows(&results.join("curves.csv")),
        journaled,
        "the journal's epochs were replaced by another run's"
    );
}

#[test]
fn sigkill_at_ten_random_moments_of_a_command_sweep_then_resume_equals_an_uninterrupted_one() {
    // One worker: each pruning decision depends only on the trials before it.
    let experiment = stdlib_experiment(8, 1, 8, 0.03);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "k.toml", &experiment);
    let reference = dir.path().join("reference");
    sweep(&file, &reference, &[]);
    let interrupted = dir.path().join("interrupted");
    let no_env: Env<'_> = &[];
    kill_repeatedly(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        &file,
        &interrupted,
        10,
        55,
        no_env,
    );
    assert_same_sweep(&interrupted, &reference, 8);
    let pruned = leaderboard_by_trial(&reference)
        .values()
        .filter(|r| r["state"] == "pruned")
        .count();
    assert!(pruned >= 1, "the sweep should prune");
}

#[test]
fn each_worker_process_gets_its_device_and_no_two_running_trials_share_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("devices.log");
    let script = write(
        dir.path(),
        "device.py",
        &format!(
            "import os, time, json\nlog = {log:?}\ndevice = os.environ['KILN_DEVICE']\nwith open(log, 'a') as f: f.write(f'{{device}} start {{time.time()}}\\n')\ntime.sleep(0.3)\nwith open(log, 'a') as f: f.write(f'{{device}} end {{time.time()}}\\n')\nprint('kiln-report ' + json.dumps({{'epoch': 1, 'value': 1.0}}), flush=True)\n",
            log = log.display().to_string()
        ),
    );
    let file = write(
        dir.path(),
        "d.toml",
        &format!(
            "name = \"d\"\n[objective]\ncommand = [\"python3\", \"{}\"]\nmetrics = [\"value\"]\nmetric = \"value\"\n[budget]\ntrials = 4\ndevices = [\"fake:0\", \"fake:1\"]\n[space]\nx = {{ uniform = [0.0, 1.0] }}\n",
            script.display()
        ),
    );
    let check = text(&run(&["check", file.to_str().unwrap()]));
    assert!(check.contains("devices    fake:0, fake:1"), "{check}");
    sweep(&file, &dir.path().join("r"), &[]);
    let lines = std::fs::read_to_string(&log).unwrap();
    // Per device, its trials' starts and ends alternate: no trial started on a device before
    // the one there ended.
    for device in ["fake:0", "fake:1"] {
        let kinds: Vec<&str> = lines
            .lines()
            .filter(|l| l.starts_with(device))
            .map(|l| l.split(' ').nth(1).unwrap())
            .collect();
        assert!(kinds.len() >= 2, "{device} ran no trial: {lines}");
        assert!(
            kinds.chunks(2).all(|pair| pair == ["start", "end"]),
            "two trials overlapped on {device}: {lines}"
        );
    }
    assert_eq!(lines.lines().filter(|l| l.contains("start")).count(), 4);
    refused(
        &[
            "resume",
            dir.path().join("r").to_str().unwrap(),
            "--workers",
            "3",
            "--trials",
            "5",
        ],
        "devices take at once (2",
    );
}

/// Prints bytes that are not UTF-8 (Latin-1 text, a progress bar's carriage returns) on both
/// streams between its reports.
const LATIN1: &str = r#"
import json, os, sys
for epoch in range(1, 4):
    sys.stdout.buffer.write(b"caf\xe9 \r[###   ]\r\n")
    sys.stderr.buffer.write(b"\xff\xfe warning\n")
    print("kiln-report " + json.dumps({"epoch": epoch, "loss": 1.0 / epoch}))
"#;

#[test]
fn bytes_that_are_not_utf8_on_a_scripts_streams_are_logged_as_they_are_and_lose_no_report() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "latin1.py", LATIN1);
    let file = write(
        dir.path(),
        "l.toml",
        "name = \"l\"\n[objective]\ncommand = [\"python3\", \"latin1.py\"]\nmetrics = [\"loss\"]\nmetric = \"loss\"\n[budget]\ntrials = 4\nworkers = 2\n[space]\nx = { uniform = [0.0, 1.0] }\n",
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let rows = leaderboard_by_trial(&results);
    for row in rows.values() {
        assert_eq!(
            (row["state"].as_str(), row["epochs"].as_str()),
            ("complete", "3"),
            "{row:?}"
        );
    }
    let log = std::fs::read(results.join("trials/0/log.txt")).unwrap();
    let has = |bytes: &[u8]| log.windows(bytes.len()).any(|w| w == bytes);
    assert!(
        has(b"caf\xe9 \r[###   ]\r") && has(b"\xff\xfe warning"),
        "{log:?}"
    );
}

/// Reports once, closes its stdout, then waits; or leaves a child holding its stdout and exits.
const DETACHING: &str = r#"
import json, os, subprocess, sys, time
print("kiln-report " + json.dumps({"epoch": 1, "loss": 0.5}))
if sys.argv[1] == "closed":
    sys.stdout.flush()
    os.close(1)
    time.sleep(60)
else:
    subprocess.Popen(["sleep", "40"])
"#;

/// The experiment of DETACHING in `mode`, started warm or not.
fn detaching(dir: &Path, mode: &str, warm: bool) -> std::path::PathBuf {
    write(dir, "detach.py", DETACHING);
    write(
        dir,
        &format!("{mode}-{warm}.toml"),
        &format!(
            "name = \"{mode}\"\n[objective]\ncommand = [\"python3\", \"detach.py\", \"{mode}\"]\nwarm = {warm}\nmetrics = [\"loss\"]\nmetric = \"loss\"\ngrace = \"2s\"\n[budget]\ntrials = 1\nworkers = 1\n[space]\nx = {{ uniform = [0.0, 1.0] }}\n"
        ),
    )
}

#[test]
fn a_script_that_closed_its_stdout_is_stopped_at_once_and_a_child_holding_it_does_not_keep_a_trial_open()
 {
    for warm in [true, false] {
        closed_and_held(warm);
    }
}

fn closed_and_held(warm: bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = detaching(dir.path(), "closed", warm);
    let results = dir.path().join("closed");
    let child = run_until_reported(
        kiln(),
        (&file, &results),
        Stdio::piped(),
        1,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "warm = {warm}: a script with its stdout closed was not stopped: {:?}",
        stopped.elapsed()
    );

    let file = detaching(dir.path(), "held", warm);
    let results = dir.path().join("held");
    let started = Instant::now();
    sweep(&file, &results, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "warm = {warm}: the trial waited for a child holding its stdout: {:?}",
        started.elapsed()
    );
    assert_eq!(leaderboard_by_trial(&results)["0"]["state"], "complete");
    // What was left of the script's process group went with it.
    let sleeping = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| std::fs::read(p.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x0040\x00"))
        .count();
    assert_eq!(
        sleeping, 0,
        "warm = {warm}: the script's child outlived its trial"
    );
}

/// Trial 0 fails after a 20 MB stderr line; trial 1 prints a 1 MB report line; trial 2 reports,
/// then prints 30 MB without a newline on stdout and reports again.
const FLOOD: &str = r#"
import json, os, sys
trial = int(os.environ["KILN_TRIAL"])
if trial == 0:
    sys.stderr.write("E" * 20_000_000 + "\n")
    sys.exit(1)
if trial == 1:
    print("kiln-report " + json.dumps({"epoch": 1, "loss": 0.5, "pad": "x" * 1_000_000}))
if trial == 2:
    print("kiln-report " + json.dumps({"epoch": 1, "loss": 0.5}))
    sys.stdout.write("p" * 30_000_000)
    sys.stdout.flush()
    os.write(3, b'{"epoch": 2, "loss": 0.25}\n')
"#;

#[test]
fn what_a_script_prints_is_capped_in_notes_and_a_line_without_end_is_logged_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "flood.py", FLOOD);
    let file = write(
        dir.path(),
        "f.toml",
        "name = \"f\"\n[objective]\ncommand = [\"python3\", \"flood.py\"]\nmetrics = [\"loss\"]\nmetric = \"loss\"\n[budget]\ntrials = 3\nworkers = 1\n[space]\nx = { uniform = [0.0, 1.0] }\n",
    );
    let results = dir.path().join("r");
    let output = run(&[
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        text(&output).chars().take(2000).collect::<String>()
    );
    assert!(
        output.stderr.len() + output.stdout.len() < 100_000,
        "the terminal got {} bytes",
        output.stderr.len() + output.stdout.len()
    );
    let rows = leaderboard_by_trial(&results);
    let (state, note) = (rows["0"]["state"].as_str(), rows["0"]["note"].as_str());
    assert_eq!(state, "failed");
    assert!(
        note.len() < 3000
            && note.contains("exited with code 1; stderr: EEEE")
            && note.contains("bytes more"),
        "{} bytes: {}",
        note.len(),
        &note[..200.min(note.len())]
    );
    assert_eq!(rows["1"]["state"], "failed");
    assert!(
        rows["1"]["note"].contains("a report line longer than 64 KiB"),
        "{}",
        rows["1"]["note"]
    );
    assert_eq!(
        (rows["2"]["state"].as_str(), rows["2"]["epochs"].as_str()),
        ("complete", "2")
    );
    let journal = std::fs::metadata(results.join("journal.jsonl"))
        .unwrap()
        .len();
    assert!(journal < 50_000, "journal.jsonl holds {journal} bytes");
    // The logs keep everything.
    let log = std::fs::read(results.join("trials/0/log.txt")).unwrap();
    assert!(
        log.windows(21)
            .filter(|w| w == b"EEEEEEEEEEEEEEEEEEEE\n")
            .count()
            == 1
    );
    assert!(log.len() > 20_000_000);
    let log = std::fs::metadata(results.join("trials/2/log.txt"))
        .unwrap()
        .len();
    assert!(log > 30_000_000, "log of trial 2: {log} bytes");
}

/// Starts a helper that appends to the trial's folder every 50 ms, reports, and trains on.
const TREE: &str = r#"
import json, os, subprocess, sys, time
helper = "import sys, time\nwhile True:\n    open(sys.argv[1], 'a').write('x')\n    time.sleep(0.05)"
subprocess.Popen([sys.executable, "-c", helper, os.path.join(os.environ["KILN_TRIAL_DIR"], "helper.txt")])
print("kiln-report " + json.dumps({"epoch": 1, "loss": 0.5}))
time.sleep(60)
"#;

#[test]
fn the_whole_process_tree_of_a_script_dies_with_a_sigkilled_kiln_warm_and_cold() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tree.py", TREE);
    for (name, command) in [
        ("warm", r#"["python3", "tree.py"]"#),
        ("bash", r#"["bash", "-c", "python3 tree.py; echo done"]"#),
    ] {
        let file = write(
            dir.path(),
            &format!("{name}.toml"),
            &format!(
                "name = \"{name}\"\n[objective]\ncommand = {command}\nmetrics = [\"loss\"]\nmetric = \"loss\"\n[budget]\ntrials = 2\nworkers = 2\n[space]\nx = {{ uniform = [0.0, 1.0] }}\n"
            ),
        );
        let results = dir.path().join(name);
        let mut child = run_until_reported(
            kiln(),
            (&file, &results),
            Stdio::null(),
            2,
            Duration::from_secs(30),
        );
        let helper = results.join("trials/0/helper.txt");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !helper.exists() {
            assert!(Instant::now() < deadline, "{name}: the helper never wrote");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_no_process_works_in(&results);
        let size = std::fs::metadata(&helper).unwrap().len();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            std::fs::metadata(&helper).unwrap().len(),
            size,
            "{name}: a helper of the script went on writing into the trial's folder"
        );
    }
}
