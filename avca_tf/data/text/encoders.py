"""Class-name encoders: class names -> label-embedding vectors (docs/clipclap.md).

Every encoder has `dim` and `encode(names) -> float32 [N, dim]`. Encoders
whose computation is a TensorFlow graph also have `tf_encode(names: tf.string
[N]) -> tf.float32 [N, dim]`, which the SavedModel export embeds so that
`classify_open` computes a new name's vector in the served graph.

* `WordAverageEncoder`: the word2vec/GloVe averaging of the AVCA benchmarks
  (tokens of avca_tf.data.text.normalize, vectors of avca_tf.data.text.word_vectors; mean of
  the known tokens, L2-normalised).
* `PromptEnsembleEncoder`: any text model with a string -> vector signature,
  applied to every prompt of a template ensemble ("a video of {}."); each
  prompt vector is L2-normalised, the ensemble averaged and renormalised.
  Text models:
    - `KerasHubCLIPText`: keras-hub's CLIP tokenizer + text tower + text
      projection, from a keras-hub preset name or a local preset directory.
    - `SavedModelText`: a SavedModel whose signature maps a string tensor [N]
      to float vectors [N, D], for text towers without a Keras port (CLAP's
      BERT + projection).
* `ConcatEncoder`: [part 1; part 2; ...], e.g. [CLIP; CLAP] = 1536-d.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from avca_tf.errors import AvcaError

# Prompt ensembles (our wording; `{}` is replaced by the class name). The
# authors' lists are 8 generic / 48 "person ..." CLIP prompts and 9 or 30 CLAP
# prompts; pass your own with --clip-prompts / --clap-prompts (one per line).
CLIP_PROMPTS = (
    "a video of {}.", "a photo of {}.", "a video frame showing {}.", "a picture of {}.",
    "a blurry photo of {}.", "a close-up photo of {}.", "a still from a video of {}.",
    "an example of {}.",
)
CLIP_PERSON_PROMPTS = (
    "a video of a person doing {}.", "a photo of a person doing {}.",
    "a video frame of someone doing {}.", "a person practising {}.",
    "people doing {}.", "a still of a person doing {}.", "someone performing {}.",
    "a clip of a person doing {}.",
)
CLAP_PROMPTS = (
    "the sound of {}.", "{} is audible.", "a recording of {}.", "this is the sound of {}.",
    "an audio clip of {}.", "the noise of {}.", "you can hear {}.", "{} in the background.",
    "a loud sound of {}.",
)
DATASET_CLIP_PROMPTS = {"VGGSound": CLIP_PROMPTS, "UCF": CLIP_PERSON_PROMPTS,
                        "ActivityNet": CLIP_PERSON_PROMPTS}


class TextEncoderError(AvcaError, ValueError):
    """An encoder cannot be built or cannot embed a name."""


def read_prompts(path: str) -> tuple[str, ...]:
    """Templates of a prompt file: one per line, each with exactly one `{}`."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    prompts = tuple(line for line in lines if line.strip())
    check_prompts(prompts, path)
    return prompts


def check_prompts(prompts: Sequence[str], where: str = "prompts") -> None:
    if not prompts:
        raise TextEncoderError(f"{where}: no prompt templates")
    for i, p in enumerate(prompts):
        if p.count("{}") != 1:
            raise TextEncoderError(f"{where}: template {i + 1} {p!r} must contain exactly one "
                                   f"'{{}}' (where the class name goes)")


def _l2(x):
    return tf.math.l2_normalize(x, axis=-1, epsilon=1e-12)


class WordAverageEncoder:
    """Mean of the class name's known word vectors, L2-normalised (today's label embeddings)."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray, source: str = ""):
        self.index = {w: i for i, w in enumerate(words)}
        self.vectors = np.asarray(vectors, np.float32)
        self.dim = int(self.vectors.shape[1])
        self.source = source

    @classmethod
    def load(cls, path: str, max_words: Optional[int] = None) -> "WordAverageEncoder":
        from avca_tf.data.text.word_vectors import load_word_vectors
        words, vectors = load_word_vectors(path, max_words=max_words)
        return cls(words, vectors, path)

    def encode(self, names: Sequence[str]) -> np.ndarray:
        from avca_tf.data.text.normalize import class_name_tokens
        out = np.empty((len(names), self.dim), np.float32)
        for i, (name, tokens) in enumerate(zip(names, class_name_tokens(names))):
            known = [self.index[t] for t in tokens if t in self.index]
            if not known:
                raise TextEncoderError(f"class {name!r}: no token of {tokens} is in the word "
                                       f"vectors {self.source}")
            mean = self.vectors[known].mean(axis=0)
            out[i] = mean / max(np.linalg.norm(mean), 1e-12)
        return out


class PromptEnsembleEncoder(tf.Module):
    """Prompt ensemble over a text model `text_model(tf.string [M]) -> float [M, D]`."""

    def __init__(self, text_model: Callable, prompts: Sequence[str], dim: int,
                 name: str = "prompt_ensemble"):
        super().__init__(name=name)
        check_prompts(prompts)
        self.text_model, self.prompts, self.dim = text_model, tuple(prompts), int(dim)
        self._parts = [tuple(p.split("{}")) for p in self.prompts]

    def prompt_strings(self, names) -> tf.Tensor:
        """[P * N] prompts, template-major (all names of template 0, then template 1, ...)."""
        names = tf.convert_to_tensor(names, tf.string)
        return tf.concat([tf.strings.join([pre, names, post]) for pre, post in self._parts],
                         axis=0)

    def tf_encode(self, names) -> tf.Tensor:
        names = tf.convert_to_tensor(names, tf.string)
        vectors = _l2(tf.cast(self.text_model(self.prompt_strings(names)), tf.float32))
        vectors = tf.reshape(vectors, [len(self.prompts), tf.shape(names)[0], self.dim])
        return _l2(tf.reduce_mean(vectors, axis=0))

    def encode(self, names: Sequence[str]) -> np.ndarray:
        return self.tf_encode(tf.constant(list(names), tf.string)).numpy().astype(np.float32)


class ConcatEncoder(tf.Module):
    """[encoder 1 (names); encoder 2 (names); ...] along the vector axis."""

    def __init__(self, parts: Sequence, name: str = "concat_encoder"):
        super().__init__(name=name)
        self.parts = list(parts)
        self.dim = sum(p.dim for p in self.parts)

    def tf_encode(self, names) -> tf.Tensor:
        return tf.concat([p.tf_encode(names) for p in self.parts], axis=1)

    def encode(self, names: Sequence[str]) -> np.ndarray:
        return np.concatenate([p.encode(names) for p in self.parts], axis=1)


class KerasHubCLIPText(tf.Module):
    """keras-hub CLIP text tower: strings -> projected text embeddings [M, projection_dim].

    Lower-casing, BPE tokenisation with start/end tokens, packing to the
    encoder's sequence length, the text encoder, the end-token pooler and the
    text projection, as keras-hub's CLIPBackbone.get_text_embeddings.
    """

    def __init__(self, backbone, tokenizer, sequence_length: Optional[int] = None,
                 name: str = "clip_text"):
        super().__init__(name=name)
        import keras_hub
        self.backbone, self.tokenizer = backbone, tokenizer
        length = sequence_length or backbone.text_encoder.max_sequence_length
        self.preprocessor = keras_hub.models.CLIPPreprocessor(tokenizer, sequence_length=length)
        self.dim = int(backbone.projection_dim)

    @classmethod
    def from_preset(cls, preset: str, sequence_length: Optional[int] = None) -> "KerasHubCLIPText":
        """A keras-hub preset name (e.g. clip_vit_base_patch32) or a local preset directory."""
        try:
            import keras_hub
        except ImportError as e:
            raise TextEncoderError("the CLIP text encoder needs keras-hub "
                                   "(pip install keras-hub; see requirements/extra.txt)") from e
        try:
            backbone = keras_hub.models.CLIPBackbone.from_preset(preset)
            tokenizer = keras_hub.models.CLIPTokenizer.from_preset(preset)
        except Exception as e:  # network, missing files, wrong preset type
            raise TextEncoderError(f"cannot load the CLIP preset {preset!r}: {e}") from e
        return cls(backbone, tokenizer, sequence_length)

    def __call__(self, strings):
        x = self.preprocessor({"prompts": strings, "images": None})
        token_ids = x["token_ids"] if isinstance(x, dict) else x[0]["token_ids"]
        return self.backbone.get_text_embeddings(token_ids)


class SavedModelText(tf.Module):
    """A SavedModel text tower: signature `signature` maps tf.string [N] to float [N, D]."""

    def __init__(self, path: str, signature: str = "serving_default",
                 output: Optional[str] = None, name: str = "savedmodel_text"):
        super().__init__(name=name)
        try:
            self.loaded = tf.saved_model.load(path)
        except Exception as e:
            raise TextEncoderError(f"{path}: not a loadable SavedModel ({e})") from e
        if signature not in self.loaded.signatures:
            raise TextEncoderError(f"{path}: no signature {signature!r}; it has "
                                   f"{sorted(self.loaded.signatures)}")
        self.fn = self.loaded.signatures[signature]
        inputs = self.fn.structured_input_signature[1]
        if len(inputs) != 1 or next(iter(inputs.values())).dtype != tf.string:
            raise TextEncoderError(f"{path}: signature {signature!r} must take one string "
                                   f"tensor [N], got {inputs}")
        self.input_name = next(iter(inputs))
        outputs = self.fn.structured_outputs
        if output is None:
            if len(outputs) != 1:
                raise TextEncoderError(f"{path}: signature {signature!r} has outputs "
                                       f"{sorted(outputs)}; name the vector output")
            output = next(iter(outputs))
        if output not in outputs:
            raise TextEncoderError(f"{path}: signature {signature!r} has no output {output!r}")
        self.output = output
        self.dim = int(outputs[output].shape[-1])
        self.path = path

    def __call__(self, strings):
        return self.fn(**{self.input_name: strings})[self.output]


def clip_clap_encoder(clip_preset: str, clap_savedmodel: str, dataset: str = "UCF",
                      clip_prompts: Optional[Sequence[str]] = None,
                      clap_prompts: Optional[Sequence[str]] = None) -> ConcatEncoder:
    """[CLIP prompt ensemble; CLAP prompt ensemble], the clip_clap class embeddings."""
    clip = KerasHubCLIPText.from_preset(clip_preset)
    clap = SavedModelText(clap_savedmodel)
    return ConcatEncoder([
        PromptEnsembleEncoder(clip, clip_prompts or DATASET_CLIP_PROMPTS.get(dataset, CLIP_PROMPTS),
                              clip.dim, name="clip_prompts"),
        PromptEnsembleEncoder(clap, clap_prompts or CLAP_PROMPTS, clap.dim, name="clap_prompts")])
