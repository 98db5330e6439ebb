"""TCaF: sequence batching, the model's masking and quirks, presets, and training end to end."""
import dataclasses
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from avca_tf.config import RunConfig
from avca_tf.inputs.sequence_batch import (SequenceSampler, SequenceSpec,
                                         SequenceTable, sequence_batch)
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.data.formats.temporal import TemporalSplit, load_temporal_benchmark
from avca_tf.errors import ConfigError
from avca_tf.inputs import kind_of
from avca_tf.inputs.sequence import SequenceBatching
from avca_tf.models import registry
from avca_tf.models.tcaf import reference_quirks
from avca_tf.training.protocol import run_protocol, stage2_epochs

# trainable parameters counted from the authors' code (docs/tcaf.md)
EXPECTED_PARAMS = {("UCF", "cls_features"): 7.27e6, ("ActivityNet", "cls_features"): 7.27e6,
                   ("VGGSound", "cls_features"): 8.66e6, ("UCF", "main_features"): 4.52e6,
                   ("ActivityNet", "main_features"): 5.16e6,
                   ("VGGSound", "main_features"): 8.85e6}


@pytest.fixture(scope="module")
def temporal_root(tmp_path_factory, real_splits):
    root = tmp_path_factory.mktemp("tcaf_ucf")
    synthesize(root, dataset="UCF", feature_set="main_features", splits=real_splits,
               seed=0, scale=0.05, temporal=True)
    return root


def tiny(cfg: RunConfig, root) -> RunConfig:
    """The UCF main preset shrunk to run in seconds (structure unchanged)."""
    return cfg.replace(
        data__root=str(root), model__encoder_hidden=32, model__decoder_hidden=32, model__depth=1,
        model__heads=2, model__head_dim=16, model__mlp_dim=16, train__epochs=2,
        train__n_batches=3, train__batch_size=8, train__eval_batch_size=16)


def _split(lengths_a, lengths_v, da=3, dv=2):
    a = np.concatenate([np.full((n, da), i + 1, np.float32) * np.arange(1, n + 1)[:, None]
                        for i, n in enumerate(lengths_a)])
    v = np.concatenate([np.full((n, dv), -(i + 1), np.float32) * np.arange(1, n + 1)[:, None]
                        for i, n in enumerate(lengths_v)])
    n = len(lengths_a)
    return TemporalSplit("s", a, np.array(lengths_a, np.int64), v, np.array(lengths_v, np.int64),
                         np.arange(n, dtype=np.int64) % 2, np.array([f"v{i}" for i in range(n)],
                                                                   dtype=object),
                         np.array([0, 1], np.int64))


def test_max_mode_pads_to_batch_maximum():
    split = _split([2, 5, 3], [4, 1, 6])
    spec = SequenceSpec("max", audio_step=0.96, video_step=0.64)
    b = sequence_batch(spec, SequenceTable(split).data, tf.constant([2, 0], tf.int64), False)
    assert b["audio"].shape == (2, 3, 3) and b["video"].shape == (2, 6, 2)
    np.testing.assert_array_equal(b["audio_mask"].numpy(), [[1, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(b["audio"].numpy()[0], split.sequences(2)[0])
    np.testing.assert_array_equal(b["video"].numpy()[1, :4], split.sequences(0)[1])
    assert np.all(b["video"].numpy()[1, 4:] == 0)
    np.testing.assert_allclose(b["video_time"].numpy()[1], np.arange(6) * 0.64, rtol=1e-6)
    np.testing.assert_allclose(b["audio_time"].numpy()[0], np.arange(3) * 0.96, rtol=1e-6)


def test_fixed_mode_windows():
    cls = SequenceSpec("fixed", 60, 300, "matched", 0.96, 0.64)
    assert cls.window(True) == (40, 60) and cls.window(False) == (200, 300)
    ref = dataclasses.replace(cls, audio_window="reference")
    assert ref.window(True) == (37, 60) and ref.window(False) == (184, 300)
    spec = SequenceSpec("fixed", 4, 6, "matched", 1.0, 1.0)
    split = _split([10, 3], [10, 3])
    data = SequenceTable(split).data
    test = sequence_batch(spec, data, tf.constant([0, 1], tf.int64), False)
    # centre: start (10 - 6) // 2 = 2 for both modalities; the short video is padded
    np.testing.assert_array_equal(test["video"].numpy()[0], split.sequences(0)[1][2:8])
    np.testing.assert_array_equal(test["audio"].numpy()[0], split.sequences(0)[0][2:8])
    np.testing.assert_array_equal(test["video_mask"].numpy()[1], [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(test["video_time"].numpy()[0], np.arange(6))  # not offset
    starts = set()
    for u in np.linspace(0, 0.999, 12):
        tr = sequence_batch(spec, data, tf.constant([0], tf.int64), True,
                            u=tf.constant([u], tf.float64))
        v = tr["video"].numpy()[0]
        start = int(round(-v[0, 0])) - 1
        np.testing.assert_array_equal(v, split.sequences(0)[1][start:start + 4])
        np.testing.assert_array_equal(tr["audio"].numpy()[0], split.sequences(0)[0][start:start + 4])
        starts.add(start)
    assert starts == set(range(6))  # random start in [0, 10 - 4)


def test_sampler_deterministic_and_class_table(temporal_root):
    bench = load_temporal_benchmark(temporal_root, "UCF", "main_features")
    train = bench.protocol(1).train
    draw = lambda seed: SequenceSampler(train.labels, 8, 2, seed).batch_indices(1, 1)  # noqa: E731
    a, b, c = draw(3), draw(3), draw(4)
    for key in ("index", "window_u"):
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
    assert not np.array_equal(a["window_u"].numpy(), c["window_u"].numpy())
    source = SequenceBatching(SequenceSpec("max")).training_input(
        train, bench.label_embeddings, True)
    batch = source.gather(a, *source.tensors)
    classes = np.unique(train.labels)
    np.testing.assert_array_equal(classes[batch["class_index"].numpy()], batch["label"].numpy())
    np.testing.assert_array_equal(batch["class_text"].numpy(), bench.label_embeddings[classes])


@pytest.mark.parametrize("dataset, feature_set", sorted(EXPECTED_PARAMS))
def test_preset_parameter_counts(dataset, feature_set):
    cfg = registry.get_preset("tcaf", dataset, feature_set)
    keras.utils.set_random_seed(0)
    model = registry.build_model("tcaf", cfg.model, cfg.loss)
    n = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert abs(n - EXPECTED_PARAMS[(dataset, feature_set)]) / n < 0.005, n
    assert cfg.data.temporal and cfg.data.sequence_mode == (
        "fixed" if dataset == "ActivityNet" else "max")
    keras.backend.clear_session()


def _small_model(**changes):
    cfg = registry.get_preset("tcaf", "UCF", "cls_features")
    model_cfg = dataclasses.replace(cfg.model, encoder_hidden=16, depth=2, heads=2, head_dim=8,
                                    mlp_dim=8, **changes)
    keras.utils.set_random_seed(1)
    return registry.build_model("tcaf", model_cfg)


def test_padding_and_masked_steps_do_not_change_scores():
    model = _small_model()
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (1, 4, 128)).astype(np.float32)
    v = rng.standard_normal((1, 3, 4096)).astype(np.float32)
    alone = model.embed(a, v).numpy()
    pa = np.concatenate([a, rng.uniform(0, 255, (1, 5, 128)).astype(np.float32)], 1)
    pv = np.concatenate([v, rng.standard_normal((1, 2, 4096)).astype(np.float32)], 1)
    am = np.r_[np.ones(4), np.zeros(5)][None].astype(np.float32)
    vm = np.r_[np.ones(3), np.zeros(2)][None].astype(np.float32)
    other_a = rng.uniform(0, 255, (1, 9, 128)).astype(np.float32)
    other_v = rng.standard_normal((1, 5, 4096)).astype(np.float32)
    batch = model.embed(np.concatenate([pa, other_a]), np.concatenate([pv, other_v]),
                        audio_mask=np.concatenate([am, np.ones_like(am)]),
                        video_mask=np.concatenate([vm, np.ones_like(vm)])).numpy()
    np.testing.assert_allclose(batch[0], alone[0], atol=2e-5)
    assert not np.allclose(batch[1], alone[0], atol=1e-3)


def test_cross_modal_attention_mask():
    model = _small_model()
    am = tf.constant([[1.0, 1.0, 0.0]])
    vm = tf.constant([[1.0, 0.0]])
    _, allowed = model.tokenizer(tf.zeros((1, 3, 300)), tf.zeros((1, 3)), am,
                                 tf.zeros((1, 2, 300)), tf.zeros((1, 2)), vm)
    expected = np.array([  # tokens: cls, a0, a1, a2(pad), v0, v1(pad)
        [1, 1, 1, 0, 1, 0],
        [1, 0, 0, 0, 1, 0],
        [1, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(allowed.numpy()[0], expected)


def test_quirk_options_change_what_they_say():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 255, (2, 4, 128)).astype(np.float32)
    v = rng.standard_normal((2, 6, 4096)).astype(np.float32)
    base = _small_model()
    for changes in ({"video_norm": "time"}, {"eval_positions": "steps"}):
        quirk = _small_model(**changes)  # same seed: same weights
        for x, y in zip(base.get_weights(), quirk.get_weights()):
            np.testing.assert_array_equal(x, y)
        assert not np.allclose(base.embed(a, v).numpy(), quirk.embed(a, v).numpy(), atol=1e-4)
    # steps vs seconds is the same for SeLaVi (1 s per step)
    steps = _small_model(eval_positions="steps", audio_step=1.0, video_step=1.0)
    secs = _small_model(audio_step=1.0, video_step=1.0)
    np.testing.assert_array_equal(steps.embed(a, v).numpy(), secs.embed(a, v).numpy())
    with pytest.raises(ConfigError, match="video_norm"):
        _small_model(video_norm="channels")
    ref = reference_quirks(registry.get_preset("tcaf", "UCF", "cls_features"))
    assert (ref.model.video_norm, ref.model.eval_positions, ref.model.bn_double_update,
            ref.train.stage2_all_epochs_when_best_first, ref.data.audio_window) == (
        "time", "steps", True, True, "reference")


def test_training_is_repeatable_bit_for_bit(temporal_root, tmp_path):
    bench = load_temporal_benchmark(temporal_root, "UCF", "main_features")
    cfg = tiny(registry.get_preset("tcaf", "UCF", "main_features"), temporal_root).replace(
        train__epochs=1, train__n_batches=2)
    r1 = run_protocol(bench, cfg, str(tmp_path / "r1"), verbose=0)
    run_protocol(bench, cfg, str(tmp_path / "r2"), verbose=0)
    b1 = (tmp_path / "r1" / "results.json").read_bytes()
    assert b1 == (tmp_path / "r2" / "results.json").read_bytes()
    assert r1["model"] == "tcaf" and len(r1["stage2"]["epochs"]) == 1
    losses = r1["stage1"]["epochs"][0]["loss"]
    assert set(losses) == {"total", "cross_entropy", "regression", "reconstruction"}
    assert np.isfinite(losses["total"])
    ev = _cli("evaluate", str(tmp_path / "r1"))  # rebuilt from config.json, padded batches
    assert "matches results.json" in ev.stdout


def test_stage2_epochs_quirk():
    cfg = registry.get_preset("tcaf", "UCF", "main_features").train
    assert [stage2_epochs(b, cfg) for b in (1, 2, 7)] == [1, 2, 7]
    quirk = dataclasses.replace(cfg, stage2_all_epochs_when_best_first=True)
    assert [stage2_epochs(b, quirk) for b in (1, 2, 7)] == [50, 2, 7]


def test_pad_multiple_buckets_training_batches_only():
    split = _split([2, 5, 3], [4, 1, 6])
    data, rows = SequenceTable(split).data, tf.constant([2, 0], tf.int64)
    plain = sequence_batch(SequenceSpec("max"), data, rows, True)
    bucket = sequence_batch(SequenceSpec("max", pad_multiple=4), data, rows, True)
    assert bucket["audio"].shape == (2, 4, 3) and bucket["video"].shape == (2, 8, 2)
    for m in ("audio", "video"):
        t = plain[m].shape[1]
        np.testing.assert_array_equal(bucket[m].numpy()[:, :t], plain[m].numpy())
        np.testing.assert_array_equal(bucket[m + "_mask"].numpy()[:, :t],
                                      plain[m + "_mask"].numpy())
        assert not bucket[m].numpy()[:, t:].any() and not bucket[m + "_mask"].numpy()[:, t:].any()
    # evaluation batches keep the batch maximum
    ev = sequence_batch(SequenceSpec("max", pad_multiple=4), data, rows, False)
    assert ev["audio"].shape == (2, 3, 3) and ev["video"].shape == (2, 6, 2)
    with pytest.raises(ConfigError, match="pad_multiple"):
        SequenceSpec("max", pad_multiple=0)


def test_xla_step_with_length_buckets(temporal_root):
    """--jit-compile for a sequence model: batches padded outside XLA to multiples of 8,
    the update compiled per padded shape; the losses are the plain step's (float rounding)."""
    from avca_tf.training.trainer import Trainer
    bench = load_temporal_benchmark(temporal_root, "UCF", "main_features")
    cfg = tiny(registry.get_preset("tcaf", "UCF", "main_features"), temporal_root).replace(
        data__pad_multiple=8, model__dropout_encoder=0.0, model__dropout_decoder=0.0,
        model__dropout_additional=0.0, model__dropout_transformer=0.0,
        model__dropout_position=0.0)  # no random draws: XLA and TF draw differently
    batching = kind_of("tcaf").batching(cfg, bench)
    assert batching.spec.pad_multiple == 8
    losses = []
    for jit in (False, True):
        c = cfg.replace(train__jit_compile=jit)
        keras.utils.set_random_seed(0)
        model = registry.build_model("tcaf", c.model, c.loss)
        trainer = Trainer(model, c.train, bench.protocol(1).train, bench.label_embeddings,
                          batching=batching)
        losses.append([float(trainer.train_step(trainer.sampler.batch_indices(0, i))["total"])
                       for i in range(3)])
    np.testing.assert_allclose(losses[1], losses[0], rtol=2e-3)


def test_stage2_quirk_tests_the_best_epochs_stage2_checkpoint(temporal_root, tmp_path,
                                                              monkeypatch):
    """With the quirk and best stage-1 epoch 1, stage 2 trains all epochs but, as the
    authors' get_evaluation, the model tested is the stage-2 checkpoint of epoch 1."""
    from avca_tf.training import protocol
    bench = load_temporal_benchmark(temporal_root, "UCF", "main_features")
    cfg = tiny(registry.get_preset("tcaf", "UCF", "main_features"), temporal_root).replace(
        train__epochs=2, train__n_batches=2)
    monkeypatch.setattr(protocol, "best_epoch", lambda history: history[0])  # best = epoch 1
    plain = run_protocol(bench, cfg, str(tmp_path / "plain"), verbose=0)
    quirk = run_protocol(bench, cfg.replace(train__stage2_all_epochs_when_best_first=True),
                         str(tmp_path / "quirk"), verbose=0)
    assert plain["stage1"]["best_epoch"] == quirk["stage1"]["best_epoch"] == 1
    assert len(plain["stage2"]["epochs"]) == 1 and "tested_epoch" not in plain["stage2"]
    assert len(quirk["stage2"]["epochs"]) == 2 and quirk["stage2"]["tested_epoch"] == 1
    assert quirk["stage2"]["epochs"][:1] == plain["stage2"]["epochs"]
    assert quirk["test"] == plain["test"]  # the same weights, bit for bit
    import h5py
    weights = [h5py.File(tmp_path / r / "model" / "model.weights.h5") for r in ("plain", "quirk")]
    names = []
    weights[0].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    assert names and all(np.array_equal(weights[0][n][()], weights[1][n][()]) for n in names)


def test_bn_double_update_moves_statistics_twice(temporal_root):
    from avca_tf.training.trainer import Trainer
    bench = load_temporal_benchmark(temporal_root, "UCF", "main_features")
    cfg = tiny(registry.get_preset("tcaf", "UCF", "main_features"), temporal_root)
    means = []
    for double in (False, True):
        c = cfg.replace(model__bn_double_update=double)
        keras.utils.set_random_seed(0)
        model = registry.build_model("tcaf", c.model)
        trainer = Trainer(model, c.train, bench.protocol(1).train, bench.label_embeddings,
                          batching=kind_of("tcaf").batching(c, bench))
        trainer._step(trainer.sampler.batch_indices(0, 0), *trainer._data)  # eager: no tracing
        means.append(model.projection.w_proj.blocks[0].bn.moving_mean.numpy().copy())
    # W_proj's BN sees the batch text and the class table once per forward; twice with the quirk
    assert not np.array_equal(means[0], means[1])


def _cli(*args, check=True):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-m", "avca_tf.cli", *args], capture_output=True,
                         text=True, env=env)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_cli_train_config_and_errors(temporal_root, tmp_path):
    from avca_tf.cli import build_parser
    from avca_tf.commands.train import build_config
    from avca_tf.training.protocol import load_data
    argv = ["train", "--root", str(temporal_root), "--dataset", "UCF", "--model", "tcaf",
            "--quick", "--out", str(tmp_path / "run")]
    args = build_parser(argv).parse_args(argv)
    cfg = build_config(args)
    assert cfg.data.temporal and cfg.model.name == "tcaf" and cfg.train.n_batches == 5
    assert cfg.model.depth == 5 and cfg.train.lr == 5e-5 and cfg.train.batch_size == 64
    assert isinstance(load_data(cfg).splits["stage_1_train"], TemporalSplit)
    bad = _cli("train", "--root", str(temporal_root), "--dataset", "UCF", "--model", "avca",
               "--temporal", "--quick", "--out", str(tmp_path / "bad"), check=False)
    assert bad.returncode == 2 and "error: " in bad.stderr and "drop --temporal" in bad.stderr
    assert not (tmp_path / "bad").exists()
