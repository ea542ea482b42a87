//! One run of CMA-ES between restarts: its Gaussian in the unit cube and the update of each
//! generation (Hansen, "The CMA evolution strategy: a tutorial", 2016).

use crate::rng::Rng;
use nalgebra::{DMatrix, DVector};

/// One run of CMA-ES, between restarts.
#[derive(Clone)]
pub(super) struct Run {
    pub(super) lambda: usize,
    /// sep-CMA-ES: the covariance kept diagonal (Ros and Hansen, PPSN 2008), learnt faster.
    separable: bool,
    mean: DVector<f64>,
    sigma: f64,
    c: DMatrix<f64>,
    pc: DVector<f64>,
    ps: DVector<f64>,
    /// C = B diag(d^2) B^T.
    b: DMatrix<f64>,
    d: DVector<f64>,
    generations: u32,
    /// The best loss of each generation, for the stopping test.
    pub(super) bests: Vec<f64>,
}

/// The constants of the update, from the dimension and the population.
struct Constants {
    weights: Vec<f64>,
    mu_eff: f64,
    c_sigma: f64,
    d_sigma: f64,
    c_c: f64,
    c_1: f64,
    c_mu: f64,
    chi_n: f64,
}

impl Constants {
    fn new(n: usize, lambda: usize) -> Constants {
        let nf = n as f64;
        let mu = lambda / 2;
        let raw: Vec<f64> = (1..=mu)
            .map(|i| (mu as f64 + 0.5).ln() - (i as f64).ln())
            .collect();
        let total: f64 = raw.iter().sum();
        let weights: Vec<f64> = raw.iter().map(|w| w / total).collect();
        let mu_eff = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        let c_sigma = (mu_eff + 2.0) / (nf + mu_eff + 5.0);
        let c_1 = 2.0 / ((nf + 1.3).powi(2) + mu_eff);
        Constants {
            weights,
            mu_eff,
            c_sigma,
            d_sigma: 1.0 + 2.0 * (((mu_eff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + c_sigma,
            c_c: (4.0 + mu_eff / nf) / (nf + 4.0 + 2.0 * mu_eff / nf),
            c_1,
            c_mu: (1.0 - c_1)
                .min(2.0 * (mu_eff - 2.0 + 1.0 / mu_eff) / ((nf + 2.0).powi(2) + mu_eff)),
            chi_n: nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf)),
        }
    }
}

impl Run {
    pub(super) fn new(mean: DVector<f64>, sigma: f64, lambda: usize, separable: bool) -> Run {
        let n = mean.len();
        Run {
            lambda,
            separable,
            mean,
            sigma,
            c: DMatrix::identity(n, n),
            pc: DVector::zeros(n),
            ps: DVector::zeros(n),
            b: DMatrix::identity(n, n),
            d: DVector::from_element(n, 1.0),
            generations: 0,
            bests: Vec::new(),
        }
    }

    /// One generation's update from its points, best first.
    pub(super) fn tell(&mut self, sorted: &[DVector<f64>], floors: &[f64]) {
        let n = self.mean.len();
        let k = Constants::new(n, self.lambda);
        let ys: Vec<DVector<f64>> = sorted
            .iter()
            .map(|x| (x - &self.mean) / self.sigma)
            .collect();
        let mut y_w = DVector::zeros(n);
        for (w, y) in k.weights.iter().zip(&ys) {
            y_w += y * *w;
        }
        self.mean += &y_w * self.sigma;
        let inv_sqrt =
            &self.b * DMatrix::from_diagonal(&self.d.map(|d| 1.0 / d)) * self.b.transpose();
        self.ps = &self.ps * (1.0 - k.c_sigma)
            + inv_sqrt * &y_w * (k.c_sigma * (2.0 - k.c_sigma) * k.mu_eff).sqrt();
        let g = f64::from(self.generations + 1);
        let ps_norm = self.ps.norm();
        let h_sigma = ps_norm / (1.0 - (1.0 - k.c_sigma).powf(2.0 * g)).sqrt()
            < (1.4 + 2.0 / (n as f64 + 1.0)) * k.chi_n;
        let h = if h_sigma { 1.0 } else { 0.0 };
        self.pc = &self.pc * (1.0 - k.c_c) + &y_w * (h * (k.c_c * (2.0 - k.c_c) * k.mu_eff).sqrt());
        let mut rank_mu = DMatrix::zeros(n, n);
        for (w, y) in k.weights.iter().zip(&ys) {
            rank_mu += y * y.transpose() * *w;
        }
        let lost = (1.0 - h) * k.c_c * (2.0 - k.c_c);
        // A diagonal has n entries to learn, not n²/2: sep-CMA's rates are (n + 2) / 3 larger.
        let (c_1, c_mu) = match self.separable {
            true => {
                let faster = (n as f64 + 2.0) / 3.0;
                let c_1 = (k.c_1 * faster).min(1.0);
                (c_1, (k.c_mu * faster).min(1.0 - c_1))
            }
            false => (k.c_1, k.c_mu),
        };
        self.c = &self.c * (1.0 - c_1 - c_mu + c_1 * lost)
            + &self.pc * self.pc.transpose() * c_1
            + rank_mu * c_mu;
        self.sigma *= ((k.c_sigma / k.d_sigma) * (ps_norm / k.chi_n - 1.0))
            .min(1.0)
            .exp();
        // The margin: an integer axis keeps a spread of at least its floor.
        for (i, &floor) in floors.iter().enumerate() {
            let spread = self.sigma * self.c[(i, i)].sqrt();
            if floor > 0.0 && spread < floor {
                self.c[(i, i)] = (floor / self.sigma).powi(2);
            }
        }
        self.set_covariance(self.c.clone());
        self.generations += 1;
    }

    /// Sets the covariance (symmetrised; only its diagonal for sep-CMA) and its
    /// eigendecomposition.
    pub(super) fn set_covariance(&mut self, c: DMatrix<f64>) {
        if self.separable {
            self.c = DMatrix::from_diagonal(&c.diagonal());
            self.b = DMatrix::identity(c.nrows(), c.nrows());
            self.d = self.c.diagonal().map(|e| e.max(1e-20).sqrt());
            return;
        }
        self.c = (&c + c.transpose()) * 0.5;
        let eigen = nalgebra::SymmetricEigen::new(self.c.clone());
        self.b = eigen.eigenvectors;
        self.d = eigen.eigenvalues.map(|e| e.max(1e-20).sqrt());
    }

    /// Whether the run has converged: its steps below 1e-10 of the cube, its last generations
    /// all within 1e-12 of each other, or its covariance too ill-conditioned to go on.
    pub(super) fn converged(&self) -> bool {
        let n = self.mean.len();
        let tiny_steps = (0..n).all(|i| self.sigma * self.c[(i, i)].sqrt() < 1e-10);
        let window = 10 + (30 * n).div_ceil(self.lambda);
        let flat = self.bests.len() >= window && {
            let recent = &self.bests[self.bests.len() - window..];
            let (low, high) = recent
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            high - low < 1e-12
        };
        let (dmin, dmax) = self
            .d
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        tiny_steps || flat || (dmax / dmin).powi(2) > 1e14
    }

    /// A point of the distribution in `[0, 1)^n` for one trial: redrawn while outside (up to
    /// 100 times), then clipped.
    pub(super) fn draw(&self, rng: &mut Rng) -> DVector<f64> {
        let n = self.mean.len();
        let mut x = self.mean.clone();
        for _ in 0..100 {
            let z = DVector::from_fn(n, |_, _| crate::sampler::standard_normal(rng));
            x = &self.mean + &self.b * z.component_mul(&self.d) * self.sigma;
            if x.iter().all(|v| (0.0..1.0).contains(v)) {
                return x;
            }
        }
        x.map(|v| v.clamp(0.0, 1.0 - f64::EPSILON))
    }
}
