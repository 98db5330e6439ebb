"""APN (attribute prototype network) as the reference adapts it to feature vectors.

On a feature vector (no spatial map) the reference's APN reduces to two
bias-free linear maps of the concatenated [video, audio] input into the
300-d label-embedding space (initialised U(0, 2e-4)): the ALE branch
`final` and the prototype branch. Loss per branch: cross-entropy of the
class scores (branch output . class embeddings) plus MSE regression of the
branch output onto the sample's label embedding. The reference feeds the
softmax probabilities into nn.CrossEntropyLoss (a second softmax); we keep
that so results are comparable. Prediction: nearest class embedding (L2)
to the ALE branch output.
"""
import keras
from keras import ops

from avca_tf.models.losses import mse
from avca_tf.models.base import GZSLModel, serializable
from avca_tf.models.baseline_layers import batch_classes, concat_inputs


@serializable
class APN(GZSLModel):

    def __init__(self, audio_dim, video_dim, norm_inputs=False, text_dim=300, **kwargs):
        super().__init__(**kwargs)
        self.audio_dim, self.video_dim, self.text_dim = audio_dim, video_dim, text_dim
        self.norm_inputs = norm_inputs
        self.build()

    def build(self, input_shape=None):
        init = keras.initializers.RandomUniform(0.0, 2e-4)
        dim = self.audio_dim + self.video_dim
        self.ale_vector = self.add_weight(shape=(dim, self.text_dim), initializer=init,
                                          name="ale_vector")
        self.prototypes = self.add_weight(shape=(dim, self.text_dim), initializer=init,
                                          name="prototypes")
        self.built = True

    def embed(self, audio, video, training=False):
        return ops.matmul(concat_inputs(audio, video, self.norm_inputs), self.ale_vector)

    def embed_classes(self, class_embeddings, training=False):
        return class_embeddings

    def compute_losses(self, batch, training=True):
        class_text, target = batch_classes(batch)
        x = concat_inputs(batch["audio"], batch["video"], self.norm_inputs)
        losses = {}
        for name, weight in (("final", self.ale_vector), ("prototype", self.prototypes)):
            attributes = ops.matmul(x, weight)
            probs = ops.softmax(ops.matmul(attributes, ops.transpose(class_text)), axis=-1)
            picked = ops.take_along_axis(probs, ops.expand_dims(target, 1), axis=1)[:, 0]
            losses[f"xe_{name}"] = ops.mean(ops.logsumexp(probs, axis=-1) - picked)
            losses[f"attr_{name}"] = mse(attributes, batch["text"])
        losses["total"] = sum(losses.values())
        return losses

    def get_config(self):
        return {**super().get_config(), "audio_dim": self.audio_dim, "video_dim": self.video_dim,
                "norm_inputs": self.norm_inputs, "text_dim": self.text_dim}
