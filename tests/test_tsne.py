"""`avca tsne`: the three-panel figure from a finished run's test split."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from avca_tf import cli
from avca_tf.training import presets
from avca_tf.data.formats.benchmark import load_benchmark
from avca_tf.models import get_preset
from avca_tf.evaluation.plots import tsne_figure
from avca_tf.training.protocol import load_run, run_protocol

SEEN = "baby crawling,basketball dunk,bowling"     # the seed's UCF figure
UNSEEN = "band marching,playing flute"


@pytest.fixture(scope="module")
def finished_run(ucf_main_root, tmp_path_factory):
    bench = load_benchmark(ucf_main_root, "UCF", "main_features")
    cfg = presets.quick(get_preset("ale", "UCF", "main_features", str(ucf_main_root)))
    run_dir = tmp_path_factory.mktemp("tsne") / "run"
    run_protocol(bench, cfg, str(run_dir), verbose=0)
    return run_dir


def test_tsne_writes_a_three_panel_png(finished_run, tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert cli.main(["tsne", str(finished_run), "--seen", SEEN, "--unseen", UNSEEN,
                     "--out", str(out)]) == 0
    image = mpimg.imread(out)
    assert image.shape[1] > 2.5 * image.shape[0]             # three panels side by side
    assert "5 classes" in capsys.readouterr().out


def test_tsne_figure_panels_crosses_and_legend(finished_run, tmp_path):
    run = load_run(str(finished_run))
    bench = load_benchmark(run.run_config.data.root, "UCF", "main_features")
    test = bench.protocol(2)
    seen_id, unseen_id = int(run.seen_ids[0]), int(run.unseen_ids[0])
    pick = [(test.eval_seen, seen_id), (test.eval_unseen, unseen_id)]
    audio = np.concatenate([s.audio[s.labels == c] for s, c in pick])
    video = np.concatenate([s.video[s.labels == c] for s, c in pick])
    labels = np.concatenate([s.labels[s.labels == c] for s, c in pick])
    ids = np.array([seen_id, unseen_id])
    fig = tsne_figure(run.model, audio, video, labels, run.label_embeddings[ids], ids,
                      run.class_names, run.seen_ids, str(tmp_path / "f.png"))
    assert [ax.get_title()[:3] for ax in fig.axes] == ["(a)", "(b)", "(c)"]
    assert len(fig.axes[2].collections) == 2 + 2             # samples of 2 classes + 2 crosses
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert f"{run.class_names[seen_id]} (seen)" in legend
    assert f"{run.class_names[unseen_id]} (unseen)" in legend


def test_tsne_rejects_unknown_or_misplaced_classes(finished_run, tmp_path, capsys):
    out = tmp_path / "bad.png"
    assert cli.main(["tsne", str(finished_run), "--seen", "no such class", "--unseen", UNSEEN,
                     "--out", str(out)]) == 2
    assert "no class named 'no such class'" in capsys.readouterr().err
    assert cli.main(["tsne", str(finished_run), "--seen", UNSEEN, "--unseen", UNSEEN,
                     "--out", str(out)]) == 2
    assert "is not a seen test class" in capsys.readouterr().err
    assert not out.exists()
