"""Peak memory (RSS) of TCaF training from TFRecords: in memory vs streamed from the index.

    python benchmarks/stream_memory.py [--scales 0.1 0.3 0.6] [--work DIR]
        [--results benchmarks/results/stream_memory.md]

For each scale: `avca synth --temporal` (UCF cls: 128-d audio, 4096-d C3D video,
the heaviest steps) and `avca ingest --temporal` (DirectRunner) once, then in a
fresh process per mode the whole protocol (`run_protocol`: stage 1 with
validation, stage 2, test) of a small TCaF (1 layer; the data path is the
preset's) for 1 epoch x 10 batches of 64 from the TFRecords:
* `memory`: `load_benchmark_from_tfrecords(..., stream=False)`: every sequence in
  memory (as training from the pickles);
* `stream`: `stream=True` (what `avca train --tfrecords` does for sequences):
  an index of the records, each batch read and parsed on its own.
Peak RSS is the child's ru_maxrss; `baseline` is a child that imports
TensorFlow and builds and runs the same model on one random batch (no data).
Both modes must write the same results.json (checked).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(mode: str, tfrec: str, out: str) -> None:
    t0 = time.perf_counter()
    from avca_tf.models import registry
    cfg = registry.get_preset("tcaf", "UCF", "cls_features").replace(
        model__depth=1, train__epochs=1, train__n_batches=10, train__batch_size=64,
        train__eval_batch_size=64, data__tfrecords=tfrec, data__root="")
    if mode == "baseline":
        import numpy as np
        model = registry.build_model("tcaf", cfg.model, cfg.loss)
        rng = np.random.default_rng(0)
        a = rng.random((64, 10, 128), np.float32)
        v = rng.random((64, 15, 4096), np.float32)
        model.class_distances(a, v, rng.random((10, 300), np.float32), training=False)
        n_bytes = 0
    else:
        from avca_tf.data.formats.tfrecord_input import load_benchmark_from_tfrecords
        from avca_tf.training.protocol import run_protocol
        bench = load_benchmark_from_tfrecords(tfrec, stream=mode == "stream")
        run_protocol(bench, cfg, out, verbose=0)
        n_bytes = sum(f.stat().st_size for f in Path(tfrec).rglob("*.tfrecord"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"mode": mode, "peak_rss": rss, "tfrecord_bytes": n_bytes,
                      "seconds": time.perf_counter() - t0}))


def run_child(mode: str, tfrec: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(tfrec), str(out)],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"child {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.3, 0.6])
    ap.add_argument("--work", default="/tmp/avca_stream_memory")
    ap.add_argument("--results", default=str(REPO / "benchmarks/results/stream_memory.md"))
    ap.add_argument("--child", nargs=3, metavar=("MODE", "TFREC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    sys.path.insert(0, str(REPO))
    from avca_tf.beam.ingest import run_ingest
    from avca_tf.data.synthesis.synth import synthesize
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    load = [os.getloadavg()]
    rows = [("baseline", "-", "-", run_child("baseline", work, work / "none"))]
    for scale in args.scales:
        root, tfrec = work / f"root{scale}", work / f"tfrec{scale}"
        if not tfrec.exists():
            synthesize(root, dataset="UCF", feature_set="cls_features", seed=0, scale=scale,
                       temporal=True)
            run_ingest(str(root), "UCF", "cls_features", str(tfrec),
                       ["--runner=DirectRunner"], temporal=True)
        meta = json.loads((tfrec / "metadata.json").read_text())
        videos = sum(s["count"] for s in meta["stages"].values())
        results = {}
        for mode in ("memory", "stream"):
            out = work / f"run{scale}-{mode}"
            if out.exists():
                import shutil
                shutil.rmtree(out)
            results[mode] = run_child(mode, tfrec, out)
            load.append(os.getloadavg())
        same = ((work / f"run{scale}-memory/results.json").read_bytes()
                == (work / f"run{scale}-stream/results.json").read_bytes())
        for mode in ("memory", "stream"):
            rows.append((mode, scale, videos, {**results[mode], "same_results": same}))
    mb = 1024 ** 2
    lines = ["| mode | scale | videos | TFRecords MB | peak RSS MB | wall s | same results.json |",
             "|---|---|---|---|---|---|---|"]
    for mode, scale, videos, r in rows:
        lines.append(f"| {mode} | {scale} | {videos} | {r['tfrecord_bytes'] / mb:.0f} | "
                     f"{r['peak_rss'] / mb:.0f} | {r['seconds']:.0f} | "
                     f"{r.get('same_results', '-')} |")
    lines.append("")
    lines.append("load average (1/5/15 min) before and after each child: "
                 + "; ".join("/".join(f"{x:.1f}" for x in la) for la in load))
    text = "\n".join(lines)
    print(text)
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text("# TCaF training from TFRecords: peak RSS, in memory vs "
                                   "streamed\n\n`python benchmarks/stream_memory.py --scales "
                                   + " ".join(map(str, args.scales)) + "`, UCF cls synth, "
                                   "TCaF depth 1, 1 epoch x 10 batches of 64, both stages.\n\n"
                                   + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
