"""Small randomly initialised text encoders of the real architectures (no downloads).

`tiny_clip_preset(dir)`: a keras-hub CLIPBackbone + CLIPTokenizer (1 layer, width 16,
projection 512) saved as a keras-hub preset directory, loaded back through
`KerasHubCLIPText.from_preset` like a downloaded preset.
`tiny_clap_savedmodel(dir)`: a CLAP-like text tower as a SavedModel: tokens
(tensorflow-text normalisation), hashed embeddings, mean, projection to 1024.
"""
import string

import keras
import numpy as np
import tensorflow as tf


def tiny_clip_preset(path, projection_dim=512, seed=0):
    import keras_hub
    keras.utils.set_random_seed(seed)
    chars = list(string.ascii_lowercase + string.digits + ".,'-")
    vocab = {}
    for c in chars:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = ["t h", "th e</w>", "o f</w>", "a n", "i n", "in g</w>"]
    for m in merges:
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = keras_hub.models.CLIPTokenizer(vocabulary=vocab, merges=merges)
    text = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=len(vocab), embedding_dim=16, hidden_dim=16, num_layers=1, num_heads=2,
        intermediate_dim=32, max_sequence_length=40)
    vision = keras_hub.models.CLIPVisionEncoder(
        patch_size=8, hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=32,
        image_shape=(16, 16, 3))
    backbone = keras_hub.models.CLIPBackbone(vision, text, projection_dim=projection_dim)
    backbone.save_to_preset(str(path))
    tokenizer.save_to_preset(str(path))
    return str(path)


def tiny_clap_savedmodel(path, dim=1024, buckets=4096, width=32, seed=1):
    from avca_tf.data.text.normalize import normalize_class_names
    rng = np.random.default_rng(seed)
    module = tf.Module()
    module.table = tf.Variable(rng.standard_normal((buckets, width)).astype(np.float32))
    module.proj = tf.Variable((rng.standard_normal((width, dim)) / np.sqrt(width)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        tokens = normalize_class_names(text)
        ids = tf.strings.to_hash_bucket_fast(tokens, buckets)
        vectors = tf.ragged.map_flat_values(tf.gather, module.table, ids)
        return {"embedding": tf.tanh(tf.reduce_mean(vectors, axis=1)) @ module.proj}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return str(path)
