"""PyTorch reference for kiln's GPU check: the digits CNN and a larger MLP, on CUDA (or the CPU).

The models are kiln's: the CNN is `conv_layers` 'same'-padded convolutions (channels doubling
from `--channels`), ReLU, 2x2 max pooling, then an MLP head (`--layers` x `--hidden`); the MLP is
64 -> `--hidden` x `--layers` -> 10. AdamW, the digits train split, val evaluated each epoch, as a
kiln trial does. Prints one line per epoch and, last, the median seconds per epoch and training
samples per second (the first epoch, which compiles kernels, is left out of the median).

  python3 torch_gpu.py --model cnn --data digits.csv --split digits_split.csv --device cuda
  python3 torch_gpu.py --model mlp --hidden 1024 --layers 4 --batch-size 256 --device cuda
"""
import argparse, statistics, time

import torch
from torch import nn

from torch_mlp import load


def cnn(a, outputs):
    layers, c_in = [], 1
    for i in range(a.conv_layers):
        c_out = a.channels << i
        layers += [nn.Conv2d(c_in, c_out, a.kernel, padding=a.kernel // 2), nn.ReLU()]
        c_in = c_out
    layers += [nn.MaxPool2d(2), nn.Flatten()]
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), *layers, *mlp(c_in * 16, a, outputs))


def mlp(inputs, a, outputs):
    dims = [inputs] + [a.hidden] * a.layers
    mods = []
    for i in range(a.layers):
        mods += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
    return mods + [nn.Linear(dims[-1], outputs)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', choices=['cnn', 'mlp'], default='cnn')
    ap.add_argument('--data', default='digits.csv')
    ap.add_argument('--split', default=None)
    ap.add_argument('--channels', type=int, default=16)
    ap.add_argument('--conv-layers', type=int, default=2)
    ap.add_argument('--kernel', type=int, default=3)
    ap.add_argument('--hidden', type=int, default=64)
    ap.add_argument('--layers', type=int, default=1)
    ap.add_argument('--batch-size', type=int, default=64)
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    if a.device.startswith('cuda') and not torch.cuda.is_available():
        print('no CUDA device: PyTorch', torch.__version__)
        raise SystemExit(3)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    xtr, ytr, xva, yva = (t.to(dev) for t in load(a.data, a.split))
    outputs = int(ytr.max()) + 1
    model = (cnn(a, outputs) if a.model == 'cnn' else nn.Sequential(*mlp(xtr.shape[1], a, outputs))).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr), device=dev)
        for s in range(0, len(xtr), a.batch_size):
            idx = perm[s:s + a.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out = model(xva)
            val_acc = (out.argmax(1) == yva).float().mean().item()
        times.append(time.perf_counter() - t0)
        print(f'epoch {epoch + 1} val_accuracy {val_acc:.4f} seconds {times[-1]:.4f}')
    med = statistics.median(times[1:] or times)
    print(f'median_epoch_s {med:.5f} train_samples_per_s {len(xtr) / med:.0f} torch {torch.__version__} device {a.device}')


if __name__ == '__main__':
    main()
