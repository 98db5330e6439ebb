"""TCaF (and ClipClap-GZSL) training steps/s and TCaF's test-set evaluation time: ours against
the authors' code, one run.

For each config (UCF-main, UCF-cls):
- our step: the Trainer's compiled step (tf.function; bf16: tf.function with
  train.precision bf16-matmul; XLA with --modes ...,xla; xla8:
  XLA with training batches padded to a multiple of 8 steps, DataConfig.pad_multiple)
  of the tcaf preset, batch 64, on a training set whose sequence lengths are
  drawn from the same ranges as benchmarks/reference/ref_step.py draws the
  authors' batches (UCF main audio/video 7-10 steps; UCF cls audio 8-10, video
  12-16), features of the same kind (cls audio integers 0..255, C3D-like
  non-negative video); batches padded to the batch maximum as both collators do;
- the authors' step: ref_step.py (their optimize_params + the get_embeddings
  forward their loop runs), same batch size and length ranges;
- test-set evaluation: ours = DistanceFn (padded batches) + metrics at a fixed beta on the
  test folders of the synthetic benchmark under --root (traced once, then timed);
  theirs = ref_step.py --eval-lengths: their eval-mode get_embeddings over the
  same videos' lengths in batches of 64 plus distances and argmin.
One thread each (TF_NUM_INTRAOP/INTEROP_THREADS set before TF starts;
torch.set_num_threads). Prints and writes JSON; load average before/after.

    PYTHONPATH=. .venv/bin/python benchmarks/tcaf_throughput.py --root /tmp/cmp/data \
        --reference-repo /work/ref/TCAF-GZSL --torch-python /work/refvenv/bin/python --out t.json
(--root holds <config>/UCF as benchmarks/compare_tcaf.py writes it.)

With --model clipclap (configs: datasets, default UCF): our step is the Trainer's
compiled step of the clipclap preset (batch 64) on the stage-1 training set of
the clip_clap benchmark under --root (<root>/<DS>, as benchmarks/compare_clipclap.py
writes it in <out>/data); the authors' step is ref_step.py --model clipclap (their
optimize_params + get_embeddings forward, batch 64, unit-norm 1024/512-d inputs and
[CLIP; CLAP] class vectors of the same shapes). No evaluation timing. The load
average is recorded around each number.

    PYTHONPATH=. .venv/bin/python benchmarks/tcaf_throughput.py --model clipclap \
        --root /tmp/cmp_cc/data --reference-repo /work/ref/ClipClap-GZSL \
        --torch-python /work/refvenv/bin/python --modes function,xla --out c.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_common import HERE, machine  # noqa: E402

REF_STEP = os.path.join(HERE, "reference", "ref_step.py")
FEATURES = {"main": "main_features", "cls": "cls_features"}
DEFAULT_CONFIGS = {"tcaf": "UCF-main,UCF-cls", "clipclap": "UCF"}


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(DEFAULT_CONFIGS), default="tcaf")
    p.add_argument("--root", required=True, help="folder with <config>/<DS> synthetic benchmarks "
                   "(clipclap: the benchmark root holding <DS>)")
    p.add_argument("--configs", help="tcaf: UCF-main,UCF-cls (default); clipclap: UCF (default)")
    p.add_argument("--reference-repo", required=True)
    p.add_argument("--torch-python", required=True)
    p.add_argument("--modes", default="function,xla")
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="JSON file")
    a = p.parse_args(argv)
    a.configs = a.configs or DEFAULT_CONFIGS[a.model]
    return a


def time_steps(trainer, steps, warmup, repeats):
    """steps/s of trainer.train_step: median of `repeats` windows after `warmup` steps."""
    batches = [trainer.sampler.batch_indices(0, i) for i in range(warmup + steps * repeats)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    for idx in batches[:warmup]:
        loss = trainer.train_step(idx)["total"]
    float(loss)
    first = time.perf_counter() - t0
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for idx in batches[warmup + r * steps: warmup + (r + 1) * steps]:
            loss = trainer.train_step(idx)["total"]
        float(loss)
        rates.append(steps / (time.perf_counter() - t0))
    return {"steps_per_s": statistics.median(rates), "rates": rates, "warmup_s": first,
            "final_loss": float(loss), "load_avg_before": load_before,
            "load_avg_after": os.getloadavg()[0]}


def synthetic_train_split(cfg_name, split_like, dims, n_per_class=20, seed=0):
    """A TemporalSplit with ref_step's length ranges and feature kinds (training classes of split_like)."""
    import numpy as np
    sys.path.insert(0, os.path.join(HERE, "reference"))
    import ref_step
    from avca_tf.data.formats.temporal import TemporalSplit
    rng = np.random.default_rng(seed)
    r = ref_step.TCAF_CONFIGS[cfg_name]
    classes = np.unique(split_like.labels)
    labels = np.repeat(classes, n_per_class).astype(np.int64)
    n = labels.size
    la = rng.integers(r["audio"][0], r["audio"][1] + 1, n)
    lv = rng.integers(r["video"][0], r["video"][1] + 1, n)
    da, dv = dims
    if cfg_name.endswith("cls"):
        audio = rng.integers(0, 256, (la.sum(), da)).astype(np.float32)
        video = np.maximum(rng.standard_normal((lv.sum(), dv)), 0).astype(np.float32)
    else:
        audio = rng.standard_normal((la.sum(), da)).astype(np.float32)
        video = rng.standard_normal((lv.sum(), dv)).astype(np.float32)
    return TemporalSplit(name="throughput", audio=audio, audio_lengths=la.astype(np.int64),
                         video=video, video_lengths=lv.astype(np.int64), labels=labels,
                         video_ids=np.array([f"v{i}" for i in range(n)], dtype=object),
                         class_ids=classes.astype(np.int64))


def ours(cfg_name, root, modes, steps, warmup, repeats):
    import dataclasses
    import keras
    from avca_tf.data.formats.temporal import load_temporal_benchmark
    from avca_tf.models import build_model
    from avca_tf.models.tcaf import preset
    from avca_tf.inputs.sequence import SequenceBatching, sequence_spec
    from avca_tf.training.trainer import DistanceFn, Trainer, evaluate_gzsl
    ds, kind = cfg_name.split("-")
    cfg = preset(ds, FEATURES[kind], root)
    bench = load_temporal_benchmark(root, ds, FEATURES[kind])
    spec = sequence_spec(cfg, bench)
    emb = bench.label_embeddings
    data1 = bench.protocol(1)
    split = synthetic_train_split(cfg_name, data1.train, (cfg.model.audio_dim, cfg.model.video_dim))
    out = {"config": cfg_name, "batch_size": cfg.train.batch_size, "modes": {}}
    model = None
    for mode in modes:
        keras.utils.set_random_seed(0)
        # "xla": XLA step on the batch-maximum padding; "xla<m>" (e.g. xla8): training
        # batches padded to a multiple of m steps (DataConfig.pad_multiple), few XLA shapes
        train_cfg = dataclasses.replace(cfg.train, jit_compile=mode.startswith("xla"),
                                        precision="bf16-matmul" if mode == "bf16" else "float32")
        multiple = int(mode[3:]) if mode.startswith("xla") and mode[3:] else 1
        model = build_model(cfg.model.name, cfg.model, cfg.loss)
        try:
            trainer = Trainer(model, train_cfg, split, emb,
                              batching=SequenceBatching(
                                  dataclasses.replace(spec, pad_multiple=multiple)))
            out["modes"][mode] = time_steps(trainer, steps, warmup, repeats)
        except Exception as e:  # XLA may not compile the dynamic padding
            out["modes"][mode] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(json.dumps({cfg_name: {mode: out["modes"][mode]}}), flush=True)
    # test-set evaluation (stage-2 protocol data: the test folders), fixed beta
    keras.utils.set_random_seed(0)
    model = build_model(cfg.model.name, cfg.model, cfg.loss)
    data2 = bench.protocol(2)
    fn = DistanceFn(model, cfg.train.eval_batch_size, SequenceBatching(spec))
    t0 = time.perf_counter()
    evaluate_gzsl(fn, data2, emb, beta=0.0)
    cold = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate_gzsl(fn, data2, emb, beta=0.0)
        times.append(time.perf_counter() - t0)
    test = [data2.eval_seen, data2.eval_unseen]
    out["eval"] = {"videos": int(sum(len(s) for s in test)), "first_call_s": cold,
                   "eval_s": statistics.median(times)}
    lengths = {"audio": [int(x) for s in test for x in s.audio_lengths],
               "video": [int(x) for s in test for x in s.video_lengths],
               "n_classes": int(emb.shape[0])}
    return out, lengths


def ours_clipclap(ds, root, modes, steps, warmup, repeats):
    """Our clipclap training step on the clip_clap benchmark's stage-1 training set."""
    import dataclasses
    import keras
    from avca_tf.data.formats.benchmark import load_benchmark
    from avca_tf.models import build_model, get_preset
    from avca_tf.training.trainer import Trainer
    cfg = get_preset("clipclap", ds, "clip_clap", root)
    bench = load_benchmark(root, ds, "clip_clap")
    data1 = bench.protocol(1)
    out = {"config": ds, "batch_size": cfg.train.batch_size, "modes": {}}
    for mode in modes:
        keras.utils.set_random_seed(0)
        train_cfg = dataclasses.replace(cfg.train, jit_compile=(mode == "xla"),
                                        precision="bf16-matmul" if mode == "bf16" else "float32")
        model = build_model(cfg.model.name, cfg.model, cfg.loss)
        try:
            trainer = Trainer(model, train_cfg, data1.train, bench.label_embeddings, seed=0)
            out["modes"][mode] = time_steps(trainer, steps, warmup, repeats)
        except Exception as e:
            out["modes"][mode] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(json.dumps({ds: {mode: out["modes"][mode]}}), flush=True)
    return out


def theirs(a, cfg_name, lengths_path=None):
    cmd = [a.torch_python, REF_STEP, "--model", a.model, "--config", cfg_name,
           "--reference-repo", a.reference_repo, "--batch-size", "64", "--steps", str(a.steps),
           "--warmup", str(a.warmup), "--repeats", str(a.repeats), "--threads", str(a.threads),
           *(["--eval-lengths", lengths_path] if lengths_path else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr[-1500:], "command": cmd}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line), command=cmd)
    return {"error": proc.stdout[-500:], "command": cmd}


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[k] = str(a.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    a.reference_repo = os.path.abspath(a.reference_repo)
    before = machine()
    report = {"machine_before": before, "threads": a.threads, "configs": {}}
    report["model"] = a.model
    for cfg_name in a.configs.split(","):
        if a.model == "clipclap":
            o = ours_clipclap(cfg_name, os.path.abspath(a.root), a.modes.split(","), a.steps,
                              a.warmup, a.repeats)
            t = theirs(a, cfg_name)
        else:
            root = os.path.join(os.path.abspath(a.root), cfg_name)
            o, lengths = ours(cfg_name, root, a.modes.split(","), a.steps, a.warmup, a.repeats)
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(lengths, f)
            t = theirs(a, cfg_name, f.name)
            os.unlink(f.name)
        entry = {"ours": o, "authors": t}
        if "steps_per_s" in t:
            entry["ratio_steps_per_s"] = {m: v["steps_per_s"] / t["steps_per_s"]
                                          for m, v in o["modes"].items() if "steps_per_s" in v}
        if "eval_s" in t and "eval" in o:
            entry["ratio_eval_time_theirs_over_ours"] = t["eval_s"] / o["eval"]["eval_s"]
        report["configs"][cfg_name] = entry
        print(json.dumps({cfg_name: {k: v for k, v in entry.items() if k.startswith("ratio")},
                          "authors_steps_per_s": t.get("steps_per_s"),
                          "authors_eval_s": t.get("eval_s")}), flush=True)
    report["machine_after"] = machine()
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
