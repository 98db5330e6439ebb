"""Media extraction throughput and served media latency on CPU (issue 27), with the toy encoders.

    python benchmarks/media_throughput.py [--work DIR] [--iters 30] [--out benchmarks/results/media.md]

Writes the media toy (seed 0, its CLIP-architecture and Whisper-architecture toy
presets) into --work, then measures, in one run:
- decoding alone (avca_tf.media.decode.decode_clip over every clip: the limit of
  the extraction stage on one core);
- `avca extract` through DirectRunner in one process (in_memory) and with 2
  worker processes (multi_processing): wall seconds of the whole job (encoder
  loading and tracing included), videos/s and windows/s;
- serving latency at batch 1 (p50/p99 over --iters calls, alternating) of the
  exported media signature (serving_media: PNG frames + float samples of one
  toy clip) beside the feature signature (serving_default) of the same export,
  after a quick training run on the extracted features.
Load averages before and after are recorded: the numbers are as quiet as the machine was.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="/tmp/avca-media-bench")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--out", default=None, help="write the markdown table here too")
    args = p.parse_args(argv)
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (classify_open's kernels)

    from avca_tf import cli
    from avca_tf.media.decode import decode_clip
    from avca_tf.media.preprocess import MediaSpec
    from avca_tf.media.serving import media_request
    from avca_tf.media.toy import synthesize_media

    work = Path(args.work)
    load_before = os.getloadavg()
    toy = work / "toy"
    if not (toy / "Toy" / "synth_media.json").is_file():
        synthesize_media(toy, seed=0)
    clips = sorted((toy / "Toy" / "videos").rglob("*.mp4"))
    rows = []

    t = time.perf_counter()
    windows = sum(decode_clip(str(c), MediaSpec()).n_windows for c in clips)
    dt = time.perf_counter() - t
    rows.append(("decode only (PyAV, 1 process)", dt, len(clips), windows))

    enc = ["--image-encoder", str(toy / "Toy" / "encoders" / "clip"),
           "--audio-encoder", str(toy / "Toy" / "encoders" / "whisper")]
    base = ["extract", "--dataset", "Toy", "--videos", str(toy / "Toy" / "videos"),
            "--splits", str(toy)] + enc
    for label, out, beam in (
            ("avca extract, DirectRunner in_memory", "feats", ["--direct_running_mode=in_memory"]),
            ("avca extract, DirectRunner 2 workers", "feats2",
             ["--direct_running_mode=multi_processing", "--direct_num_workers=2"])):
        target = work / out
        if target.exists():
            import shutil
            shutil.rmtree(target)
        t = time.perf_counter()
        if out == "feats":
            assert cli.main(base + ["--out", str(target), "--"] + beam) == 0
        else:  # worker processes: a fresh CLI process, as a user runs it
            subprocess.run([sys.executable, "-m", "avca_tf.cli"] + base
                           + ["--out", str(target), "--"] + beam, check=True,
                           stdout=subprocess.DEVNULL)
        rows.append((label, time.perf_counter() - t, len(clips), windows))

    run = work / "run"
    if not (run / "results.json").is_file():
        assert cli.main(["train", "--root", str(work / "feats"), "--dataset", "Toy", "--out",
                         str(run), "--quick", "-q"]) == 0
    serving = work / "serving"
    if serving.exists():
        import shutil
        shutil.rmtree(serving)
    assert cli.main(["export", str(run), "--out", str(serving), "--media"]) == 0
    sm = tf.saved_model.load(str(serving / "avca" / "1"))
    req = media_request(str(clips[0]), MediaSpec(), "png", "float")
    media_feeds = {k: tf.constant(v.tolist() if v.dtype == object else v) for k, v in req.items()}
    rng = np.random.default_rng(0)
    feature_feeds = {"audio": tf.constant(rng.normal(size=(1, 512)).astype(np.float32)),
                     "video": tf.constant(rng.normal(size=(1, 512)).astype(np.float32))}
    calls = {"serving_media (PNG frames + float samples)":
             lambda: sm.signatures["serving_media"](**media_feeds),
             "serving_default (features)":
             lambda: sm.signatures["serving_default"](**feature_feeds)}
    times = {k: [] for k in calls}
    for fn in calls.values():  # warm-up
        fn()
        fn()
    for _ in range(args.iters):
        for k, fn in calls.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    load_after = os.getloadavg()

    lines = [f"CPU: {cpu_name()}, {os.cpu_count()} vCPU; load average before "
             f"{load_before[0]:.2f}, after {load_after[0]:.2f}; TensorFlow {tf.__version__}",
             "", f"Media toy: {len(clips)} clips (64x64, 8 fps, 2.0-2.5 s), {windows} windows "
             "of 1 s, 4 frames per window; toy encoders (CLIP ViT 32x32 1 layer, Whisper 1 layer "
             "width 512)", "",
             "| stage | wall s | videos/s | windows/s |", "|---|---:|---:|---:|"]
    for label, dt, n, w in rows:
        lines.append(f"| {label} | {dt:.1f} | {n / dt:.1f} | {w / dt:.1f} |")
    lines += ["", "| signature, batch 1 | p50 ms | p99 ms |", "|---|---:|---:|"]
    for k, ts in times.items():
        ts = sorted(ts)
        p99 = ts[min(len(ts) - 1, int(round(0.99 * (len(ts) - 1))))]
        lines.append(f"| {k} | {1000 * statistics.median(ts):.1f} | {1000 * p99:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
