//! A journal written by kiln 0.1.0 is checked in (`tests/golden/0.1.0`: a TPE sweep of 12
//! trials, 4 of them pruned, 2 workers). Every later version must read it into the same
//! leaderboard and curves, byte for byte, and its commands must work on it: a sweep started
//! today must still resume after an upgrade.

use crate::common::{run, text};
use kiln::experiment::Experiment;
use kiln::journal::FileJournal;
use kiln::report::{self, ReportSpec};
use std::path::{Path, PathBuf};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/0.1.0")
}

#[test]
fn a_journal_written_by_kiln_0_1_0_reads_into_the_same_reports() {
    let state = FileJournal::fold(&golden().join("journal.jsonl")).unwrap();
    let path = golden().join("experiment.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let experiment = Experiment::parse(&text, &path, &golden()).unwrap();
    let spec = ReportSpec::of(&experiment);
    for (name, table) in [
        ("leaderboard.csv", report::leaderboard(&state, &spec)),
        ("curves.csv", report::curves(&state)),
    ] {
        let expected = std::fs::read_to_string(golden().join(name)).unwrap();
        let now = String::from_utf8(table.to_csv().unwrap()).unwrap();
        assert_eq!(now, expected, "{name} of the 0.1.0 journal");
    }
}

#[test]
fn commands_read_a_folder_of_kiln_0_1_0() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["journal.jsonl", "experiment.toml"] {
        std::fs::copy(golden().join(name), dir.path().join(name)).unwrap();
    }
    let folder = dir.path().to_str().unwrap();
    let status = run(&["status", folder]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("12 of 12: 8 complete, 4 pruned, 0 failed"),
        "{}",
        text(&status)
    );
    let leaderboard = run(&["leaderboard", folder, "--top", "1"]);
    assert!(leaderboard.status.success(), "{}", text(&leaderboard));
    assert!(
        text(&leaderboard).contains("  11  complete"),
        "{}",
        text(&leaderboard)
    );
}
