"""CPU latency and throughput of an exported run vs calling its Keras model directly.

    python benchmarks/serving_latency.py RUN_DIR [--word-vectors PATH] \\
        [--out benchmarks/results/serving.md]

Exports RUN_DIR with `avca_tf.serving.export.export_run` into a temporary serving base,
loads the SavedModel in this process (as TF Serving runs it: the signature
functions) and times, in the same process and on the same inputs:
- serving_default (top-k over the run's vocabulary) and classify_open (100
  class names, embedded in the graph on every call);
- the Keras model called directly: `class_distances` against the run's label
  embeddings plus top-k, eagerly and wrapped in one tf.function. The Keras
  rows for classify_open get the 100 names' label embeddings precomputed (the
  Keras model has no text path), so they measure the model part only.
Latency: p50/p99 over --iters calls at batch 1. Throughput: samples/s at batch
256. The paths alternate in rounds of consecutive calls. Load averages before and after are recorded: the numbers are only as
quiet as the machine was.
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the classify_open kernels)
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from avca_tf.serving.export import export_run, load_export_info  # noqa: E402
from avca_tf.training.protocol import load_run  # noqa: E402
from avca_tf.data.text.normalize import class_name_tokens  # noqa: E402

N_OPEN = 100
BATCH = 256


def open_names(info, words, n=N_OPEN):
    """The vocabulary's class names plus new two-word names, n in all."""
    names = list(info["class_names"])[:n]
    i = 0
    while len(names) < n:
        names.append(f"{words[i % len(words)]} {words[(7 * i + 3) % len(words)]}")
        i += 1
    return names


def time_rounds(cases, batch, iters, warmup, rounds=5):
    """(wall, process CPU) seconds per call of every case.

    Each case runs in blocks of iters/rounds consecutive calls (so one case
    does not evict another's caches and thread pools between calls), and the
    blocks of all cases alternate over `rounds` rounds, so a change of machine
    load hits all of them alike. The CPU time (all threads of this process)
    does not grow with other processes' load: on a busy shared machine it is
    the better estimate of the latency an idle core would give.
    """
    times = {name: ([], []) for name in cases}
    for _ in tqdm(range(rounds), desc=f"batch {batch}", file=sys.stderr):
        for name, fn in cases.items():
            for _ in range(warmup):
                fn(batch)
            for _ in range(max(1, iters // rounds)):
                t, c = time.perf_counter(), time.process_time()
                fn(batch)
                times[name][0].append(time.perf_counter() - t)
                times[name][1].append(time.process_time() - c)
    return times


def summarize(times_1, times_b):
    (wall_1, cpu_1), (wall_b, _) = times_1, times_b
    q = statistics.quantiles(wall_1, n=100)
    return {"p50_ms": 1e3 * statistics.median(wall_1), "p99_ms": 1e3 * q[98],
            "cpu_p50_ms": 1e3 * statistics.median(cpu_1),
            "throughput": BATCH / statistics.median(wall_b)}


def machine():
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} logical CPUs, TensorFlow {tf.__version__}"


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--word-vectors", default=None,
                   help="word-vector file for classify_open (default: the run's, if known)")
    p.add_argument("--iters", type=int, default=500, help="batch-1 calls per measurement")
    p.add_argument("--batch-iters", type=int, default=30, help="batch-256 calls per measurement")
    p.add_argument("--out", default=None, help="write a markdown table here")
    args = p.parse_args(argv)
    tf.config.set_visible_devices([], "GPU")  # CPU numbers, also on a GPU machine
    load_before = os.getloadavg()
    run = load_run(args.run_dir)
    with tempfile.TemporaryDirectory(prefix="avca-serving-bench-") as base:
        version_dir = export_run(args.run_dir, base, word_vectors=args.word_vectors)
        info = load_export_info(version_dir)
        served = tf.saved_model.load(version_dir)
        rows = bench(run, info, served, args)
    load_after = os.getloadavg()
    table = render(rows, args, machine(), load_before, load_after, info)
    print(table)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(table)
    return 0


def bench(run, info, served, args):
    rng = np.random.default_rng(0)
    d_a, d_v = info["audio_dim"], info["video_dim"]
    inputs = {b: (tf.constant(rng.normal(size=(b, d_a)).astype(np.float32)),
                  tf.constant(rng.normal(size=(b, d_v)).astype(np.float32)))
              for b in (1, BATCH)}
    ids = np.union1d(run.seen_ids, run.unseen_ids)
    label_embeddings = tf.constant(run.label_embeddings[ids])
    penalty = tf.constant(np.where(np.isin(ids, run.seen_ids), run.beta, 0.0), tf.float32)
    k = info["top_k"]
    model = run.model

    def keras_default(a, v):
        d = model.class_distances(a, v, label_embeddings) + penalty
        return tf.math.top_k(-d, k=k)

    keras_default_fn = tf.function(keras_default)
    cases = {}
    sig = served.signatures["serving_default"]
    cases["serving_default (SavedModel)"] = lambda b: sig(audio=inputs[b][0], video=inputs[b][1])
    cases["Keras eager: class_distances + top-k"] = lambda b: keras_default(*inputs[b])
    cases["Keras tf.function: class_distances + top-k"] = lambda b: keras_default_fn(*inputs[b])
    if "classify_open" in info["signatures"]:
        words = [w for n in info["class_names"] for w in class_name_tokens([n])[0]]
        names = open_names(info, sorted(set(words)))
        open_sig = served.signatures["classify_open"]
        names_t = tf.constant(names)
        known = open_sig(audio=inputs[1][0], video=inputs[1][1],
                         class_names=names_t)["known_token_count"]
        if int(tf.reduce_min(known)) == 0:
            raise SystemExit("some benchmark class names have no known token")
        # the same 100 label embeddings, computed once outside the timed loop
        name_emb = tf.constant(_name_embeddings(run, info, names))

        def keras_open(a, v):
            return model.class_distances(a, v, name_emb)

        keras_open_fn = tf.function(keras_open)
        cases[f"classify_open, {N_OPEN} names (SavedModel)"] = lambda b: open_sig(
            audio=inputs[b][0], video=inputs[b][1], class_names=names_t)
        cases[f"Keras eager: class_distances, {N_OPEN} precomputed"] = (
            lambda b: keras_open(*inputs[b]))
        cases[f"Keras tf.function: class_distances, {N_OPEN} precomputed"] = (
            lambda b: keras_open_fn(*inputs[b]))
    t1 = time_rounds(cases, 1, args.iters, warmup=10)
    tb = time_rounds(cases, BATCH, args.batch_iters, warmup=2)
    return {name: summarize(t1[name], tb[name]) for name in cases}


def _name_embeddings(run, info, names):
    """Label embeddings of `names` with the export's own text path (for the Keras rows)."""
    from avca_tf.serving.export import ClassNameEncoder, WordVectors
    path = info["word_vectors"]["source"]
    with tempfile.TemporaryDirectory() as d:
        enc = ClassNameEncoder(WordVectors.load(path), os.path.join(d, "vocab.txt"))
        return enc(tf.constant(names))["embeddings"].numpy()


def render(rows, args, machine_desc, load_before, load_after, info):
    lines = [
        "# Serving latency (CPU)",
        "",
        f"Run: `{args.run_dir}` ({len(info['class_names'])} classes, "
        f"top-k {info['top_k']}, {info['audio_dim']}/{info['video_dim']}-d features).",
        f"Machine: {machine_desc}.",
        f"Load average (1/5/15 min) before: {' / '.join(f'{x:.2f}' for x in load_before)}; "
        f"after: {' / '.join(f'{x:.2f}' for x in load_after)}.",
        f"Batch 1: {args.iters} timed calls per path, batch {BATCH}: {args.batch_iters} "
        "(throughput from the median call), in 5 rounds of consecutive calls per path "
        "(after warm-up calls), the paths alternating round by round. CPU = process CPU "
        "time per call (all threads), which other processes' load does not inflate.",
        "Command: `python benchmarks/serving_latency.py RUN_DIR --out benchmarks/results/serving.md`",
        "",
        f"| path | p50 batch 1 (ms) | p99 batch 1 (ms) | CPU p50 batch 1 (ms) "
        f"| throughput batch {BATCH} (samples/s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                     f"{r['cpu_p50_ms']:.3f} | {r['throughput']:,.0f} |")
    target = rows["serving_default (SavedModel)"]
    lines += ["", "Target p50 < 2 ms for serving_default at batch 1: "
              f"{'met' if target['p50_ms'] < 2.0 else 'NOT met'} on wall-clock time "
              f"({target['p50_ms']:.3f} ms at this load); CPU time per call "
              f"{target['cpu_p50_ms']:.3f} ms."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
