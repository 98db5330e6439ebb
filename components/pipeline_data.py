"""The benchmark as the trainer and evaluator see it: Examples + ClassEmbeddings artifacts.

Label vectors come from the class-embedding artifact (matched by class name),
not from the ones ingestion copied from the benchmark, so a new word-vector
source only re-runs the embedding job and what follows it.
"""
import dataclasses

import numpy as np

from avca_tf.data.formats.benchmark import Benchmark, BenchmarkError
from avca_tf.data.formats.tfrecord_input import (load_benchmark_from_tfrecords, pairing_permutation,
                                         read_class_embeddings)


def vectors_by_name(class_names, names, vectors, source: str) -> np.ndarray:
    """Rows of `vectors` (named `names`) reordered to `class_names`; error on a missing class."""
    index = {n.lower(): i for i, n in enumerate(names)}
    missing = [n for n in class_names if n.lower() not in index]
    if missing:
        raise BenchmarkError(f"{source}: no class embedding for {len(missing)} class(es) of the "
                             f"benchmark, e.g. {missing[:5]}")
    return np.stack([vectors[index[n.lower()]] for n in class_names]).astype(np.float32)


def load_pipeline_benchmark(examples_dir: str, class_embeddings_dir: str,
                            text_pairing: str = "own") -> Benchmark:
    """Ingested splits with the class-embedding artifact's vectors (per-step sequences are
    streamed from an index of the records, `avca_tf.data.formats.record_index`).

    `text_pairing="reference"` gives each class the vector the authors' reader
    gives it: the permutation ingestion recorded, applied to the artifact's vectors.
    """
    perm = pairing_permutation(examples_dir, text_pairing)
    bench = load_benchmark_from_tfrecords(examples_dir, text_pairing="own", stream=True)
    names, vectors = read_class_embeddings(class_embeddings_dir)
    own = vectors_by_name(bench.class_names, names, vectors, class_embeddings_dir)
    return dataclasses.replace(bench, label_embeddings=own[perm], text_pairing=text_pairing)
