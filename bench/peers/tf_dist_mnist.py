#!/usr/bin/env python3
"""TensorFlow peer for `make bench-peer`: the paper's own program beside dmzbench.

Development-time comparison only; dmzbench itself never needs Python or TensorFlow.
`make bench-peer` installs tensorflow-cpu from PyPI into a virtual environment
outside the build (default ~/.cache/dmzbench/tf-venv) and runs this script with it.

  tf_dist_mnist.py --dmzbench build/dmzbench [--data fashion-mnist] [--steps 2000]
                   [--cnn-steps 50] [--repeat 3] [--threads N] [--models mlp,cnn]

mlp: Kubeflow's dist_mnist.py / TensorFlow's mnist_replica.py model exactly as the
paper ran it, in tf.compat.v1 graph mode with a feed_dict per step: 784 -> 100 ReLU
-> C softmax, -sum(y_ * log(clip(y, 1e-10, 1))), Adam 0.01, batch 100, truncated
normal init (1/28, 1/sqrt(100)), zero biases, next_batch-style epoch shuffling.

cnn: the same program with the model dmzbench calls "cnn" (TensorFlow's Deep MNIST
network without dropout): conv 5x5x32 SAME + ReLU, maxpool 2x2, conv 5x5x64 +
ReLU, maxpool 2x2, dense 3136->1024 + ReLU, dense 1024->C, the same summed clipped
cross-entropy, Adam 1e-3 (dmzbench's cnn default), truncated normal 0.1, biases 0.1 (NHWC, TF's own layout).

Each repetition runs dmzbench and then TensorFlow, one after the other, so that
both see the same load on a shared machine. Warm-up steps are timed apart and
discarded; evaluation is outside the wall time. Prints the best and median of the
repetitions and the ratio TensorFlow / dmzbench (> 1: dmzbench faster), and writes
peer-tf.csv beside the last dmzbench run directory.
"""
import argparse
import csv
import glob
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def read_csv(path):
    with open(path, "rb") as f:
        text = f.read().replace(b"\n", b",")
    flat = np.array(text.decode().strip(",").split(","), dtype=np.uint8)
    rows = flat.reshape(-1, 785)
    return rows[:, 1:].reshape(-1, 28, 28), rows[:, 0]


def load_split(source, split, transposed):
    """The files dmzbench recorded in meta.json: a CSV pair or IDX files."""
    if source.endswith(".csv"):
        images, labels = read_csv(source if split == "train" else source.replace("train", "test"))
    else:
        names = {"train": ("train",), "test": ("test", "t10k")}[split]
        hits = sorted(p for n in names for p in glob.glob(os.path.join(source, f"*{n}-images-idx3-ubyte*")))
        images = read_idx(hits[0])
        labels = read_idx(hits[0].replace("images-idx3", "labels-idx1"))
    if transposed:
        images = images.transpose(0, 2, 1)
    return images.reshape(len(images), 784).astype(np.float32) * np.float32(1.0 / 255.0), labels.astype(np.int64)


def build_mlp(x, classes):
    hid_w = v1.Variable(v1.truncated_normal([784, 100], stddev=1.0 / 28), name="hid_w")
    hid_b = v1.Variable(v1.zeros([100]), name="hid_b")
    sm_w = v1.Variable(v1.truncated_normal([100, classes], stddev=1.0 / math.sqrt(100)), name="sm_w")
    sm_b = v1.Variable(v1.zeros([classes]), name="sm_b")
    hid = tf.nn.relu(v1.nn.xw_plus_b(x, hid_w, hid_b))
    return tf.nn.softmax(v1.nn.xw_plus_b(hid, sm_w, sm_b))


def build_cnn(x, classes):
    def weight(shape):
        return v1.Variable(v1.truncated_normal(shape, stddev=0.1))

    def bias(shape):
        return v1.Variable(tf.constant(0.1, shape=shape))

    def conv(a, w):
        return tf.nn.conv2d(a, w, strides=[1, 1, 1, 1], padding="SAME")

    def pool(a):
        return tf.nn.max_pool2d(a, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")

    img = tf.reshape(x, [-1, 28, 28, 1])
    h1 = pool(tf.nn.relu(conv(img, weight([5, 5, 1, 32])) + bias([32])))
    h2 = pool(tf.nn.relu(conv(h1, weight([5, 5, 32, 64])) + bias([64])))
    fc1 = tf.nn.relu(tf.matmul(tf.reshape(h2, [-1, 7 * 7 * 64]), weight([3136, 1024])) + bias([1024]))
    return tf.nn.softmax(tf.matmul(fc1, weight([1024, classes])) + bias([classes]))


def train_tf(model, data, classes, steps, warmup, batch, lr, seed, threads):
    train_x, train_y, test_x, test_y = data
    onehot = np.eye(classes, dtype=np.float32)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        x = v1.placeholder(tf.float32, [None, 784])
        y_ = v1.placeholder(tf.float32, [None, classes])
        y = (build_mlp if model == "mlp" else build_cnn)(x, classes)
        loss = -tf.reduce_sum(y_ * tf.math.log(tf.clip_by_value(y, 1e-10, 1.0)))
        global_step = v1.Variable(0, name="global_step", trainable=False)
        train_op = v1.train.AdamOptimizer(lr).minimize(loss, global_step=global_step)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1)), tf.float32))
        init = v1.global_variables_initializer()
    config = v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
    rng = np.random.default_rng(seed)
    with v1.Session(graph=graph, config=config) as sess:
        order, pos = rng.permutation(len(train_x)), 0

        def next_batch():  # input_data.DataSet.next_batch: shuffled epochs
            nonlocal order, pos
            if pos + batch > len(order):
                order, pos = rng.permutation(len(train_x)), 0
            idx = order[pos:pos + batch]
            pos += batch
            return {x: train_x[idx], y_: onehot[train_y[idx]]}

        def run(n):
            start, last = time.perf_counter(), float("nan")
            for _ in range(n):
                _, last, _ = sess.run([train_op, loss, global_step], feed_dict=next_batch())
            return time.perf_counter() - start, last

        sess.run(init)
        warmup_s, _ = run(warmup)
        sess.run(init)  # the measured run starts from a fresh init, as dmzbench's
        order, pos = rng.permutation(len(train_x)), 0
        wall_s, final_loss = run(steps)
        hits = sum(sess.run(correct, {x: test_x[i:i + 500], y_: onehot[test_y[i:i + 500]]})
                   for i in range(0, len(test_x), 500))
    return dict(warmup_s=warmup_s, wall_s=wall_s, final_loss=final_loss, test_accuracy=hits / len(test_x))


def run_dmzbench(args, model, steps, rep):
    name = f"peer-tf-{model}-{rep}"
    cmd = [args.dmzbench, "train", "--model", model, "--data", args.data, "--steps", str(steps), "--repeat", "1",
           "--warmup", str(args.warmup), "--eval-every", str(max(steps, 1)), "--seed", str(1 + rep),
           "--quiet", "--no-plots", "--out", args.out, "--name", name]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    run_dir = max(glob.glob(os.path.join(args.out, f"*{name}*")), key=os.path.getmtime)
    with open(os.path.join(run_dir, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(run_dir, "summary.csv")) as f:
        row = next(csv.DictReader(f))
    return run_dir, meta, dict(wall_s=float(row["wall_s"]), test_accuracy=float(row["test_accuracy"]),
                               final_loss=float(row["final_loss"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dmzbench", default="build/dmzbench")
    p.add_argument("--data", default="emnist-balanced")
    p.add_argument("--steps", type=int, default=2000, help="mlp steps (the paper's 2000)")
    p.add_argument("--cnn-steps", type=int, default=50, help="cnn steps timed per repetition")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="0: each program's default (all cores)")
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--out", default=os.environ.get("DMZBENCH_RESULTS", "results"))
    args = p.parse_args()

    rows, data, meta, run_dir = [], None, None, None
    for model in args.models.split(","):
        steps = args.steps if model == "mlp" else args.cnn_steps
        lr = 0.01 if model == "mlp" else 1e-3
        for rep in range(args.repeat):
            run_dir, meta, ours = run_dmzbench(args, model, steps, rep)
            if data is None:
                ds = meta["dataset"]
                transposed = "emnist" in ds["name"]
                data = load_split(ds["source"], "train", transposed) + load_split(ds["source"], "test", transposed)
            peer = train_tf(model, data, meta["dataset"]["classes"], steps, args.warmup, 100, lr, 1 + rep,
                            args.threads)
            for prog, r in (("dmzbench", ours), ("tensorflow", peer)):
                rows.append(dict(model=model, program=prog, rep=rep, steps=steps, wall_s=r["wall_s"],
                                 ms_per_step=1e3 * r["wall_s"] / steps, test_accuracy=r["test_accuracy"],
                                 final_loss=r["final_loss"]))
            print(f"  {model} rep {rep}: dmzbench {ours['wall_s']:.3f} s, tensorflow {peer['wall_s']:.3f} s "
                  f"({steps} steps)", file=sys.stderr)

    with open(os.path.join(run_dir, "peer-tf.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ds = meta["dataset"]
    build = meta.get("build", {})
    print(f"# {ds['name']} (sha256 {ds['sha256'][:16]}...), batch 100, {args.repeat} repetitions each, "
          f"threads {args.threads or 'default'}; dmzbench {build.get('arch_flags', '?')} "
          f"({build.get('isa', '?').strip()}), tensorflow-cpu {tf.__version__} (tf.compat.v1 graph, feed_dict)")
    print(f"# {'model':5} {'steps':>5} {'program':>10} {'best_s':>9} {'median_s':>9} {'ms/step':>8} "
          f"{'test_acc':>8} {'tf/dmz':>7}")
    for model in args.models.split(","):
        best = {}
        for prog in ("dmzbench", "tensorflow"):
            sel = [r for r in rows if r["model"] == model and r["program"] == prog]
            walls = [r["wall_s"] for r in sel]
            best[prog] = min(walls)
            ratio = f"{best['tensorflow'] / best['dmzbench']:7.2f}" if prog == "tensorflow" else f"{'':7}"
            print(f"  {model:5} {sel[0]['steps']:5d} {prog:>10} {min(walls):9.3f} {statistics.median(walls):9.3f} "
                  f"{1e3 * min(walls) / sel[0]['steps']:8.2f} {statistics.median(r['test_accuracy'] for r in sel):8.4f} "
                  f"{ratio}")
    print(f"# tf/dmz: TensorFlow's best wall time over dmzbench's (> 1: dmzbench faster). Rows: {run_dir}/peer-tf.csv")


if __name__ == "__main__":
    sys.exit(main())
