"""`avca stats`: the seed's parameter counts and graph FLOP counts."""
import pytest

from avca_tf import cli
from avca_tf.evaluation.flops import forward_flops, train_step_flops
from avca_tf.inputs import kind_of
from avca_tf.models import build_model
from avca_tf.models import get_preset


def _specs(cfg, batch_size=256, num_classes=30):
    """(one sample's input specs, one training batch's specs) of cfg's model."""
    return kind_of(cfg.model.name).flops_inputs(cfg, batch_size, num_classes)[:2]


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
    assert forward_flops(ale, _specs(cfg)[0]) == 2 * 1024 * 300
    # training step: forward matmul + weight gradient (the input needs none) + small terms
    step = train_step_flops(ale, _specs(cfg, batch_size=8)[1])
    assert 2 * (2 * 8 * 1024 * 300) <= step < 1.05 * 2 * (2 * 8 * 1024 * 300)

    cfg = get_preset("avgzslnet", "UCF", "main_features")
    net = build_model("avgzslnet", cfg.model, cfg.loss)
    matmuls = 2 * 2 * (512 * 1024 + 1024 * 64)       # audio and video branch
    assert forward_flops(net, _specs(cfg)[0]) == pytest.approx(matmuls, rel=0.02)


def test_clip_clap_flops_use_its_1536_d_text_and_training_classes(capsys):
    """ClipClap-GZSL's batches carry [CLIP; CLAP] 1536-d text and the training classes'
    vectors: `avca stats` counts its FLOPs on those (it once crashed on 300-d text)."""
    assert cli.main(["stats", "--features", "clip_clap", "--models", "clipclap,avca",
                     "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|") for line in out.splitlines()
            if "clip_clap" in line}
    assert set(rows) == {"clipclap", "avca"}
    header = [c.strip() for c in out.splitlines()[0].split("|")]
    for name, row in rows.items():
        for column in ("fwd MFLOP/sample", "loss fwd GFLOP (B=4)", "train step GFLOP (B=4)"):
            assert float(row[header.index(column)]) > 0, (name, column)


def test_stats_rejects_unknown_models(capsys):
    assert cli.main(["stats", "--models", "avca,nope", "--no-flops"]) == 2
    assert "nope" in capsys.readouterr().err


def test_tcaf_flops_per_video_at_a_stated_length(capsys):
    steps = {(d, f): kind_of("tcaf").typical_steps(get_preset("tcaf", d, f))
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
    def sequence_specs(ta, tv, **kw):
        return _specs(cfg.replace(model__audio_step=6.0 / ta, model__video_step=6.0 / tv), **kw)
    for ta, tv in ((6, 6), (10, 15)):
        flops = forward_flops(model, sequence_specs(ta, tv)[0])
        # the matmuls plus elementwise work (BN, LayerNorm, softmax, GELU: a few percent)
        assert matmuls(ta, tv) <= flops <= 1.15 * matmuls(ta, tv), (ta, tv)
    step = train_step_flops(model, sequence_specs(6, 6, batch_size=4, num_classes=5)[1])
    assert step > 2 * 4 * forward_flops(model, sequence_specs(6, 6)[0])  # fwd + bwd of 4
    assert cli.main(["stats", "--models", "tcaf", "--features", "main_features",
                     "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| tcaf (")]
    assert len(rows) == 3 and "steps a/v" in out
    ucf = next(r for r in rows if "(UCF)" in r).split("|")
    assert ucf[5].strip() == "6/6" and all(float(ucf[i]) > 0 for i in (6, 7, 8))
