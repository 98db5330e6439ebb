"""The options that reproduce the authors' AVCA training (issue 15), one test each:
separate_negative_pass, bn_double_update, stage2_lr, stage2_length (the position-embedding
option is tested in test_avca_model.py)."""
import dataclasses

import keras
import numpy as np
import pytest

from avca_tf.config import ModelConfig, RunConfig, TrainConfig
from avca_tf.data.formats.benchmark import Split, load_benchmark
from avca_tf.errors import ConfigError
from avca_tf.models import build_model, get_preset
from avca_tf.training import protocol
from avca_tf.training.trainer import Trainer

SMALL = ModelConfig(audio_dim=16, video_dim=24, encoder_hidden=32, decoder_hidden=32)
EMB = np.random.default_rng(9).normal(size=(6, 300)).astype("float32")
CFG = TrainConfig(batch_size=16, n_batches=1, seed=0)


def _split(n=120, classes=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % classes
    return Split("stage_1_train", rng.normal(size=(n, 16)).astype("float32"),
                 rng.normal(size=(n, 24)).astype("float32"), labels,
                 np.array([f"v{i}" for i in range(n)], object), np.arange(classes))


def _batch(b=8, seed=1):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.normal(size=s).astype("float32")  # noqa: E731
    return {"audio": f(b, 16), "video": f(b, 24), "text": f(b, 300),
            "neg_audio": f(b, 16), "neg_video": f(b, 24), "neg_text": f(b, 300)}


def test_old_config_json_loads_with_todays_behaviour():
    cfg = RunConfig.from_dict({"model": {"name": "avca"}, "train": {"epochs": 3}})
    assert not cfg.model.separate_negative_pass and not cfg.model.bn_double_update
    assert (cfg.train.stage2_lr, cfg.train.stage2_length) == ("replay", "best")
    with pytest.raises(ConfigError, match="stage2_lr"):
        TrainConfig(stage2_lr="nope").validate()


def test_config_json_from_before_train_precision_keeps_its_arithmetic_and_threads():
    old = RunConfig.from_dict({"train": {"epochs": 3, "mixed_precision": True}}).train
    assert (old.precision, old.intra_op_threads, old.inter_op_threads) == ("mixed", 0, 0)
    new = RunConfig.from_dict({"train": {"epochs": 3}}).train
    assert (new.precision, new.intra_op_threads, new.inter_op_threads) == ("float32", 1, 1)
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8").validate()
    for name in ("intra_op_threads", "inter_op_threads"):
        with pytest.raises(ConfigError, match=name):
            TrainConfig(**{name: -1}).validate()


def test_prepare_process_sets_both_thread_pools_in_a_fresh_process():
    """A run's pools: `avca train`'s defaults (one thread per op, one op at a time) and
    `--inter-op-threads 0` (TF's), applied before the first TF op of a new process."""
    import subprocess
    import sys
    code = ("import sys; from avca_tf.commands.train import add_arguments, build_config; "
            "import argparse; p = argparse.ArgumentParser(); add_arguments(p); "
            "cfg = build_config(p.parse_args(sys.argv[1:])); "
            "from avca_tf.training.trainer import prepare_process; import tensorflow as tf; "
            "print(prepare_process(cfg.train), tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    base = ["--root", "r", "--dataset", "UCF", "--features", "main_features", "--out", "o"]
    for extra, expected in (([], "(1, 1) 1 1"), (["--inter-op-threads", "0"], "(1, 0) 1 0")):
        out = subprocess.run([sys.executable, "-c", code, *base, *extra], capture_output=True,
                             text=True, check=True).stdout
        assert out.strip().splitlines()[-1] == expected, out


@pytest.mark.parametrize("separate", [False, True])
def test_separate_negative_pass_calls_the_transformer_per_token_set(separate):
    keras.utils.set_random_seed(0)
    model = build_model("avca", dataclasses.replace(SMALL, separate_negative_pass=separate))
    rows, attend = [], model._attend
    model._attend = lambda a, v, training: (rows.append(int(a.shape[0])), attend(a, v, training))[1]
    batch = _batch()
    losses = model.compute_losses(batch, training=False)
    assert rows == ([8, 8] if separate else [16])
    # without dropout the two forms compute the same function
    keras.utils.set_random_seed(0)
    other = build_model("avca", dataclasses.replace(SMALL, separate_negative_pass=not separate))
    other.set_weights(model.get_weights())
    ref = other.compute_losses(batch, training=False)
    for key in losses:
        np.testing.assert_allclose(float(losses[key]), float(ref[key]), rtol=1e-5, atol=1e-6)


def _one_step(double):
    keras.utils.set_random_seed(0)
    model = build_model("avca", dataclasses.replace(SMALL, bn_double_update=double))
    Trainer(model, CFG, _split(), EMB).train_epoch(0, verbose=0)
    return model


def test_bn_double_update_moves_only_batch_norm_statistics():
    plain, double = _one_step(False), _one_step(True)
    # the extra forward runs after the update: the trained weights are the same bits
    for a, b in zip(plain.trainable_variables, double.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    stats = lambda m, layer: [v.numpy() for v in getattr(m, layer).non_trainable_variables  # noqa: E731
                              if "moving" in v.path]
    for layer in ("a_enc", "v_enc", "w_proj", "a_proj", "v_proj"):
        assert any(not np.array_equal(x, y) for x, y in zip(stats(plain, layer),
                                                             stats(double, layer))), layer
    for layer in ("decoder", "a_rec", "v_rec"):  # not in the reference's get_embeddings
        for x, y in zip(stats(plain, layer), stats(double, layer)):
            np.testing.assert_array_equal(x, y)


EPOCHS = 4


@pytest.fixture(scope="module")
def runs(toy_root, tmp_path_factory):
    """Four tiny protocol runs with the stage-1 LR halved after every epoch and the best
    epoch forced to 3 (so stage 2 differs between the options)."""
    toy = load_benchmark(toy_root, "Toy", "main_features")
    base = get_preset("avca", "Toy", "main_features", root=str(toy_root))
    base = base.replace(train=dataclasses.replace(
        base.train, epochs=EPOCHS, n_batches=2, batch_size=32, seed=0, lr_patience=0,
        lr_factor=0.5, lr_threshold=1e9))
    out = {}
    mp = pytest.MonkeyPatch()
    mp.setattr(protocol, "best_epoch", lambda history: history[2])
    try:
        for lr_mode, length in (("replay", "best"), ("constant", "best"),
                                ("validation", "best"), ("replay", "all")):
            cfg = base.replace(train__stage2_lr=lr_mode, train__stage2_length=length)
            run_dir = tmp_path_factory.mktemp("runs") / f"{lr_mode}_{length}"
            out[lr_mode, length] = protocol.run_protocol(toy, cfg, str(run_dir), verbose=0)
    finally:
        mp.undo()
    return out


def test_stage2_lr_options(runs):
    default = runs["replay", "best"]
    lrs1 = [e["lr"] for e in default["stage1"]["epochs"]]
    assert lrs1[:3] == [1e-3, 1e-3, 5e-4]  # the plateau cut the LR after epoch 2
    assert [e["lr"] for e in default["stage2"]["epochs"]] == lrs1[:3]
    constant = runs["constant", "best"]["stage2"]["epochs"]
    assert [e["lr"] for e in constant] == [1e-3] * 3
    validation = runs["validation", "best"]["stage2"]["epochs"]
    assert all("HM" in e for e in validation) and "HM" not in default["stage2"]["epochs"][0]
    assert validation[0]["lr"] == validation[1]["lr"] == 1e-3
    assert len(validation) == 3
    assert runs["constant", "best"]["test"] != default["test"]


def test_stage2_length_all_trains_all_epochs_and_tests_the_best_epochs_weights(runs):
    default, every = runs["replay", "best"], runs["replay", "all"]
    assert len(every["stage2"]["epochs"]) == EPOCHS and every["stage2"]["tested_epoch"] == 3
    assert len(default["stage2"]["epochs"]) == 3 and "tested_epoch" not in default["stage2"]
    # epoch k of stage 2 depends on epochs <= k only: the tested model is the same bits
    assert every["stage2"]["epochs"][:3] == default["stage2"]["epochs"]
    assert every["test"] == default["test"]


def test_activitynet_main_preset_defaults_to_bn_double_update():
    """avca.MEASURED_DEFAULTS (measured, docs/training.md): on for ActivityNet main
    only; the command line turns it off again."""
    from avca_tf.commands.train import add_arguments
    from avca_tf.training.presets import RunOverrides, run_config
    import argparse
    assert get_preset("avca", "ActivityNet", "main_features").model.bn_double_update
    for ds, fs in [("ActivityNet", "cls_features"), ("UCF", "main_features"),
                   ("UCF", "cls_features"), ("VGGSound", "main_features")]:
        assert not get_preset("avca", ds, fs).model.bn_double_update
    off = run_config("ActivityNet", "main_features", RunOverrides(bn_double_update=False))
    assert not off.model.bn_double_update
    p = argparse.ArgumentParser()
    add_arguments(p)
    base = ["--dataset", "ActivityNet", "--out", "x"]
    assert p.parse_args(base).bn_double_update is None
    assert p.parse_args(base + ["--no-bn-double-update"]).bn_double_update is False
    assert p.parse_args(base + ["--bn-double-update"]).bn_double_update is True


def test_vggsound_cls_preset_defaults_to_frozen_position_embeddings():
    """avca.MEASURED_DEFAULTS: frozen position embeddings on VGGSound cls only;
    `--no-freeze-position-embeddings` trains them again."""
    from avca_tf.commands.train import add_arguments
    from avca_tf.training.presets import RunOverrides, run_config
    import argparse
    assert get_preset("avca", "VGGSound", "cls_features").model.freeze_position_embeddings
    for ds, fs in [("ActivityNet", "main_features"), ("ActivityNet", "cls_features"),
                   ("UCF", "main_features"), ("UCF", "cls_features"),
                   ("VGGSound", "main_features")]:
        assert not get_preset("avca", ds, fs).model.freeze_position_embeddings
    on = run_config("VGGSound", "cls_features", RunOverrides())
    assert on.model.freeze_position_embeddings
    p = argparse.ArgumentParser()
    add_arguments(p)
    base = ["--dataset", "VGGSound", "--features", "cls_features", "--out", "x"]
    assert p.parse_args(base).freeze_position_embeddings is None
    off = p.parse_args(base + ["--no-freeze-position-embeddings"])
    assert off.freeze_position_embeddings is False
    assert not run_config("VGGSound", "cls_features",
                          RunOverrides(freeze_position_embeddings=False)).model \
        .freeze_position_embeddings


def test_avca_presets_schedule_stage2_on_validation():
    """avca.MEASURED_DEFAULTS_ALL: every AVCA preset schedules stage 2 on the validation
    data, the ablations keep the plain default, `--stage2-lr replay` restores it."""
    from avca_tf.models import avca
    from avca_tf.training.presets import RunOverrides, run_config
    for ds, fs in avca.SCRIPTS:
        assert get_preset("avca", ds, fs).train.stage2_lr == "validation", (ds, fs)
        assert get_preset("avca-audio", ds, fs).train.stage2_lr == "replay", (ds, fs)
    assert run_config("UCF", "main_features", RunOverrides(schedule="toy")).train.stage2_lr \
        == "validation"
    assert run_config("UCF", "main_features",
                      RunOverrides(stage2_lr="replay")).train.stage2_lr == "replay"
