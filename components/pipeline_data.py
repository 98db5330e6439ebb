"""The benchmark as the trainer and evaluator see it: Examples + ClassEmbeddings artifacts.

Label vectors come from the class-embedding artifact (matched by class name),
not from the ones ingestion copied from the benchmark, so a new word-vector
source only re-runs the embedding job and what follows it.
"""
import dataclasses
import os

import numpy as np

from avca_tf.data.benchmark import Benchmark, BenchmarkError
from avca_tf.data.tfrecord_input import (load_benchmark_from_tfrecords, read_class_embeddings,
                                    read_metadata)


def vectors_by_name(class_names, names, vectors, source: str) -> np.ndarray:
    """Rows of `vectors` (named `names`) reordered to `class_names`; error on a missing class."""
    index = {n.lower(): i for i, n in enumerate(names)}
    missing = [n for n in class_names if n.lower() not in index]
    if missing:
        raise BenchmarkError(f"{source}: no class embedding for {len(missing)} class(es) of the "
                             f"benchmark, e.g. {missing[:5]}")
    return np.stack([vectors[index[n.lower()]] for n in class_names]).astype(np.float32)


def reference_permutation(own: np.ndarray, reference: np.ndarray, source: str) -> np.ndarray:
    """P with reference[i] == own[P[i]]: the authors' pairing as a permutation of classes."""
    perm = []
    for i, row in enumerate(reference):
        hits = np.flatnonzero(np.all(own == row, axis=1))
        if hits.size == 0:
            raise BenchmarkError(f"{source}: reference label vector {i} is not any class's own "
                                 "vector; the reference pairing cannot be applied")
        perm.append(int(hits[0]))
    return np.asarray(perm, np.int64)


def load_pipeline_benchmark(examples_dir: str, class_embeddings_dir: str,
                            text_pairing: str = "own") -> Benchmark:
    """Ingested splits with the class-embedding artifact's vectors.

    `text_pairing="reference"` gives each class the vector the authors' reader
    gives it (SPEC §2), applied to the artifact's vectors.
    """
    bench = load_benchmark_from_tfrecords(examples_dir, text_pairing="own")
    names, vectors = read_class_embeddings(class_embeddings_dir)
    own = vectors_by_name(bench.class_names, names, vectors, class_embeddings_dir)
    if text_pairing == "reference":
        files = read_metadata(examples_dir)["label_embeddings"]
        if "reference" not in files:
            raise BenchmarkError(f"{examples_dir}: ingestion wrote no 'reference' label "
                                 "embeddings, so the authors' pairing is unknown for this dataset")
        _, ref = read_class_embeddings(os.path.join(examples_dir, files["reference"]))
        perm = reference_permutation(bench.label_embeddings, ref, examples_dir)
        own = own[perm]
    elif text_pairing != "own":
        raise BenchmarkError(f"text pairing must be 'own' or 'reference', got {text_pairing!r}")
    return dataclasses.replace(bench, label_embeddings=own, text_pairing=text_pairing)
