"""`avca ingest --temporal`: per-step sequences -> TFRecords (real Beam DirectRunner jobs),
read back bit for bit, and `avca train --tfrecords` for TCaF equal to training from pickles."""
import json
import shutil

import numpy as np
import pytest

from avca_tf import cli
from avca_tf.data.formats.pickle_features import read_class_pickle, write_class_pickle
from avca_tf.inputs.sequence_batch import SequenceSampler
from avca_tf.inputs import kind_of
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.data.formats.temporal import (TEMPORAL_STAGES, TemporalLayout, TemporalSplit,
                                   load_temporal_benchmark)
from avca_tf.data.formats.tfrecord_input import load_benchmark_from_tfrecords
from avca_tf.errors import BenchmarkError, ConfigError
from avca_tf.models import registry
from avca_tf.training.protocol import load_data, run_protocol

FIELDS = ("audio", "audio_lengths", "video", "video_lengths", "labels", "video_ids", "class_ids")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf_temporal")
    synthesize(root, dataset="UCF", feature_set="main_features", seed=1, scale=0.05,
               temporal=True)
    out = root / "tfrec"
    assert cli.main(["ingest", "--root", str(root), "--dataset", "UCF", "--features",
                     "main_features", "--temporal", "--out", str(out), "--",
                     "--runner=DirectRunner"]) == 0
    return root, out


def test_round_trip_equals_temporal_reader_bit_for_bit(ingested):
    root, out = ingested
    ref = load_temporal_benchmark(root, "UCF", "main_features")
    got = load_benchmark_from_tfrecords(str(out))
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["temporal"] == {"audio_step": 1.0, "video_step": 1.0}
    assert list(meta["stages"]) == list(TEMPORAL_STAGES) == list(got.splits)
    assert type(got) is type(ref) and (got.audio_step, got.video_step) == (1.0, 1.0)
    assert got.class_names == ref.class_names
    assert np.array_equal(got.label_embeddings, ref.label_embeddings)
    for stage in TEMPORAL_STAGES:
        a, b = ref.splits[stage], got.splits[stage]
        assert isinstance(b, TemporalSplit) and len(b) == meta["stages"][stage]["count"] > 0
        for f in FIELDS:
            x, y = getattr(a, f), getattr(b, f)
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), (stage, f)
    # the training batches a sequence model draws are the same tensors
    cfg = registry.get_preset("tcaf", "UCF", "main_features").replace(train__batch_size=8)
    batches = []
    for bench in (ref, got):
        split = bench.protocol(1).train
        sampler = SequenceSampler(split.labels, 8, 3, seed=5)
        source = kind_of("tcaf").batching(cfg, bench).training_input(
            split, bench.label_embeddings, True)
        batches.append(source.gather(sampler.batch_indices(0, 1), *source.tensors))
    for k in batches[0]:
        assert np.array_equal(batches[0][k].numpy(), batches[1][k].numpy()), k


def test_train_from_tfrecords_gives_the_same_results(ingested, tmp_path):
    root, out = ingested
    cfg = registry.get_preset("tcaf", "UCF", "main_features").replace(
        data__root=str(root), model__encoder_hidden=32, model__decoder_hidden=32, model__depth=1,
        model__heads=2, model__head_dim=16, model__mlp_dim=16, train__epochs=1,
        train__n_batches=2, train__batch_size=8, train__eval_batch_size=16)
    from_tfrec = cfg.replace(data__tfrecords=str(out), data__root="")
    run_protocol(load_data(cfg), cfg, str(tmp_path / "pkl"), verbose=0)
    run_protocol(load_data(from_tfrec), from_tfrec, str(tmp_path / "tfrec"), verbose=0)
    assert ((tmp_path / "pkl" / "results.json").read_bytes()
            == (tmp_path / "tfrec" / "results.json").read_bytes())
    # per-step TFRecords for a model of averaged features are refused, naming the fix
    with pytest.raises(ConfigError, match="per-step sequences.*use a model that reads sequences"):
        load_data(from_tfrec.replace(model__name="avca", data__temporal=False))


@pytest.mark.parametrize("damage", ["mismatch", "nan"])
def test_bad_pickles_fail_with_the_readers_error(ingested, tmp_path, capsys, damage):
    root, _ = ingested
    bad = tmp_path / "root"
    shutil.copytree(root / "UCF", bad / "UCF")
    layout = TemporalLayout(bad, "UCF", "main_features")
    path = sorted(layout.stage_dir("video", "stage_1_train").glob("*.pkl"))[0]
    names, feats = read_class_pickle(path, "video")
    if damage == "mismatch":
        names[0] = "v_renamed"
    else:
        feats[-1][0, 3] = np.nan
    write_class_pickle(path, names, feats)
    with pytest.raises(BenchmarkError) as reader_error:
        load_temporal_benchmark(bad, "UCF", "main_features")
    out = tmp_path / "tfrec"
    assert cli.main(["ingest", "--root", str(bad), "--dataset", "UCF", "--features",
                     "main_features", "--temporal", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 1 invalid row(s) in 1 file(s); nothing was written")
    assert str(reader_error.value) in err and path.name in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "tfrec" in p.name]


@pytest.mark.parametrize("mode", ["max", "fixed"])
def test_streamed_batches_equal_in_memory_batches(ingested, mode):
    """Class-aware batches read record by record from the index are the in-memory ones."""
    import tensorflow as tf

    from avca_tf.data.formats.record_index import StreamedSplit
    from avca_tf.inputs.sequence_batch import SequenceSpec
    from avca_tf.inputs.sequence import SequenceBatching
    from avca_tf.training.trainer import DistanceFn
    _, out = ingested
    mem = load_benchmark_from_tfrecords(str(out))
    streamed = load_benchmark_from_tfrecords(str(out), stream=True)
    batching = SequenceBatching(SequenceSpec(mode=mode, train_video_steps=3, test_video_steps=4))
    for stage in (1, 2):
        a, b = mem.protocol(stage).train, streamed.protocol(stage).train
        assert isinstance(b, StreamedSplit) and not hasattr(b, "audio")
        for f in ("audio_lengths", "video_lengths", "labels", "video_ids"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), f
        s_in = batching.training_input(b, streamed.label_embeddings, True)
        m_in = batching.training_input(a, mem.label_embeddings, True)
        assert s_in.streams and not m_in.streams
        m_sampler = m_in.sampler(a.labels, 8, 3, seed=5)
        s_sampler = s_in.sampler(b.labels, 8, 3, 5)
        for epoch in (0, 2):
            for m_ind, s_ind in zip(m_sampler.epoch_dataset(epoch), s_sampler.epoch_dataset(epoch)):
                x = m_in.gather(m_ind, *m_in.tensors)
                y = tf.function(s_in.gather, reduce_retracing=True)(s_ind, *s_in.tensors)
                assert set(x) == set(y)
                for k in x:
                    assert x[k].dtype == y[k].dtype and np.array_equal(x[k].numpy(),
                                                                       y[k].numpy()), (stage, k)
    # evaluation batches too: the distances of a model are the same
    cfg = registry.get_preset("tcaf", "UCF", "main_features").replace(
        model__encoder_hidden=16, model__decoder_hidden=16, model__depth=1, model__heads=2,
        model__head_dim=8, model__mlp_dim=8)
    model = registry.build_model("tcaf", cfg.model, cfg.loss)
    fn = DistanceFn(model, 16, batching)
    d = [fn(bench.protocol(2).eval_split(), bench.label_embeddings) for bench in (mem, streamed)]
    assert np.array_equal(d[0], d[1])


def test_streaming_reads_a_bounded_part_and_names_bad_shards(ingested, tmp_path, capsys):
    _, out = ingested
    bad = tmp_path / "tfrec"
    shutil.copytree(out, bad)
    shard = sorted((bad / "stage_1_train").glob("part-*.tfrecord"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[:len(data) - 7])  # the last record is cut
    from avca_tf.data.formats.record_index import scan_offsets
    with pytest.raises(BenchmarkError, match=f"{shard.name}: record .* runs past the end"):
        scan_offsets(str(shard))
    run = tmp_path / "run"
    assert cli.main(["train", "--tfrecords", str(bad), "--dataset", "UCF", "--features",
                     "main_features", "--model", "tcaf", "--quick", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(shard) in err and "ingest again" in err
    assert not (run / "results.json").exists()
