//! `kiln dashboard`: the real server, asked over real HTTP while real sweeps run, and its page
//! in headless Chromium driven over the DevTools protocol.

use crate::common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running `kiln dashboard`, stopped when dropped.
pub struct Dashboard {
    child: Child,
    address: String,
}

impl Dashboard {
    /// Starts `kiln dashboard ARGS --port 0` and waits for the address it prints.
    pub fn start(args: &[&str]) -> Dashboard {
        let child = kiln()
            .arg("dashboard")
            .args(args)
            .args(["--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Dashboard::address_of(child).0
    }

    /// Waits for the address `child` prints; also gives the lines it printed before it.
    fn address_of(mut child: Child) -> (Dashboard, Vec<String>) {
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut before = Vec::new();
        loop {
            let mut line = String::new();
            stderr.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "the dashboard ended: {before:?}");
            if let Some(rest) = line.split("http://").nth(1) {
                let address = rest.split('/').next().unwrap().to_string();
                return (Dashboard { child, address }, before);
            }
            before.push(line);
        }
    }

    /// `GET path` with this server's own `Host`: the status and the body.
    fn get(&self, path: &str) -> (u16, String) {
        http_get(&self.address, path, &self.address)
    }

    /// `GET path`, which must answer 200 with JSON.
    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET, the request line sent exactly as given: the status and the body
/// (read to its `Content-Length`: some servers keep the connection open).
fn http_get(address: &str, path: &str, host: &str) -> (u16, String) {
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        &stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {status_line:?}"));
    let mut length = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).unwrap();
        }
        None => {
            reader.read_to_end(&mut body).unwrap();
        }
    }
    (status, String::from_utf8_lossy(&body).to_string())
}

/// Waits until `results` holds a started sweep.
fn wait_for_start(results: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(results.join("journal.jsonl"))
        .is_ok_and(|j| j.contains("sweep_started"))
    {
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        assert!(Instant::now() < deadline, "the sweep did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What only grows while a sweep runs: trials, ended trials, and epochs of each trial.
fn counts(trials: &Value) -> (usize, usize, Vec<u64>) {
    let list = trials["trials"].as_array().unwrap();
    let ended = list.iter().filter(|t| t["state"] != "running").count();
    let mut epochs = vec![0; list.len()];
    for t in list {
        let n = t["trial"].as_u64().unwrap() as usize;
        if n >= epochs.len() {
            epochs.resize(n + 1, 0);
        }
        epochs[n] = t["epochs"].as_u64().unwrap();
    }
    (list.len(), ended, epochs)
}

#[test]
fn the_api_follows_a_running_sweep_and_ends_equal_to_the_leaderboard() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "d.toml", &digits_experiment("dash", 10, 2, 8));
    let results = dir.path().join("r");
    let mut run = kiln()
        .args(["run", file.to_str().unwrap(), "--results"])
        .arg(&results)
        .arg("-q")
        .spawn()
        .unwrap();
    wait_for_start(&results, &mut run);
    let dashboard = Dashboard::start(&[results.to_str().unwrap()]);
    let mut last = (0, 0, Vec::new());
    let mut seen_running = false;
    let mut polls = 0;
    while run.try_wait().unwrap().is_none() {
        let now = counts(&dashboard.json("/api/trials"));
        assert!(now.0 >= last.0 && now.1 >= last.1, "{now:?} after {last:?}");
        for (n, epochs) in last.2.iter().enumerate() {
            assert!(now.2[n] >= *epochs, "trial {n}: {now:?} after {last:?}");
        }
        seen_running |= now.0 > now.1;
        last = now;
        polls += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(run.wait().unwrap().success());
    assert!(seen_running && polls > 3, "never saw the sweep running");
    // Within 2 s of the journal's last append, the API shows all of it.
    let journal_events = std::fs::read_to_string(results.join("journal.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    let deadline = Instant::now() + Duration::from_secs(2);
    let trials = loop {
        let trials = dashboard.json("/api/trials");
        if trials["version"].as_u64() == Some(journal_events) {
            break trials;
        }
        assert!(
            Instant::now() < deadline,
            "the API never caught up: {trials}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_same_as_leaderboard(&trials, &results);
    let sweeps = dashboard.json("/api/sweeps");
    assert_eq!(sweeps["sweeps"][0]["trials"], 10);
    assert_eq!(sweeps["sweeps"][0]["running"], 0);
    // Asked for what changed since the end, it answers nothing.
    let since = dashboard.json(&format!("/api/trials?since={journal_events}"));
    assert_eq!(since["trials"].as_array().unwrap().len(), 0);
    assert_eq!(since["order"].as_array().unwrap().len(), 10);
}

/// Checks that `/api/trials` lists the rows of `results/leaderboard.csv` of a digits sweep, in
/// its order, with the same numbers.
pub fn assert_same_as_leaderboard(trials: &Value, results: &Path) {
    let csv = csv_rows(&results.join("leaderboard.csv"));
    let api = trials["trials"].as_array().unwrap();
    assert_eq!(api.len(), csv.len());
    for (row, t) in csv.iter().zip(api) {
        assert_eq!(row["trial"], t["trial"].to_string());
        assert_eq!(row["state"], t["state"].as_str().unwrap());
        assert_eq!(
            row["rank"],
            t["rank"]
                .as_u64()
                .map(|r| r.to_string())
                .unwrap_or_default()
        );
        let objective: Option<f64> = row["objective"].parse().ok();
        assert_eq!(objective, t["objective"].as_f64(), "trial {}", row["trial"]);
        for name in ["learning_rate", "dropout"] {
            assert_eq!(row[name].parse::<f64>().ok(), t["params"][name].as_f64());
        }
        let val_loss: Option<f64> = row["val_loss"].parse().ok();
        assert_eq!(val_loss, t["metrics"]["val_loss"].as_f64());
    }
}

/// A finished, fast sweep of a synthetic function: `trials` trials in `dir/r`.
fn function_sweep(dir: &Path, trials: u32) -> std::path::PathBuf {
    let file = write(
        dir,
        "f.toml",
        &format!(
            "name = \"fn\"\n[objective]\nkind = \"function\"\nfunction = \"sphere\"\nmetric = \"value\"\n[budget]\ntrials = {trials}\nworkers = 1\n[space]\nx1 = {{ log_uniform = [1e-4, 1.0] }}\nx2 = {{ choice = [\"adamw\", \"sgd\", \"rmsprop\"] }}\n"
        ),
    );
    let results = dir.join("r");
    sweep(&file, &results, &[]);
    results
}

#[test]
fn the_dashboard_refuses_paths_outside_its_sweeps_and_other_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let results = function_sweep(dir.path(), 3);
    let dashboard = Dashboard::start(&[results.to_str().unwrap()]);
    for (path, status) in [
        ("/api/trials?path=../../etc/passwd", 400),
        ("/api/trial?sweep=0&trial=../../etc/passwd", 400),
        ("/api/trial?sweep=0&trial=0&file=/etc/passwd", 400),
        ("/api/curves?sweep=0&trials=0,../../etc/passwd", 400),
        ("/api/sweep?sweep=../../etc", 400),
        ("/api/sweep?sweep=7", 404),
        ("/api/trial?sweep=0&trial=99", 404),
        ("/../../etc/passwd", 404),
        ("/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/app.js/../../../../etc/passwd", 404),
        ("/api/../../../etc/passwd", 404),
        ("/journal.jsonl", 404),
        ("/trials/0/log.txt", 404),
        ("/experiment.toml", 404),
    ] {
        let (got, body) = dashboard.get(path);
        assert_eq!(got, status, "{path}: {body}");
        assert!(!body.contains("root:"), "{path}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    // A page on another site whose name resolves here (DNS rebinding) gets nothing.
    let (got, body) = http_get(&dashboard.address, "/api/trials", "evil.example:80");
    assert_eq!(got, 403, "{body}");
    assert!(!body.contains("\"trials\""), "{body}");
    // The page and the API answer the dashboard's own name.
    let (got, page) = dashboard.get("/");
    assert_eq!(got, 200);
    assert!(page.contains("<script src=\"/app.js\">"), "{page}");
    let port = dashboard.address.rsplit(':').next().unwrap();
    let (got, _) = http_get(
        &dashboard.address,
        "/api/sweeps",
        &format!("localhost:{port}"),
    );
    assert_eq!(got, 200);
}

#[test]
fn a_dashboard_started_before_its_sweep_waits_for_it_and_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    let child = kiln()
        .args(["dashboard", results.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The sweep starts after the dashboard, in a folder that did not exist.
    std::thread::sleep(Duration::from_millis(300));
    let made = function_sweep(dir.path(), 5);
    assert_eq!(made, results);
    let (dashboard, before) = Dashboard::address_of(child);
    assert!(
        before
            .iter()
            .any(|l| l.contains("Waiting for a sweep to start in")),
        "{before:?}"
    );
    // The dashboard may have read the sweep mid-way; it follows within a refresh or two.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let trials = dashboard.json("/api/trials?sweep=0");
        let ended = trials["trials"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] == "complete")
            .count();
        if ended == 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never followed to the end: {trials}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_seed_past_2_to_the_53_reaches_the_trial_page_digit_for_digit() {
    let dir = tempfile::tempdir().unwrap();
    let results = function_sweep(dir.path(), 4);
    let journal = std::fs::read_to_string(results.join("journal.jsonl")).unwrap();
    let (trial, seed) = journal
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "trial_created")
        .map(|e| (e["trial"].as_u64().unwrap(), e["seed"].to_string()))
        .find(|(_, seed)| seed.parse::<u64>().unwrap() > 1 << 53)
        .expect("a seed past 2^53");
    let dashboard = Dashboard::start(&[results.to_str().unwrap()]);
    let (status, body) = dashboard.get(&format!("/api/trial?sweep=0&trial={trial}"));
    assert_eq!(status, 200, "{body}");
    // Parsed as a JavaScript number the seed would end in zeros: it must be text.
    assert!(
        body.contains(&format!("\"seed\":\"{seed}\"")),
        "{seed}: {body}"
    );
}

#[test]
fn the_dashboard_says_what_is_wrong_with_what_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    // A folder with other files is not a sweep about to start.
    write(dir.path(), "notes.txt", "not a sweep");
    let output = run(&["dashboard", dir.path().to_str().unwrap(), "--port", "0"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("holds no sweep"),
        "{}",
        text(&output)
    );
    let output = run(&["dashboard", "--port", "0"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn listening_beyond_loopback_warns_that_anyone_can_read_the_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let results = function_sweep(dir.path(), 1);
    let mut child = kiln()
        .args([
            "dashboard",
            results.to_str().unwrap(),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (mut warning, mut address) = (String::new(), String::new());
    stderr.read_line(&mut warning).unwrap();
    stderr.read_line(&mut address).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        warning.starts_with("warning:") && warning.contains("no login"),
        "{warning}"
    );
    assert!(address.contains("http://0.0.0.0:"), "{address}");
}

#[test]
fn a_folder_of_sweeps_shows_each_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let results = function_sweep(dir.path(), 2);
    std::fs::create_dir(dir.path().join("all")).unwrap();
    std::fs::rename(&results, dir.path().join("all/one")).unwrap();
    let again = function_sweep(dir.path(), 3);
    std::fs::rename(&again, dir.path().join("all/two")).unwrap();
    let dashboard = Dashboard::start(&[dir.path().join("all").to_str().unwrap()]);
    let sweeps = dashboard.json("/api/sweeps");
    let trials: Vec<u64> = sweeps["sweeps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["trials"].as_u64().unwrap())
        .collect();
    assert_eq!(trials, [2, 3]);
    let detail = dashboard.json("/api/sweep?sweep=1");
    assert_eq!(detail["params"][0]["name"], "x1");
    assert_eq!(detail["params"][0]["log"], true);
    assert_eq!(
        detail["params"][1]["choices"],
        serde_json::json!(["adamw", "sgd", "rmsprop"])
    );
}

/// Headless Chromium, driven over the DevTools protocol.
struct Browser {
    child: Child,
    page: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium showing `url`, or `None` where it is not installed.
    fn open(url: &str) -> Option<Browser> {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())?;
        let profile = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1280,1600",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let port = loop {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "chromium exited");
            if let Some(rest) = line.trim().strip_prefix("DevTools listening on ws://") {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        // Chromium's later messages go nowhere, so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let deadline = Instant::now() + Duration::from_secs(30);
        let target = loop {
            let (_, body) = http_get(&port, "/json/list", &port);
            let targets: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let page = targets.as_array().and_then(|t| {
                t.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from))
            });
            if let Some(page) = page {
                break page;
            }
            assert!(Instant::now() < deadline, "no page in chromium: {body}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let (page, _) = tungstenite::connect(target.as_str()).unwrap();
        Some(Browser {
            child,
            page,
            next_id: 0,
            _profile: profile,
        })
    }

    /// Calls a DevTools method and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = serde_json::json!({ "id": id, "method": method, "params": params });
        self.page
            .send(tungstenite::Message::text(request.to_string()))
            .unwrap();
        loop {
            let message = self.page.read().unwrap();
            let Ok(text) = message.to_text() else {
                continue;
            };
            let answer: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "returnByValue": true }),
        );
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page.
    fn wait_for(&mut self, expression: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.eval(expression) != Value::Bool(true) {
            assert!(Instant::now() < deadline, "never true: {expression}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_page_shows_the_leaderboard_and_a_trial_that_ends_while_it_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let results = function_sweep(dir.path(), 3);
    let dashboard = Dashboard::start(&[results.to_str().unwrap()]);
    let Some(mut browser) = Browser::open(&format!("http://{}/", dashboard.address)) else {
        println!("SKIPPED: no chromium here (.ci/run installs Debian's chromium)");
        return;
    };
    let rows = "document.querySelectorAll('#leaderboard tbody tr').length";
    browser.wait_for(&format!("{rows} === 3"), Duration::from_secs(30));
    // A mark that a reload would wipe.
    browser.eval("window.stillTheSamePage = true");
    let output = run(&["resume", results.to_str().unwrap(), "--trials", "4", "-q"]);
    assert!(output.status.success(), "{}", text(&output));
    browser.wait_for(&format!("{rows} === 4"), Duration::from_secs(5));
    assert_eq!(
        browser.eval("window.stillTheSamePage === true"),
        Value::Bool(true)
    );
    let cells = browser.eval("[...document.querySelectorAll('#leaderboard tbody tr')].map(r => r.dataset.trial).sort().join(',')");
    assert_eq!(cells, "0,1,2,3");
    // Every plot drew, and the log axis and the categorical one are labelled as people read them.
    let texts = browser
        .eval("[...document.querySelectorAll('svg text')].map(t => t.textContent).join('|')");
    let texts = texts.as_str().unwrap();
    for label in ["1e-4", "1e-2", "1e0", "adamw", "sgd", "rmsprop"] {
        assert!(
            texts.split('|').any(|t| t == label),
            "no `{label}` in {texts}"
        );
    }
    let shot = browser.call(
        "Page.captureScreenshot",
        serde_json::json!({ "format": "png" }),
    );
    let png = base64_decode(shot["data"].as_str().unwrap());
    let (inked, total) = inked_pixels(std::io::Cursor::new(png));
    assert!(
        inked * 100 > total,
        "only {inked} of {total} pixels are not blank"
    );
}

#[test]
fn an_unfinished_trial_is_drawn_as_running_not_as_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let results = function_sweep(dir.path(), 4);
    // The journal of a sweep killed in its last trial: that trial is unfinished.
    let journal = std::fs::read_to_string(results.join("journal.jsonl")).unwrap();
    let cut = journal.rfind("{\"event\":\"trial_finished\"").unwrap();
    std::fs::write(results.join("journal.jsonl"), &journal[..cut]).unwrap();
    let output = run(&["plot", results.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    let svg = std::fs::read_to_string(results.join("plots/history.svg")).unwrap();
    assert!(
        svg.contains("green: unfinished") && svg.contains("#2CA02C"),
        "{svg}"
    );
    let dashboard = Dashboard::start(&[results.to_str().unwrap()]);
    let Some(mut browser) = Browser::open(&format!("http://{}/", dashboard.address)) else {
        println!("SKIPPED: no chromium here (.ci/run installs Debian's chromium)");
        return;
    };
    let card = "[...document.querySelectorAll('.card')].find(c => c.querySelector('h3').textContent.startsWith('Optimisation history'))";
    browser.wait_for(&format!("{card} !== undefined"), Duration::from_secs(30));
    let fills = browser.eval(&format!(
        "[...{card}.querySelectorAll('circle.dot')].map(c => c.getAttribute('fill')).sort().join(',')"
    ));
    assert_eq!(fills, Value::from("#1f77b4,#1f77b4,#1f77b4,#2ca02c"));
    let caption = browser.eval(&format!("{card}.textContent"));
    assert!(
        caption.as_str().unwrap().contains("green: running"),
        "{caption}"
    );
}

/// Standard base64, as DevTools sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (value(c) as u32) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn a_sweep_of_two_objectives_shows_its_fronts_as_the_leaderboard_does_and_draws_the_front() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "zdt.toml",
        "name = \"zdt\"\n[objective]\nkind = \"function\"\nfunction = \"zdt2\"\nmetric = [\"f1\", \"f2\"]\ndirection = [\"minimize\", \"minimize\"]\n[sampler]\nkind = \"nsga2\"\npopulation = 8\n[budget]\ntrials = 24\nworkers = 1\n[space]\nx1 = { uniform = [0.0, 1.0] }\nx2 = { uniform = [0.0, 1.0] }\nx3 = { uniform = [0.0, 1.0] }\n",
    );
    let results = dir.path().join("r");
    sweep(&file, &results, &[]);
    let dashboard = Dashboard::start(&[results.to_str().unwrap()]);
    let trials = dashboard.json("/api/trials?sweep=0");
    let fronts: Vec<String> = trials["pareto_rank"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().map(|r| r.to_string()).unwrap_or_default())
        .collect();
    let csv = csv_rows(&results.join("leaderboard.csv"));
    let expected: Vec<String> = csv.iter().map(|r| r["pareto_rank"].clone()).collect();
    assert_eq!(fronts, expected);
    let objectives = &dashboard.json("/api/sweeps")["sweeps"][0]["objectives"];
    assert_eq!(objectives[1]["metric"], "f2");
    let Some(mut browser) = Browser::open(&format!("http://{}/", dashboard.address)) else {
        println!("SKIPPED: no chromium here (.ci/run installs Debian's chromium)");
        return;
    };
    let rows = "document.querySelectorAll('#leaderboard tbody tr').length";
    browser.wait_for(&format!("{rows} === 15"), Duration::from_secs(30));
    let on_front = expected.iter().filter(|r| *r == "1").count();
    let card = "[...document.querySelectorAll('.card')].find(c => c.querySelector('h3').textContent.startsWith('Pareto front'))";
    let orange = format!(
        "[...{card}.querySelectorAll('circle.dot')].filter(c => c.getAttribute('fill') === '#ff7f0e').length"
    );
    assert_eq!(browser.eval(&orange), Value::from(on_front));
    let header = browser.eval(
        "[...document.querySelectorAll('#leaderboard th')].map(t => t.textContent).join(',')",
    );
    assert!(header.as_str().unwrap().contains("pareto_rank"), "{header}");
    let first_rank =
        browser.eval("document.querySelector('#leaderboard tbody tr').children[3].textContent");
    assert_eq!(first_rank, Value::from("1"));
}
