//! `[sampler]`: which sampler, and its settings, parsed and checked.

use crate::error::Result;
use crate::space::Space;
use serde::Deserialize;
use std::path::PathBuf;

crate::named! {
    /// The samplers (`[sampler] kind`).
    pub enum SamplerKind {
        /// Chosen from the space and the objectives ([`crate::sampler::auto`]); the default
        /// (the first variant is what a file without `kind` gets).
        Auto = "auto",
        /// Independent uniform draws in the unit cube.
        Random = "random",
        /// Every combination of the dimensions' points, in order.
        Grid = "grid",
        /// A scrambled Sobol sequence: low-discrepancy, evenly spread.
        Sobol = "sobol",
        /// The tree-structured Parzen estimator (MOTPE with several objectives).
        Tpe = "tpe",
        /// NSGA-II, the genetic algorithm for several objectives.
        Nsga2 = "nsga2",
        /// CMA-ES, the evolution strategy for continuous parameters.
        Cmaes = "cmaes",
        /// Bayesian optimisation with a Gaussian process.
        Gp = "gp",
    }
}

crate::named! {
    /// What CMA-ES does when its search has converged.
    pub enum Restart {
        /// Start again from a random mean with twice the population (IPOP).
        Ipop = "ipop",
        /// Keep refining where it is.
        None = "none",
    }
}

/// CMA-ES settings (`[sampler]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CmaSettings {
    /// The first step size, in the unit cube.
    pub sigma0: f64,
    /// Trials per generation of the first run (`None`: 4 + 3 ln n).
    pub popsize: Option<usize>,
    /// What to do on convergence.
    pub restart: Restart,
    /// sep-CMA-ES: a diagonal covariance, for many parameters (`separable = true`).
    pub separable: bool,
}

/// `[sampler]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerSpec {
    /// Which sampler.
    pub kind: SamplerKind,
    /// Whether the file left `kind` out (and `kind` is the default).
    pub by_default: bool,
    /// Default grid points for continuous ranges.
    pub points: Option<usize>,
    /// TPE: random trials before the model takes over.
    pub startup_trials: usize,
    /// TPE: the fraction of trials that count as good.
    pub gamma: f64,
    /// TPE: candidates drawn from the good model per trial.
    pub candidates: usize,
    /// TPE: model the dimensions jointly (`None`: jointly for one objective, one by one for
    /// several, as Optuna 5).
    pub multivariate: Option<bool>,
    /// tpe, gp, cmaes, nsga2: results folders of earlier sweeps whose complete trials it starts
    /// from.
    pub warm_start: Vec<PathBuf>,
    /// NSGA-II: trials per generation.
    pub population: usize,
    /// CMA-ES: its first step size, population and restarts.
    pub cmaes: CmaSettings,
    /// `deterministic = true`: trial N is proposed from the first N - `lag` trials alone, once
    /// they have ended (`lag`, default 4); `None` without.
    pub lag: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSampler {
    pub(crate) kind: Option<String>,
    pub(crate) points: Option<i64>,
    pub(crate) startup_trials: Option<i64>,
    pub(crate) gamma: Option<f64>,
    pub(crate) candidates: Option<i64>,
    pub(crate) multivariate: Option<bool>,
    #[serde(default)]
    pub(crate) warm_start: Vec<String>,
    pub(crate) population: Option<i64>,
    pub(crate) sigma0: Option<f64>,
    pub(crate) popsize: Option<i64>,
    pub(crate) restart: Option<String>,
    pub(crate) separable: Option<bool>,
    pub(crate) deterministic: Option<bool>,
    pub(crate) lag: Option<i64>,
}

/// Number of grid points (the distinct active ones, in a space with conditions), or the
/// dimension that cannot be gridded and why.
pub fn grid_size(
    space: &Space,
    default_points: Option<usize>,
) -> std::result::Result<u64, (String, String)> {
    crate::space::Grid::new(space, default_points).map(|grid| grid.size())
}

/// `[sampler] lag` of a deterministic sweep when left out: trial N is proposed from trials
/// 0..N-4, so four workers rarely wait.
pub const DEFAULT_LAG: i64 = 4;

impl crate::experiment::source::Builder {
    pub(crate) fn sampler(&self, raw: &RawSampler) -> Result<SamplerSpec> {
        let kind: SamplerKind = self.named(&["sampler", "kind"], "sampler", raw.kind.as_deref())?;
        let at_least_one = |key: &str, value: Option<i64>| -> Result<Option<usize>> {
            match value {
                Some(v) if v < 1 => Err(self.err(
                    &["sampler", key],
                    format!("`{key}` must be an integer >= 1"),
                )),
                v => Ok(v.map(|v| v as usize)),
            }
        };
        let points = at_least_one("points", raw.points)?;
        let startup_trials = at_least_one("startup_trials", raw.startup_trials)?.unwrap_or(10);
        let candidates = at_least_one("candidates", raw.candidates)?.unwrap_or(24);
        let gamma = raw.gamma.unwrap_or(0.1);
        if !(gamma > 0.0 && gamma < 1.0) {
            return Err(self.err(
                &["sampler", "gamma"],
                "`gamma` must be a fraction in (0, 1), e.g. 0.1",
            ));
        }
        let population = at_least_one("population", raw.population)?;
        if population.is_some() && kind != SamplerKind::Nsga2 {
            return Err(self.err(&["sampler", "population"], format!("`population` is the generation size of NSGA-II; the `{}` sampler has none (set kind = \"nsga2\")", kind.name())));
        }
        let mut warm_start = Vec::new();
        for (i, folder) in raw.warm_start.iter().enumerate() {
            let at = ["sampler", "warm_start", &i.to_string()].map(str::to_string);
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            if !matches!(
                kind,
                SamplerKind::Tpe | SamplerKind::Gp | SamplerKind::Cmaes | SamplerKind::Auto
            ) {
                return Err(self.err(&at, format!("`warm_start` gives a sampler that learns from history the trials of earlier sweeps (tpe, gp, cmaes, auto); the `{}` sampler does not learn from history", kind.name())));
            }
            let dir = self.source.base_dir.join(folder);
            if !crate::layout::journal(&dir).is_file() {
                return Err(self.err(&at, format!("`{folder}` holds no sweep (no {} in {}); name the results folder of an earlier sweep", crate::layout::JOURNAL, dir.display())));
            }
            warm_start.push(dir);
        }
        Ok(SamplerSpec {
            kind,
            by_default: raw.kind.is_none(),
            points,
            startup_trials,
            gamma,
            candidates,
            multivariate: raw.multivariate,
            warm_start,
            population: population.unwrap_or(50),
            cmaes: self.cmaes(raw, kind)?,
            lag: self.lag(raw)?,
        })
    }

    /// `sigma0`, `popsize`, `restart` and `separable`, which only CMA-ES reads.
    pub(crate) fn cmaes(&self, raw: &RawSampler, kind: SamplerKind) -> Result<CmaSettings> {
        let given = [
            ("sigma0", raw.sigma0.is_some()),
            ("popsize", raw.popsize.is_some()),
            ("restart", raw.restart.is_some()),
            ("separable", raw.separable.is_some()),
        ];
        if kind != SamplerKind::Cmaes
            && let Some((key, _)) = given.iter().find(|(_, given)| *given)
        {
            return Err(self.err(&["sampler", key], format!("`{key}` is a setting of CMA-ES; the `{}` sampler has none (set kind = \"cmaes\")", kind.name())));
        }
        let sigma0 = raw.sigma0.unwrap_or(1.0 / 6.0);
        if !(sigma0 > 0.0 && sigma0 <= 1.0) {
            return Err(self.err(
                &["sampler", "sigma0"],
                "`sigma0` is the first step size as a fraction of each range: in (0, 1], e.g. 0.2",
            ));
        }
        let popsize = match raw.popsize {
            Some(p) if p < 2 => {
                return Err(self.err(&["sampler", "popsize"], "`popsize` must be an integer >= 2"));
            }
            p => p.map(|p| p as usize),
        };
        Ok(CmaSettings {
            sigma0,
            popsize,
            restart: self.named(&["sampler", "restart"], "restart", raw.restart.as_deref())?,
            separable: raw.separable.unwrap_or(false),
        })
    }

    /// `deterministic` and `lag`: the lag of a deterministic sweep.
    pub(crate) fn lag(&self, raw: &RawSampler) -> Result<Option<u64>> {
        match (raw.deterministic.unwrap_or(false), raw.lag) {
            (false, None) => Ok(None),
            (false, Some(_)) => Err(self.err(
                &["sampler", "lag"],
                "`lag` belongs to a deterministic sweep: add `deterministic = true`",
            )),
            (true, Some(lag)) if lag < 0 => Err(self.err(
                &["sampler", "lag"],
                "`lag` must be an integer >= 0: how many of the latest trials a proposal may go without",
            )),
            (true, lag) => Ok(Some(lag.unwrap_or(DEFAULT_LAG) as u64)),
        }
    }
}
