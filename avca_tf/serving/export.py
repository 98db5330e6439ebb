"""Exports a finished run as a TF Serving SavedModel with open-vocabulary classes.

Layout written (the one TF Serving watches):
```
SERVING_BASE/models.config                 model_config_list of every model under SERVING_BASE
SERVING_BASE/<model_name>/<version>/       SavedModel, tag "serve"
    saved_model.pb, variables/, assets/word_vocab.txt
    assets.extra/avca_export.json          what was exported (vocabulary, beta, ops, sources)
```
Signatures (inputs -> outputs):
- `serving_default`: audio [B, d_a] f32, video [B, d_v] f32 -> `classes` [B, k]
  string, `scores` [B, k] f32, `embedding` [B, D] f32. The candidates are the
  run's test vocabulary (seen + unseen classes); seen classes get the run's
  calibrated-stacking beta added to their distance; score = -distance.
- `embed`: audio, video -> `embedding` [B, D].
- `classify_open`: audio, video, class_names [C] string -> `scores` [B, C],
  `best_class` [B], `best_score` [B], and per name `token_count` [C],
  `known_token_count` [C], `oov_tokens` [C, T] (padded with ""),
  `calibrated` [C] (the name is a seen class of the run, so beta was added).
  Names are embedded in the graph: `avca_tf.data.text.normalize.normalize_class_names` ->
  word lookup in a table stored in the SavedModel -> mean over known tokens ->
  L2 normalisation -> the model's text projection. A name without any known
  token scores -inf and is never the best class.

With a text encoder (ClipClap runs: `text_encoder=` an
avca_tf.data.text.encoders encoder with `tf_encode`, e.g. the [CLIP; CLAP]
prompt ensembles), `classify_open` embeds each name in the graph: prompts ->
tokenizer -> text tower -> L2 normalisation -> mean over the prompts ->
renormalisation -> concatenation -> the model's class projection. Every name
gets a real embedding (no -inf); outputs `scores`, `best_class`, `best_score`,
`calibrated` and `token_count`.

Sequence models (input kind "sequences", e.g. TCaF) take variable-length inputs
instead of `audio`, `video` in all three signatures: `audio` [B, T_a, d_a] f32
zero-padded to any T_a, `audio_lengths` [B] int64 (valid steps, 1..T_a), and
`video`, `video_lengths` the same; the outputs are the same. The padding is
dropped in the graph and the run's evaluation batch (its SequenceSpec: pad to
the longest video, or the fixed centred window) is built from the valid
steps, so a video's scores do not depend on the padding it arrives with.

The graph needs only TensorFlow plus the tensorflow-text ops of the
normalisation (`import tensorflow_text` before loading; TF Serving links them).
keras-hub's CLIP tokenizer runs core TensorFlow string/lookup ops; a
SavedModel text tower brings the ops it was exported with.
"""
import contextlib
import dataclasses
import json
import os
import tempfile
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from avca_tf.config import MAX_VERSION, REQUEST_LIMITS, check_serving_name
from avca_tf.errors import AvcaError
from avca_tf.inputs import kind_of
from avca_tf.inputs.signature import AveragedInputs, assert_shape
from avca_tf.io_utils import atomic_path, remove_temporaries, write_json
from avca_tf.locking import check_dir_target, output_lock
from avca_tf.models.base import GZSLModel
from avca_tf.models.distances import pairwise_l2

SIGNATURES = ("serving_default", "embed", "classify_open")
VOCAB_ASSET = "word_vocab.txt"
EXPORT_INFO = os.path.join("assets.extra", "avca_export.json")
KERAS_FILE = "model.keras"  # `avca export --keras`: the Keras model beside the SavedModel
# tensorflow-text kernels the classify_open graph runs (checked by the tests).
TF_TEXT_OPS = ("NormalizeUTF8", "CaseFoldUTF8", "TFText>WhitespaceTokenizeWithOffsetsV2")


class ExportError(AvcaError, ValueError):
    """The run cannot be exported as asked (bad target, bad inputs)."""


@dataclasses.dataclass(frozen=True)
class ServingVocabulary:
    """The fixed class vocabulary of `serving_default`."""
    class_names: tuple            # str [C]
    label_embeddings: np.ndarray  # float32 [C, text_dim]
    seen: np.ndarray              # bool [C]: calibrated stacking adds beta here
    beta: float

    @classmethod
    def from_run(cls, class_names, label_embeddings, seen_ids, unseen_ids, beta):
        seen_ids = np.asarray(seen_ids, np.int64)
        ids = np.union1d(seen_ids, np.asarray(unseen_ids, np.int64))
        if ids.size == 0:
            raise ExportError("the run has no seen or unseen test classes to serve")
        return cls(class_names=tuple(str(class_names[i]) for i in ids),
                   label_embeddings=np.asarray(label_embeddings, np.float32)[ids],
                   seen=np.isin(ids, seen_ids), beta=float(beta))


@dataclasses.dataclass(frozen=True)
class WordVectors:
    """A word-vector table for classify_open."""
    words: tuple        # str [V], unique
    vectors: np.ndarray  # float32 [V, text_dim]
    source: str
    duplicates: int = 0  # repeated words ignored (the first vector of a word is used)

    @classmethod
    def load(cls, path: str, max_words: Optional[int] = None):
        from avca_tf.data.text.word_vectors import read_word_vectors
        table = read_word_vectors(path, max_words=max_words)
        words, vectors = table.words, table.vectors
        bad = [w for w in words if "\n" in w or "\r" in w or not w]
        if bad:
            raise ExportError(f"{path}: word {bad[0]!r} is empty or contains a line break")
        return cls(words=tuple(words), vectors=vectors, source=os.path.abspath(path),
                   duplicates=len(table.duplicates))


class ClassNameEncoder(tf.Module):
    """Class names [C] -> label embeddings [C, text_dim] plus an OOV report.

    The vocabulary is a SavedModel asset (one word per line, the line number is
    the row of `vectors`), so large word lists do not bloat the graph.
    """

    def __init__(self, word_vectors: WordVectors, vocab_file: str):
        super().__init__(name="class_name_encoder")
        with open(vocab_file, "w", encoding="utf-8") as f:
            f.writelines(w + "\n" for w in word_vectors.words)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocab_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
            default_value=-1)
        self.vectors = tf.Variable(word_vectors.vectors, trainable=False, name="word_vectors")

    def __call__(self, names):
        from avca_tf.data.text.normalize import normalize_class_names
        tokens = normalize_class_names(names)
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
        known = ids >= 0
        known_f = tf.cast(known, tf.float32)
        rows = tf.ragged.map_flat_values(
            lambda i, k: tf.gather(self.vectors, tf.maximum(i, 0)) * k[:, None],
            ids, known_f)
        total = tf.reduce_sum(rows, axis=1)
        count = tf.reduce_sum(known_f, axis=1)
        mean = total / tf.maximum(count, 1.0)[:, None]
        oov = tf.ragged.boolean_mask(tokens, tf.logical_not(known)).to_tensor(default_value="")
        return {
            "tokens": tokens,
            "embeddings": tf.math.l2_normalize(mean, axis=1, epsilon=1e-12),
            "token_count": tf.cast(tokens.row_lengths(), tf.int32),
            "known_token_count": tf.cast(count, tf.int32),
            "oov_tokens": oov,
        }


def _names_checks(class_names, empty_ok: bool):
    """class_names: a [C] list (1 <= C <= the limit) of valid UTF-8 names; empty names only
    if `empty_ok` (word vectors: a name without known words scores -inf; a text encoder
    would give an empty name a real, finite score)."""
    rank = assert_shape(class_names, (None,), "class_names: expected shape [num_classes] "
                         "string (a list of class names)")
    n = REQUEST_LIMITS["class_names"]
    with tf.control_dependencies([rank]):
        size = tf.size(class_names)
        valid = tf.strings.unicode_transcode(class_names, "UTF-8", "UTF-8", errors="replace",
                                             replacement_char=0xFFFD)
        return [rank,
                tf.debugging.assert_greater(size, 0, message=(
                    "class_names: expected a non-empty list of class names")),
                tf.debugging.assert_less_equal(size, n, message=(
                    f"class_names: more than {n} names (the limit per request)")),
                tf.debugging.assert_equal(tf.reduce_all(tf.equal(valid, class_names)), True,
                                          message="class_names: expected UTF-8 text")] + ([] if
                empty_ok else [tf.debugging.assert_equal(
                    tf.reduce_all(tf.strings.length(tf.strings.strip(class_names)) > 0), True,
                    message="class_names: expected names with text, got an empty name")])


class ServingGraph:
    """Builds the three signature functions around a GZSLModel.

    The functions close over the model (inference mode: batch-norm moving
    statistics, no dropout) and over the tables; `archive()` tracks them all.
    `inputs` (AveragedInputs or SequenceInputs) gives the feature inputs of
    every signature, their runtime checks and what the model is called with.
    """

    def __init__(self, model, inputs, vocab: ServingVocabulary,
                 word_vectors: Optional[WordVectors], asset_dir: str, top_k: int = 5,
                 text_encoder=None):
        if top_k < 1:
            raise ExportError(f"top_k must be >= 1, got {top_k}")
        self.model, self.inputs, self.vocab = model, inputs, vocab
        self.top_k = min(top_k, len(vocab.class_names))
        self.class_names = tf.constant(vocab.class_names, tf.string)
        self.label_embeddings = tf.Variable(vocab.label_embeddings, trainable=False,
                                            name="vocabulary_label_embeddings")
        self.seen_penalty = tf.constant(np.where(vocab.seen, vocab.beta, 0.0), tf.float32)
        # With the interface's plain L2 scoring the fixed vocabulary is projected
        # once here, and serving_default runs the audio-visual branch once.
        self.class_projection = None
        if type(model).class_distances is GZSLModel.class_distances:
            self.class_projection = tf.Variable(
                model.embed_classes(vocab.label_embeddings, training=False),
                trainable=False, name="vocabulary_class_projection")
        self.encoder = None
        self.text_encoder = text_encoder
        if text_encoder is not None:
            if word_vectors is not None:
                raise ExportError("give either word vectors or a text encoder, not both")
            text_dim = vocab.label_embeddings.shape[1]
            if text_encoder.dim != text_dim:
                raise ExportError(f"the text encoder gives {text_encoder.dim}-d vectors, the "
                                  f"model's label embeddings have {text_dim}")
            self.seen_table = self._seen_name_table()
        elif word_vectors is not None:
            text_dim = vocab.label_embeddings.shape[1]
            if word_vectors.vectors.shape[1] != text_dim:
                raise ExportError(
                    f"{word_vectors.source}: word vectors have {word_vectors.vectors.shape[1]} "
                    f"dimensions, the model's label embeddings have {text_dim}")
            self.encoder = ClassNameEncoder(word_vectors, os.path.join(asset_dir, VOCAB_ASSET))
            self.seen_table = self._seen_name_table()

    def _seen_name_table(self):
        from avca_tf.data.text.normalize import normalized_strings
        seen = [n for n, s in zip(self.vocab.class_names, self.vocab.seen) if s]
        keys = sorted(set(normalized_strings(seen)))
        if not keys:  # a table needs at least one key; "" never matches a name with tokens
            keys = [""]
        return tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.string), tf.ones([len(keys)], tf.bool)),
            default_value=False)

    def _checked(self, features, extra_checks=()):
        """The model's inputs of the signature's feature tensors, after their checks."""
        with tf.control_dependencies(list(extra_checks)):
            checks = self.inputs.checks(*features) + list(extra_checks)
        with tf.control_dependencies(checks):
            features = [tf.identity(x) for x in features]
        return self.inputs.model_inputs(*features)

    def _serve(self, x):
        audio, video, seq = x
        embedding = self.model.embed(audio, video, training=False, **seq)
        if self.class_projection is not None:
            distances = pairwise_l2(embedding, self.class_projection)
        else:
            distances = self.model.class_distances(audio, video, self.label_embeddings,
                                                   training=False, **seq)
        scores, idx = tf.math.top_k(-(distances + self.seen_penalty), k=self.top_k)
        return {"classes": tf.gather(self.class_names, idx), "scores": scores,
                "embedding": embedding}

    def _embed(self, x):
        audio, video, seq = x
        return {"embedding": self.model.embed(audio, video, training=False, **seq)}

    def _classify_open_encoded(self, features, class_names):
        """classify_open with the text encoder: every name is embedded in the graph."""
        from avca_tf.data.text.normalize import normalize_class_names
        names_ok = _names_checks(class_names, empty_ok=False)
        audio, video, seq = self._checked(features, names_ok)
        with tf.control_dependencies(names_ok):
            class_names = tf.identity(class_names)
        tokens = normalize_class_names(class_names)
        calibrated = self.seen_table.lookup(tf.strings.reduce_join(tokens, axis=1, separator=" "))
        embeddings = self.text_encoder.tf_encode(class_names)
        distances = self.model.class_distances(audio, video, embeddings, training=False, **seq)
        scores = -(distances + self.vocab.beta * tf.cast(calibrated, tf.float32))
        best = tf.argmax(scores, axis=1)
        return {"scores": scores, "best_class": tf.gather(class_names, best),
                "best_score": tf.reduce_max(scores, axis=1), "calibrated": calibrated,
                "token_count": tf.cast(tokens.row_lengths(), tf.int32)}

    def _classify_open(self, features, class_names):
        if self.text_encoder is not None:
            return self._classify_open_encoded(features, class_names)
        names_ok = _names_checks(class_names, empty_ok=True)
        audio, video, seq = self._checked(features, names_ok)
        with tf.control_dependencies(names_ok):
            class_names = tf.identity(class_names)
        enc = self.encoder(class_names)
        calibrated = self.seen_table.lookup(
            tf.strings.reduce_join(enc["tokens"], axis=1, separator=" "))
        distances = self.model.class_distances(audio, video, enc["embeddings"], training=False,
                                               **seq)
        distances = distances + self.vocab.beta * tf.cast(calibrated, tf.float32)
        known = enc["known_token_count"] > 0
        scores = tf.where(known[None, :], -distances, tf.constant(-np.inf, tf.float32))
        best = tf.argmax(scores, axis=1)
        best_score = tf.reduce_max(scores, axis=1)
        best_class = tf.where(tf.math.is_finite(best_score),
                              tf.gather(class_names, best), tf.constant("", tf.string))
        return {"scores": scores, "best_class": best_class, "best_score": best_score,
                "token_count": enc["token_count"],
                "known_token_count": enc["known_token_count"],
                "oov_tokens": enc["oov_tokens"], "calibrated": calibrated}

    # For endpoints built on top of these (the media signatures, avca_tf.media.serving):
    # `features` is the tuple of the input kind's tensors in the order of its specs().
    def serve(self, features):
        """serving_default's outputs (after the input kind's checks)."""
        return self._serve(self._checked(features))

    def classify_open(self, features, class_names):
        """classify_open's outputs (open-vocabulary exports only)."""
        return self._classify_open(features, class_names)

    @property
    def open_vocabulary(self) -> bool:
        return self.encoder is not None or self.text_encoder is not None

    def archive(self):
        """A keras.export.ExportArchive holding the model, tables and signatures."""
        archive = keras.export.ExportArchive()  # tracks the variables the endpoints use
        specs = self.inputs.specs()
        archive.add_endpoint("serving_default", self.inputs.endpoint(
            lambda x: self._serve(self._checked(x))), specs)
        archive.add_endpoint("embed", self.inputs.endpoint(
            lambda x: self._embed(self._checked(x))), specs)
        if self.encoder is not None or self.text_encoder is not None:
            archive.track(self.encoder if self.encoder is not None else self.text_encoder)
            archive.track(self.seen_table)
            archive.add_endpoint("classify_open", self.inputs.endpoint(
                self._classify_open, class_names=True), [
                *specs, tf.TensorSpec([None], tf.string, name="class_names")])
        return archive


def export_model(model, d_a: int, d_v: int, vocab: ServingVocabulary, out_dir: str,
                 word_vectors: Optional[WordVectors] = None, top_k: int = 5,
                 info: Optional[dict] = None, inputs=None, text_encoder=None,
                 media_encoder=None) -> dict:
    """Writes the SavedModel of `model` to `out_dir` (must not exist); returns its info.
    `inputs`: AveragedInputs(d_a, d_v) by default; SequenceInputs for sequence models.
    `media_encoder` (an avca_tf.media.encoders.MediaEncoder): also the media signatures
    of avca_tf.media.serving (frames and sound in)."""
    inputs = inputs or AveragedInputs(d_a, d_v)
    open_vocab = word_vectors is not None or text_encoder is not None
    media_names = []
    with tempfile.TemporaryDirectory(prefix="avca-export-assets-") as asset_dir:
        graph = ServingGraph(model, inputs, vocab, word_vectors, asset_dir, top_k,
                             text_encoder=text_encoder)
        archive = graph.archive()
        if media_encoder is not None:
            from avca_tf.media.serving import MediaSignatures
            media = MediaSignatures(graph, media_encoder)
            media_names = media.add_endpoints(archive, open_vocab)
        archive.write_out(out_dir, verbose=False)
    info = dict(info or {})
    info.update({
        "signatures": [s for s in SIGNATURES if s != "classify_open" or open_vocab]
        + media_names,
        "media": None if media_encoder is None else media_encoder.identity(),
        "text_encoder": None if text_encoder is None else describe_encoder(text_encoder),
        "audio_dim": d_a, "video_dim": d_v, **inputs.info(), "top_k": graph.top_k,
        "class_names": list(vocab.class_names),
        "seen": [bool(s) for s in vocab.seen], "beta": vocab.beta,
        "word_vectors": None if word_vectors is None else {
            "source": word_vectors.source, "words": len(word_vectors.words),
            "duplicates_ignored": word_vectors.duplicates},
        "tf_text_ops": list(TF_TEXT_OPS) if open_vocab else [],
        "tensorflow": tf.__version__,
    })
    write_json(os.path.join(out_dir, EXPORT_INFO), info)
    return info


def describe_encoder(encoder) -> dict:
    """What export info records about a text encoder (prompts, sources, widths)."""
    parts = getattr(encoder, "parts", [encoder])
    out = []
    for p in parts:
        model = getattr(p, "text_model", None)
        out.append({"dim": int(p.dim), "prompts": list(getattr(p, "prompts", [])),
                    "text_model": type(model).__name__ if model is not None else type(p).__name__,
                    "source": getattr(model, "source", None) or getattr(model, "path", None)})
    return {"dim": int(encoder.dim), "parts": out}


def next_version(model_dir: str) -> int:
    """1 + the largest numeric version under model_dir (1 if none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    version = max(versions, default=0) + 1
    if version > MAX_VERSION:
        raise ExportError(f"{model_dir}: the next version {version} is past TF Serving's int64 "
                          "versions; pass --version or use another --serving-name")
    return version


def serving_inputs(version_dir: str) -> dict:
    """{input name: "dtype[shape]"} of a SavedModel's serving_default signature (read from
    saved_model.pb without loading the model; -1 is an unknown dimension)."""
    from tensorflow.core.protobuf import saved_model_pb2
    sm = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    sig = sm.meta_graphs[0].signature_def.get("serving_default")
    if sig is None:
        return {}
    return {name: f"{tf.dtypes.as_dtype(t.dtype).name}"
                  f"{[d.size for d in t.tensor_shape.dim] if not t.tensor_shape.unknown_rank else '[?]'}"
            for name, t in sorted(sig.inputs.items())}


def signature_mismatch(model_dir: str, new_version_dir: str) -> Optional[str]:
    """Why `new_version_dir` cannot be the next version of the serving model at `model_dir`
    (its serving_default inputs differ from the newest existing version's), or None.
    Clients of a serving name send one input signature; a model taking other inputs
    (sequences instead of vectors, other widths) needs its own name."""
    if not tf.io.gfile.isdir(model_dir):
        return None
    versions = sorted((int(v.rstrip("/")) for v in tf.io.gfile.listdir(model_dir)
                       if v.rstrip("/").isdigit()
                       and tf.io.gfile.exists(os.path.join(model_dir, v.rstrip("/"),
                                                           "saved_model.pb"))), reverse=True)
    if not versions:
        return None
    current = os.path.join(model_dir, str(versions[0]))
    want, got = serving_inputs(current), serving_inputs(new_version_dir)
    if want == got:
        return None
    fmt = lambda d: ", ".join(f"{k} {v}" for k, v in d.items()) or "no serving_default"  # noqa: E731
    return (f"the serving model {model_dir} (version {versions[0]}) takes {fmt(want)}; this "
            f"model takes {fmt(got)}")


def write_models_config(serving_base: str, container_base: str = "/models",
                        wait_s: float = 600.0) -> str:
    """Writes SERVING_BASE/models.config listing every exported model below it.

    Base paths are as seen inside the tensorflow/serving container, where
    SERVING_BASE is mounted at `container_base`. Writers of the file take
    turns (its lock), so no writer drops a model another one just added.
    """
    path = os.path.join(serving_base, "models.config")
    with output_lock(path, "serving config", wait_s=wait_s):
        names = sorted(
            d for d in os.listdir(serving_base)
            if os.path.isdir(os.path.join(serving_base, d)) and any(
                v.isdigit() and os.path.exists(os.path.join(serving_base, d, v, "saved_model.pb"))
                for v in os.listdir(os.path.join(serving_base, d))))
        entries = "".join(
            f'  config {{\n    name: "{n}"\n    base_path: "{container_base}/{n}"\n'
            f'    model_platform: "tensorflow"\n  }}\n' for n in names)
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write(f"model_config_list {{\n{entries}}}\n")
    return path


def export_run(run_dir: str, serving_base: str, model_name: str = "avca",
               version: Optional[int] = None, word_vectors: Optional[str] = None,
               max_words: Optional[int] = None, top_k: int = 5, wait_s: float = 600.0,
               clip_preset: Optional[str] = None, clap_savedmodel: Optional[str] = None,
               clip_prompts=None, clap_prompts=None, keras_file: bool = False,
               media: bool = False) -> str:
    """Exports the run at `run_dir`; returns SERVING_BASE/<model_name>/<version>.

    `keras_file`: also writes the trained Keras model as <version>/model.keras
    (KERAS_FILE; `avca_tf.load_model` or, after `import avca_tf.models`,
    `keras.saving.load_model` reads it back), which TF Serving ignores.

    `word_vectors` is a word2vec/GloVe text file for classify_open; by default
    the one the run's label embeddings were built from, if the run records it.
    `clip_preset` + `clap_savedmodel` (runs on clip_clap features): classify_open
    embeds names with the [CLIP; CLAP] prompt ensembles instead (prompts: the
    dataset's defaults of avca_tf.data.text.encoders unless given).
    Without any, the export has serving_default and embed only.
    `media`: runs on features of `avca extract` also get the media signatures
    (avca_tf.media.serving) with the encoders the extraction recorded.

    Exports into one SERVING_BASE/<model_name> take turns (its lock, waited for
    up to `wait_s` seconds): the version is picked under the lock and an
    existing version is never replaced.
    """
    from avca_tf.training.protocol import load_run
    check_serving_name(model_name, error=ExportError)
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise ExportError(f"--version {version}: expected an integer in [1, {MAX_VERSION}] "
                          "(TF Serving versions are int64)")
    check_dir_target(serving_base, "--out")
    model_dir = os.path.join(os.path.abspath(serving_base), model_name)
    check_dir_target(model_dir, "--out")
    run = load_run(run_dir)
    vocab = ServingVocabulary.from_run(run.class_names, run.label_embeddings,
                                       run.seen_ids, run.unseen_ids, run.beta)
    text_encoder, vectors = None, None
    if clip_preset or clap_savedmodel:
        if not (clip_preset and clap_savedmodel) or word_vectors:
            raise ExportError("clip_preset and clap_savedmodel go together, without word vectors")
        from avca_tf.data.text.encoders import clip_clap_encoder
        text_encoder = clip_clap_encoder(clip_preset, clap_savedmodel,
                                         run.run_config.data.dataset, clip_prompts, clap_prompts)
    else:
        path = word_vectors or _recorded_word_vectors(run)
        vectors = WordVectors.load(path, max_words) if path else None
    inputs = kind_of(run.run_config.model.name).serving_inputs(run.run_config)
    media_encoder = None
    if media:
        from avca_tf.media.encoders import encoder_from_identity, read_extract_meta
        data = run.run_config.data
        try:
            meta = read_extract_meta(data.root, data.dataset, data.feature_set)
            media_encoder = encoder_from_identity(meta["encoders"])
        except AvcaError as e:
            raise ExportError(f"--media: {e}") from None
    with output_lock(model_dir, "serving model directory", wait_s=wait_s), \
            _remove_if_left_empty(model_dir):
        remove_temporaries(model_dir)  # of exports killed before they published
        if version is None:
            version = next_version(model_dir)
        out_dir = os.path.join(model_dir, str(version))
        if os.path.lexists(out_dir):
            raise ExportError(f"{out_dir} already exists; versions are never overwritten "
                              "(pick another --version or leave it out for the next one)")
        info = {"run_dir": os.path.abspath(run_dir), "model_name": model_name,
                "version": version, "keras_file": KERAS_FILE if keras_file else None,
                "model": run.run_config.model.name,
                "feature_set": run.run_config.data.feature_set}
        with atomic_path(out_dir, replace=False) as tmp:
            export_model(run.model, inputs.d_a, inputs.d_v, vocab, tmp, vectors, top_k, info,
                         inputs, text_encoder=text_encoder, media_encoder=media_encoder)
            problem = signature_mismatch(model_dir, tmp)
            if problem:
                raise ExportError(f"{problem}: export under another --serving-name")
            if keras_file:
                run.model.save(os.path.join(tmp, KERAS_FILE))
    write_models_config(os.path.abspath(serving_base), wait_s=wait_s)
    return out_dir


@contextlib.contextmanager
def _remove_if_left_empty(model_dir: str):
    """A failed first export leaves no empty model directory behind (TF Serving would
    list a model without versions)."""
    existed = os.path.isdir(model_dir)
    try:
        yield
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                os.rmdir(model_dir)  # only if empty
        raise


def _recorded_word_vectors(run) -> Optional[str]:
    """The word-vector file the run's label embeddings were built from, if it has one.

    Only the toy benchmark ships word vectors; the published benchmarks ship
    class-level vectors, which cannot embed new names.
    """
    from avca_tf.data.synthesis.synth import TOY, toy_word_vectors_path
    data = run.run_config.data
    if data.dataset != TOY or not data.root:
        return None
    path = toy_word_vectors_path(data.root)
    return str(path) if path.exists() else None


def load_export_info(version_dir: str) -> dict:
    """The assets.extra/avca_export.json written beside an export."""
    with open(os.path.join(version_dir, EXPORT_INFO)) as f:
        return json.load(f)
