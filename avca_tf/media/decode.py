"""Media files -> sampled RGB frames and mono audio samples (PyAV).

This is the only module that reads container formats. It samples
`MediaSpec.frames_per_window` frames per window at fixed times (frame k of
window w at `(w + (k + 0.5) / F) * window_seconds`, the frame shown at that
time: variable frame rates give the same sampling as constant ones) and
decodes the whole audio stream to mono float32 at its own rate. Resampling,
resizing and normalising happen in `avca_tf.media.preprocess`, which the
served graph shares.

Every problem a file can have is a `MediaError` whose message names the file
and what was expected; `avca extract` records it in report.json.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avca_tf.errors import AvcaError
from avca_tf.media.preprocess import MediaSpec

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov")


class MediaError(AvcaError, ValueError):
    """A media file cannot be used: unreadable, corrupt, missing a stream, too short, too big."""


@dataclass(frozen=True)
class DecodedClip:
    """What `decode_clip` reads from one file."""
    path: str
    frames: np.ndarray        # uint8 [n_windows * frames_per_window, H, W, 3]
    audio: np.ndarray         # float32 [n], mono, at `sample_rate`, n_windows windows long
    sample_rate: int
    n_windows: int
    duration: float           # seconds both streams cover


def _open(path: str):
    import av
    try:
        return av.open(str(path))
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except PermissionError:
        raise MediaError(f"{path}: not readable (permission denied)") from None
    except IsADirectoryError:
        raise MediaError(f"{path}: is a directory, expected a video file") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaError(f"{path}: not a readable media file ({e})") from None


def _video_frames(container, stream, path: str, times: np.ndarray, max_pixels: int):
    """The frame shown at each of `times` (seconds), and the video's end time."""
    import av
    ctx = stream.codec_context
    if ctx.width and ctx.height and ctx.width * ctx.height > max_pixels:
        raise MediaError(f"{path}: video resolution {ctx.width}x{ctx.height} is above the "
                         f"limit of {max_pixels} pixels (--max-pixels)")
    out: list = [None] * len(times)
    nxt = 0
    prev = None           # (frame, its rgb array or None until a sampled time needs it)
    count = 0
    end = 0.0

    def hold(until: float) -> None:  # the previous frame is shown at every time < until
        nonlocal nxt
        while nxt < len(times) and times[nxt] < until:
            if prev[1] is None:
                prev[1] = prev[0].to_ndarray(format="rgb24")
            out[nxt] = prev[1]
            nxt += 1

    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            t = float(frame.time)
            if frame.width * frame.height > max_pixels:
                raise MediaError(f"{path}: video resolution {frame.width}x{frame.height} is "
                                 f"above the limit of {max_pixels} pixels (--max-pixels)")
            count += 1
            if prev is not None:
                hold(t)
                end = max(end, t)
            prev = [frame, None]
            if count == 1:  # sampled times before the first frame show the first frame
                hold(t)
            dur = (float(frame.duration * frame.time_base)
                   if frame.duration and frame.time_base else 0.0)
            if not dur and stream.average_rate:
                dur = 1.0 / float(stream.average_rate)
            end = max(end, t + dur)
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: corrupt video stream ({e})") from None
    if prev is not None:
        hold(end)
    if count < 2:
        raise MediaError(f"{path}: the video stream has {count} frame(s), expected a clip "
                         f"of at least one window")
    return out, end


def _audio(container, stream, path: str) -> tuple[np.ndarray, int]:
    import av
    rate = stream.codec_context.sample_rate or stream.rate
    if not rate:
        raise MediaError(f"{path}: the audio stream has no sample rate")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    parts = []
    try:
        for frame in container.decode(stream):
            for f in resampler.resample(frame):
                parts.append(f.to_ndarray().reshape(-1))
        for f in resampler.resample(None):
            parts.append(f.to_ndarray().reshape(-1))
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: corrupt audio stream ({e})") from None
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return samples, int(rate)


def decode_clip(path: str, spec: MediaSpec = MediaSpec()) -> DecodedClip:
    """Decodes one file: `spec.frames_per_window` frames per whole window both
    streams cover (at most `spec.max_windows`) and the audio of those windows."""
    container = _open(path)
    try:
        videos = [s for s in container.streams.video]
        audios = [s for s in container.streams.audio]
        if not videos:
            raise MediaError(f"{path}: no video stream (expected one video and one audio stream)")
        if not audios:
            raise MediaError(f"{path}: no audio stream (expected one video and one audio stream)")
        samples, rate = _audio(container, audios[0], path)
        container.seek(0)
        audio_end = len(samples) / rate
        n_max = min(spec.max_windows, int(np.floor(audio_end / spec.window_seconds + 1e-9)))
        f = spec.frames_per_window
        times = np.array([(w + (k + 0.5) / f) * spec.window_seconds
                          for w in range(max(n_max, 0)) for k in range(f)])
        frames, video_end = _video_frames(container, videos[0], path, times, spec.max_pixels)
    finally:
        container.close()
    duration = min(audio_end, video_end)
    n_windows = min(n_max, int(np.floor(duration / spec.window_seconds + 1e-9)))
    if n_windows < 1:
        raise MediaError(f"{path}: {duration:.3f} s of audio and video, expected at least one "
                         f"{spec.window_seconds:g} s window")
    frames = frames[:n_windows * f]
    if any(x is None for x in frames):
        raise MediaError(f"{path}: no decodable frame at some sampled times "
                         f"(expected frames through {duration:.3f} s)")
    shapes = {x.shape for x in frames}
    if len(shapes) > 1:
        raise MediaError(f"{path}: the frame size changes within the clip ({sorted(shapes)})")
    n_audio = int(round(n_windows * spec.window_seconds * rate))
    return DecodedClip(str(path), np.stack(frames), samples[:n_audio], rate, n_windows,
                       float(duration))
