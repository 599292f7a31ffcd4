#!/usr/bin/python3
"""PyTorch peer for `make bench-peer`: the paper's mlp, trained the way dmzbench
trains it, timed the same way, side by side with dmzbench's cpu backend.

Development-time comparison only; dmzbench itself never needs Python.

  bench/peers/pytorch_mlp.py --dmzbench build/dmzbench [--data fashion-mnist] [--steps 2000]
                             [--repeat 3] [--threads N]

Same model (784 -> 100 ReLU -> C, TF layout, truncated-normal init), same loss
(cross-entropy summed over the batch, probabilities clipped to [1e-10, 1]), Adam
0.01 (PyTorch adds eps to sqrt(v_hat), TensorFlow to sqrt(v): a negligible
difference), batch 100, epoch-wise shuffling, warm-up discarded, evaluation
excluded from the wall time. Prints a table and the ratios, and writes
peer.csv into the dmzbench run directory.
"""
import argparse
import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def load_split(source, split, transposed):
    """The files dmzbench recorded in meta.json: a CSV pair or IDX files."""
    if source.endswith(".csv"):
        path = source if split == "train" else source.replace("train", "test")
        frame = pd.read_csv(path, header=None, dtype=np.uint8)
        labels, images = frame.iloc[:, 0].to_numpy(), frame.iloc[:, 1:].to_numpy().reshape(-1, 28, 28)
    else:
        names = {"train": ("train", "train"), "test": ("test", "t10k")}[split]
        hits = [p for n in names for p in glob.glob(os.path.join(source, f"*{n}-images-idx3-ubyte*"))]
        images = read_idx(hits[0])
        labels = read_idx(hits[0].replace("images-idx3", "labels-idx1"))
    if transposed:
        images = images.transpose(0, 2, 1)
    return images.reshape(len(images), 784).astype(np.float32) * np.float32(1.0 / 255.0), labels.astype(np.int64)


def make_model(classes, seed):
    torch.manual_seed(seed)

    def trunc(shape, std):
        t = torch.empty(shape)
        torch.nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)
        return t.requires_grad_()

    return [trunc((784, 100), 1 / 28), torch.zeros(100, requires_grad=True),
            trunc((100, classes), 0.1), torch.zeros(classes, requires_grad=True)]


def forward(params, x):
    w1, b1, w2, b2 = params
    return torch.softmax(torch.relu(x @ w1 + b1) @ w2 + b2, dim=1)


def summed_clipped_xent(probs, y):
    return -torch.log(probs.gather(1, y[:, None]).clamp(1e-10, 1.0)).sum()


def train(train_x, train_y, test_x, test_y, classes, steps, warmup, batch, seed):
    rng = np.random.default_rng(seed)

    def batches():
        while True:
            order = rng.permutation(len(train_x))
            for i in range(0, len(order) - batch + 1, batch):
                idx = order[i:i + batch]
                yield torch.from_numpy(train_x[idx]), torch.from_numpy(train_y[idx])

    def run(n):
        params = make_model(classes, seed)
        opt = torch.optim.Adam(params, lr=0.01, betas=(0.9, 0.999), eps=1e-8)
        source = batches()
        start = time.perf_counter()
        for _ in range(n):
            x, y = next(source)
            loss = summed_clipped_xent(forward(params, x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return params, time.perf_counter() - start, float(loss)

    _, warmup_s, _ = run(warmup)
    params, wall_s, final_loss = run(steps)
    with torch.no_grad():
        probs = forward(params, torch.from_numpy(test_x))
        accuracy = float((probs.argmax(1).numpy() == test_y).mean())
    return dict(warmup_s=warmup_s, wall_s=wall_s, samples_per_s=steps * batch / wall_s,
                final_loss=final_loss, test_accuracy=accuracy)


def run_dmzbench(args, out):
    cmd = [args.dmzbench, "train", "--data", args.data, "--steps", str(args.steps), "--repeat", str(args.repeat),
           "--threads", str(args.threads), "--quiet", "--no-plots", "--out", out, "--name", "peer-pytorch"]
    subprocess.run(cmd, check=True)
    run_dir = max(glob.glob(os.path.join(out, "*peer-pytorch*")), key=os.path.getmtime)
    with open(os.path.join(run_dir, "meta.json")) as f:
        meta = json.load(f)
    return run_dir, meta, pd.read_csv(os.path.join(run_dir, "summary.csv"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dmzbench", default="build/dmzbench")
    p.add_argument("--data", default="emnist-balanced")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default=os.environ.get("DMZBENCH_RESULTS", "results"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    run_dir, meta, ours = run_dmzbench(args, args.out)
    ds = meta["dataset"]
    transposed = "emnist" in ds["name"]
    train_x, train_y = load_split(ds["source"], "train", transposed)
    test_x, test_y = load_split(ds["source"], "test", transposed)
    peer = pd.DataFrame([train(train_x, train_y, test_x, test_y, ds["classes"], args.steps, 10, 100, 1 + r)
                         for r in range(args.repeat)])
    peer.insert(0, "rep", range(args.repeat))
    peer.to_csv(os.path.join(run_dir, "peer.csv"), index=False)

    cols = ["wall_s", "samples_per_s", "test_accuracy", "final_loss"]
    table = pd.DataFrame({"dmzbench cpu": ours[cols].median(), f"pytorch {torch.__version__}": peer[cols].median()})
    table["dmzbench / pytorch"] = table.iloc[:, 0] / table.iloc[:, 1]
    print(f"# {ds['name']} (sha256 {ds['sha256'][:16]}...), mlp, {args.steps} steps x batch 100, "
          f"{args.threads} threads, median of {args.repeat} repetitions")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"# samples/s ratio > 1: dmzbench faster. Results: {run_dir}/ (summary.csv, peer.csv)")


if __name__ == "__main__":
    sys.exit(main())
