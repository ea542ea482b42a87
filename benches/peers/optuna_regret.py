"""Optuna 5's GPSampler, CmaEsSampler, TPESampler and AutoSampler on synthetic functions, the
peer of `cargo bench --bench sweep -- samplers`.

For each function, seed and sampler (defaults and the seed), it runs the function's budget of
trials and prints one JSON line with the simple regret (best value found minus the known
minimum). With --ask, it prints instead the milliseconds one ask takes with 100 and 1,000
complete random trials of hartmann6 as history (median of 3 asks).

AutoSampler is OptunaHub's (samplers/auto_sampler), which `optunahub.load_module` fetches
from GitHub; where that cannot be reached, set KILN_BENCH_OPTUNAHUB to the `package` folder of
a checkout of github.com/optuna/optunahub-registry and it is loaded from there. Without either,
the `auto` rows are left out.

    pip install optuna cmaes scipy torch optunahub
    python3 benches/peers/optuna_regret.py --seeds 10 > optuna.jsonl
    python3 benches/peers/optuna_regret.py --ask >> optuna.jsonl
"""

import argparse
import json
import math
import random
import statistics
import time

import os

import optuna

# name -> (bounds, budget); the same problems as kiln's benchmark.
PROBLEMS = {
    "branin": ([(-5.0, 10.0), (0.0, 15.0)], 60),
    "hartmann6": ([(0.0, 1.0)] * 6, 60),
    "rosenbrock2": ([(-2.0, 2.0)] * 2, 60),
    "sphere5": ([(-5.0, 5.0)] * 5, 60),
    "rosenbrock10": ([(-2.0, 2.0)] * 10, 150),
    "ellipsoid5": ([(-5.0, 5.0)] * 5, 60),
    "rastrigin5": ([(-5.0, 5.0)] * 5, 60),
    "ackley5": ([(-5.0, 5.0)] * 5, 60),
    "styblinski5": ([(-5.0, 5.0)] * 5, 60),
    "ellipsoid20": ([(-5.0, 5.0)] * 20, 300),
    "rosenbrock20": ([(-2.0, 2.0)] * 20, 300),
}

MINIMA = {
    "branin": 0.397887357729738,
    "hartmann6": -3.32236801141551,
    "styblinski5": -39.16616570377142 * 5,
}

ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [
    [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
    [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
    [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
    [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
]
P = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
]


def shift(i):
    """Where the shifted functions (ellipsoid, rastrigin, ackley) have their minimum along input i."""
    return 4.0 * math.modf(0.618033988749895 * (i + 1))[0] - 2.0


def evaluate(name, x):
    z = [v - shift(i) for i, v in enumerate(x)]
    n = len(x)
    if name.startswith("ellipsoid"):
        return sum(10 ** (6.0 * i / (n - 1)) * v * v for i, v in enumerate(z))
    if name.startswith("rastrigin"):
        return sum(v * v - 10 * math.cos(2 * math.pi * v) + 10 for v in z)
    if name.startswith("ackley"):
        squares = sum(v * v for v in z) / n
        cosines = sum(math.cos(2 * math.pi * v) for v in z) / n
        return -20 * math.exp(-0.2 * math.sqrt(squares)) - math.exp(cosines) + 20 + math.e
    if name.startswith("styblinski"):
        return sum(v**4 - 16 * v * v + 5 * v for v in x) / 2
    if name == "branin":
        b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
        return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10
    if name == "hartmann6":
        return -sum(
            ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6)))
            for i in range(4)
        )
    if name.startswith("rosenbrock"):
        return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))
    return sum(v * v for v in x)


def auto_sampler(seed):
    """OptunaHub's AutoSampler, or None where it cannot be loaded."""
    try:
        import optunahub

        local = os.environ.get("KILN_BENCH_OPTUNAHUB")
        if local:
            module = optunahub.load_local_module("samplers/auto_sampler", registry_root=local)
        else:
            module = optunahub.load_module("samplers/auto_sampler")
        return module.AutoSampler(seed=seed)
    except Exception:
        return None


def sampler_of(kind, seed):
    return {
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "cmaes-sep": lambda: optuna.samplers.CmaEsSampler(seed=seed, use_separable_cma=True),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "auto": lambda: auto_sampler(seed),
    }[kind]()


def regret(name, kind, seed):
    bounds, budget = PROBLEMS[name]
    sampler = sampler_of(kind, seed)
    if sampler is None:
        return None, None
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        x = [trial.suggest_float(f"x{i + 1}", lo, hi) for i, (lo, hi) in enumerate(bounds)]
        return evaluate(name, x)

    started = time.perf_counter()
    study.optimize(objective, n_trials=budget)
    return study.best_value - MINIMA.get(name, 0.0), time.perf_counter() - started


def ask_ms(kind, n):
    bounds = PROBLEMS["hartmann6"][0]
    distributions = {
        f"x{i + 1}": optuna.distributions.FloatDistribution(lo, hi) for i, (lo, hi) in enumerate(bounds)
    }
    rng = random.Random(1)
    times = []
    for k in range(3):
        study = optuna.create_study(sampler=sampler_of(kind, k))
        for _ in range(n):
            params = {name: rng.uniform(d.low, d.high) for name, d in distributions.items()}
            value = evaluate("hartmann6", list(params.values()))
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
        started = time.perf_counter()
        trial = study.ask(distributions)
        times.append((time.perf_counter() - started) * 1000)
        study.tell(trial, 0.0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--functions", default=",".join(p for p in PROBLEMS if not p.endswith("20")))
    parser.add_argument("--samplers", default="gp,cmaes,tpe,auto")
    parser.add_argument("--ask", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.ask:
        for kind in [k for k in args.samplers.split(",") if k != "auto"]:
            for n in [100, 1000]:
                print(json.dumps({"ask": kind, "n": n, "ms": ask_ms(kind, n)}), flush=True)
        return
    for name in args.functions.split(","):
        for kind in args.samplers.split(","):
            for seed in range(args.seeds):
                value, seconds = regret(name, kind, seed)
                if value is None:
                    break
                line = {"function": name, "sampler": kind, "seed": seed, "regret": value, "seconds": seconds}
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
