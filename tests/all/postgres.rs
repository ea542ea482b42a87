//! Shared sweeps in a real PostgreSQL server, with real `kiln worker` processes.
//!
//! The server comes from `KILN_TEST_POSTGRES` (a URL; `.ci/run` starts one on loopback and sets
//! it). Without it every test here prints that it is skipped and passes. The restart test also
//! needs `KILN_TEST_POSTGRES_RESTART`, a shell command that restarts that server.
//!
//! The tests take one lock: one of them restarts the server under the others' feet.

use crate::common::{digits_experiment, kiln, leaderboard_by_trial, sweep, text, write};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERVER: Mutex<()> = Mutex::new(());

/// The server's URL, or `None` (and a line saying the test is skipped).
fn server(test: &str) -> Option<String> {
    match std::env::var("KILN_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "SKIPPED {test}: no PostgreSQL server configured (set KILN_TEST_POSTGRES=postgres://USER@HOST:PORT/DB; .ci/run starts one)"
            );
            None
        }
    }
}

/// Removes what an earlier run left of sweep `name`.
fn forget(url: &str, name: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    if has_tables(&mut client) {
        client
            .execute("DELETE FROM kiln_sweeps WHERE name = $1", &[&name])
            .unwrap();
    }
}

/// Whether kiln has created its tables in the database (its first run does).
fn has_tables(client: &mut postgres::Client) -> bool {
    client
        .query_one("SELECT to_regclass('kiln_events') IS NOT NULL", &[])
        .unwrap()
        .get(0)
}

/// The sweep's events, in order, as JSON.
fn events(url: &str, name: &str) -> Vec<Value> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    if !has_tables(&mut client) {
        return Vec::new();
    }
    client
        .query(
            "SELECT body FROM kiln_events WHERE sweep = $1 ORDER BY seq",
            &[&name],
        )
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
        .collect()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn start(args: &[&str], dir: &Path) -> Child {
    kiln()
        .args(args)
        .current_dir(dir)
        .env("KILN_DB_PATIENCE_S", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn done(child: Child) -> Output {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    output
}

/// What a test here holds: the server's URL, the server to itself, and a fresh folder.
struct Shared {
    url: String,
    dir: tempfile::TempDir,
    _server: MutexGuard<'static, ()>,
}

/// Takes the server for `test` (`None` when none is configured) and forgets sweep `name`.
fn shared(test: &str, name: &str) -> Option<Shared> {
    let url = server(test)?;
    let server = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    forget(&url, name);
    Some(Shared {
        url,
        dir: tempfile::tempdir().unwrap(),
        _server: server,
    })
}

/// Once sweep `name` has started, starts a `kiln worker` that joins it.
fn join(url: &str, name: &str, dir: &Path) -> Child {
    wait_for(url, name, "the sweep to start", |e| !e.is_empty());
    start(&["worker", "--storage", url, "--sweep", name, "-q"], dir)
}

/// Waits until `ready` holds of the sweep's events (at most a minute).
fn wait_for(url: &str, name: &str, what: &str, ready: impl Fn(&[Value]) -> bool) {
    let started = Instant::now();
    while !ready(&events(url, name)) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A digits sweep whose trials each take a second or two (no early stop).
fn long_trials(name: &str, trials: u32, epochs: u32) -> String {
    digits_experiment(name, trials, 1, epochs).replace("patience = 3", "patience = 1000")
}

/// Exports sweep `name` into `dir/export` and returns that folder.
fn export(url: &str, name: &str, dir: &Path) -> std::path::PathBuf {
    let export = dir.join("export");
    let output = crate::common::run(&[
        "export",
        "--storage",
        url,
        "--sweep",
        name,
        export.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    export
}

/// Checks the end state: the budget met exactly, every trial ended once, complete.
fn assert_complete(events: &[Value], trials: usize) {
    let created: Vec<u64> = of_kind(events, "trial_created")
        .iter()
        .map(|e| e["trial"].as_u64().unwrap())
        .collect();
    assert_eq!(created, (0..trials as u64).collect::<Vec<_>>());
    let finished = of_kind(events, "trial_finished");
    assert_eq!(finished.len(), trials, "each trial ends exactly once");
    assert!(finished.iter().all(|e| e["state"] == "complete"));
}

#[test]
fn workers_share_a_sweep_and_train_each_trial_once() {
    let name = "pg-share";
    let Some(Shared { url, dir, _server }) = shared("workers_share_a_sweep", name) else {
        return;
    };
    let file = write(dir.path(), "x.toml", &digits_experiment(name, 10, 1, 6));
    let file = file.to_str().unwrap();
    // One process creates the sweep; three more join it while it runs.
    let creator = start(&["run", file, "--storage", &url, "-q"], dir.path());
    let joiners: Vec<Child> = (0..3).map(|_| join(&url, name, dir.path())).collect();
    done(creator);
    for joiner in joiners {
        done(joiner);
    }
    let events = events(&url, name);
    assert_complete(&events, 10);
    let started = of_kind(&events, "trial_started");
    assert_eq!(started.len(), 10, "no trial was started twice");
    let processes: BTreeSet<&str> = started
        .iter()
        .map(|e| e["worker"].as_str().unwrap().split('/').next().unwrap())
        .collect();
    assert!(
        processes.len() >= 2,
        "trials ran in one process only: {processes:?}"
    );
    // `kiln run --storage` exported the sweep where a local run writes it.
    let results = dir.path().join("results").join(name);
    assert_eq!(leaderboard_by_trial(&results).len(), 10);
    assert!(results.join("trials/0/best.bpk").is_file());
    assert!(results.join("trials/0/model.json").is_file());
}

#[test]
fn the_dashboard_follows_a_shared_sweep_to_its_exported_leaderboard() {
    let name = "pg-dash";
    let Some(Shared { url, dir, _server }) = shared("dashboard_follows_shared", name) else {
        return;
    };
    let file = write(dir.path(), "x.toml", &long_trials(name, 3, 4));
    let creator = start(
        &["run", file.to_str().unwrap(), "--storage", &url, "-q"],
        dir.path(),
    );
    wait_for(&url, name, "the sweep to start", |e| !e.is_empty());
    let dashboard = crate::dashboard::Dashboard::start(&["--storage", &url, "--sweep", name]);
    let (mut last, mut polls) = (0, 0);
    while events(&url, name)
        .iter()
        .all(|e| e["event"] != "trial_finished")
        || polls < 3
    {
        let version = dashboard.json("/api/sweeps")["sweeps"][0]["version"]
            .as_u64()
            .unwrap();
        assert!(version >= last, "{version} after {last}");
        (last, polls) = (version, polls + 1);
        std::thread::sleep(Duration::from_millis(100));
    }
    done(creator);
    let all = events(&url, name).len() as u64;
    let started = Instant::now();
    let trials = loop {
        let trials = dashboard.json("/api/trials");
        if trials["version"].as_u64() == Some(all) {
            break trials;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{trials}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let exported = dir.path().join("results").join(name);
    crate::dashboard::assert_same_as_leaderboard(&trials, &exported);
}

#[test]
fn a_configuration_enqueued_in_a_shared_sweep_runs_with_exactly_its_values() {
    let name = "pg-enqueue";
    let Some(Shared { url, dir, _server }) = shared("enqueue_shared", name) else {
        return;
    };
    let experiment = format!(
        "name = \"{name}\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[budget]\ntrials = 2\nworkers = 1\n[space]\nx1 = {{ uniform = [-1.0, 1.0] }}\n"
    );
    let file = write(dir.path(), "e.toml", &experiment);
    let file = file.to_str().unwrap();
    done(start(&["run", file, "--storage", &url, "-q"], dir.path()));
    let output = crate::common::run(&["enqueue", "--storage", &url, "--sweep", name, "x1=0.375"]);
    assert!(output.status.success(), "{}", text(&output));
    let output = crate::common::run(&["enqueue", "--storage", &url, "--sweep", name, "x1=3"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    done(start(
        &["run", file, "--storage", &url, "--trials", "3", "-q"],
        dir.path(),
    ));
    let created = of_kind(&events(&url, name), "trial_created")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(created.len(), 3);
    assert_eq!(created[2]["params"], serde_json::json!({"x1": 0.375}));
    assert_eq!(created[2]["queued"], true);
}

#[test]
fn leaderboard_matches_the_same_sweep_run_locally() {
    let name = "pg-same";
    let Some(Shared { url, dir, _server }) = shared("leaderboard_matches_local", name) else {
        return;
    };
    let file = write(dir.path(), "x.toml", &digits_experiment(name, 8, 2, 8));
    let local = dir.path().join("local");
    sweep(&file, &local, &[]);
    let file = file.to_str().unwrap();
    let creator = start(&["run", file, "--storage", &url, "-q"], dir.path());
    let worker = join(&url, name, dir.path());
    done(creator);
    done(worker);
    let shared = dir.path().join("results").join(name);
    assert_eq!(leaderboard_by_trial(&shared), leaderboard_by_trial(&local));
    // The exported curves hold the same epochs as the local ones.
    let curves = |d: &Path| {
        let mut rows = crate::common::csv_rows(&d.join("curves.csv"));
        rows.iter_mut().for_each(|r| {
            r.remove("elapsed_s");
        });
        rows
    };
    assert_eq!(curves(&shared), curves(&local));
    // The read commands take the database as they take a folder.
    for command in ["leaderboard", "status"] {
        let output = crate::common::run(&[command, "--storage", &url, "--sweep", name]);
        assert!(output.status.success(), "{}", text(&output));
        let local = crate::common::run(&[command, local.to_str().unwrap()]);
        let best = |o: &Output| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.starts_with("best") || l.contains("complete"))
                .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        };
        assert_eq!(best(&output), best(&local), "{}", text(&output));
    }
    // An export is not a local sweep to resume.
    let output = crate::common::run(&["resume", shared.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is an export of"));
    // `kiln predict` works on the export as on a local folder.
    let predict = |d: &Path| {
        let output = crate::common::run(&[
            "predict",
            d.to_str().unwrap(),
            "--data",
            &crate::common::data("digits.csv"),
        ]);
        assert!(output.status.success(), "{}", text(&output));
        output.stdout
    };
    assert_eq!(predict(&shared), predict(&local));
}

#[test]
fn a_killed_workers_trial_is_finished_by_another_from_its_checkpoint() {
    let name = "pg-takeover";
    let Some(Shared { url, dir, _server }) = shared("killed_worker_takeover", name) else {
        return;
    };
    let file = write(dir.path(), "x.toml", &long_trials(name, 2, 60));
    let local = dir.path().join("local");
    sweep(&file, &local, &[]);
    let file = file.to_str().unwrap();
    let lease = ["--lease", "1.5"];
    let mut victim = start(
        &[&["run", file, "--storage", &url, "-q"][..], &lease].concat(),
        dir.path(),
    );
    wait_for(&url, name, "five epochs of trial 0", |e| {
        of_kind(e, "epoch_reported")
            .iter()
            .any(|r| r["trial"] == 0 && r["epoch"].as_u64() >= Some(5))
    });
    victim.kill().unwrap();
    victim.wait().unwrap();
    let before = events(&url, name);
    let reported = of_kind(&before, "epoch_reported")
        .iter()
        .filter(|r| r["trial"] == 0)
        .count();
    assert!(
        of_kind(&before, "trial_finished").is_empty(),
        "the kill came too late"
    );
    let worker = start(
        &[
            &["worker", "--storage", &url, "--sweep", name, "-q"][..],
            &lease,
        ]
        .concat(),
        dir.path(),
    );
    done(worker);
    let events = events(&url, name);
    assert_complete(&events, 2);
    let restarts: Vec<&Value> = of_kind(&events, "trial_started")
        .into_iter()
        .filter(|e| e["trial"] == 0)
        .collect();
    assert_eq!(restarts.len(), 2, "trial 0 was taken over once");
    assert_ne!(restarts[0]["worker"], restarts[1]["worker"]);
    let from = restarts[1]["from_epoch"].as_u64().unwrap();
    assert!(
        from >= 5 && from as usize == reported,
        "continued from epoch {from}, {reported} were recorded"
    );
    // Continuing from the checkpoint gives exactly what an uninterrupted run gives.
    let export = export(&url, name, dir.path());
    assert_eq!(leaderboard_by_trial(&export), leaderboard_by_trial(&local));
}

#[test]
fn workers_survive_a_database_restart() {
    let name = "pg-restart";
    let Some(Shared { url, dir, _server }) = shared("database_restart", name) else {
        return;
    };
    let Ok(restart) = std::env::var("KILN_TEST_POSTGRES_RESTART") else {
        eprintln!(
            "SKIPPED database_restart: set KILN_TEST_POSTGRES_RESTART to a command that restarts the server"
        );
        return;
    };
    let file = write(dir.path(), "x.toml", &long_trials(name, 4, 30));
    let local = dir.path().join("local");
    sweep(&file, &local, &[]);
    let file = file.to_str().unwrap();
    let creator = start(&["run", file, "--storage", &url, "-q"], dir.path());
    let joiner = join(&url, name, dir.path());
    wait_for(&url, name, "three epochs", |e| {
        of_kind(e, "epoch_reported").len() >= 3
    });
    let status = std::process::Command::new("sh")
        .args(["-c", &restart])
        .status()
        .unwrap();
    assert!(status.success(), "the restart command failed");
    let outputs = [done(creator), done(joiner)];
    let events = events(&url, name);
    assert_complete(&events, 4);
    let logs: String = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
        .collect();
    assert!(
        logs.contains("reconnected"),
        "no worker noticed the restart:\n{logs}"
    );
    let shared = dir.path().join("results").join(name);
    let by_trial = leaderboard_by_trial(&shared);
    assert_eq!(by_trial, leaderboard_by_trial(&local));
}

#[test]
fn clear_errors_for_unknown_sweeps_and_bad_urls() {
    let Some(Shared { url, _server, .. }) = shared("clear_errors", "no-such-sweep") else {
        return;
    };
    let output = crate::common::run(&["worker", "--storage", &url, "--sweep", "no-such-sweep"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no sweep `no-such-sweep`"));
    let output = crate::common::run(&["status", "--storage", "mysql://x/y", "--sweep", "a"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a PostgreSQL URL"));
}

#[test]
fn a_command_sweep_shared_by_two_workers_one_killed_trains_each_trial_once_from_its_checkpoint() {
    let name = "pg-command";
    let Some(Shared { url, dir, _server }) = shared("command_sweep_takeover", name) else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/sine_stdlib.py");
    let experiment = format!(
        "name = \"{name}\"\nseed = 4\n[objective]\ncommand = [\"python3\", \"{}\", \"--epochs\", \"12\", \"--sleep\", \"0.1\"]\nmetrics = [\"train_loss\", \"val_loss\"]\nmetric = \"val_loss\"\n[budget]\ntrials = 3\nworkers = 1\n[space]\nlearning_rate = {{ log_uniform = [1e-3, 1e-1] }}\n",
        script.display()
    );
    let file = write(dir.path(), "c.toml", &experiment);
    let local = dir.path().join("local");
    sweep(&file, &local, &[]);
    let file = file.to_str().unwrap();
    let lease = ["--lease", "1.5"];
    let output = crate::common::run(&["run", file, "--storage", &url, "--workers", "0"]);
    assert!(output.status.success(), "{}", text(&output));
    let mut victim = start(
        &[
            &["worker", "--storage", &url, "--sweep", name, "-q"][..],
            &lease,
        ]
        .concat(),
        dir.path(),
    );
    wait_for(&url, name, "four epochs of trial 0", |e| {
        of_kind(e, "epoch_reported")
            .iter()
            .any(|r| r["trial"] == 0 && r["epoch"].as_u64() >= Some(4))
    });
    let survivor = start(
        &[
            &["worker", "--storage", &url, "--sweep", name, "-q"][..],
            &lease,
        ]
        .concat(),
        dir.path(),
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
    let reported = of_kind(&events(&url, name), "epoch_reported")
        .iter()
        .filter(|r| r["trial"] == 0)
        .count();
    done(survivor);
    let events = events(&url, name);
    assert_complete(&events, 3);
    let starts: Vec<&Value> = of_kind(&events, "trial_started")
        .into_iter()
        .filter(|e| e["trial"] == 0)
        .collect();
    assert_eq!(starts.len(), 2, "trial 0 was taken over once");
    let from = starts[1]["from_epoch"].as_u64().unwrap();
    assert!(
        from >= 4 && from as usize == reported,
        "continued from epoch {from}, {reported} were recorded"
    );
    let export = export(&url, name, dir.path());
    // The script's own checkpoint moved with the trial: the second run started after the
    // epochs the first one recorded (its log moved too), and the sweep equals a local one.
    let log = std::fs::read_to_string(export.join("trials/0/log.txt")).unwrap();
    assert!(log.contains("starting after epoch 0"), "{log}");
    assert!(
        log.contains(&format!("starting after epoch {from}")),
        "{log}"
    );
    assert_eq!(leaderboard_by_trial(&export), leaderboard_by_trial(&local));
    assert_eq!(
        crate::common::curves_without_time(&export),
        crate::common::curves_without_time(&local)
    );
    for command in ["status", "leaderboard"] {
        let output = crate::common::run(&[command, "--storage", &url, "--sweep", name]);
        assert!(output.status.success(), "{}", text(&output));
    }
}

#[test]
fn a_sweep_of_a_program_of_your_own_is_shared_by_its_workers_and_read_by_kiln() {
    let name = "pg-custom";
    let Some(Shared { url, dir, _server }) = shared("custom_program_sweep", name) else {
        return;
    };
    let program = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/custom_objective");
    let experiment = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/custom_objective.toml"),
    )
    .unwrap()
    .replace("name = \"sine\"", &format!("name = \"{name}\""))
    .replace("epochs = 30", "epochs = 200");
    let file = write(dir.path(), "sine.toml", &experiment);
    let results = dir.path().join("r");
    let run = std::process::Command::new(&program)
        .args([
            "run",
            file.to_str().unwrap(),
            "--storage",
            &url,
            "-q",
            "--workers",
            "1",
        ])
        .arg("--results")
        .arg(&results)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&url, name, "the sweep to start", |e| !e.is_empty());
    let worker = std::process::Command::new(&program)
        .args(["worker", "--storage", &url, "--sweep", name, "-q"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    done(run);
    done(worker);
    let events = events(&url, name);
    let workers: BTreeSet<String> = of_kind(&events, "trial_started")
        .iter()
        .map(|e| {
            e["worker"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(workers.len(), 2, "both processes trained: {workers:?}");
    // kiln itself reads the sweep of an objective it does not know.
    let export = export(&url, name, dir.path());
    assert_eq!(leaderboard_by_trial(&export).len(), 12);
    for command in ["status", "leaderboard"] {
        let output = crate::common::run(&[command, "--storage", &url, "--sweep", name]);
        assert!(output.status.success(), "{}", text(&output));
    }
}

#[test]
fn tls_connections_check_the_server_as_sslmode_asks_and_a_sweep_runs_over_them() {
    let name = "pg-tls";
    let Some(Shared { url, dir, _server }) = shared("tls", name) else {
        return;
    };
    let Ok(ca) = std::env::var("KILN_TEST_POSTGRES_CA") else {
        eprintln!(
            "SKIPPED tls: the server has no certificate (set KILN_TEST_POSTGRES_CA; .ci/run does)"
        );
        return;
    };
    // The server's certificate names `localhost` only, signed by the CA in `ca`.
    let by_name = url.replace("127.0.0.1", "localhost");
    let with = |url: &str, query: &str| format!("{url}?{query}");
    let status = |storage: &str| {
        crate::common::kiln()
            .args(["status", "--storage", storage, "--sweep", "nosuch"])
            .env("RUST_LOG", "kiln=info")
            .env("KILN_DB_PATIENCE_S", "2")
            .output()
            .unwrap()
    };
    for (storage, connects) in [
        (
            with(&by_name, &format!("sslmode=verify-full&sslrootcert={ca}")),
            true,
        ),
        (
            with(&url, &format!("sslmode=verify-ca&sslrootcert={ca}")),
            true,
        ),
        (with(&url, "sslmode=require"), true),
        (
            with(&url, &format!("sslmode=verify-full&sslrootcert={ca}")),
            false,
        ),
        (with(&by_name, "sslmode=verify-full"), false),
    ] {
        let output = status(&storage);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if connects {
            // Connected (the sweep does not exist), encrypted.
            assert_eq!(output.status.code(), Some(2), "{storage}: {stderr}");
            assert!(
                stderr.contains("(TLS)") && stderr.contains("no sweep `nosuch`"),
                "{storage}: {stderr}"
            );
        } else {
            assert_eq!(output.status.code(), Some(1), "{storage}: {stderr}");
            assert!(
                stderr.contains("invalid peer certificate"),
                "{storage}: {stderr}"
            );
        }
    }
    let output = status(&with(&url, "sslmode=disable"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("(no TLS)"));
    let output = status(&with(&url, "sslmode=strict"));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`verify-full`"));
    // A whole sweep over verify-full.
    let file = write(
        dir.path(),
        "t.toml",
        &format!(
            "name = \"{name}\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[budget]\ntrials = 5\nworkers = 1\n[space]\nx1 = {{ uniform = [-1.0, 1.0] }}\n"
        ),
    );
    let storage = with(&by_name, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let results = dir.path().join("r");
    let output = crate::common::run(&[
        "run",
        file.to_str().unwrap(),
        "--storage",
        &storage,
        "--results",
        results.to_str().unwrap(),
        "-q",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(leaderboard_by_trial(&results).len(), 5);
}

#[test]
fn scratch_folders_are_private_and_a_dead_workers_are_removed() {
    let name = "pg-scratch";
    let Some(Shared { url, dir, _server }) = shared("scratch", name) else {
        return;
    };
    // What a SIGKILLed worker left behind: a scratch folder named after its (gone) pid.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let stale = std::env::temp_dir().join(format!("kiln-{pid}-{name}-stale"));
    std::fs::create_dir_all(stale.join("trials/0")).unwrap();
    std::fs::write(stale.join("experiment.toml"), "name = \"x\"").unwrap();
    let file = write(dir.path(), "s.toml", &long_trials(name, 1, 200));
    let mut run = start(
        &["run", file.to_str().unwrap(), "--storage", &url, "-q"],
        dir.path(),
    );
    wait_for(&url, name, "a report", |e| {
        !of_kind(e, "epoch_reported").is_empty()
    });
    assert!(
        !stale.exists(),
        "the dead worker's scratch folder is still there"
    );
    let prefix = format!("kiln-{}-{name}-", run.id());
    let scratch = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .expect("the running worker's scratch folder");
    let mode = std::os::unix::fs::PermissionsExt::mode(&scratch.metadata().unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o700,
        "scratch folders hold checkpoints and data statistics"
    );
    run.kill().unwrap();
    run.wait().unwrap();
}

#[test]
fn two_runs_of_one_shared_sweep_both_finish_and_export() {
    let name = "pg-twice";
    let Some(Shared { url, dir, _server }) = shared("two_runs", name) else {
        return;
    };
    let file = write(
        dir.path(),
        "t.toml",
        &format!(
            "name = \"{name}\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nepochs = 3\nmetric = \"value\"\n[budget]\ntrials = 20\nworkers = 1\n[space]\nx1 = {{ uniform = [-1.0, 1.0] }}\n"
        ),
    );
    let results = dir.path().join("r");
    let args = [
        "run",
        file.to_str().unwrap(),
        "--storage",
        &url,
        "--results",
        results.to_str().unwrap(),
        "-q",
    ];
    let runs: Vec<Child> = (0..2).map(|_| start(&args, dir.path())).collect();
    for run in runs {
        done(run);
    }
    assert_complete_any(&events(&url, name), 20);
    assert_eq!(leaderboard_by_trial(&results).len(), 20);
}

/// Every trial created once and ended once, whatever its end.
fn assert_complete_any(events: &[Value], trials: usize) {
    let created = of_kind(events, "trial_created").len();
    let finished: BTreeSet<u64> = of_kind(events, "trial_finished")
        .iter()
        .map(|e| e["trial"].as_u64().unwrap())
        .collect();
    assert_eq!((created, finished.len()), (trials, trials));
}

#[test]
fn a_deterministic_sweep_shared_by_three_processes_equals_one_worker_alone() {
    let name = "pg-deterministic";
    let Some(Shared { url, dir, _server }) = shared("deterministic_shared", name) else {
        return;
    };
    let text = digits_experiment(name, 10, 1, 6).replace(
        "[space]\n",
        "[sampler]\nkind = \"tpe\"\nstartup_trials = 3\ndeterministic = true\nlag = 2\n[space]\n",
    );
    let file = write(dir.path(), "x.toml", &text);
    let alone = dir.path().join("alone");
    sweep(&file, &alone, &[]);
    let file = file.to_str().unwrap();
    let creator = start(&["run", file, "--storage", &url, "-q"], dir.path());
    let joiners: Vec<Child> = (0..2).map(|_| join(&url, name, dir.path())).collect();
    done(creator);
    for joiner in joiners {
        done(joiner);
    }
    assert_complete(&events(&url, name), 10);
    let shared = leaderboard_by_trial(&dir.path().join("results").join(name));
    assert_eq!(shared, leaderboard_by_trial(&alone));
}
