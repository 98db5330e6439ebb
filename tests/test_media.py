"""Media decoding, the shared preprocessing and the media toy (avca_tf/media/)."""
import hashlib
import re

import numpy as np
import pytest
import tensorflow as tf

from avca_tf.media.decode import MediaError, decode_clip
from avca_tf.media.preprocess import (FrameTransform, MediaSpec, pool_frames, preprocess_clip,
                                      quantize_pcm16, resample)
from avca_tf.media.write import write_clip

RATE = 16000


def _tone(seconds, rate=RATE, f=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _flat_frames(n, size=32):
    """Frame k is one flat grey level 12 * k (readable back after lossy coding)."""
    return np.stack([np.full((size, size, 3), 12 * k, np.uint8) for k in range(n)])


def _level(frame):
    return int(round(float(frame.mean()) / 12))


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mkv", ".avi"])
def test_decode_samples_frames_at_fixed_times(tmp_path, suffix):
    path = write_clip(tmp_path / f"c{suffix}", _flat_frames(20), _tone(2.5), fps=8)
    clip = decode_clip(path, MediaSpec(frames_per_window=4))
    assert clip.n_windows == 2 and clip.frames.shape == (8, 32, 32, 3)
    # frame k of window w at (w + (k + .5) / 4) s: 8 fps shows frame floor(8 t)
    want = [int(8 * (w + (k + 0.5) / 4)) for w in range(2) for k in range(4)]
    assert [_level(f) for f in clip.frames] == want
    assert len(clip.audio) == 2 * clip.sample_rate


def test_variable_frame_rate_is_sampled_by_time(tmp_path):
    times = [0.0, 0.1, 0.15, 0.6, 0.7, 1.05, 1.1, 1.2, 1.9, 2.05]
    path = write_clip(tmp_path / "vfr.mp4", _flat_frames(10), _tone(2.2), frame_times=times)
    clip = decode_clip(path, MediaSpec(frames_per_window=4))
    sample_times = [w + (k + 0.5) / 4 for w in range(2) for k in range(4)]
    want = [max(i for i, t in enumerate(times) if t <= s) for s in sample_times]
    assert [_level(f) for f in clip.frames] == want


def test_bad_media_files_are_named_errors(tmp_path):
    ok_frames, ok_audio = _flat_frames(16), _tone(2.0)
    cases = {
        "corrupt.mp4": lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)),
        "empty.mp4": lambda p: p.write_bytes(b""),
        "noaudio.mp4": lambda p: write_clip(p, ok_frames, None),
        "novideo.mp4": lambda p: write_clip(p, None, ok_audio),
        "oneframe.mp4": lambda p: write_clip(p, ok_frames[:1], ok_audio),
        "short.mp4": lambda p: write_clip(p, ok_frames[:5], _tone(0.6)),
        "truncated.mp4": lambda p: p.write_bytes(
            open(write_clip(tmp_path / "full.mp4", ok_frames, ok_audio), "rb").read()[:1500]),
    }
    expected = {"corrupt.mp4": "not a readable media file", "empty.mp4": "not a readable",
                "noaudio.mp4": "no audio stream", "novideo.mp4": "no video stream",
                "oneframe.mp4": "1 frame(s)", "short.mp4": "expected at least one 1 s window",
                "truncated.mp4": "truncated.mp4: "}
    for name, make in cases.items():
        make(tmp_path / name)
        with pytest.raises(MediaError, match=re.escape(expected[name])) as e:
            decode_clip(str(tmp_path / name))
        assert str(tmp_path / name) in str(e.value)
    with pytest.raises(MediaError, match="no such file"):
        decode_clip(str(tmp_path / "missing.mp4"))
    write_clip(tmp_path / "big.mp4", _flat_frames(16, size=64), ok_audio)
    with pytest.raises(MediaError, match="resolution 64x64 is above the limit of 1024"):
        decode_clip(str(tmp_path / "big.mp4"), MediaSpec(max_pixels=32 * 32))


def test_pcm16_quantisation_matches_wav_decoding():
    from avca_tf.media.write import wav_bytes
    x = np.random.default_rng(0).uniform(-1.1, 1.1, 4000).astype(np.float32)
    decoded = tf.audio.decode_wav(wav_bytes(x, RATE))
    assert int(decoded.sample_rate) == RATE
    q = quantize_pcm16(x).numpy()
    np.testing.assert_array_equal(decoded.audio[:, 0].numpy(), q)
    np.testing.assert_array_equal(quantize_pcm16(q).numpy(), q)  # idempotent


@pytest.mark.parametrize("rate", [16000, 44100, 48000, 8000])
def test_resample_keeps_a_tone(rate):
    x = _tone(1.0, rate, f=1000.0)
    y = resample(x, rate, RATE).numpy()
    assert len(y) == RATE
    if rate == RATE:
        np.testing.assert_array_equal(y, x)
    want = _tone(1.0, RATE, f=1000.0)
    np.testing.assert_allclose(y[200:-200], want[200:-200], atol=3e-3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample rate not supported"):
        resample(x, 12345, RATE)


def test_preprocess_clip_windows_resizes_and_normalises():
    transform = FrameTransform(image_size=(16, 16), scale=(2 / 255.0,) * 3, offset=(-1.0,) * 3)
    spec = MediaSpec(frames_per_window=4)
    frames = np.zeros((10, 24, 40, 3), np.uint8)
    frames[:, :, 8:32] = 255  # the centre square the crop keeps
    images, audio, n = preprocess_clip(frames, _tone(3.0, 48000), 48000, spec, transform, RATE)
    assert int(n) == 2  # 10 frames: 2 whole windows of 4 (audio has 3)
    assert images.shape == (8, 16, 16, 3) and audio.shape == (2, RATE)
    np.testing.assert_allclose(images.numpy(), 1.0)
    emb = tf.reshape(tf.range(8 * 3, dtype=tf.float32), [8, 3])
    np.testing.assert_allclose(pool_frames(emb, 4).numpy(),
                               [[4.5, 5.5, 6.5], [16.5, 17.5, 18.5]])


def test_media_toy_is_deterministic_and_class_driven(tmp_path):
    from avca_tf.data.formats.benchmark import Layout, read_name_list
    from avca_tf.media.toy import synthesize_media
    a = synthesize_media(tmp_path / "a", seed=3, scale=0.3, with_encoders=False)
    b = synthesize_media(tmp_path / "b", seed=3, scale=0.3, with_encoders=False)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert hashlib.sha256((a / rel).read_bytes()).digest() == \
            hashlib.sha256((b / rel).read_bytes()).digest(), rel
    layout = Layout(tmp_path / "a", "Toy", "main_features")
    for stage in ("stage_1_train", "stage_2_test_unseen"):
        for name in read_name_list(layout.stage_txt(stage)):
            clips = sorted((a / "videos" / name).glob("*.mp4"))
            assert clips, name
    # clips of one class look alike, clips of two classes do not
    classes = sorted((a / "videos").iterdir())[:2]
    means = [[decode_clip(str(c)).frames.mean(axis=(0, 1, 2)) for c in sorted(d.glob("*.mp4"))]
             for d in classes]
    within = max(np.abs(m[0] - m[-1]).max() for m in means)
    between = np.abs(means[0][0] - means[1][0]).max()
    assert between > 2 * within, (within, between)
