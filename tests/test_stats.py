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
