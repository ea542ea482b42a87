"""The sweep of examples/python/digits_torch.toml in Optuna, in-process: the same training code
(the example's own functions), space, trials, epochs and pruning, with trials on threads.

TPE (10 startup trials, as kiln's default) and the median pruner (warm-up 2 epochs, 5 trials
before it prunes, as kiln's defaults); `--jobs` trials at once (`study.optimize(n_jobs=...)`,
threads; PyTorch releases the GIL inside its kernels), each with one intra-op thread. Prints one
JSON line: wall seconds of the whole process, of `study.optimize`, the best val_accuracy, the
epochs trained and the trials pruned.

  python3 optuna_digits_torch.py --trials 20 --jobs 2 --epochs 20
"""

import argparse
import json
import os
import sys
import time

started = time.perf_counter()

import optuna  # noqa: E402
import torch  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "examples", "python"))
import digits_data  # noqa: E402
import digits_torch  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = digits_data.load(*digits_data.PATHS)
    epochs = [0]

    def objective(trial):
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
            "hidden": trial.suggest_int("hidden", 32, 256, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        }
        seed = trial.number * 7919 % 2**21
        model, optimizer = digits_torch.build(params, data[0].shape[1], seed)
        best = 0.0
        for epoch in range(1, args.epochs + 1):
            metrics = digits_torch.train_epoch(model, optimizer, data, params["batch_size"], seed, epoch)
            epochs[0] += 1
            best = max(best, metrics["val_accuracy"])
            trial.report(metrics["val_accuracy"], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=10),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    )
    optimize = time.perf_counter()
    study.optimize(objective, n_trials=args.trials, n_jobs=args.jobs)
    done = time.perf_counter()
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    print(json.dumps({
        "wall_s": done - started,
        "optimize_s": done - optimize,
        "best": study.best_value,
        "epochs": epochs[0],
        "pruned": pruned,
    }))


if __name__ == "__main__":
    main()
