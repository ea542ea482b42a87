//! The orchestrator on a journal in memory: a sweep cut after any event resumes to the
//! uninterrupted result.

use super::*;
use crate::store::{Claim, Create, begin, choose};

/// A store that keeps the journal in memory: the orchestrator's logic without files.
struct MemoryStore {
    events: Vec<Event>,
    dir: tempfile::TempDir,
}

impl MemoryStore {
    fn append(&mut self, state: &mut SweepState, events: &[Event]) {
        for event in events {
            state.apply(event);
            self.events.push(event.clone());
        }
    }
}

impl Store for MemoryStore {
    fn claim(
        &mut self,
        state: &mut SweepState,
        slot: usize,
        running: &[u64],
        create: &mut Create<'_>,
    ) -> Result<Claim> {
        let (events, claim) = choose(state, running, |_| true, create, slot.to_string());
        self.append(state, &events);
        Ok(claim)
    }

    fn record(&mut self, state: &mut SweepState, _: u64, events: Vec<Event>) -> Result<bool> {
        self.append(state, &events);
        Ok(true)
    }

    fn tick(&mut self, _: &mut SweepState) -> Result<()> {
        Ok(())
    }

    fn folder(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn close(&mut self, _: &mut SweepState) -> Result<()> {
        Ok(())
    }
}

const EXPERIMENT: &str = "name = \"m\"\nseed = 3\n[objective]\nkind = \"function\"\nfunction = \"branin\"\nmetric = \"value\"\nepochs = 4\n[budget]\ntrials = 12\nworkers = 1\n[sampler]\nkind = \"tpe\"\nstartup_trials = 4\n[pruner]\nkind = \"median\"\nwarmup_epochs = 1\nmin_trials = 2\n[space]\nx1 = { uniform = [-5.0, 10.0] }\nx2 = { uniform = [0.0, 15.0] }\n";

/// Runs the sweep on a journal holding `events` already; the journal it ends with.
fn sweep_from(experiment: &Experiment, events: &[Event]) -> Vec<Event> {
    let prepared = crate::objective::registry::Objectives::builtin()
        .build(experiment)
        .unwrap();
    let execution = Execution::Threads(Arc::clone(&prepared.objective));
    let mut store = MemoryStore {
        events: Vec::new(),
        dir: tempfile::tempdir().unwrap(),
    };
    let mut state = SweepState::default();
    store.append(&mut state, events);
    let trials = Some(experiment.budget.trials);
    begin(
        experiment,
        None,
        None,
        trials,
        &mut state,
        |state, events| {
            let events = events(state);
            store.append(state, &events);
            Ok(())
        },
    )
    .unwrap();
    let options = SweepOptions {
        quiet: true,
        resume: !events.is_empty(),
        ..SweepOptions::default()
    };
    Orchestrator::new(
        experiment, &options, execution, &prepared, &mut store, state,
    )
    .unwrap()
    .run()
    .unwrap();
    store.events
}

/// What a sweep's result is, without its times and worker names.
fn result(events: &[Event]) -> Vec<String> {
    SweepState::replay(events)
        .trials
        .iter()
        .map(|t| {
            let epochs: Vec<_> = t.epochs.iter().map(|e| (e.epoch, &e.metrics)).collect();
            format!(
                "{} {:?} {:?} {epochs:?} {:?}",
                t.number, t.params, t.state, t.note
            )
        })
        .collect()
}

#[test]
fn a_sweep_cut_after_any_event_resumes_to_the_uninterrupted_result() {
    let experiment = Experiment::parse(
        EXPERIMENT,
        std::path::Path::new("m.toml"),
        std::path::Path::new("."),
    )
    .unwrap();
    let whole = sweep_from(&experiment, &[]);
    let expected = result(&whole);
    assert!(
        expected.iter().any(|t| t.contains("Pruned")),
        "{expected:#?}"
    );
    for cut in 2..whole.len() {
        let resumed = sweep_from(&experiment, &whole[..cut]);
        assert_eq!(result(&resumed), expected, "cut after event {cut}");
    }
}
