"""Word-vector files: word2vec/GloVe text format and the benchmark's npy dict.

Text format: one `word v1 ... vD` line per word (space separated), with an
optional first line `N D` (word2vec header). The npy dict is what the
benchmark ships: `np.save` of a pickled dict name -> vector, loaded with
`avca_tf.safe_load.load_npy` (restricted unpickler: arrays and plain
containers only, so a file cannot run code). Files are opened with
tf.io.gfile, so `gs://` and other TF filesystems work too. A file without
any vector is an error. When a word occurs twice, the first occurrence wins
(as in gensim) and the repeats are listed in `WordVectorFile.duplicates`
(embed-classes writes them to report.json, export to avca_export.json).
"""
import dataclasses
import gzip
from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

from avca_tf.errors import AvcaError
from avca_tf.safe_load import UnsafeFileError, load_npy


class WordVectorError(AvcaError, ValueError):
    """A word-vector file is missing or malformed."""


def is_npy(path: str) -> bool:
    return path.endswith(".npy")


@dataclasses.dataclass(frozen=True)
class WordVectorFile:
    """What `read_word_vectors` kept of a file."""
    words: list            # str [n], unique
    vectors: np.ndarray    # float32 [n, D]
    duplicates: tuple      # ("word", "line 7 (first at line 2)") of repeats that were ignored


def load_word_vectors(path: str, max_words: Optional[int] = None,
                      vocabulary: Optional[Iterable[str]] = None):
    """`(words, vectors)` of `read_word_vectors`."""
    table = read_word_vectors(path, max_words, vocabulary)
    return table.words, table.vectors


def read_word_vectors(path: str, max_words: Optional[int] = None,
                      vocabulary: Optional[Iterable[str]] = None) -> WordVectorFile:
    """The words and float32 [n, D] vectors of a file, and the repeats ignored.

    `max_words` keeps the first n entries of the file; `vocabulary`, if given,
    keeps only those words (the file is still streamed once, so memory stays
    proportional to what is kept).
    """
    if not tf.io.gfile.exists(path):
        raise WordVectorError(f"{path}: word-vector file not found")
    if max_words is not None and max_words < 1:
        raise WordVectorError(f"max_words must be >= 1, got {max_words}")
    wanted = None if vocabulary is None else set(vocabulary)
    entries = _read_npy(path) if is_npy(path) else _read_text(path)
    words, vectors, seen, dim, n, repeats = [], [], {}, None, 0, []
    for n, (word, vec, where) in enumerate(entries, 1):
        if max_words is not None and n > max_words:
            break
        if dim is None:
            dim = vec.shape[0]
        if vec.shape != (dim,) or dim == 0:
            raise WordVectorError(f"{path}: {where} ({word!r}): expected a vector of "
                                  f"{dim or 'at least 1'} values, got shape {vec.shape}")
        if wanted is not None and word not in wanted:
            continue
        if word in seen:
            repeats.append((word, f"{where} (first at {seen[word]})"))
            continue
        if not np.all(np.isfinite(vec)):
            raise WordVectorError(f"{path}: {where} ({word!r}): non-finite value")
        seen[word] = where
        words.append(word)
        vectors.append(vec)
    if n == 0:
        raise WordVectorError(f"{path}: no word vectors found (empty file); expected "
                              "`word v1 ... vD` lines")
    out = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim or 0), np.float32)
    return WordVectorFile(words=words, vectors=out, duplicates=tuple(repeats))


def _read_npy(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        try:
            obj = load_npy(f.read())
        except UnsafeFileError as e:
            raise WordVectorError(f"{path}: {e}") from e
        except Exception as e:  # numpy/pickle raise many types for corrupt files
            raise WordVectorError(f"{path}: not a readable .npy file ({e})") from e
    if not isinstance(obj, dict):
        raise WordVectorError(f"{path}: expected a pickled dict name -> vector "
                              f"(np.save of a dict), got {type(obj).__name__}")
    for key, value in obj.items():
        if not isinstance(key, str):
            raise WordVectorError(f"{path}: key {key!r} is not a string")
        yield key, np.asarray(value, dtype=np.float32).reshape(-1), f"key {key!r}"


def _read_text(path):
    with tf.io.gfile.GFile(path, "rb") as raw:
        data = raw.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    if path.endswith(".bin") or b"\0" in data[:4096]:
        raise WordVectorError(f"{path}: binary word2vec is not supported; save it in text "
                              "format (gensim: save_word2vec_format(..., binary=False))")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WordVectorError(f"{path}: not UTF-8 text ({e})") from e
    header_dim = None
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.rstrip().split(" ")
        if not line.strip():
            continue
        if lineno == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
            header_dim = int(fields[1])
            continue
        try:
            vec = np.asarray(fields[1:], dtype=np.float32)
        except ValueError as e:
            raise WordVectorError(f"{path}: line {lineno}: expected `word` followed by "
                                  f"numbers ({e})") from e
        if header_dim is not None and vec.shape[0] != header_dim:
            raise WordVectorError(f"{path}: line {lineno} ({fields[0]!r}): header says "
                                  f"{header_dim} values, line has {vec.shape[0]}")
        yield fields[0], vec, f"line {lineno}"
