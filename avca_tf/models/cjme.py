"""CJME: coordinated joint multimodal embeddings with a modality attention.

As in the reference: audio, video and text each go through an MLP
(Linear-BN-ReLU-Dropout-Linear-ReLU) into a 64-d space; an attention unit
(BN -> Linear -> sigmoid on the concatenated [audio, video] input) weighs the
video triplet against the audio triplet. Its target comes from the entropies
of the audio/video class posteriors: 0 (audio) when video is more uncertain
by more than 0.1 nats, 1 (video) when audio is, else 0.5. Loss: weighted
triplets + MSE(audio emb, video emb) + MSE(attention, target).

The reference multiplies a [B, 1] weight by [B] triplet losses, which
broadcasts to [B, B]; its mean equals (1 - mean w) * mean l_ta +
mean(w) * mean l_tv, which is what we compute. Prediction: the attention
thresholded at 0.5 picks the audio or the video embedding, compared (L2)
with the projected class embeddings.
"""
import keras
from keras import ops

from avca_tf.models.layers import TorchDense
from avca_tf.models.losses import mse
from avca_tf.models.base import GZSLModel, serializable
from avca_tf.models.baseline_layers import baseline_mlp, batch_classes
from avca_tf.models.losses import triplet_margin_loss

ENTROPY_MARGIN = 0.1


def _entropy(logits):
    p = ops.softmax(logits, axis=-1)
    return -ops.sum(p * ops.log(ops.maximum(p, 1e-12)), axis=-1)


def attention_target(audio_logits, video_logits):
    """1 where audio is more uncertain, 0 where video is, 0.5 in between."""
    diff = _entropy(video_logits) - _entropy(audio_logits)
    return ops.where(diff > ENTROPY_MARGIN, 0.0, ops.where(-diff > ENTROPY_MARGIN, 1.0, 0.5))


@serializable
class CJME(GZSLModel):

    def __init__(self, audio_dim, video_dim, hidden_dim=1024, embed_dim=64, dropout=0.2,
                 use_bn=True, margin=1.0, text_dim=300, bn_momentum=0.9, bn_epsilon=1e-5,
                 **kwargs):
        super().__init__(**kwargs)
        self.audio_dim, self.video_dim, self.text_dim = audio_dim, video_dim, text_dim
        self.hidden_dim, self.embed_dim, self.dropout_rate = hidden_dim, embed_dim, dropout
        self.use_bn, self.margin = use_bn, margin
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        mlp = dict(units=embed_dim, dropout=dropout, use_bn=use_bn, output_relu=True,
                   momentum=bn_momentum, epsilon=bn_epsilon)
        self.f_audio = baseline_mlp(hidden_dim, name="f_audio", **mlp)
        self.f_video = baseline_mlp(hidden_dim, name="f_video", **mlp)
        self.f_text = baseline_mlp(text_dim, name="f_text", **mlp)
        self.att_norm = keras.layers.BatchNormalization(momentum=bn_momentum, epsilon=bn_epsilon,
                                                        name="attention_bn")
        self.att_dense = TorchDense(1, name="attention")
        self.build()

    def build(self, input_shape=None):
        self.f_audio.build((None, self.audio_dim))
        self.f_video.build((None, self.video_dim))
        self.f_text.build((None, self.text_dim))
        self.att_norm.build((None, self.audio_dim + self.video_dim))
        self.att_dense.build((None, self.audio_dim + self.video_dim))
        self.built = True

    def attention(self, audio, video, training=False):
        """Weight of the video modality in [0, 1], shape [B]."""
        x = self.att_norm(ops.concatenate([audio, video], axis=-1), training=training)
        return ops.sigmoid(self.att_dense(x))[:, 0]

    def embed(self, audio, video, training=False):
        use_video = self.attention(audio, video, training) >= 0.5
        return ops.where(use_video[:, None], self.f_video(video, training=training),
                         self.f_audio(audio, training=training))

    def embed_classes(self, class_embeddings, training=False):
        return self.f_text(class_embeddings, training=training)

    def compute_losses(self, batch, training=True):
        a1 = self.f_audio(batch["audio"], training=training)
        v1 = self.f_video(batch["video"], training=training)
        t1 = self.f_text(batch["text"], training=training)
        a2 = self.f_audio(batch["neg_audio"], training=training)
        v2 = self.f_video(batch["neg_video"], training=training)
        weight = self.attention(batch["audio"], batch["video"], training)

        class_text, _ = batch_classes(batch)
        classes = ops.stop_gradient(self.f_text(class_text, training=False))
        target = ops.stop_gradient(attention_target(
            ops.matmul(ops.stop_gradient(a1), ops.transpose(classes)),
            ops.matmul(ops.stop_gradient(v1), ops.transpose(classes))))

        l_ta = triplet_margin_loss(t1, a1, a2, self.margin)
        l_tv = triplet_margin_loss(t1, v1, v2, self.margin)
        w = ops.mean(weight)
        losses = {"triplet": (1.0 - w) * l_ta + w * l_tv, "av": mse(a1, v1),
                  "attention": mse(weight, target)}
        losses["total"] = losses["triplet"] + losses["av"] + losses["attention"]
        return losses

    def get_config(self):
        return {**super().get_config(), "audio_dim": self.audio_dim, "video_dim": self.video_dim,
                "hidden_dim": self.hidden_dim, "embed_dim": self.embed_dim,
                "dropout": self.dropout_rate, "use_bn": self.use_bn, "margin": self.margin,
                "text_dim": self.text_dim, "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon}
