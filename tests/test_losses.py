"""Loss functions against NumPy versions of torch's TripletMarginLoss / MSELoss."""
import numpy as np
import pytest
from keras import ops

from avca_tf.config import LossConfig
from avca_tf.errors import ConfigError
from avca_tf.models.losses import avca_loss_terms, mse, triplet_margin_loss

RNG = np.random.default_rng(0)


def np_triplet(a, p, n, margin=1.0, eps=1e-6):
    d_ap = np.sqrt(((a - p + eps) ** 2).sum(-1))
    d_an = np.sqrt(((a - n + eps) ** 2).sum(-1))
    return np.maximum(d_ap - d_an + margin, 0).mean()


def _np(x):
    return float(ops.convert_to_numpy(x))


def test_triplet_margin_loss_matches_formula():
    a, p, n = (RNG.normal(size=(32, 8)).astype("float32") for _ in range(3))
    assert _np(triplet_margin_loss(a, p, n, 1.0)) == pytest.approx(np_triplet(a, p, n), rel=1e-5)
    assert _np(triplet_margin_loss(a, p, n, 0.3)) == pytest.approx(np_triplet(a, p, n, 0.3), rel=1e-5)
    # a satisfied margin gives zero loss; a violated one the margin minus the gap
    far = a + 100.0
    assert _np(triplet_margin_loss(a, a, far, 1.0)) == 0.0
    assert _np(triplet_margin_loss(a, far, a, 1.0)) > 100.0


def test_mse_is_mean_over_all_elements():
    x, y = RNG.normal(size=(4, 5)), RNG.normal(size=(4, 5))
    assert _np(mse(x.astype("float32"), y.astype("float32"))) == pytest.approx(((x - y) ** 2).mean(), rel=1e-5)


def _tensors(b=16):
    keys = ["phi_a", "phi_v", "phi_a_rec", "phi_v_rec", "w", "rho_a", "rho_v", "rho_w",
            "rho_a_neg", "rho_v_neg"]
    t = {k: RNG.normal(size=(b, 12)).astype("float32") for k in keys}
    for k in ["theta_a", "theta_v", "theta_w", "theta_a_neg", "theta_v_neg", "theta_w_neg"]:
        t[k] = RNG.normal(size=(b, 6)).astype("float32")
    return t


def np_mse(x, y):
    return ((x - y) ** 2).mean()


def test_avca_terms_match_reference_formulas():
    t = _tensors()
    cfg = LossConfig(first_additional_weight=0.5, second_additional_weight=2.0)
    terms = {k: _np(v) for k, v in avca_loss_terms(t, cfg).items()}
    T = np_triplet
    expect = {
        "reconstruction": np_mse(t["w"], t["rho_v"]) + np_mse(t["w"], t["rho_a"]) + np_mse(t["w"], t["rho_w"]),
        "reconstruction_triplet": T(t["rho_w"], t["rho_a"], t["rho_a_neg"]) + T(t["rho_w"], t["rho_v"], t["rho_v_neg"]),
        "embedding_triplet": (T(t["theta_w"], t["theta_v"], t["theta_v_neg"]) + T(t["theta_w"], t["theta_a"], t["theta_a_neg"])
                              + T(t["theta_a"], t["theta_w"], t["theta_w_neg"]) + T(t["theta_v"], t["theta_w"], t["theta_w_neg"])),
        "additional_triplet": (0.5 * (T(t["theta_a"], t["theta_w"], t["theta_a_neg"]) + T(t["theta_v"], t["theta_w"], t["theta_v_neg"]))
                               + 2.0 * (T(t["theta_w"], t["theta_a"], t["theta_w_neg"]) + T(t["theta_w"], t["theta_v"], t["theta_w_neg"]))),
        "regression": (np_mse(t["phi_v_rec"], t["phi_v"]) + np_mse(t["phi_a_rec"], t["phi_a"])
                       + np_mse(t["theta_v"], t["theta_w"]) + np_mse(t["theta_a"], t["theta_w"])),
    }
    for key, value in expect.items():
        assert terms[key] == pytest.approx(value, rel=1e-5), key
    assert terms["total"] == pytest.approx(sum(expect.values()), rel=1e-5)


def test_toggles_remove_terms_from_total():
    t = _tensors()
    cfg = LossConfig(additional_triplets=False, regression=False)
    terms = avca_loss_terms(t, cfg)
    assert set(terms) == {"reconstruction", "reconstruction_triplet", "embedding_triplet", "total"}
    assert _np(terms["total"]) == pytest.approx(sum(_np(v) for k, v in terms.items() if k != "total"), rel=1e-6)
    with pytest.raises(ConfigError, match="no loss term"):
        avca_loss_terms(t, LossConfig(reconstruction=False, reconstruction_triplets=False,
                                      embedding_triplets=False, additional_triplets=False,
                                      regression=False))
