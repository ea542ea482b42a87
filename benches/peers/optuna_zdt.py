"""Optuna's samplers for several objectives on ZDT1-3 and DTLZ2, the peer of `cargo bench
--bench sweep -- pareto` and `-- pareto-gp`.

For each function, seed and sampler (NSGAIISampler, the multi-objective TPESampler and
GPSampler, each with its defaults and the seed), it runs the problem with --inputs inputs up to
the last of --checkpoints trials and prints one JSON line: the hypervolume of the trials so far
at each checkpoint, against a reference point that every input does better than: (1.1, 11) for
ZDT (f1 <= 1, f2 <= 10) and (2.1, 2.1, 2.1) for DTLZ2 (each f <= 1 + g <= 2 with 6 inputs).

    pip install optuna
    python3 benches/peers/optuna_zdt.py --seeds 10 > optuna.jsonl
    python3 benches/peers/optuna_zdt.py --seeds 5 --functions zdt1,dtlz2 --samplers gp \
        --inputs 6 --checkpoints 40,80 >> optuna.jsonl
"""

import argparse
import json
import math
import time

import optuna


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


def dtlz2(x):
    g = sum((v - 0.5) ** 2 for v in x[2:])
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    r = 1.0 + g
    return r * math.cos(a) * math.cos(b), r * math.cos(a) * math.sin(b), r * math.sin(a)


def objectives(name, x):
    return dtlz2(x) if name == "dtlz2" else zdt(name, x)


def reference(name):
    return (2.1, 2.1, 2.1) if name == "dtlz2" else (1.1, 11.0)


def hypervolume(points, ref):
    """The volume the points dominate below ref (every objective minimised): exact, by slices
    along the last objective down to the two-objective sweep."""
    inside = [p for p in points if all(v < r for v, r in zip(p, ref))]
    if len(ref) == 2:
        total, ceiling = 0.0, ref[1]
        for f1, f2 in sorted(inside):
            if f2 < ceiling:
                total += (ref[0] - f1) * (ceiling - f2)
                ceiling = f2
        return total
    inside.sort(key=lambda p: p[-1])
    total = 0.0
    for i, p in enumerate(inside):
        top = inside[i + 1][-1] if i + 1 < len(inside) else ref[-1]
        if top > p[-1]:
            below = [q[:-1] for q in inside[: i + 1]]
            total += hypervolume(below, ref[:-1]) * (top - p[-1])
    return total


def run(function, sampler_name, seed, inputs, checkpoints):
    sampler = {
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "motpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
    }[sampler_name]()
    ref = reference(function)
    study = optuna.create_study(directions=["minimize"] * len(ref), sampler=sampler)

    def objective(trial):
        x = [trial.suggest_float(f"x{i + 1}", 0.0, 1.0) for i in range(inputs)]
        return objectives(function, x)

    started = time.perf_counter()
    found = {}
    done = 0
    for checkpoint in checkpoints:
        study.optimize(objective, n_trials=checkpoint - done)
        done = checkpoint
        found[str(checkpoint)] = hypervolume([tuple(t.values) for t in study.trials], ref)
    return found, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--functions", default="zdt1,zdt2,zdt3")
    parser.add_argument("--samplers", default="nsga2,motpe")
    parser.add_argument("--inputs", type=int, default=30)
    parser.add_argument("--checkpoints", default="100,300")
    args = parser.parse_args()
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for function in args.functions.split(","):
        for sampler in args.samplers.split(","):
            for seed in range(args.seeds):
                found, seconds = run(function, sampler, seed, args.inputs, checkpoints)
                line = {
                    "function": function,
                    "sampler": f"optuna-{sampler}",
                    "seed": seed,
                    "hv": found,
                    "seconds": seconds,
                }
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
