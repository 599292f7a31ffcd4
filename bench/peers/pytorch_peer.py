#!/usr/bin/python3
"""PyTorch peer for `make bench-peer` and the GPU check: the paper's mlp or the
cnn, trained the way dmzbench trains it, timed the same way, side by side with
a dmzbench run in the same call.

Development-time comparison only; dmzbench itself never needs Python.

  bench/peers/pytorch_peer.py --dmzbench build/dmzbench [--model mlp|cnn] [--device cpu|cuda]
                              [--data fashion-mnist] [--steps 2000] [--repeat 3] [--threads N]
                              [--backend cpu|cuda|cublas|cudnn] [--dmzbench-args "--graph --log-every 100"]

Same models as dmzbench (TF layout and init: truncated normal, mlp biases 0, cnn
biases 0.1), same loss (cross-entropy summed over the batch, probabilities
clipped to [1e-10, 1]), Adam (mlp lr 0.01, cnn 1e-3; PyTorch adds eps to
sqrt(v_hat), TensorFlow to sqrt(v): a negligible difference), batch 100,
epoch-wise shuffling, warm-up discarded, evaluation excluded from the wall time.
On cuda PyTorch runs eagerly with the data set on the device (one upload, each
batch indexed there, as dmzbench's gather kernel) and the clock stops after a
synchronize. Needs torch and numpy; pandas only to read a CSV data set. Prints
a table and the ratios, and writes peer.csv into the dmzbench run directory.
"""
import argparse
import csv
import glob
import gzip
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np
import torch

LEARNING_RATE = {"mlp": 0.01, "cnn": 1e-3}


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
        import pandas as pd  # only here: the GPU machine may lack it, and IDX needs none

        path = source if split == "train" else source.replace("train", "test")
        frame = pd.read_csv(path, header=None, dtype=np.uint8)
        labels, images = frame.iloc[:, 0].to_numpy(), frame.iloc[:, 1:].to_numpy().reshape(-1, 28, 28)
    else:
        names = {"train": ("train",), "test": ("test", "t10k")}[split]
        hits = sorted(p for n in names for p in glob.glob(os.path.join(source, f"*{n}-images-idx3-ubyte*")))
        if not hits:
            sys.exit(f"pytorch_peer: no {split} images (*-images-idx3-ubyte*) in {source}")
        images = read_idx(hits[0])
        labels = read_idx(hits[0].replace("images-idx3", "labels-idx1"))
    if transposed:
        images = images.transpose(0, 2, 1)
    return images.reshape(len(images), 784).astype(np.float32) * np.float32(1.0 / 255.0), labels.astype(np.int64)


def truncated_normal(shape, std):
    t = torch.empty(shape)
    torch.nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)
    return t


def make_params(model, classes, seed, device):
    torch.manual_seed(seed)
    if model == "mlp":
        params = [truncated_normal((784, 100), 1 / 28), torch.zeros(100),
                  truncated_normal((100, classes), 0.1), torch.zeros(classes)]
    else:  # TensorFlow's "Deep MNIST": weights stddev 0.1, biases 0.1
        params = [truncated_normal((32, 1, 5, 5), 0.1), torch.full((32,), 0.1),
                  truncated_normal((64, 32, 5, 5), 0.1), torch.full((64,), 0.1),
                  truncated_normal((3136, 1024), 0.1), torch.full((1024,), 0.1),
                  truncated_normal((1024, classes), 0.1), torch.full((classes,), 0.1)]
    return [p.to(device).requires_grad_() for p in params]


def forward(model, params, x):
    if model == "mlp":
        w1, b1, w2, b2 = params
        return torch.softmax(torch.relu(x @ w1 + b1) @ w2 + b2, dim=1)
    c1, cb1, c2, cb2, w1, b1, w2, b2 = params
    f = torch.nn.functional
    h = f.max_pool2d(torch.relu(f.conv2d(x.view(-1, 1, 28, 28), c1, cb1, padding=2)), 2)
    h = f.max_pool2d(torch.relu(f.conv2d(h, c2, cb2, padding=2)), 2)
    return torch.softmax(torch.relu(h.flatten(1) @ w1 + b1) @ w2 + b2, dim=1)


def summed_clipped_xent(probs, y):
    return -torch.log(probs.gather(1, y[:, None]).clamp(1e-10, 1.0)).sum()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(model, data, classes, steps, warmup, batch, seed, device):
    train_x, train_y, test_x, test_y = data
    rng = np.random.default_rng(seed)

    def batches():
        while True:
            order = torch.from_numpy(rng.permutation(len(train_x))).to(device)
            for i in range(0, len(order) - batch + 1, batch):
                idx = order[i:i + batch]
                yield train_x[idx], train_y[idx]

    def run(n):
        params = make_params(model, classes, seed, device)
        opt = torch.optim.Adam(params, lr=LEARNING_RATE[model], betas=(0.9, 0.999), eps=1e-8)
        source = batches()
        loss = torch.zeros(())
        sync(device)
        start = time.perf_counter()
        for _ in range(n):
            x, y = next(source)
            loss = summed_clipped_xent(forward(model, params, x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        return params, time.perf_counter() - start, float(loss)

    _, warmup_s, _ = run(warmup)
    params, wall_s, final_loss = run(steps)
    with torch.no_grad():
        correct = sum(int((forward(model, params, test_x[i:i + 1000]).argmax(1) == test_y[i:i + 1000]).sum())
                      for i in range(0, len(test_x), 1000))
    return dict(warmup_s=warmup_s, wall_s=wall_s, step_ms=1e3 * wall_s / steps, samples_per_s=steps * batch / wall_s,
                final_loss=final_loss, test_accuracy=correct / len(test_x))


def run_dmzbench(args, backend):
    name = f"peer-pytorch-{args.model}-{args.device}"
    cmd = [args.dmzbench, "train", "--model", args.model, "--backend", backend, "--data", args.data,
           "--steps", str(args.steps), "--repeat", str(args.repeat), "--quiet", "--no-plots",
           "--out", args.out, "--name", name] + shlex.split(args.dmzbench_args)
    if backend == "cpu":
        cmd += ["--threads", str(args.threads)]
    subprocess.run(cmd, check=True)
    run_dir = max(glob.glob(os.path.join(args.out, f"*{name}*")), key=os.path.getmtime)
    with open(os.path.join(run_dir, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(run_dir, "summary.csv")) as f:
        rows = [r for r in csv.DictReader(f) if r.get("rank", "0") == "0"]
    for r in rows:
        r["step_ms"] = 1e3 * float(r["wall_s"]) / float(r["steps"])
    return run_dir, meta, rows


def median(rows, key):
    return float(np.median([float(r[key]) for r in rows]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dmzbench", default="build/dmzbench")
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--backend", help="dmzbench's backend (default: cpu, or cuda with --device cuda)")
    p.add_argument("--dmzbench-args", default="", help="more options for dmzbench train, e.g. '--graph --log-every 100'")
    p.add_argument("--data", default="emnist-balanced")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default=os.environ.get("DMZBENCH_RESULTS", "results"))
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"pytorch_peer: torch {torch.__version__} sees no CUDA device (built for CUDA {torch.version.cuda})",
              file=sys.stderr)
        return 3
    backend = args.backend or ("cuda" if args.device == "cuda" else "cpu")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    run_dir, meta, ours = run_dmzbench(args, backend)
    ds = meta["dataset"]
    transposed = "emnist" in ds["name"]
    train_x, train_y = load_split(ds["source"], "train", transposed)
    test_x, test_y = load_split(ds["source"], "test", transposed)
    data = [torch.from_numpy(a).to(device) for a in (train_x, train_y, test_x, test_y)]
    peer = [train(args.model, data, ds["classes"], args.steps, args.warmup, 100, 1 + r, device)
            for r in range(args.repeat)]
    keys = ["wall_s", "step_ms", "samples_per_s", "test_accuracy", "final_loss"]
    with open(os.path.join(run_dir, "peer.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["rep", "device", "torch"] + list(peer[0]))
        w.writeheader()
        for r, row in enumerate(peer):
            w.writerow(dict(rep=r, device=args.device, torch=torch.__version__, **row))

    where = torch.cuda.get_device_name(device) if args.device == "cuda" else f"{args.threads} threads"
    print(f"# {ds['name']} (sha256 {ds['sha256'][:16]}...), {args.model}, {args.steps} steps x batch 100, "
          f"{where}, median of {args.repeat} repetitions")
    ours_name, peer_name = f"dmzbench {backend}", f"pytorch {torch.__version__} {args.device}"
    print(f"{'':16}{ours_name:>22}{peer_name:>28}{'dmzbench / pytorch':>22}")
    for k in keys:
        a, b = median(ours, k), float(np.median([r[k] for r in peer]))
        print(f"{k:16}{a:22.4g}{b:28.4g}{a / b if b else float('nan'):22.4g}")
    a, b = median(ours, "step_ms"), float(np.median([r["step_ms"] for r in peer]))
    print(f"ratio: {args.model} step_ms dmzbench-{backend}={a:.4g} pytorch-{args.device}={b:.4g} "
          f"pytorch/dmzbench={b / a:.3g}")
    print(f"# samples/s ratio > 1 (step_ms ratio < 1): dmzbench faster. Results: {run_dir}/ (summary.csv, peer.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
