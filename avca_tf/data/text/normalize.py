"""Class-name normalisation with tensorflow-text ops.

One graph-safe function, `normalize_class_names`, is shared by the Beam
embedding job and the exported SavedModel, so a class name typed at serving
time is tokenised exactly as it was when its label embedding was built. It
uses only core TF string ops and tensorflow-text kernels (the SavedModel needs
`import tensorflow_text` before loading).

Steps: Unicode NFKC normalisation; CamelCase boundaries become spaces
(`HandStandPushups` -> `Hand Stand Pushups`, `BMXRace` -> `BMX Race`,
`MP3Player` -> `MP3 Player`);
underscores, punctuation and symbols become spaces; case folding; whitespace
tokenisation.
"""
from typing import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

# RE2 patterns (tf.strings.regex_replace). Order matters: acronym boundary
# first so "BMXRace" splits before "XR" could be seen as lower->upper.
_ACRONYM_BOUNDARY = (r"(\p{Lu}|\p{Nd})(\p{Lu}\p{Ll})", r"\1 \2")
_CAMEL_BOUNDARY = (r"(\p{Ll})(\p{Lu})", r"\1 \2")
# Everything that is not a letter, a digit or a combining mark separates tokens
# (underscores, hyphens, commas, brackets, apostrophes, whitespace).
_SEPARATORS = (r"[^\p{L}\p{N}\p{M}]+", " ")

_tokenizer = tf_text.WhitespaceTokenizer()


def normalize_class_names(names) -> tf.RaggedTensor:
    """Tokenises class names: string tensor [n] -> ragged string tensor [n, None].

    Graph-safe (usable inside tf.function and SavedModel signatures).
    """
    names = tf.convert_to_tensor(names, dtype=tf.string)
    text = tf_text.normalize_utf8(names, "NFKC")
    for pattern, rewrite in (_ACRONYM_BOUNDARY, _CAMEL_BOUNDARY, _SEPARATORS):
        text = tf.strings.regex_replace(text, pattern, rewrite)
    text = tf_text.case_fold_utf8(text)
    return _tokenizer.tokenize(text)


def normalized_strings(names: Sequence[str]) -> list:
    """Python convenience: each name's tokens joined by one space.

    `normalized_strings(["HandStandPushups"]) == ["hand stand pushups"]`.
    """
    names = list(names)
    if not names:
        return []
    tokens = normalize_class_names(tf.constant(names, dtype=tf.string))
    joined = tf.strings.reduce_join(tokens, axis=1, separator=" ")
    return [s.decode("utf-8") for s in joined.numpy()]


def class_name_tokens(names: Sequence[str]) -> list:
    """Python convenience: each name's token list (str)."""
    names = list(names)
    if not names:
        return []
    tokens = normalize_class_names(tf.constant(names, dtype=tf.string))
    return [[t.decode("utf-8") for t in row] for row in tokens.to_list()]
