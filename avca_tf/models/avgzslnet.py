"""AVGZSLNet: audio/video/text embeddings plus a cross-modal decoder to word space.

As in the reference (1,319,872 parameters on SeLaVi features): f_a, f_v
(d -> 1024 -> 64) and f_t (300 -> 300 -> 64) are Linear-BN-ReLU-Dropout(0.8)
-Linear MLPs; the decoder (64 -> 64 -> 300, dropout 0.5, L2-normalised
output) reconstructs the label embedding from each embedding. The loss l_c
is the cross-modal decoder loss (L2 reconstruction distances + two triplets
on the reconstructions) plus the composite triplet loss (text<->audio and
text<->video in both anchor directions), all with margin 1.
Prediction: sum of the audio and video L2 distances to the text embedding.
"""
import tensorflow as tf
from keras import ops

from avca_tf.models.losses import triplet_margin_loss as triplet_loss
from avca_tf.models.base import GZSLModel, serializable
from avca_tf.models.baseline_layers import baseline_mlp
from avca_tf.models.distances import pairwise_l2, row_l2


def decoder_loss(word, rec_text, rec_audio, rec_video, rec_audio_neg, rec_video_neg, margin=1.0):
    """The reference's CrossModalDecoderLoss terms."""
    rec = [ops.mean(row_l2(r, word, eps=0.0)) for r in (rec_text, rec_audio, rec_video)]
    return {"rec": rec[0] + rec[1] + rec[2],
            "ct_audio": triplet_loss(rec_text, rec_audio, rec_audio_neg, margin),
            "ct_video": triplet_loss(rec_text, rec_video, rec_video_neg, margin)}


def composite_triplets(a1, v1, t1, a2, v2, t2, margin=1.0):
    """The reference's CompositeTripletLoss terms."""
    return {"ta": triplet_loss(t1, a1, a2, margin), "at": triplet_loss(a1, t1, t2, margin),
            "tv": triplet_loss(t1, v1, v2, margin), "vt": triplet_loss(v1, t1, t2, margin)}


def summed_branch_distances(audio_emb, video_emb, class_emb):
    """Sum of the audio and video branches' L2 distances to each class [B, C]."""
    return pairwise_l2(audio_emb, class_emb) + pairwise_l2(video_emb, class_emb)


@serializable
class AVGZSLNet(GZSLModel):

    def __init__(self, audio_dim, video_dim, hidden_dim=1024, embed_dim=64, decoder_hidden=64,
                 embedding_dropout=0.8, decoder_dropout=0.5, use_bn=True, normalize_decoder=True,
                 margin=1.0, text_dim=300, bn_momentum=0.9, bn_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.audio_dim, self.video_dim, self.text_dim = audio_dim, video_dim, text_dim
        self.hidden_dim, self.embed_dim, self.decoder_hidden = hidden_dim, embed_dim, decoder_hidden
        self.embedding_dropout, self.decoder_dropout = embedding_dropout, decoder_dropout
        self.use_bn, self.normalize_decoder, self.margin = use_bn, normalize_decoder, margin
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        bn = dict(use_bn=use_bn, momentum=bn_momentum, epsilon=bn_epsilon)
        emb = dict(units=embed_dim, dropout=embedding_dropout, **bn)
        self.f_audio = baseline_mlp(hidden_dim, name="f_audio", **emb)
        self.f_video = baseline_mlp(hidden_dim, name="f_video", **emb)
        self.f_text = baseline_mlp(text_dim, name="f_text", **emb)
        self.decoder = baseline_mlp(decoder_hidden, text_dim, dropout=decoder_dropout,
                                   name="decoder", **bn)
        self.build()

    def build(self, input_shape=None):
        self.f_audio.build((None, self.audio_dim))
        self.f_video.build((None, self.video_dim))
        self.f_text.build((None, self.text_dim))
        self.decoder.build((None, self.embed_dim))
        self.built = True

    def decode(self, x, training=False):
        y = self.decoder(x, training=training)
        return tf.math.l2_normalize(y, axis=-1, epsilon=1e-12) if self.normalize_decoder else y

    def branch_embeddings(self, audio, video, training=False):
        return self.f_audio(audio, training=training), self.f_video(video, training=training)

    def embed(self, audio, video, training=False):
        """[audio emb, video emb] concatenated (distances are summed per branch)."""
        return ops.concatenate(self.branch_embeddings(audio, video, training), axis=-1)

    def embed_classes(self, class_embeddings, training=False):
        t = self.f_text(class_embeddings, training=training)
        return ops.concatenate([t, t], axis=-1)

    def class_distances(self, audio, video, class_embeddings, training=False):
        a, v = self.branch_embeddings(audio, video, training)
        return summed_branch_distances(a, v, self.f_text(class_embeddings, training=training))

    def compute_losses(self, batch, training=True):
        a1, v1 = self.branch_embeddings(batch["audio"], batch["video"], training)
        a2, v2 = self.branch_embeddings(batch["neg_audio"], batch["neg_video"], training)
        t1 = self.f_text(batch["text"], training=training)
        t2 = self.f_text(batch["neg_text"], training=training)
        losses = decoder_loss(batch["text"], self.decode(t1, training), self.decode(a1, training),
                              self.decode(v1, training), self.decode(a2, training),
                              self.decode(v2, training), self.margin)
        losses.update(composite_triplets(a1, v1, t1, a2, v2, t2, self.margin))
        losses["total"] = sum(losses.values())
        return losses

    def get_config(self):
        return {**super().get_config(), "audio_dim": self.audio_dim, "video_dim": self.video_dim,
                "hidden_dim": self.hidden_dim, "embed_dim": self.embed_dim,
                "decoder_hidden": self.decoder_hidden,
                "embedding_dropout": self.embedding_dropout,
                "decoder_dropout": self.decoder_dropout, "use_bn": self.use_bn,
                "normalize_decoder": self.normalize_decoder, "margin": self.margin,
                "text_dim": self.text_dim, "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon}
