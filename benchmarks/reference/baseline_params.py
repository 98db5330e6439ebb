"""Parameters and FLOPs of the authors' baseline models and AVCA, instantiated from their
checkout (issue 30), beside the seed's Appendix B.4 figures.

    TORCH_PYTHON benchmarks/reference/baseline_params.py --reference-repo /work/ref/AVCA-GZSL \
        [--config UCF-main] [--json out.json]

Each model is built by their own classes from the arguments of the stage-1 line of
`run_scripts/<DS>-GZSL/<method>.sh` (parsed by their `args_main`; AVCA from
`run_scripts/<DS>-GZSL/avca.sh` through ref_step.build_avca). Counted:
- trainable parameters (`requires_grad`);
- FLOPs of the forward their training loop runs on one batch, by
  `torch.utils.flop_counter.FlopCounterMode` (2 per multiply-add of mm/addmm/bmm/conv;
  normalisation, activations and the distance maths are not counted): AVCA and AVGZSLNet
  and CJME take 256 positives + 256 negatives, ALE/SJE/DeViSE (their `DeviseModel`) and
  APN take 256 positives and the class embeddings of the stage-1 training classes;
- the same forward's multiply-adds by ptflops (their main.py imports it, unused), as
  reported by `get_model_complexity_info` (GMac), for comparison with the seed's unit.
Nothing of their code is copied; the run-time shims are ref_step's and run_reference's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import ref_step  # noqa: E402
from baselines_accuracy import SPLITS, script_args  # noqa: E402

BATCH = 256
# the seed's Appendix B.4 (SeLaVi features, i.e. UCF/ActivityNet/VGGSound main)
SEED = {"avca": ("1.69M", 2.36), "avgzslnet": ("1.32M", 1.38), "ale": ("307.2k", 0.32),
        "sje": ("307.2k", 0.32), "devise": ("307.2k", 0.32)}
TRAIN_CLASSES = {"UCF": 30, "ActivityNet": 99, "VGGSound": 138}  # stage-1 training classes


def build(repo, method, dataset, short):
    import torch  # noqa: F401
    if method == "avca":
        model, c = ref_step.build_avca(repo, f"{dataset}-{short}")
        return model, c["input_size_audio"], c["input_size_video"]
    from src.args import args_main
    from src.model import APN, CJME, AVGZSLNet, DeviseModel
    stage1, _ = script_args(repo, dataset, SPLITS[short], method)
    sys.argv = ["main.py", *stage1, "--root_dir", "unused", "--epochs", "1", "--n_batches", "1",
                "--exp_name", "unused", "--device", "cpu"]
    args = args_main()
    cls = {"ale": DeviseModel, "sje": DeviseModel, "devise": DeviseModel, "apn": APN,
           "cjme": CJME, "avgzslnet": AVGZSLNet}[method]
    return cls(args), args.input_size_audio, args.input_size_video


def inputs(method, a_dim, v_dim, n_classes):
    import torch
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    if method == "avca":
        return (r(BATCH, a_dim), r(BATCH, v_dim), r(BATCH, a_dim), r(BATCH, v_dim),
                r(BATCH, 300), r(BATCH, 300))
    if method in ("ale", "sje", "devise", "apn"):
        return (r(BATCH, a_dim + v_dim), r(n_classes, 300))
    return (r(BATCH, a_dim), r(BATCH, v_dim), r(BATCH, 300),
            r(BATCH, a_dim), r(BATCH, v_dim), r(BATCH, 300))


def measure(repo, method, dataset, short):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    model, a_dim, v_dim = ref_step.quiet_call(build, repo, method, dataset, short)
    model.train()
    x = inputs(method, a_dim, v_dim, TRAIN_CLASSES[dataset])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*x)
    out = {"method": method, "config": f"{dataset}-{short}",
           "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
           "forward_gflop": counter.get_total_flops() / 1e9}
    try:
        from ptflops import get_model_complexity_info
        macs, _ = ref_step.quiet_call(
            get_model_complexity_info, model, (1,), as_strings=False,
            input_constructor=lambda _shape: dict(zip(_forward_names(model), x)),
            print_per_layer_stat=False, verbose=False)
        out["ptflops_gmac"] = macs / 1e9 if macs is not None else None
    except Exception as e:  # ptflops not installed or the model's forward unsupported
        out["ptflops_gmac"] = None
        out["ptflops_error"] = f"{type(e).__name__}: {e}"
    seed = SEED.get(method) if short == "main" else None
    out["seed_params"], out["seed_gflops"] = seed if seed else (None, None)
    return out


def _forward_names(model):
    import inspect
    return [p for p in inspect.signature(model.forward).parameters
            if p not in ("self", "return_map")]


def table(rows) -> str:
    out = ["| model | config | trainable params (theirs instantiated) | seed params | "
           "forward GFLOP, one batch (FlopCounterMode) | ptflops GMac | seed GFLOPS |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        mac = "" if r["ptflops_gmac"] is None else f"{r['ptflops_gmac']:.3f}"
        out.append(f"| {r['method']} | {r['config']} | {r['trainable']:,} | "
                   f"{r['seed_params'] or ''} | {r['forward_gflop']:.3f} | {mac} | "
                   f"{'' if r['seed_gflops'] is None else r['seed_gflops']} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    p.add_argument("--reference-repo", required=True, help="checkout of ExplainableML/AVCA-GZSL")
    p.add_argument("--config", nargs="+", default=["UCF-main", "UCF-cls"])
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    repo = os.path.abspath(args.reference_repo)
    ref_step.import_reference(repo)
    import torch
    ref_step.install_shims(torch)
    rows = [measure(repo, m, *cfg.split("-")) for cfg in args.config
            for m in ("avca", "ale", "sje", "devise", "apn", "cjme", "avgzslnet")]
    text = table(rows)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
