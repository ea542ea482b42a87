"""Optuna's two samplers for several objectives on ZDT1-3, the peer of `cargo bench --bench
sweep -- pareto`.

For each function, seed and sampler (NSGAIISampler and the multi-objective TPESampler, both
with their defaults and the seed), it runs 300 trials of the 30-input problem and prints one
JSON line: the hypervolume of the trials so far after 100 and 300 trials, against the reference
point (1.1, 11), which every input does better than (f1 <= 1, f2 <= 10).

    pip install optuna
    python3 benches/peers/optuna_zdt.py --seeds 10 > optuna.jsonl
"""

import argparse
import json
import math
import time

import optuna

INPUTS = 30
REFERENCE = (1.1, 11.0)


def zdt(name, x):
    g = 1.0 + 9.0 * sum(x[1:]) / (len(x) - 1)
    f1 = x[0]
    r = f1 / g
    if name == "zdt1":
        h = 1.0 - math.sqrt(r)
    elif name == "zdt2":
        h = 1.0 - r * r
    else:
        h = 1.0 - math.sqrt(r) - r * math.sin(10.0 * math.pi * f1)
    return f1, g * h


def hypervolume(points):
    """The area the points dominate below REFERENCE (both objectives minimised)."""
    inside = sorted(p for p in points if p[0] < REFERENCE[0] and p[1] < REFERENCE[1])
    total, ceiling = 0.0, REFERENCE[1]
    for f1, f2 in inside:
        if f2 < ceiling:
            total += (REFERENCE[0] - f1) * (ceiling - f2)
            ceiling = f2
    return total


def run(function, sampler_name, seed, trials, checkpoints):
    sampler = {
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "motpe": lambda: optuna.samplers.TPESampler(seed=seed),
    }[sampler_name]()
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)

    def objective(trial):
        x = [trial.suggest_float(f"x{i + 1}", 0.0, 1.0) for i in range(INPUTS)]
        return zdt(function, x)

    started = time.perf_counter()
    found = {}
    done = 0
    for checkpoint in checkpoints:
        study.optimize(objective, n_trials=checkpoint - done)
        done = checkpoint
        found[checkpoint] = hypervolume([tuple(t.values) for t in study.trials])
    return found, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--functions", default="zdt1,zdt2,zdt3")
    parser.add_argument("--samplers", default="nsga2,motpe")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for function in args.functions.split(","):
        for sampler in args.samplers.split(","):
            for seed in range(args.seeds):
                found, seconds = run(function, sampler, seed, 300, [100, 300])
                print(
                    json.dumps(
                        {
                            "function": function,
                            "sampler": f"optuna-{sampler}",
                            "seed": seed,
                            "hv100": found[100],
                            "hv300": found[300],
                            "seconds": seconds,
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
