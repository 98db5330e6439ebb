"""The loss functions (torch's TripletMarginLoss and MSELoss) and AVCA's loss terms."""
from __future__ import annotations

from keras import ops

from avca_tf.config import LossConfig
from avca_tf.errors import ConfigError
from avca_tf.models.distances import row_l2


def triplet_margin(anchor, positive, negative, margin=1.0):
    """Per-sample nn.TripletMarginLoss(reduction="none") [B]: max(d(a, p) - d(a, n) + margin, 0)."""
    return ops.relu(row_l2(anchor, positive) - row_l2(anchor, negative) + margin)


def triplet_margin_loss(anchor, positive, negative, margin=1.0):
    """mean(max(d(a, p) - d(a, n) + margin, 0)) with L2 distances."""
    return ops.mean(triplet_margin(anchor, positive, negative, margin))


def mse(x, y):
    return ops.mean(ops.square(x - y))


MODALITY_KEYS = {"audio": "a", "video": "v"}


def _sum(parts):
    """parts[0] + parts[1] + ... (left to right)."""
    return sum(parts[1:], parts[0])


def avca_loss_terms(t: dict, cfg: LossConfig, modalities=("audio", "video")) -> dict:
    """The reference's AVCA loss from the forward tensors `t`, over `modalities`
    (both for AVCA; one for the single-branch ablations).

    Keys of t: w (label embedding), phi_a/phi_v (encoder outputs), theta_a/v/w
    and their `_neg` versions (projections), rho_a/v/w and `_neg`
    (text reconstructions D(theta)), phi_a_rec/phi_v_rec (A_rec/V_rec(theta)),
    for the modalities used. Returns the enabled terms and "total".

    The terms are created and summed in the reference's order (video before
    audio in the reconstruction, the first embedding triplets and the
    regression). The order matters beyond the sums: TensorFlow adds up the
    gradients of a shared tensor in the order its uses were created, so this
    order is what keeps AVCA's training the same to the bit.
    """
    ks = [MODALITY_KEYS[m] for m in modalities]
    sk = ks[::-1]   # video first
    trip = lambda a, p, n: triplet_margin_loss(a, p, n, cfg.margin)  # noqa: E731
    terms = {}
    if cfg.reconstruction:
        terms["reconstruction"] = _sum([mse(t["w"], t[f"rho_{k}"]) for k in sk]
                                       + [mse(t["w"], t["rho_w"])])
    if cfg.reconstruction_triplets:
        terms["reconstruction_triplet"] = _sum(
            [trip(t["rho_w"], t[f"rho_{k}"], t[f"rho_{k}_neg"]) for k in ks])
    if cfg.embedding_triplets:
        terms["embedding_triplet"] = _sum(
            [trip(t["theta_w"], t[f"theta_{k}"], t[f"theta_{k}_neg"]) for k in sk]
            + [trip(t[f"theta_{k}"], t["theta_w"], t["theta_w_neg"]) for k in ks])
    if cfg.additional_triplets:
        first = _sum([trip(t[f"theta_{k}"], t["theta_w"], t[f"theta_{k}_neg"]) for k in ks])
        second = _sum([trip(t["theta_w"], t[f"theta_{k}"], t["theta_w_neg"]) for k in ks])
        terms["additional_triplet"] = (cfg.first_additional_weight * first
                                       + cfg.second_additional_weight * second)
    if cfg.regression:
        terms["regression"] = _sum([mse(t[f"phi_{k}_rec"], t[f"phi_{k}"]) for k in sk]
                                   + [mse(t[f"theta_{k}"], t["theta_w"]) for k in sk])
    if not terms:
        raise ConfigError("the loss configuration enables no loss term")
    terms["total"] = _sum(list(terms.values()))
    return terms
