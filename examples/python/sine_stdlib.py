"""A kiln command trial with no dependencies: the Python standard library only.

Fits y = sin(3x) on [-1, 1] with a cubic polynomial trained by SGD with momentum. It shows the
whole protocol of `[objective] command` (README: "Any framework's training script"):

- parameters from KILN_PARAMS, every random choice seeded from KILN_SEED and the epoch;
- a checkpoint per epoch in KILN_TRIAL_DIR, two slots written in turn, saved *before* the
  epoch's report, so a kill at any moment leaves a whole checkpoint;
- on start, the newest checkpoint no newer than KILN_RESUME_EPOCH (a newer one was saved but
  its report never reached kiln's journal);
- one `kiln-report {...}` line per epoch on stdout (a plain print: kiln runs Python unbuffered);
  everything else goes to the trial's log.

Run it as a sweep with examples/python/sine_stdlib.toml.
"""

import argparse
import json
import math
import os
import random
import time


def load_checkpoint(folder, resume_epoch):
    """The newest checkpoint slot whose epoch is at most resume_epoch, or None."""
    best = None
    for slot in (0, 1):
        try:
            with open(os.path.join(folder, f"checkpoint.{slot}.json")) as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue  # missing, or torn by a kill mid-write
        if state["epoch"] <= resume_epoch and (best is None or state["epoch"] > best["epoch"]):
            best = state
    return best


def save_checkpoint(folder, state):
    """Writes the slot of the epoch's parity: write a temporary file, then rename it."""
    path = os.path.join(folder, f"checkpoint.{state['epoch'] % 2}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)


def features(x, degree):
    return [x**k for k in range(degree + 1)]


def mse(w, points, degree):
    return sum((sum(a * b for a, b in zip(w, features(x, degree))) - y) ** 2 for x, y in points) / len(points)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds per epoch, to look busy")
    args = parser.parse_args()

    params = json.loads(os.environ["KILN_PARAMS"])
    seed = int(os.environ["KILN_SEED"])
    folder = os.environ["KILN_TRIAL_DIR"]
    resume_epoch = int(os.environ["KILN_RESUME_EPOCH"])
    learning_rate = float(params["learning_rate"])
    momentum = float(params.get("momentum", 0.9))
    degree = int(params.get("degree", 3))

    train = [(x, math.sin(3 * x)) for x in (-1 + 2 * i / 63 for i in range(64))]
    val = [(x, math.sin(3 * x)) for x in (-1 + 2 * (i + 0.5) / 32 for i in range(32))]

    state = load_checkpoint(folder, resume_epoch)
    if state is None:
        init = random.Random(seed)
        state = {"epoch": 0, "w": [init.gauss(0, 0.1) for _ in range(degree + 1)], "v": [0.0] * (degree + 1)}
    print(f"trial {os.environ['KILN_TRIAL']}: starting after epoch {state['epoch']}")

    w, v = state["w"], state["v"]
    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        order = list(range(len(train)))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)  # a pure function of (seed, epoch)
        for i in order:
            x, y = train[i]
            f = features(x, degree)
            error = sum(a * b for a, b in zip(w, f)) - y
            for k in range(len(w)):
                v[k] = momentum * v[k] - learning_rate * 2 * error * f[k]
                w[k] += v[k]
        time.sleep(args.sleep)
        save_checkpoint(folder, {"epoch": epoch, "w": w, "v": v})
        report = {"epoch": epoch, "train_loss": mse(w, train, degree), "val_loss": mse(w, val, degree)}
        print("kiln-report " + json.dumps(report))


if __name__ == "__main__":
    main()
