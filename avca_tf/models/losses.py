"""Loss functions of AVCA (SPEC §5), matching torch's TripletMarginLoss and MSELoss."""
from __future__ import annotations

from keras import ops

from avca_tf.config import LossConfig
from avca_tf.errors import ConfigError

PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance adds eps to the difference


def pairwise_distance(x, y, eps=PAIRWISE_EPS):
    """Row-wise L2 distance ||x - y + eps||, as torch's pairwise_distance."""
    return ops.sqrt(ops.sum(ops.square(x - y + eps), axis=-1))


def triplet_margin_loss(anchor, positive, negative, margin=1.0):
    """mean(max(d(a, p) - d(a, n) + margin, 0)) with L2 distances."""
    return ops.mean(ops.relu(pairwise_distance(anchor, positive)
                             - pairwise_distance(anchor, negative) + margin))


def mse(x, y):
    return ops.mean(ops.square(x - y))


def avca_loss_terms(t: dict, cfg: LossConfig) -> dict:
    """The reference's AVCA loss from the forward tensors `t`.

    Keys of t: w (label embedding), phi_a/phi_v (encoder outputs), theta_a/v/w
    and their `_neg` versions (projections), rho_a/v/w and `_neg`
    (text reconstructions D(theta)), phi_a_rec/phi_v_rec (A_rec/V_rec(theta)).
    Returns the enabled terms and "total".
    """
    m = cfg.margin
    trip = lambda a, p, n: triplet_margin_loss(a, p, n, m)  # noqa: E731
    terms = {}
    if cfg.reconstruction:
        terms["reconstruction"] = (mse(t["w"], t["rho_v"]) + mse(t["w"], t["rho_a"])
                                   + mse(t["w"], t["rho_w"]))
    if cfg.reconstruction_triplets:
        terms["reconstruction_triplet"] = (trip(t["rho_w"], t["rho_a"], t["rho_a_neg"])
                                           + trip(t["rho_w"], t["rho_v"], t["rho_v_neg"]))
    if cfg.embedding_triplets:
        terms["embedding_triplet"] = (trip(t["theta_w"], t["theta_v"], t["theta_v_neg"])
                                      + trip(t["theta_w"], t["theta_a"], t["theta_a_neg"])
                                      + trip(t["theta_a"], t["theta_w"], t["theta_w_neg"])
                                      + trip(t["theta_v"], t["theta_w"], t["theta_w_neg"]))
    if cfg.additional_triplets:
        first = (trip(t["theta_a"], t["theta_w"], t["theta_a_neg"])
                 + trip(t["theta_v"], t["theta_w"], t["theta_v_neg"]))
        second = (trip(t["theta_w"], t["theta_a"], t["theta_w_neg"])
                  + trip(t["theta_w"], t["theta_v"], t["theta_w_neg"]))
        terms["additional_triplet"] = (cfg.first_additional_weight * first
                                       + cfg.second_additional_weight * second)
    if cfg.regression:
        terms["regression"] = (mse(t["phi_v_rec"], t["phi_v"]) + mse(t["phi_a_rec"], t["phi_a"])
                               + mse(t["theta_v"], t["theta_w"]) + mse(t["theta_a"], t["theta_w"]))
    if not terms:
        raise ConfigError("the loss configuration enables no loss term")
    total = None
    for value in terms.values():
        total = value if total is None else total + value
    terms["total"] = total
    return terms
