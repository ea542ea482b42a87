//! `kiln retry`: failed trials made unfinished again, so the sweep runs them once more with
//! their numbers, parameters and seeds.

use crate::error::{Error, Result};
use crate::journal::{Event, now};
use crate::state::{SweepState, TrialRecord, TrialState};
use crate::trial::EndState;

/// Which failed trials `kiln retry` runs again.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Retry {
    /// None: a run or a resume.
    #[default]
    Nothing,
    /// Every failed trial.
    Failed,
    /// These trials, each of which must have failed.
    Trials(Vec<u64>),
}

/// The events that reopen the failed trials `retry` names; a named trial that did not fail is
/// refused, and then nothing is reopened.
pub(super) fn reopen(state: &SweepState, retry: &Retry) -> Result<Vec<Event>> {
    let failed = |t: &&TrialRecord| t.state == TrialState::Ended(EndState::Failed);
    let numbers: Vec<u64> = match retry {
        Retry::Nothing => return Ok(Vec::new()),
        Retry::Failed => state
            .trials
            .iter()
            .filter(failed)
            .map(|t| t.number)
            .collect(),
        Retry::Trials(numbers) => {
            for &n in numbers {
                match state.trials.get(n as usize) {
                    None => {
                        return Err(Error::input(format!(
                            "--trials: the sweep has no trial {n} (it holds trials 0 to {})",
                            state.trials.len().saturating_sub(1)
                        )));
                    }
                    Some(t) if !failed(&t) => {
                        return Err(Error::input(format!(
                            "--trials: trial {n} is {}, not failed; `retry` reruns failed trials only",
                            t.state.name()
                        )));
                    }
                    Some(_) => {}
                }
            }
            // `--trials 3,3` reopens trial 3 once.
            let mut numbers = numbers.clone();
            numbers.sort_unstable();
            numbers.dedup();
            numbers
        }
    };
    Ok(numbers
        .into_iter()
        .map(|trial| Event::TrialReopened {
            trial,
            was: state.trials[trial as usize].note.clone(),
            time: now(),
        })
        .collect())
}
