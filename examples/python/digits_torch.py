"""A PyTorch MLP on the handwritten digits as kiln's trials (`[objective] command`).

Reads its parameters from KILN_PARAMS, seeds every random choice from KILN_SEED (and the epoch,
so a resumed trial draws what an uninterrupted one draws), keeps one checkpoint per epoch in
KILN_TRIAL_DIR (two slots written in turn, each saved before the epoch's report), resumes from
the newest one no newer than KILN_RESUME_EPOCH, and prints one `kiln-report {...}` line per
epoch (a plain print: kiln runs Python unbuffered). See examples/python/digits_torch.toml; needs
`pip install torch`. kiln starts it warm: `import torch` runs once per worker, not per trial.
benches/peers/optuna_digits_torch.py runs the same functions in-process under Optuna.
"""

import argparse
import json
import os

import torch
from torch import nn

import digits_data


def checkpoint_path(folder, epoch):
    return os.path.join(folder, f"checkpoint.{epoch % 2}.pt")


def load_checkpoint(folder, resume_epoch):
    """The newest checkpoint whose epoch is at most resume_epoch (a newer one was saved but its
    report never reached kiln's journal), or None."""
    found = []
    for slot in (0, 1):
        try:
            found.append(torch.load(checkpoint_path(folder, slot), weights_only=False))
        except Exception:  # missing, or torn by a kill mid-write
            pass
    found = [c for c in found if c["epoch"] <= resume_epoch]
    return max(found, key=lambda c: c["epoch"], default=None)


def build(params, inputs, seed):
    """The model and optimizer of a trial's parameters, initialised from its seed."""
    hidden, layers = int(params.get("hidden", 128)), int(params.get("layers", 2))
    torch.manual_seed(seed)
    dims = [inputs] + [hidden] * layers
    modules = []
    for i in range(layers):
        modules += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU(), nn.Dropout(float(params.get("dropout", 0.0)))]
    model = nn.Sequential(*modules, nn.Linear(hidden, 10))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=float(params["learning_rate"]), weight_decay=float(params.get("weight_decay", 0.0))
    )
    return model, optimizer


def train_epoch(model, optimizer, data, batch, seed, epoch):
    """One epoch of training, then the val metrics: the same numbers after a resume."""
    x_train, y_train, x_val, y_val = data
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(seed * 1000 + epoch)  # this epoch's shuffle and dropout
    model.train()
    order = torch.randperm(len(x_train))
    total = 0.0
    for i in range(0, len(order), batch):
        rows = order[i : i + batch]
        optimizer.zero_grad()
        loss = loss_fn(model(x_train[rows]), y_train[rows])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(rows)
    model.eval()
    with torch.no_grad():
        logits = model(x_val)
        val_loss = loss_fn(logits, y_val).item()
        val_accuracy = (logits.argmax(1) == y_val).float().mean().item()
    return {"train_loss": total / len(x_train), "val_loss": val_loss, "val_accuracy": val_accuracy}


def main():
    digits, split = digits_data.PATHS
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=digits)
    parser.add_argument("--split", default=split)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    params = json.loads(os.environ["KILN_PARAMS"])
    seed = int(os.environ["KILN_SEED"])  # below 2**21: seed * 1000 + epoch suits any library
    folder = os.environ["KILN_TRIAL_DIR"]
    resume_epoch = int(os.environ["KILN_RESUME_EPOCH"])
    torch.set_num_threads(1)  # one trial per core: kiln runs `workers` trials at once

    data = digits_data.load(args.data, args.split)
    model, optimizer = build(params, data[0].shape[1], seed)
    start = 1
    state = load_checkpoint(folder, resume_epoch)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"] + 1
    print(f"starting at epoch {start}")

    batch = int(params.get("batch_size", 64))
    for epoch in range(start, args.epochs + 1):
        metrics = train_epoch(model, optimizer, data, batch, seed, epoch)
        path = checkpoint_path(folder, epoch)
        torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, path + ".tmp")
        os.replace(path + ".tmp", path)
        print("kiln-report " + json.dumps({"epoch": epoch, **metrics}))


if __name__ == "__main__":
    main()
