"""The digits' train and val splits, standardised, as tensors: loaded once per process.

`[objective] preload = ["torch", "digits_data"]` in digits_torch.toml has kiln's warm server
import this module, so every trial of a worker is forked with the data already in memory, as an
in-process sweep has it (a trial that asks for other files loads those itself).
"""

import csv
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "experiments", "data")
PATHS = (os.path.join(DATA, "digits.csv"), os.path.join(DATA, "digits_split.csv"))


def read(path, split_path):
    """Standardised features and labels of the train and val rows of a fixed split."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head, data = rows[0], rows[1:]
    label = head.index("label")
    x = torch.tensor([[float(v) for i, v in enumerate(r) if i != label] for r in data])
    y = torch.tensor([int(r[label]) for r in data])
    with open(split_path, newline="") as f:
        split = [r["split"] for r in csv.DictReader(f)]
    pick = lambda s: torch.tensor([i for i, v in enumerate(split) if v == s])
    train, val = pick("train"), pick("val")
    mean, std = x[train].mean(0), x[train].std(0)
    std[std < 1e-8] = 1.0
    x = (x - mean) / std
    return x[train], y[train], x[val], y[val]


_loaded = {}


def load(path, split_path):
    """The data of these files, read once per process."""
    key = (os.path.realpath(path), os.path.realpath(split_path))
    if key not in _loaded:
        _loaded[key] = read(path, split_path)
    return _loaded[key]


# One intra-op thread: kiln runs `workers` trials at once, and a forked trial must not inherit
# a thread pool that was busy.
torch.set_num_threads(1)
load(*PATHS)
