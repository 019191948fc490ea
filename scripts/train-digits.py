#!/usr/bin/python3
"""Trains the reference model of fleetgate-model: a small conv net for the
8x8 handwritten digits that ship with scikit-learn, in plain numpy.

    conv kxk (pad) -> bias -> ReLU -> max-pool 2x2 -> dense(hidden) -> ReLU
    -> dense(10) -> softmax

Writes OUT_DIR/<name>-v<version>.fgm (docs/model-format.md) and, with
--test-split, the held-out images as CSV. Without --version it trains both
shipped versions (v1 and v2) and writes tests/data/digits-test.csv.

The data: sklearn's digits.csv.gz (1797 rows: 64 pixel values 0..16, then the
label), read with gzip + numpy; sklearn itself is not imported. The split is
stratified (20% of each class held out) and made with its own fixed seed, so
every model version is tested on the same images. Training is deterministic:
fixed seeds, fixed epochs, one BLAS thread.
"""
import argparse
import os
import struct
import sys
import time
import zlib

# One BLAS thread: the same sums in the same order on every run.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import gzip  # noqa: E402
import numpy as np  # noqa: E402

DIGITS_CSV = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
SPLIT_SEED = 20240917      # fixed, independent of the model seeds
TEST_FRACTION = 0.2
IN_SIDE = 8
INPUT_SCALE = 1.0 / 16.0
KERNEL, PAD, POOL = 3, 1, 2
CLASSES = 10

# The shipped versions: conv channels, hidden width, seed, epochs.
PRESETS = {
    1: dict(conv=8, hidden=32, seed=1, epochs=40),
    2: dict(conv=16, hidden=64, seed=2, epochs=40),
}

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- data -----------------------------------------------------------------

def load_digits(path):
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != IN_SIDE * IN_SIDE + 1:
        sys.exit(f"{path}: expected {IN_SIDE * IN_SIDE + 1} columns, got {rows.shape}")
    return rows[:, :-1], rows[:, -1]


def stratified_split(y, fraction, seed):
    """Per class: shuffle its row indices, hold out round(fraction * count).
    Returns (train, test) index arrays, each shuffled."""
    rng = np.random.RandomState(seed)
    train, test = [], []
    for c in range(CLASSES):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(len(idx) * fraction + 0.5)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train = np.concatenate(train)
    test = np.concatenate(test)
    return train[rng.permutation(len(train))], test[rng.permutation(len(test))]


def write_test_split(path, x, y, n_total):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"# fleetgate digits held-out set: {len(y)} of the {n_total} images of "
                f"sklearn's digits.csv.gz, {int(TEST_FRACTION * 100)}% of each class "
                f"(per-class shuffle, numpy RandomState({SPLIT_SEED})), written by "
                "scripts/train-digits.py; each row: 64 pixel values 0..16 (8x8, "
                "row-major) then the label\n")
        for row, label in zip(x, y):
            f.write(",".join(str(int(v)) for v in row) + f",{int(label)}\n")


# ---- network --------------------------------------------------------------

def im2col(x, k, pad):
    """x: (N, C, H, W) -> (N * Ho * Wo, C * k * k), columns ordered c, ky, kx
    like the rows of the conv weights."""
    n, c, h, w = x.shape
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, k, k, ho, wo), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            cols[:, :, ky, kx] = xp[:, :, ky:ky + ho, kx:kx + wo]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * ho * wo, c * k * k), ho, wo


def col2im(dcols, shape, k, pad):
    n, c, h, w = shape
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    d = dcols.reshape(n, ho, wo, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dcols.dtype)
    for ky in range(k):
        for kx in range(k):
            dxp[:, :, ky:ky + ho, kx:kx + wo] += d[:, :, ky, kx]
    return dxp[:, :, pad:pad + h, pad:pad + w]


class Net:
    def __init__(self, conv, hidden, seed, in_c=1, side=IN_SIDE):
        rng = np.random.RandomState(seed)
        self.in_c, self.side = in_c, side
        self.conv_side = side + 2 * PAD - KERNEL + 1
        self.pool_side = self.conv_side // POOL
        flat = conv * self.pool_side * self.pool_side
        fan_conv = in_c * KERNEL * KERNEL

        def he(shape, fan_in):
            return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

        self.p = {
            "conv_w": he((conv, in_c, KERNEL, KERNEL), fan_conv),
            "conv_b": np.zeros(conv),
            "fc1_w": he((hidden, flat), flat),
            "fc1_b": np.zeros(hidden),
            "fc2_w": rng.standard_normal((CLASSES, hidden)) * np.sqrt(1.0 / hidden),
            "fc2_b": np.zeros(CLASSES),
        }

    def forward(self, x, p=None):
        """x: (N, C, H, W), already scaled. Returns logits and a cache."""
        p = self.p if p is None else p
        n = x.shape[0]
        conv = p["conv_w"].shape[0]
        cols, ho, wo = im2col(x, KERNEL, PAD)
        z = cols @ p["conv_w"].reshape(conv, -1).T + p["conv_b"]      # (N*ho*wo, conv)
        z = z.reshape(n, ho, wo, conv).transpose(0, 3, 1, 2)          # NCHW
        a = np.maximum(z, 0.0)
        ps = self.pool_side
        a_crop = a[:, :, :ps * POOL, :ps * POOL]
        win = a_crop.reshape(n, conv, ps, POOL, ps, POOL)
        pooled = win.max(axis=(3, 5))
        flat = pooled.reshape(n, -1)
        h_pre = flat @ p["fc1_w"].T + p["fc1_b"]
        h = np.maximum(h_pre, 0.0)
        logits = h @ p["fc2_w"].T + p["fc2_b"]
        cache = (x, cols, z, a_crop, win, pooled, flat, h_pre, h)
        return logits, cache

    def backward(self, dlogits, cache):
        x, cols, z, a_crop, win, pooled, flat, h_pre, h = cache
        p = self.p
        n, conv = x.shape[0], p["conv_w"].shape[0]
        g = {}
        g["fc2_w"] = dlogits.T @ h
        g["fc2_b"] = dlogits.sum(0)
        dh = (dlogits @ p["fc2_w"]) * (h_pre > 0)
        g["fc1_w"] = dh.T @ flat
        g["fc1_b"] = dh.sum(0)
        dpooled = (dh @ p["fc1_w"]).reshape(pooled.shape)
        # max-pool: the gradient goes to the first maximum of each window
        ps = self.pool_side
        w2 = win.transpose(0, 1, 2, 4, 3, 5).reshape(n, conv, ps, ps, POOL * POOL)
        first = w2.argmax(axis=4)
        dw2 = np.zeros_like(w2)
        np.put_along_axis(dw2, first[..., None], dpooled[..., None], axis=4)
        dwin = dw2.reshape(n, conv, ps, ps, POOL, POOL).transpose(0, 1, 2, 4, 3, 5)
        da = np.zeros_like(z)
        da[:, :, :ps * POOL, :ps * POOL] = dwin.reshape(a_crop.shape)
        dz = da * (z > 0)
        dz2 = dz.transpose(0, 2, 3, 1).reshape(-1, conv)             # (N*ho*wo, conv)
        g["conv_w"] = (dz2.T @ cols).reshape(p["conv_w"].shape)
        g["conv_b"] = dz2.sum(0)
        return g


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def to_input(pixels, in_c=1, side=IN_SIDE, dtype=np.float64):
    return (pixels.astype(dtype) * dtype(INPUT_SCALE)).reshape(-1, in_c, side, side)


def accuracy(net, x, y, p=None):
    logits, _ = net.forward(x, p)
    return float((logits.argmax(axis=1) == y).mean())


def train(net, x, y, epochs, seed, batch=32, lr=2e-3, weight_decay=1e-4):
    """Adam with L2 weight decay on the weights (not the biases), cosine lr."""
    rng = np.random.RandomState(seed + 1000)
    m = {k: np.zeros_like(v) for k, v in net.p.items()}
    v = {k: np.zeros_like(val) for k, val in net.p.items()}
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    n = len(y)
    for epoch in range(epochs):
        rate = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
        order = rng.permutation(n)
        loss_sum = 0.0
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            logits, cache = net.forward(x[idx])
            prob = softmax(logits)
            loss_sum += -np.log(prob[np.arange(len(idx)), y[idx]] + 1e-12).sum()
            d = prob
            d[np.arange(len(idx)), y[idx]] -= 1.0
            g = net.backward(d / len(idx), cache)
            t += 1
            for k in net.p:
                gk = g[k]
                if k.endswith("_w"):
                    gk = gk + weight_decay * net.p[k]
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mh = m[k] / (1 - b1 ** t)
                vh = v[k] / (1 - b2 ** t)
                net.p[k] -= rate * mh / (np.sqrt(vh) + eps)
        if epoch % 10 == 9 or epoch == epochs - 1:
            print(f"  epoch {epoch + 1:3d}: loss {loss_sum / n:.4f}", flush=True)


# ---- file format ----------------------------------------------------------

ORDER = ("conv_w", "conv_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b")


def write_fgm(path, name, version, net):
    p = net.p
    conv, hidden = p["conv_w"].shape[0], p["fc1_w"].shape[0]
    nb = name.encode("ascii")
    head = b"FGMODEL\0" + struct.pack("<I", 1)
    head += struct.pack("<I", len(nb)) + nb
    head += struct.pack("<IIIIf", version, net.in_c, net.side, net.side, INPUT_SCALE)
    head += struct.pack("<IIIIII", conv, KERNEL, PAD, POOL, hidden, CLASSES)
    body = b"".join(p[k].astype("<f4").tobytes() for k in ORDER)
    data = head + body
    data += struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


# ---- main -----------------------------------------------------------------

def train_version(args, version, conv, hidden, seed, epochs, data):
    x_train, y_train, x_test, y_test = data
    print(f"{args.name} v{version}: conv {conv}, hidden {hidden}, seed {seed}, "
          f"epochs {epochs}, {len(y_train)} train / {len(y_test)} test images", flush=True)
    t0 = time.time()
    net = Net(conv, hidden, seed)
    train(net, to_input(x_train), y_train, epochs, seed)
    # Accuracy as the C engine sees it: float32 weights and inputs.
    p32 = {k: v.astype(np.float32) for k, v in net.p.items()}
    tr = accuracy(net, to_input(x_train, dtype=np.float32), y_train, p32)
    te = accuracy(net, to_input(x_test, dtype=np.float32), y_test, p32)
    n_ok = int(round(te * len(y_test)))
    path = os.path.join(args.out_dir, f"{args.name}-v{version}.fgm")
    size = write_fgm(path, args.name, version, net)
    print(f"{args.name} v{version}: train accuracy {tr:.4f}, held-out accuracy {te:.4f} "
          f"({n_ok}/{len(y_test)}), {time.time() - t0:.1f} s; wrote {path} ({size} bytes)",
          flush=True)
    return te


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(TOP, "models"),
                    help="where <name>-v<version>.fgm goes (default: models/ in the source tree)")
    ap.add_argument("--name", default="digits", help="model name (default: digits)")
    ap.add_argument("--version", type=int,
                    help="train this version only (1 and 2 have presets); default: 1 and 2")
    ap.add_argument("--conv", type=int, help="convolution channels (preset: 8 / 16)")
    ap.add_argument("--hidden", type=int, help="hidden layer width (preset: 32 / 64)")
    ap.add_argument("--seed", type=int, help="model seed: init and batch order (preset: 1 / 2)")
    ap.add_argument("--epochs", type=int, help="epochs (preset: 40)")
    ap.add_argument("--test-split", metavar="FILE",
                    help="write the held-out images to FILE as CSV (default without "
                         "--version: tests/data/digits-test.csv in the source tree)")
    ap.add_argument("--data", default=DIGITS_CSV, help=f"digits CSV (default: {DIGITS_CSV})")
    args = ap.parse_args()

    if args.version is None:
        if any(v is not None for v in (args.conv, args.hidden, args.seed, args.epochs)):
            ap.error("--conv, --hidden, --seed and --epochs need --version")
        versions = sorted(PRESETS)
        if args.test_split is None:
            args.test_split = os.path.join(TOP, "tests", "data", "digits-test.csv")
    else:
        if args.version < 1:
            ap.error("--version must be at least 1")
        versions = [args.version]
    if not 1 <= len(args.name) <= 63 or not all(c.isalnum() and c.isascii() or c in "_.-"
                                                for c in args.name):
        ap.error("--name: 1..63 characters of [A-Za-z0-9_.-]")

    pixels, labels = load_digits(args.data)
    tr_idx, te_idx = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    data = (pixels[tr_idx], labels[tr_idx], pixels[te_idx], labels[te_idx])
    if args.test_split:
        write_test_split(args.test_split, pixels[te_idx], labels[te_idx], len(labels))
        print(f"wrote {args.test_split} ({len(te_idx)} held-out images)")

    worst = 1.0
    for version in versions:
        preset = PRESETS.get(version, PRESETS[1])
        conv = args.conv if args.conv is not None else preset["conv"]
        hidden = args.hidden if args.hidden is not None else preset["hidden"]
        seed = args.seed if args.seed is not None else preset["seed"]
        epochs = args.epochs if args.epochs is not None else preset["epochs"]
        if min(conv, hidden, epochs) < 1:
            ap.error("--conv, --hidden and --epochs must be at least 1")
        worst = min(worst, train_version(args, version, conv, hidden, seed, epochs, data))
    return 0 if worst >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())
