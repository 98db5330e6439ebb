"""`avca stats`: the seed's parameter counts and graph FLOP counts."""
import pytest

from avca_tf import cli
from avca_tf.evaluation.flops import forward_flops, train_step_flops
from avca_tf.models import build_model
from avca_tf.models import get_preset


def test_stats_prints_the_seeds_parameter_counts(capsys):
    assert cli.main(["stats", "--features", "main_features", "--no-flops"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line
            for line in out.splitlines() if "main_features" in line}
    assert "| 1,693,108 | 1.69M |" in rows["avca"]
    assert "| 1,319,872 | 1.32M |" in rows["avgzslnet"]
    for name in ("ale", "sje", "devise"):
        assert "| 307,200 | 307.2k |" in rows[name]
    assert {"apn", "cjme", "avca-no-xatt", "avca-xatt-lc", "avca-visual", "avca-audio"} <= set(rows)


def test_graph_flops_match_the_matmuls_of_the_layers():
    cfg = get_preset("ale", "UCF", "main_features")
    ale = build_model("ale", cfg.model, cfg.loss)
    # one bias-free 1024 -> 300 matmul per sample
    assert forward_flops(ale, 512, 512) == 2 * 1024 * 300
    # training step: forward matmul + weight gradient (the input needs none) + small terms
    step = train_step_flops(ale, 512, 512, batch_size=8)
    assert 2 * (2 * 8 * 1024 * 300) <= step < 1.05 * 2 * (2 * 8 * 1024 * 300)

    cfg = get_preset("avgzslnet", "UCF", "main_features")
    net = build_model("avgzslnet", cfg.model, cfg.loss)
    matmuls = 2 * 2 * (512 * 1024 + 1024 * 64)       # audio and video branch
    assert forward_flops(net, 512, 512) == pytest.approx(matmuls, rel=0.02)


def test_stats_rejects_unknown_models(capsys):
    assert cli.main(["stats", "--models", "avca,nope", "--no-flops"]) == 2
    assert "nope" in capsys.readouterr().err


def test_tcaf_flops_per_video_at_a_stated_length(capsys):
    from avca_tf.evaluation.flops import (sequence_forward_flops, sequence_train_step_flops,
                                          typical_steps)
    steps = {(d, f): typical_steps(get_preset("tcaf", d, f))
             for d in ("UCF", "VGGSound", "ActivityNet")
             for f in ("main_features", "cls_features")}
    assert steps == {("UCF", "main_features"): (6, 6), ("UCF", "cls_features"): (6, 9),
                     ("VGGSound", "main_features"): (10, 10),
                     ("VGGSound", "cls_features"): (10, 15),
                     ("ActivityNet", "main_features"): (300, 300),
                     ("ActivityNet", "cls_features"): (200, 300)}
    cfg = get_preset("tcaf", "UCF", "main_features").replace(
        model__encoder_hidden=32, model__depth=1, model__heads=2, model__head_dim=16,
        model__mlp_dim=16)
    model = build_model("tcaf", cfg.model, cfg.loss)
    h, d, hd, ff = 32, 300, 2 * 16, 16

    def matmuls(ta, tv):
        n = 1 + ta + tv
        enc = ta * (512 * h + h * d) + tv * (512 * h + h * d)
        pos = (ta + tv) * (2 * 32 + 64 * 64 + 364 * d)
        layer = n * (3 * d * hd + hd * d + 2 * d * ff) + 2 * n * n * hd
        head = d * 512 + 512 * 64
        return 2 * (enc + pos + layer + head)
    for ta, tv in ((6, 6), (10, 15)):
        flops = sequence_forward_flops(model, 512, 512, ta, tv)
        # the matmuls plus elementwise work (BN, LayerNorm, softmax, GELU: a few percent)
        assert matmuls(ta, tv) <= flops <= 1.15 * matmuls(ta, tv), (ta, tv)
    step = sequence_train_step_flops(model, 512, 512, 6, 6, batch_size=4, num_classes=5)
    assert step > 2 * 4 * sequence_forward_flops(model, 512, 512, 6, 6)  # fwd + bwd of 4
    assert cli.main(["stats", "--models", "tcaf", "--features", "main_features",
                     "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| tcaf (")]
    assert len(rows) == 3 and "steps a/v" in out
    ucf = next(r for r in rows if "(UCF)" in r).split("|")
    assert ucf[5].strip() == "6/6" and float(ucf[6]) > 0 and float(ucf[7]) > 0


def test_stats_on_clip_clap_features_counts_1536_d_label_vectors(capsys):
    """Issue 29: `avca stats` ended in a traceback on clip_clap (label vectors taken as 300-d)."""
    assert cli.main(["stats", "--features", "clip_clap", "--models", "avca,clipclap",
                     "--batch-size", "8"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| avca |") or line.startswith("| clipclap |")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[1] == "clip_clap" and float(cells[-2]) > 0  # train step GFLOP
