"""Per-class feature pickles of the non-averaged benchmark layout.

One file per class and stage, `<class>.pkl`, holding a dict:
  features     list of float arrays, one per video: [D] (one vector per
               video, e.g. the CLIP/CLAP features) or [T, D] (a sequence)
  video_names  list of the videos' ids (str, or bytes as the authors' writer
               stores them)
  fps          list of frame rates, one per video (read, not used)

Files are unpickled with a restricted unpickler that only builds NumPy arrays
and plain containers, so a feature file cannot run code.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from avca_tf.errors import BenchmarkError
from avca_tf.io_utils import atomic_path

# (module, name) pairs a feature pickle may reference: NumPy array/scalar
# reconstruction and the builtins plain containers need.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "bytearray"), ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only NumPy arrays and "
                                     f"plain containers are allowed in a feature pickle)")


def _video_name(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _video_name(value.item())
    return str(value)


def read_class_pickle(path, modality: str, *, check_finite: bool = True
                      ) -> tuple[list[str], list[np.ndarray]]:
    """(video_names, features) of one class pickle, validated.

    `modality` only names the file's role in error messages. Every entry is a
    float32 array, [D] or [T, D], all of the same rank and width D, and finite
    unless `check_finite=False` (the ingestion job rejects such rows itself).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(io.BytesIO(f.read())).load()
    except FileNotFoundError:
        raise BenchmarkError(f"missing file {path} ({modality} features)") from None
    except Exception as e:  # pickle raises many types for corrupt or unsafe files
        raise BenchmarkError(f"unreadable {modality} feature pickle {path}: {e}") from e
    if not isinstance(obj, dict) or not {"features", "video_names"} <= set(obj):
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise BenchmarkError(f"{path}: expected a dict with 'features' (list of arrays) and "
                             f"'video_names' (list of ids), got {got}")
    names = [_video_name(v) for v in list(obj["video_names"])]
    raw = list(obj["features"])
    if len(raw) != len(names):
        raise BenchmarkError(f"{path}: {len(raw)} feature entries but {len(names)} video_names "
                             f"(expected one entry per video)")
    if not raw:
        raise BenchmarkError(f"{path}: class has no samples (empty 'features')")
    features = []
    for i, entry in enumerate(raw):
        x = np.asarray(entry)
        if x.ndim not in (1, 2) or not np.issubdtype(x.dtype, np.floating) or x.size == 0:
            raise BenchmarkError(f"{path}: {modality} entry {i} ({names[i]!r}) has shape "
                                 f"{x.shape} dtype {x.dtype}, expected float [D] or [T, D]")
        if x.ndim != np.asarray(raw[0]).ndim or x.shape[-1] != np.asarray(raw[0]).shape[-1]:
            raise BenchmarkError(f"{path}: {modality} entry {i} ({names[i]!r}) has shape "
                                 f"{x.shape}, entry 0 has {np.asarray(raw[0]).shape} (all "
                                 f"entries need the same rank and width)")
        if check_finite and not np.all(np.isfinite(x)):
            raise BenchmarkError(f"{path}: {modality} entry {i} ({names[i]!r}) contains NaN or Inf")
        features.append(x.astype(np.float32, copy=False))
    return names, features


def write_class_pickle(path, video_names, features, fps=25) -> None:
    """Writes one class pickle atomically (entries [D] or [T, D], stored as float32)."""
    video_names = [str(v) for v in video_names]
    features = [np.asarray(x, np.float32) for x in features]
    if len(video_names) != len(features):
        raise BenchmarkError(f"{path}: {len(features)} feature entries for "
                             f"{len(video_names)} video names")
    fps_list = list(fps) if isinstance(fps, (list, tuple, np.ndarray)) else [fps] * len(features)
    payload = {"features": features, "video_names": video_names, "fps": fps_list}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(str(path)) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(payload, f, protocol=4)
