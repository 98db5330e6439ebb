"""Times one training step of the authors' PyTorch models (TCaF, ClipClap-GZSL, AVCA)
on random inputs of the right shapes, or counts their parameters.

The models are imported from a checkout of the authors' repository given by
--reference-repo (its `src` package); nothing of their code lives here. The script
must run under a Python that has torch (pass --torch-python to re-run itself there).

    python benchmarks/reference/ref_step.py --model tcaf --config UCF-main \
        --reference-repo /work/ref/TCAF-GZSL --torch-python /work/refvenv/bin/python \
        --batch-size 64 --steps 20 --threads 1
    python benchmarks/reference/ref_step.py --model clipclap --count-params \
        --reference-repo /work/ref/ClipClap-GZSL --torch-python /work/refvenv/bin/python

One step is what their training loop does per batch: `optimize_params(...,
optimize=True)` (forward, loss, backward, Adam step), `loss.item()`, and the extra
`get_embeddings` forward in training mode (leave it out with --optimize-only).
Data loading, their collator and the label remapping loop are not timed.
Prints one JSON line (the last line of stdout).

Compatibility with benchmarks/train_throughput.py's torch timer interface:
`--batch`, `--repo` and `--repeats` are accepted; without --model the AVCA UCF main
step is timed (batch 256 unless given).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types

DEFAULT_REPOS = {"tcaf": "/work/ref/TCAF-GZSL", "clipclap": "/work/ref/ClipClap-GZSL",
                 "avca": "/work/ref/AVCA-GZSL"}

# Seen (stage-1 train) class counts, from the benchmark split lists.
N_TRAIN_CLASSES = {"UCF": 30, "ActivityNet": 99, "VGGSound": 138}

# TCaF configs: yaml under config/best/, sequence lengths of a training batch.
# "max" collation: each sample's length drawn from [lo, hi], batch padded to the max.
# "fixed" collation (ActivityNet): padded/cropped to video 60 and
# audio round(60 * rate_v * rate_a) steps; sample lengths drawn long (mostly cropped).
TCAF_CONFIGS = {
    "UCF-cls": dict(yaml="config/best/best_cls/best_ucf.yaml", audio=(8, 10), video=(12, 16)),
    "ActivityNet-cls": dict(yaml="config/best/best_cls/best_anet.yaml", audio=(20, 80), video=(30, 120)),
    "VGGSound-cls": dict(yaml="config/best/best_cls/best_vggsound.yaml", audio=(9, 10), video=(14, 16)),
    "UCF-main": dict(yaml="config/best/best_main/best_ucf.yaml", audio=(7, 10), video=(7, 10)),
    "ActivityNet-main": dict(yaml="config/best/best_main/best_anet.yaml", audio=(30, 120), video=(30, 120)),
    "VGGSound-main": dict(yaml="config/best/best_main/best_vggsound.yaml", audio=(9, 10), video=(9, 10)),
}

# ClipClap: config/clipclap.yaml for all datasets, lr / epochs from their README.
CLIPCLAP_CONFIGS = {"UCF": dict(lr=7e-5, epochs=20), "ActivityNet": dict(lr=1e-4, epochs=15),
                    "VGGSound": dict(lr=1e-4, epochs=15)}

# AVCA: run_scripts/UCF-GZSL/avca.sh (main: SeLaVi 512/512, momentum 0.1; cls: 128/4096, 0.99).
AVCA_CONFIGS = {
    "UCF-main": dict(input_size_audio=512, input_size_video=512, momentum=0.1),
    "UCF-cls": dict(input_size_audio=128, input_size_video=4096, momentum=0.99),
}
AVCA_COMMON = dict(lr=0.001, first_additional_triplet=1, second_additional_triplet=1,
                   reg_loss=True, additional_triplets_loss=True, embedding_dropout=0.2,
                   decoder_dropout=0.3, additional_dropout=0.5, embeddings_hidden_size=512,
                   decoder_hidden_size=512, depth_transformer=1)

CONFIGS = {"tcaf": TCAF_CONFIGS, "clipclap": CLIPCLAP_CONFIGS, "avca": AVCA_CONFIGS}
DEFAULT_CONFIG = {"tcaf": "UCF-main", "clipclap": "UCF", "avca": "UCF-main"}


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(CONFIGS), default=None,
                   help="default avca (train_throughput.py compatibility)")
    p.add_argument("--config", help="e.g. UCF-main, VGGSound-cls (tcaf), UCF (clipclap)")
    p.add_argument("--reference-repo", "--repo", dest="repo",
                   help="checkout of the authors' repository (default /work/ref/<name>)")
    p.add_argument("--torch-python", help="re-run this script with this interpreter")
    p.add_argument("--batch-size", "--batch", dest="batch_size", type=int, default=None,
                   help="default 64 (tcaf, clipclap) or 256 (avca)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per window")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=1, help="timed windows; steps/s is their median")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--omp-wait-policy", choices=["PASSIVE", "ACTIVE"],
                   help="set OMP_WAIT_POLICY before torch is imported")
    p.add_argument("--n-batches-pool", type=int, default=8,
                   help="distinct random batches cycled through (padded lengths vary per batch)")
    p.add_argument("--optimize-only", action="store_true",
                   help="leave out the get_embeddings forward their loop runs after each step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-lengths", metavar="JSON",
                   help="tcaf: also time an evaluation pass: eval-mode get_embeddings over "
                        "videos of these lengths ({'audio': [...], 'video': [...], 'n_classes': "
                        "K}) in batches of --batch-size padded to the batch maximum, plus "
                        "distances to W_proj of K label vectors and argmin (eval_s: median of "
                        "--repeats passes after one untimed pass)")
    p.add_argument("--count-params", action="store_true",
                   help="print trainable parameter counts of every config of --model")
    p.add_argument("--details", action="store_true",
                   help="with --count-params: parameter names/shapes and buffers of --config")
    args = p.parse_args(argv)
    args.model = args.model or "avca"
    args.config = args.config or DEFAULT_CONFIG[args.model]
    if args.config not in CONFIGS[args.model]:
        p.error(f"--config for {args.model}: one of {sorted(CONFIGS[args.model])}")
    args.repo = os.path.abspath(args.repo or DEFAULT_REPOS[args.model])
    if args.batch_size is None:
        args.batch_size = 256 if args.model == "avca" else 64
    return args


def reexec_if_needed(args, argv):
    """Run under --torch-python when that is not the current interpreter."""
    if not args.torch_python:
        return
    target = os.path.abspath(args.torch_python)
    if os.path.abspath(sys.executable) == target or os.environ.get("REF_STEP_REEXEC") == "1":
        return
    env = dict(os.environ, REF_STEP_REEXEC="1")
    proc = subprocess.run([target, os.path.abspath(__file__)] + list(argv), env=env)
    sys.exit(proc.returncode)


# ---------------------------------------------------------------- environment shims
def install_shims(torch):
    """Make their modules importable here without touching their files.

    - torchvision: imported (unused) by AVCA's model module; not installed here.
    - ReduceLROnPlateau(verbose=...): the argument was removed from torch; it only
      controlled printing, so it is dropped.
    """
    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            tv = types.ModuleType("torchvision")
            tv.models = types.ModuleType("torchvision.models")
            sys.modules["torchvision"] = tv
            sys.modules["torchvision.models"] = tv.models
    sched = torch.optim.lr_scheduler
    orig = sched.ReduceLROnPlateau
    if not getattr(orig, "_ref_step_shim", False):
        import inspect
        if "verbose" not in inspect.signature(orig.__init__).parameters:
            class ReduceLROnPlateau(orig):
                _ref_step_shim = True

                def __init__(self, *a, **kw):
                    kw.pop("verbose", None)
                    super().__init__(*a, **kw)
            sched.ReduceLROnPlateau = ReduceLROnPlateau


def correct_text_pairing(dataset_module):
    """Their loaders' text vectors in class-id order (row i = the vector of class i).

    AVCA's and TCaF's `get_data_by_modality("text")` order the rows by the sorted
    `manual` names of the w2v csv while the rest of their code reads row i as class i,
    which pairs most classes with another class's vector
    (benchmarks/results/reference_torch.md). Patches the dataset classes of
    `dataset_module` (their src/dataset.py) in this process."""
    import torch
    for name in ("UCFDataset", "ActivityNetDataset", "VGGSoundDataset"):
        cls = getattr(dataset_module, name, None)
        if cls is None or getattr(cls.get_data_by_modality, "_pairing_corrected", False):
            continue
        orig_get = cls.get_data_by_modality

        def get_data_by_modality(self, modality, *a, _orig=orig_get, **kw):
            result = _orig(self, modality, *a, **kw)
            if modality == "text":
                target = torch.as_tensor(result["target"])
                order = torch.argsort(target)
                assert torch.equal(target[order], torch.arange(len(target))), \
                    "expected exactly one text vector per class"
                data = result["data"]
                result["data"] = (data[order] if hasattr(data, "shape")
                                  else [data[i] for i in order.tolist()])
                result["target"] = target[order]
            return result
        get_data_by_modality._pairing_corrected = True
        cls.get_data_by_modality = get_data_by_modality


def import_reference(repo):
    if not os.path.isdir(os.path.join(repo, "src")):
        raise SystemExit(f"{repo}: no src/ package (not a checkout of the authors' code?)")
    sys.path.insert(0, repo)


def repo_commit(repo):
    try:
        return subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return None


def quiet_call(fn, *a, **kw):
    """Their constructors print progress; keep stdout for our JSON."""
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*a, **kw)


# ---------------------------------------------------------------- model builders
def read_yaml(path):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f) or {}


def tcaf_settings(repo, config):
    """Their config resolution: config/default.yaml, overridden by the best yaml."""
    s = read_yaml(os.path.join(repo, "config/default.yaml"))
    s.update(read_yaml(os.path.join(repo, TCAF_CONFIGS[config]["yaml"])))
    for k in ("lr", "embedding_dropout", "decoder_dropout", "additional_dropout",
              "transformer_dropout", "transformer_embedding_dropout",
              "transformer_embedding_fourier_scale"):
        s[k] = float(s[k])
    return s


def build_tcaf(repo, config):
    from src.model_sequence import Multimodal_Sequence_Transformer
    from src.utils_improvements import get_model_params
    s = tcaf_settings(repo, config)
    params = get_model_params(
        s["lr"], s["reg_loss"], s["embedding_dropout"], s["decoder_dropout"],
        s["additional_dropout"], s["embeddings_hidden_size"], s["decoder_hidden_size"],
        s["embeddings_batch_norm"], s["rec_loss"], s["cross_entropy_loss"],
        s["transformer_use_embedding_net"], s["transformer_dim"], s["transformer_depth"],
        s["transformer_heads"], s["transformer_dim_head"], s["transformer_mlp_dim"],
        s["transformer_dropout"], s["transformer_embedding_dim"],
        s["transformer_embedding_time_len"], s["transformer_embedding_dropout"],
        s["transformer_embedding_time_embed_type"], s["transformer_embedding_fourier_scale"],
        s["transformer_embedding_embed_augment_position"], s["lr_scheduler"], s["optimizer"],
        s["use_self_attention"], s["use_cross_attention"], s["transformer_average_features"],
        s["audio_only"], s["video_only"], s["transformer_use_class_token"],
        s["transformer_embedding_modality"])
    model = quiet_call(Multimodal_Sequence_Transformer, params,
                       input_size_audio=s["input_size_audio"], input_size_video=s["input_size_video"])
    return model, s


def clipclap_settings(repo, config):
    s = read_yaml(os.path.join(repo, "config/default.yaml"))
    s.update(read_yaml(os.path.join(repo, "config/clipclap.yaml")))
    s.update(CLIPCLAP_CONFIGS[config])  # README command line: --epochs, --lr
    s.update(modality="both", word_embeddings="both", use_wavcaps_embeddings=True,
             dataset_name=config.split("-")[0])
    for k in ("lr", "embedding_dropout", "decoder_dropout", "additional_dropout",
              "transformer_dropout", "transformer_embedding_dropout",
              "transformer_embedding_fourier_scale"):
        s[k] = float(s[k])
    return s


def build_clipclap(repo, config):
    from src.clipclap_model import ClipClap_model
    from src.utils_improvements import get_model_params
    s = clipclap_settings(repo, config)
    params = get_model_params(
        s["lr"], s["reg_loss"], s["embedding_dropout"], s["decoder_dropout"],
        s["additional_dropout"], s["embeddings_hidden_size"], s["decoder_hidden_size"],
        s["embeddings_batch_norm"], s["rec_loss"], s["cross_entropy_loss"],
        s["transformer_use_embedding_net"], s["transformer_dim"], s["transformer_depth"],
        s["transformer_heads"], s["transformer_dim_head"], s["transformer_mlp_dim"],
        s["transformer_dropout"], s["transformer_embedding_dim"],
        s["transformer_embedding_time_len"], s["transformer_embedding_dropout"],
        s["transformer_embedding_time_embed_type"], s["transformer_embedding_fourier_scale"],
        s.get("transformer_embedding_embed_augment_position", False), s["lr_scheduler"],
        s["optimizer"], s["use_self_attention"], s["use_cross_attention"],
        s["transformer_average_features"], s.get("audio_only", False), s.get("video_only", False),
        s["transformer_use_class_token"], s["transformer_embedding_modality"],
        s["modality"], s["word_embeddings"])
    # clipclap features: audio CLAP 1024-d, video CLIP 512-d (input sizes unused by the model)
    model = quiet_call(ClipClap_model, params, input_size_audio=1024, input_size_video=512)
    return model, s


def build_avca(repo, config):
    from src.model_improvements import AVCA
    from src.utils_improvements import get_model_params
    c = dict(AVCA_COMMON, **AVCA_CONFIGS[config])
    params = get_model_params(
        c["lr"], c["first_additional_triplet"], c["second_additional_triplet"], c["reg_loss"],
        c["additional_triplets_loss"], c["embedding_dropout"], c["decoder_dropout"],
        c["additional_dropout"], c["embeddings_hidden_size"], c["decoder_hidden_size"],
        c["depth_transformer"], c["momentum"])
    model = quiet_call(AVCA, params, input_size_audio=c["input_size_audio"],
                       input_size_video=c["input_size_video"])
    return model, c


BUILDERS = {"tcaf": build_tcaf, "clipclap": build_clipclap, "avca": build_avca}


# ---------------------------------------------------------------- parameter counts
def param_summary(model, details=False):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = getattr(model, "optimizer_gen", None)
    if opt is not None and hasattr(opt, "base_optimizer"):
        opt = opt.base_optimizer
    in_opt_ids = {id(p) for g in opt.param_groups for p in g["params"]} if opt else set()
    in_opt = sum(p.numel() for p in model.parameters() if id(p) in in_opt_ids)
    out = {"trainable": trainable, "in_optimizer": in_opt,
           "not_in_optimizer": [n for n, p in model.named_parameters() if id(p) not in in_opt_ids]}
    if details:
        out["parameters"] = {n: list(p.shape) for n, p in model.named_parameters()}
        out["buffers"] = {n: list(b.shape) for n, b in model.named_buffers()
                          if not n.endswith("num_batches_tracked")}
        out["by_module"] = {}
        for n, p in model.named_parameters():
            top = n.split(".")[0]
            out["by_module"][top] = out["by_module"].get(top, 0) + p.numel()
    return out


# ---------------------------------------------------------------- random batches
def make_batches(model_name, settings, config, batch_size, n_pool, seed):
    """A pool of random batches shaped as their collators produce them."""
    import numpy as np
    import torch
    rng = np.random.default_rng(seed)
    ds = config.split("-")[0]
    n_cls = N_TRAIN_CLASSES[ds]

    def unit(n, d):
        x = rng.standard_normal((n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    batches = []
    if model_name == "tcaf":
        cfg = TCAF_CONFIGS[config]
        cls = "cls" in settings["feature_extraction_method"]
        ra, rv = (0.96, 16 / 25) if cls else (1.0, 1.0)   # collator rates (SeLaVi: 1, 1)
        da, dv = settings["input_size_audio"], settings["input_size_video"]
        E = torch.from_numpy(unit(n_cls, 300))             # seen-class word2vec table
        for _ in range(n_pool):
            la = rng.integers(cfg["audio"][0], cfg["audio"][1] + 1, batch_size)
            lv = rng.integers(cfg["video"][0], cfg["video"][1] + 1, batch_size)
            if settings["batch_seqlen_train"] == "fixed":
                m = settings["batch_seqlen_train_maxlen"]
                Tv, Ta = m, round(m * rv * ra)
                la, lv = np.minimum(la, Ta), np.minimum(lv, Tv)
            else:
                Ta, Tv = int(la.max()), int(lv.max())
            ma = (np.arange(Ta)[None] < la[:, None]).astype(np.float32)
            mv = (np.arange(Tv)[None] < lv[:, None]).astype(np.float32)
            if cls:   # VGGish uint8 codes 0..255; C3D fc7 after ReLU
                a = rng.integers(0, 256, (batch_size, Ta, da)).astype(np.float32)
                v = np.maximum(rng.standard_normal((batch_size, Tv, dv)), 0).astype(np.float32)
            else:
                a = rng.standard_normal((batch_size, Ta, da)).astype(np.float32)
                v = rng.standard_normal((batch_size, Tv, dv)).astype(np.float32)
            a *= ma[..., None]
            v *= mv[..., None]
            y = rng.integers(0, n_cls, batch_size)
            batches.append(dict(
                args=(torch.from_numpy(a), torch.from_numpy(v), torch.from_numpy(y),
                      E[torch.from_numpy(y)].clone(),
                      {"audio": torch.from_numpy(ma), "video": torch.from_numpy(mv)},
                      {"audio": np.repeat(np.arange(Ta)[None], batch_size, 0).astype(float) * ra,
                       "video": np.repeat(np.arange(Tv)[None], batch_size, 0).astype(float) * rv}),
                emb=E))
    elif model_name == "clipclap":
        E = torch.from_numpy(np.concatenate([unit(n_cls, 512), unit(n_cls, 1024)], 1))
        for _ in range(n_pool):
            y = rng.integers(0, n_cls, batch_size)
            ones = torch.ones(batch_size, 1)
            t0 = np.zeros((batch_size, 1))
            batches.append(dict(
                args=(torch.from_numpy(unit(batch_size, 1024)), torch.from_numpy(unit(batch_size, 512)),
                      torch.from_numpy(y), E[torch.from_numpy(y)].clone(),
                      {"audio": ones, "video": ones}, {"audio": t0, "video": t0 * (16 / 25)}),
                emb=E))
    else:  # avca
        da, dv = settings["input_size_audio"], settings["input_size_video"]
        E = torch.from_numpy(unit(n_cls, 300))
        for _ in range(n_pool):
            y = rng.integers(0, n_cls, batch_size)
            yn = (y + rng.integers(1, n_cls, batch_size)) % n_cls
            f = (lambda d: torch.from_numpy(rng.standard_normal((batch_size, d)).astype(np.float32)))
            batches.append(dict(args=(f(da), f(dv), torch.from_numpy(y), E[torch.from_numpy(y)].clone(),
                                      f(da), f(dv), E[torch.from_numpy(yn)].clone()), emb=None))
    return batches


def time_tcaf_eval(model, settings, args):
    """Seconds of one evaluation pass over videos of the given lengths (see --eval-lengths)."""
    import numpy as np
    import torch
    with open(args.eval_lengths) as f:
        spec = json.load(f)
    la_all, lv_all = np.asarray(spec["audio"]), np.asarray(spec["video"])
    rng = np.random.default_rng(args.seed + 1)
    cls = "cls" in settings["feature_extraction_method"]
    ra, rv = (0.96, 16 / 25) if cls else (1.0, 1.0)
    da, dv = settings["input_size_audio"], settings["input_size_video"]
    emb = torch.from_numpy(rng.standard_normal((spec["n_classes"], 300)).astype(np.float32))
    batches = []
    for s in range(0, len(la_all), args.batch_size):
        la, lv = la_all[s:s + args.batch_size], lv_all[s:s + args.batch_size]
        b, Ta, Tv = len(la), int(la.max()), int(lv.max())
        ma = (np.arange(Ta)[None] < la[:, None]).astype(np.float32)
        mv = (np.arange(Tv)[None] < lv[:, None]).astype(np.float32)
        a = rng.standard_normal((b, Ta, da)).astype(np.float32) * ma[..., None]
        v = rng.standard_normal((b, Tv, dv)).astype(np.float32) * mv[..., None]
        batches.append((torch.from_numpy(a), torch.from_numpy(v),
                        {"audio": torch.from_numpy(ma), "video": torch.from_numpy(mv)},
                        {"audio": np.repeat(np.arange(Ta)[None], b, 0).astype(float) * ra,
                         "video": np.repeat(np.arange(Tv)[None], b, 0).astype(float) * rv}))

    def one_pass():
        model.eval()
        with torch.no_grad():
            outs = []
            for a, v, m, t in batches:
                theta_o, _, theta_w = model.get_embeddings(a, v, emb, m, t)
                outs.append(theta_o)
            d = torch.cdist(torch.cat(outs), theta_w)
            return torch.argmin(d, dim=1)
    one_pass()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - t0)
    model.train()
    return {"eval_videos": int(len(la_all)), "eval_s": sorted(times)[len(times) // 2]}


def make_step(model_name, model, optimize_only):
    """One iteration of their training loop on a prepared batch."""
    if model_name == "avca":
        def step(b):
            a, v, y, w, an, vn, wn = b["args"]
            loss, _ = model.optimize_params(a, v, y, w, an, vn, wn, optimize=True)
            if not optimize_only:
                model.get_embeddings(a, v, w)
            return loss.item()
    else:
        def step(b):
            a, v, y, w, masks, ts = b["args"]
            loss, _ = model.optimize_params(a, v, y, w, masks, ts,
                                            embedding_crossentropy=b["emb"], optimize=True)
            if not optimize_only:
                model.get_embeddings(a, v, w, masks, ts)
            return loss.item()
    return step


# ---------------------------------------------------------------- main
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    reexec_if_needed(args, argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))
    if args.omp_wait_policy:
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    install_shims(torch)
    import_reference(args.repo)
    build = BUILDERS[args.model]
    common = {"model": args.model, "reference_repo": args.repo,
              "reference_commit": repo_commit(args.repo), "torch": torch.__version__}

    if args.count_params:
        out = dict(common, configs={})
        for cfg in CONFIGS[args.model]:
            torch.manual_seed(args.seed)
            model, _ = build(args.repo, cfg)
            out["configs"][cfg] = param_summary(model, details=args.details and cfg == args.config)
        print(json.dumps(out))
        return 0

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model, settings = build(args.repo, args.config)
    model.train()   # their train_step calls model.train() before the loop
    batches = make_batches(args.model, settings, args.config, args.batch_size,
                           args.n_batches_pool, args.seed)
    step = make_step(args.model, model, args.optimize_only)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    loss = None
    for i in range(args.warmup):
        loss = step(batches[i % len(batches)])
    warmup_s = time.perf_counter() - t0
    rates, cpu, k = [], [], args.warmup
    for _ in range(args.repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(args.steps):
            loss = step(batches[k % len(batches)])
            k += 1
        rates.append(args.steps / (time.perf_counter() - t0))
        cpu.append((time.process_time() - c0) / args.steps * 1e3)  # all threads' CPU time
    ps = param_summary(model)
    eval_out = {}
    if args.eval_lengths and args.model == "tcaf":
        eval_out = time_tcaf_eval(model, settings, args)
    shapes = {}
    if args.model == "tcaf":
        ta = [b["args"][0].shape[1] for b in batches]
        tv = [b["args"][1].shape[1] for b in batches]
        shapes = {"padded_audio_steps": [min(ta), max(ta)], "padded_video_steps": [min(tv), max(tv)]}
    out = dict(common, config=args.config, batch_size=args.batch_size, threads=args.threads,
               omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"), steps=args.steps,
               warmup=args.warmup, repeats=args.repeats,
               step=("optimize_params" if args.optimize_only
                     else "optimize_params + get_embeddings (their loop)"),
               steps_per_s=sorted(rates)[len(rates) // 2], steps_per_s_best=max(rates),
               cpu_ms_per_step=sorted(cpu)[len(cpu) // 2], warmup_s=warmup_s, final_loss=loss, params=ps["trainable"],
               params_in_optimizer=ps["in_optimizer"], lr=settings.get("lr"),
               load_avg_before=load_before, load_avg_after=os.getloadavg(), **shapes, **eval_out)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
