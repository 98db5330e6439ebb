"""Per-class pickle files of the non-averaged feature layout (TCaF, ClipClap-GZSL).

One file per class and stage folder holds a dict:
  `features`    list of per-video float arrays, [T_i, D] (sequences) or [D] (one vector),
  `video_names` list of video ids (bytes in the published files; str accepted),
  `fps`         frames per second the steps were computed at: a list with one
                value (25) per video, as the authors' create_pkl_files scripts
                write it and their loaders index it (`fps[i]`); a single
                number is accepted when reading.
`read_class_pickle` validates the structure and raises BenchmarkError naming
the file and field; checks that need the dataset (widths, step rates) are the
caller's. Files are unpickled with a restricted unpickler that only builds
NumPy arrays and plain containers, so a feature file cannot run code.
`write_class_pickle` writes atomically.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from avca_tf.errors import BenchmarkError
from avca_tf.io_utils import atomic_path
from avca_tf.safe_load import load_pickle

FPS = 25
PICKLE_KEYS = ("features", "video_names", "fps")

def _decode(name, path, modality, k) -> str:
    if isinstance(name, bytes):
        try:
            return name.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BenchmarkError(f"{path} ({modality}): video_names[{k}] is not UTF-8: {e}") from e
    if isinstance(name, (str, np.str_)):
        return str(name)
    raise BenchmarkError(f"{path} ({modality}): video_names[{k}] is a {type(name).__name__}, "
                         f"expected bytes or str")


def read_class_pickle(path, modality: str, *, check_finite: bool = True
                      ) -> tuple[list[str], list[np.ndarray]]:
    """(video names, per-video float32 arrays [T, D] or [D]) of one class pickle.

    `modality` only names the file in messages. Every entry must be a finite
    float (or integer, as the uint8 VGGish features) array of rank 1 or 2,
    all of the same rank and width; finite unless `check_finite=False` (the
    ingestion job rejects such rows itself).
    """
    ids, feats, _ = read_class_pickle_with_fps(path, modality, check_finite=check_finite)
    return ids, feats


def read_class_pickle_with_fps(path, modality: str, *, check_finite: bool = True):
    """`read_class_pickle` plus the file's `fps` field (None when absent).

    A per-video `fps` list must have one entry per video and one value, which
    is returned as a number; a single number is returned as it is.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"missing file {path}")
    try:
        with open(path, "rb") as f:
            obj = load_pickle(f)
    except Exception as e:  # pickle raises many types for corrupt files
        raise BenchmarkError(f"unreadable pickle {path} ({modality}): {e}") from e
    if not isinstance(obj, dict):
        raise BenchmarkError(f"{path} ({modality}): expected a dict with keys {list(PICKLE_KEYS)}, "
                             f"got {type(obj).__name__}")
    missing = [k for k in ("features", "video_names") if k not in obj]
    if missing:
        raise BenchmarkError(f"{path} ({modality}): missing key(s) {missing}; expected "
                             f"{list(PICKLE_KEYS)}")
    feats, names = obj["features"], obj["video_names"]
    if not isinstance(feats, (list, tuple)) or not isinstance(names, (list, tuple, np.ndarray)):
        raise BenchmarkError(f"{path} ({modality}): 'features' and 'video_names' must be lists, "
                             f"got {type(feats).__name__} and {type(names).__name__}")
    if len(feats) != len(names):
        raise BenchmarkError(f"{path} ({modality}): {len(feats)} feature entries but "
                             f"{len(names)} video_names (expected one name per entry)")
    ids = [_decode(n, path, modality, k) for k, n in enumerate(names)]
    out: list[np.ndarray] = []
    rank = width = None
    for k, x in enumerate(feats):
        a = np.asarray(x)
        if a.ndim not in (1, 2) or not (np.issubdtype(a.dtype, np.floating)
                                        or np.issubdtype(a.dtype, np.integer)):
            raise BenchmarkError(f"{path} ({modality}): features[{k}] (video {ids[k]!r}) has shape "
                                 f"{a.shape} dtype {a.dtype}, expected a float array [T, D] or [D]")
        if rank is None:
            rank, width = a.ndim, a.shape[-1]
        elif a.ndim != rank or a.shape[-1] != width:
            raise BenchmarkError(f"{path} ({modality}): features[{k}] (video {ids[k]!r}) has shape "
                                 f"{a.shape}, but features[0] has rank {rank} and width {width}")
        a = a.astype(np.float32, copy=False)
        if check_finite and not np.all(np.isfinite(a)):
            raise BenchmarkError(f"{path} ({modality}): features[{k}] (video {ids[k]!r}) contains "
                                 f"NaN or Inf")
        out.append(a)
    return ids, out, _fps_value(obj.get("fps"), len(ids), path, modality)


def _fps_value(fps, n, path, modality):
    if fps is None or np.ndim(fps) == 0:
        return fps
    values = np.asarray(fps).ravel()
    if values.size != n:
        raise BenchmarkError(f"{path} ({modality}): {values.size} fps entries for {n} videos "
                             f"(expected one per video)")
    if values.size and not np.all(values == values[0]):
        raise BenchmarkError(f"{path} ({modality}): fps differs between videos "
                             f"({sorted(set(values.tolist()))}); expected one value")
    return values[0].item() if values.size else None


def write_class_pickle(path, video_names, features, fps: int = FPS, *, atomic: bool = True) -> None:
    """Writes one class pickle (names stored as UTF-8 bytes, arrays as float32).

    `atomic=False` for writers that already build a temporary tree and install it at once.
    """
    if len(video_names) != len(features):
        raise BenchmarkError(f"{path}: {len(video_names)} video names for {len(features)} entries")
    obj = {"features": [np.asarray(x, np.float32) for x in features],
           "video_names": [n.encode("utf-8") if isinstance(n, str) else bytes(n)
                           for n in video_names],
           "fps": list(fps) if isinstance(fps, (list, tuple, np.ndarray))
           else [fps] * len(features)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not atomic:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=4)
        return
    with atomic_path(str(path)) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=4)
