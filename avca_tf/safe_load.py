"""The one reader of pickles and .npy files: no data file can run code.

Pickles and object `.npy` files (the benchmark's label-embedding dicts, the
per-class feature pickles of the non-averaged layout) are unpickled with a
restricted unpickler that only builds NumPy arrays, NumPy scalars and plain
containers (dict, list, tuple, str, bytes, numbers). Any other global a file
names (`os.system`, `builtins.eval`, a class with `__reduce__`) is refused
with `UnsafeFileError` before anything is called. Plain numeric `.npy` files
are read by NumPy with `allow_pickle=False`.
"""
from __future__ import annotations

import io
import pickle
from typing import BinaryIO, Union

import numpy as np

from avca_tf.errors import AvcaError

# (module, name) pairs a data file may reference: NumPy array and scalar
# reconstruction (NumPy 1 and 2 module names) and what plain bytes need.
_ALLOWED = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "bytearray"), ("_codecs", "encode"),
})


class UnsafeFileError(AvcaError, ValueError):
    """A pickle or .npy file names something other than arrays and plain containers."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise UnsafeFileError(f"refusing to load {module}.{name} (only NumPy arrays, "
                              "plain containers, strings and numbers are allowed)")


Source = Union[str, bytes, BinaryIO]


def _bytes(source: Source) -> bytes:
    if isinstance(source, bytes):
        return source
    if hasattr(source, "read"):
        return source.read()
    with open(source, "rb") as f:
        return f.read()


def load_pickle(source: Source):
    """The object of a pickle (path, bytes or binary file), built by the restricted unpickler.

    Raises UnsafeFileError for a forbidden global; other unpickling errors
    (truncated or corrupt files) propagate as they are.
    """
    return _RestrictedUnpickler(io.BytesIO(_bytes(source))).load()


def load_npy(source: Source):
    """The array of a .npy file (path, bytes or binary file).

    Object arrays (np.save of a dict or list) are unpickled by the restricted
    unpickler; a 0-d object array is returned as its item (the dict).
    Everything else is read with `allow_pickle=False`.
    """
    buf = io.BytesIO(_bytes(source))
    version = np.lib.format.read_magic(buf)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
    if not dtype.hasobject:
        buf.seek(0)
        return np.load(buf, allow_pickle=False)
    arr = load_pickle(buf)
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"object .npy holds a {type(arr).__name__}, expected an array")
    if arr.shape != tuple(shape):
        raise ValueError(f"object .npy header says shape {tuple(shape)}, data has {arr.shape}")
    return arr.item() if arr.dtype == object and arr.shape == () else arr
