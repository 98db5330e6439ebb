"""The interface every GZSL model (AVCA, baselines, ablations) implements.

The training loop, the GZSL evaluation, the SavedModel export and the TFX
components only talk to this interface, so a new model plugs into all of them.
"""
import keras

from avca_tf.models.distances import pairwise_l2


class GZSLModel(keras.Model):
    """A model scoring audio-visual samples against class label embeddings.

    `input_kind` names how it reads a video (avca_tf.inputs): "averaged" (one vector
    per modality; batches from avca_tf.data.batching.sampling: `audio`, `video`,
    `text` (label embedding of the sample's class), `label`, and the same keys
    prefixed with `neg_` for a sample of another class) or "sequences" (padded
    per-step features with masks and step times, no negatives). With
    `uses_training_classes` the batches also carry `class_text` [K, text_dim], the
    training classes' vectors (sorted ids), and `class_index` [B], each label's
    position among them.
    """

    input_kind = "averaged"
    uses_training_classes = False

    def compute_losses(self, batch, training=True):
        """Returns a dict of scalar loss terms, including "total"."""
        raise NotImplementedError

    def embed(self, audio, video, training=False):
        """The audio-visual embedding [B, D] that is compared with classes.

        Sequence models (`input_kind = "sequences"`) take padded [B, T, D] features
        and the keywords audio_mask, audio_time, video_mask, video_time."""
        raise NotImplementedError

    def embed_classes(self, class_embeddings, training=False):
        """Class label embeddings [C, text_dim] projected into the joint space [C, D]."""
        raise NotImplementedError

    def class_distances(self, audio, video, class_embeddings, training=False, **seq):
        """Distances [B, C] (smaller = more likely); prediction is the argmin.

        `seq`: a sequence model's masks and step times, passed on to `embed`."""
        return pairwise_l2(self.embed(audio, video, training=training, **seq),
                           self.embed_classes(class_embeddings, training=training))
