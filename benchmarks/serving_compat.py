"""Do our SavedModels load and score the same in TF Serving's runtime?

TF Serving links one TensorFlow (and the tensorflow-text ops); a model server of
release X runs the graphs with TensorFlow X. This script exports each kind of model
(AVCA with word-vector classify_open, TCaF with padded sequence inputs, ClipClap-GZSL
with the [CLIP; CLAP] text encoders in the graph; small configurations, synthetic toy
data), computes every signature's outputs in this process (the exporting TensorFlow),
then loads each export in other Python environments, given with --python (e.g.
virtualenvs holding the TensorFlow and tensorflow-text versions of a TF Serving
release, nothing else), and compares. A runtime that lacks an op fails to load the
export ("Op type not registered"); one that loads it must give the same scores.

    python -m venv /tmp/tfs-2.21 && /tmp/tfs-2.21/bin/pip install tensorflow-cpu==2.21.0 \\
        tensorflow-text==2.21.1
    PYTHONPATH=. .venv/bin/python benchmarks/serving_compat.py --work /tmp/compat \\
        --python /tmp/tfs-2.21/bin/python --python /tmp/tfs-2.19/bin/python \\
        --out benchmarks/results/serving_compat.md

The ClipClap export uses the small random CLIP/CLAP encoders of
tests/tiny_text_encoders.py (real weights cannot be downloaded here): the ops are those
of the real architectures.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4

# Inputs are saved as .npz without pickles: a string tensor `k` as `k__bytes` (uint8, all
# items concatenated), `k__ends` and `k__shape`. FEEDS reads them back (in both processes).
FEEDS = textwrap.dedent("""
    def feeds(z):
        out = {}
        for k in z.files:
            if k.endswith("__bytes"):
                n = k[:-len("__bytes")]
                data, ends = z[k].tobytes(), z[n + "__ends"]
                starts = np.concatenate([[0], ends[:-1]]).astype(int)
                items = [data[a:b] for a, b in zip(starts, ends)]
                out[n] = tf.constant(np.array(items + [None], dtype=object)[:-1].reshape(
                    tuple(z[n + "__shape"])))
            elif not k.endswith(("__ends", "__shape")):
                out[k] = tf.constant(z[k])
        return out
""")

# Runs in the other environment: only tensorflow and tensorflow_text are imported.
LOADER = textwrap.dedent("""
    import json, sys, traceback
    import numpy as np
    import tensorflow as tf
    import tensorflow_text
""") + FEEDS + textwrap.dedent("""
    assert not any(m.split(".")[0] in ("avca_tf", "keras_hub") for m in sys.modules)
    def plain(v):  # string outputs as unicode arrays: loadable without pickle
        return v if v.dtype != object else np.array(
            [x.decode("utf-8") for x in v.ravel()]).reshape(v.shape)
    work = sys.argv[1]
    plan = json.load(open(work + "/plan.json"))
    report = {"tensorflow": tf.__version__, "tensorflow_text": tensorflow_text.__version__,
              "python": sys.version.split()[0], "results": {}}
    for kind, item in plan.items():
        try:
            model = tf.saved_model.load(item["version_dir"])
        except Exception as e:
            report["results"][kind] = {"load": str(e).strip().splitlines()[0][:300]}
            continue
        out = {}
        for sig, path in item["calls"].items():
            try:
                res = model.signatures[sig](**feeds(np.load(path)))
                np.savez(path.replace(".npz", f".{tag}.out.npz"),
                         **{k: plain(v.numpy()) for k, v in res.items()})
                out[sig] = "ok"
            except Exception as e:
                out[sig] = str(e).strip().splitlines()[0][:300]
        report["results"][kind] = out
    print(json.dumps(report))
""")


def _build(work: Path) -> dict:
    """Trains and exports the three kinds (once per work dir); returns the plan:
    {kind: {"version_dir", "calls": {signature: inputs .npz}}}."""
    import tensorflow as tf

    from avca_tf.data.formats.benchmark import load_benchmark
    from avca_tf.data.formats.temporal import load_temporal_benchmark
    from avca_tf.data.synthesis.synth import FeatureModel, synthesize
    from avca_tf.data.text.encoders import clip_clap_encoder
    from avca_tf.models import get_preset
    from avca_tf.serving.export import export_run, load_export_info
    from avca_tf.training.protocol import run_protocol
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_text_encoders import tiny_clap_savedmodel, tiny_clip_preset

    small = dict(train__epochs=1, train__n_batches=2, train__batch_size=16)
    plan = {}
    kinds = {
        "avca (averaged, word-vector classify_open)": ("avca", "main_features", False),
        "tcaf (sequences + lengths)": ("tcaf", "main_features", True),
        "clipclap (CLIP/CLAP text encoders)": ("clipclap", "clip_clap", False),
    }
    rng = np.random.default_rng(0)
    for i, (kind, (model, features, temporal)) in enumerate(kinds.items()):
        root, run_dir, serving = (work / f"{n}{i}" for n in ("bench", "run", "serving"))
        extra = {}
        encoder_paths = None
        if model == "clipclap":
            encoder_paths = (tiny_clip_preset(work / "clip"), tiny_clap_savedmodel(work / "clap"))
            extra["text_encoder"] = clip_clap_encoder(*encoder_paths)
            extra["model"] = FeatureModel(noise=2.0)
        if not (root / "Toy").is_dir():
            synthesize(root, feature_set=features, seed=0, scale=0.1, temporal=temporal,
                       **extra)
        bench = (load_temporal_benchmark if temporal else load_benchmark)(root, "Toy", features)
        cfg = get_preset(model, "Toy", features, str(root)).replace(**small)
        if model == "tcaf":
            cfg = cfg.replace(model__encoder_hidden=32, model__decoder_hidden=32,
                              model__depth=1, model__heads=2, model__head_dim=16,
                              model__mlp_dim=16, train__eval_batch_size=16)
        if not (run_dir / "results.json").exists():
            run_protocol(bench, cfg, str(run_dir), verbose=0)
        version = serving / "avca" / "1"
        if not version.exists():
            enc = dict(clip_preset=encoder_paths[0], clap_savedmodel=encoder_paths[1]) \
                if encoder_paths else {}
            export_run(str(run_dir), str(serving), **enc)
        info = load_export_info(str(version))
        d_a, d_v = info["audio_dim"], info["video_dim"]
        if info.get("inputs") == "sequences":
            la, lv = np.array([5, 3], np.int64), np.array([4, 6], np.int64)
            feats = dict(audio=rng.normal(size=(2, 5, d_a)), audio_lengths=la,
                         video=rng.normal(size=(2, 6, d_v)), video_lengths=lv)
        else:
            feats = dict(audio=rng.normal(size=(3, d_a)), video=rng.normal(size=(3, d_v)))
        feats = {k: (v.astype(np.float32) if v.dtype == np.float64 else v)
                 for k, v in feats.items()}
        names = np.array(info["class_names"][:3] + ["playing flute"])
        calls = {sig: _save_feeds(work / f"in{i}_{sig}.npz", {
            **feats, **({"class_names": names} if sig == "classify_open" else {})})
            for sig in info["signatures"]}
        plan[kind] = {"version_dir": str(version), "calls": calls}
    media = _media_export(work)
    if media:
        plan["media (frames + audio, `avca export --media`)"] = media
    (work / "plan.json").write_text(json.dumps(plan, indent=1))
    # the exporting process's outputs
    import tensorflow_text  # noqa: F401
    ns = {"np": np, "tf": tf}
    exec(FEEDS, ns)
    for kind, item in plan.items():
        loaded = tf.saved_model.load(item["version_dir"])
        for sig, path in item["calls"].items():
            res = loaded.signatures[sig](**ns["feeds"](np.load(path)))
            np.savez(path.replace(".npz", ".export.out.npz"),
                     **{k: _plain(v.numpy()) for k, v in res.items()})
    return plan


def _media_export(work: Path) -> dict | None:
    """The media toy through `avca extract`, a short `avca train` and `avca export --media`;
    the media signatures' inputs of one clip (PNG frames; float samples or WAV bytes)."""
    try:
        from avca_tf.media.preprocess import MediaSpec
        from avca_tf.media.serving import media_request
        from avca_tf.media.toy import synthesize_media
    except ImportError:  # no media support in this checkout
        return None
    from avca_tf import cli
    toy, feats, run, serving = (work / n for n in ("media_toy", "media_feats", "media_run",
                                                    "media_serving"))
    enc = toy / "Toy" / "encoders"
    if not (toy / "Toy").is_dir():
        synthesize_media(toy, seed=0, scale=0.5)
    steps = [
        (feats / "report.json", ["extract", "--dataset", "Toy", "--videos",
                                 str(toy / "Toy" / "videos"), "--splits", str(toy), "--out",
                                 str(feats), "--image-encoder", str(enc / "clip"),
                                 "--audio-encoder", str(enc / "whisper"), "--",
                                 "--direct_running_mode=in_memory"]),
        (run / "results.json", ["train", "--root", str(feats), "--dataset", "Toy", "--out",
                                str(run), "--preset", "toy", "--epochs", "1", "--n-batches",
                                "5", "-q"]),
        (serving / "avca" / "1", ["export", str(run), "--out", str(serving), "--media"])]
    for done, argv in steps:
        if not done.exists() and cli.main(argv) != 0:
            raise SystemExit(f"avca {' '.join(argv)} failed")
    clip = sorted((toy / "Toy" / "videos").rglob("*.mp4"))[0]
    spec = MediaSpec()
    calls = {
        "serving_media": media_request(str(clip), spec, "png", "float"),
        "serving_media_wav": media_request(str(clip), spec, "png", "wav"),
        "classify_open_media": {**media_request(str(clip), spec, "png", "float"),
                                "class_names": np.array(["playing flute", "wood thrush"])},
    }
    return {"version_dir": str(serving / "avca" / "1"),
            "calls": {sig: _save_feeds(work / f"media_{sig}.npz", values)
                      for sig, values in calls.items()}}


def _save_feeds(path, values: dict) -> str:
    arrays = {}
    for k, v in values.items():
        v = np.asarray(v) if not isinstance(v, bytes) else np.array(v, dtype=object)
        if v.dtype == object or v.dtype.kind in "SU":
            items = [x if isinstance(x, bytes) else str(x).encode() for x in v.ravel()]
            arrays[k + "__bytes"] = np.frombuffer(b"".join(items), np.uint8)
            arrays[k + "__ends"] = np.cumsum([len(x) for x in items]).astype(np.int64)
            arrays[k + "__shape"] = np.array(v.shape, np.int64)
        else:
            arrays[k] = v.astype(np.float32) if v.dtype == np.float64 else v
    np.savez(path, **arrays)
    return str(path)


def _plain(v):
    """String outputs as unicode arrays (saved and loaded without pickle)."""
    return v if v.dtype != object else np.array(
        [x.decode("utf-8") for x in v.ravel()]).reshape(v.shape)


def _compare(plan: dict, tag: str) -> dict:
    """{kind: {signature: largest |difference| of the float outputs, and string outputs equal}}"""
    diffs = {}
    for kind, item in plan.items():
        for sig, path in item["calls"].items():
            got_path = Path(path.replace(".npz", f".{tag}.out.npz"))
            if not got_path.exists():
                continue
            want = np.load(path.replace(".npz", ".export.out.npz"))
            got = np.load(got_path)
            worst, same_strings = 0.0, True
            for k in want.files:
                a, b = want[k], got[k]
                if a.dtype.kind in "fc":
                    if a.shape != b.shape:
                        worst = float("inf")
                        continue
                    both = np.isfinite(a) & np.isfinite(b)
                    same_inf = np.array_equal(np.isfinite(a), np.isfinite(b))
                    worst = max(worst, float(np.abs(a[both] - b[both]).max(initial=0.0))
                                if same_inf else float("inf"))
                else:
                    same_strings &= np.array_equal(a, b)
            diffs.setdefault(kind, {})[sig] = (worst, same_strings)
    return diffs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--work", required=True, help="work folder (exports are reused)")
    p.add_argument("--python", action="append", required=True,
                   help="python of an environment to load the exports in (repeatable)")
    p.add_argument("--out", help="markdown file for the table (default: print only)")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    import tensorflow as tf
    import tensorflow_text
    plan = _build(work)
    exporter = f"TF {tf.__version__}, tensorflow-text {tensorflow_text.__version__}"
    lines = [f"Exports written by {exporter} (this repository's environment); each loaded "
             f"in a fresh process of the environment named, importing only tensorflow and "
             f"tensorflow_text; |diff| = largest absolute difference of the float outputs "
             f"(tolerance {TOLERANCE:g}), strings compared exactly.", "",
             "| runtime | export | signature | result | max abs diff |", "|---|---|---|---|---|"]
    failed = 0
    for i, python in enumerate(args.python):
        tag = f"env{i}"
        loader = LOADER.replace("{tag}", tag)
        r = subprocess.run([python, "-c", loader, str(work)], capture_output=True, text=True,
                           timeout=1800, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp",
                                              "TF_CPP_MIN_LOG_LEVEL": "2"})
        if r.returncode:
            lines.append(f"| {python} | - | - | the loader failed: "
                         f"{r.stderr.strip().splitlines()[-1][:200]} | - |")
            failed += 1
            continue
        report = json.loads(r.stdout.strip().splitlines()[-1])
        runtime = f"TF {report['tensorflow']}, tf-text {report['tensorflow_text']}"
        diffs = _compare(plan, tag)
        for kind, out in report["results"].items():
            if "load" in out:
                lines.append(f"| {runtime} | {kind} | (load) | FAILS: {out['load']} | - |")
                failed += 1
                continue
            for sig, status in out.items():
                worst, same = diffs.get(kind, {}).get(sig, (float("nan"), False))
                ok = status == "ok" and worst <= TOLERANCE and same
                failed += not ok
                result = "same outputs" if ok else (f"FAILS: {status}" if status != "ok"
                                                    else "DIFFERENT outputs")
                lines.append(f"| {runtime} | {kind} | {sig} | {result} | {worst:.2g} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
