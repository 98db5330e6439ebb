"""Writing small media files with PyAV (the media toy, test clips, client helpers).

`write_clip` muxes RGB frames and/or mono float audio into one container; either
stream may be left out, and `frame_times` gives frames explicit presentation
times (a variable frame rate). Same arguments, same bytes.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Optional, Sequence

import numpy as np

# Container suffix -> (video codec, audio codec)
CODECS = {".mp4": ("mpeg4", "aac"), ".mkv": ("mpeg4", "aac"), ".avi": ("mpeg4", "pcm_s16le"),
          ".webm": ("libvpx", "libopus"), ".mov": ("mpeg4", "aac")}


def write_clip(path, frames: Optional[np.ndarray], audio: Optional[np.ndarray], fps: int = 8,
               sample_rate: int = 16000, frame_times: Optional[Sequence[float]] = None,
               bit_rate: int = 400_000) -> str:
    """Writes `path` (suffix picks the container and codecs, see CODECS).

    frames: uint8 [N, H, W, 3] or None (no video stream); audio: float [T] in
    [-1, 1] or None (no audio stream); frame_times: seconds per frame (default
    k / fps).
    """
    import av
    path = str(path)
    suffix = path[path.rfind("."):].lower()
    vcodec, acodec = CODECS.get(suffix, CODECS[".mp4"])
    container = av.open(path, "w")
    try:
        vs = as_ = None
        if frames is not None:
            vs = container.add_stream(vcodec, rate=fps)
            vs.width, vs.height = int(frames.shape[2]), int(frames.shape[1])
            vs.pix_fmt = "yuv420p"
            vs.bit_rate = bit_rate
            vs.codec_context.thread_count = 1
            if frame_times is not None:
                vs.codec_context.time_base = Fraction(1, 1000)
        if audio is not None:
            as_ = container.add_stream(acodec, rate=sample_rate)
            as_.layout = "mono"
            as_.codec_context.thread_count = 1
        if vs is not None:
            for k, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                if frame_times is not None:
                    frame.pts = int(round(frame_times[k] * 1000))
                    frame.time_base = Fraction(1, 1000)
                else:
                    frame.pts = k
                    frame.time_base = Fraction(1, fps)
                _mux(container, vs, frame)
            _mux(container, vs, None)  # flush
        if as_ is not None:
            fmt = as_.codec_context.codec.audio_formats[0].name
            x = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
            step = as_.codec_context.frame_size or 1024
            for start in range(0, len(x), step):
                chunk = x[start:start + step]
                if fmt.startswith("s16"):
                    arr = np.round(chunk * 32767).astype(np.int16)[None, :]
                else:
                    arr = chunk[None, :]
                frame = av.AudioFrame.from_ndarray(arr, format=fmt, layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                frame.time_base = Fraction(1, sample_rate)
                _mux(container, as_, frame)
            _mux(container, as_, None)  # flush
    finally:
        container.close()
    return path


def wav_bytes(samples, sample_rate: int) -> bytes:
    """Mono 16-bit PCM WAV bytes of float samples, quantised as
    `avca_tf.media.preprocess.quantize_pcm16` does (what a served WAV request carries)."""
    import io
    import wave
    x = np.clip(np.asarray(samples, np.float32) * np.float32(32768.0), -32768.0, 32767.0)
    pcm = np.round(x).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _mux(container, stream, frame):
    """Encode one frame (None: flush the encoder) and write its packets."""
    for packet in stream.encode(frame):
        container.mux(packet)
