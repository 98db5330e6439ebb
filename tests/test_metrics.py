"""GZSL metrics on tiny hand-computed cases and against a naive loop."""
import numpy as np
import pytest

from avca_tf.metrics import BETAS, gzsl_metrics, harmonic_mean, search_beta


def test_hand_computed_s_u_hm_zsl():
    # classes 0,1 seen; 2,3 unseen
    d = np.array([[0.1, 0.5, 0.3, 0.9],    # label 0 -> 0 correct
                  [0.4, 0.2, 0.9, 0.9],    # label 0 -> 1 wrong
                  [0.5, 0.1, 0.9, 0.9],    # label 1 -> 1 correct
                  [0.2, 0.9, 0.3, 0.9],    # label 2 -> 0 wrong (ZSL: 2 correct)
                  [0.9, 0.9, 0.5, 0.4],    # label 3 -> 3 correct
                  [0.9, 0.9, 0.2, 0.6]])   # label 3 -> 2 wrong
    labels = [0, 0, 1, 2, 3, 3]
    r = gzsl_metrics(d, labels, seen_ids=[0, 1], unseen_ids=[2, 3], beta=0.0)
    np.testing.assert_allclose(r.per_class_recall, [0.5, 1.0, 0.0, 0.5])
    assert r.S == pytest.approx(0.75)
    assert r.U == pytest.approx(0.25)
    assert r.HM == pytest.approx(2 * 0.75 * 0.25 / 1.0)
    assert r.ZSL == pytest.approx((1.0 + 0.5) / 2)
    assert r.classes_without_samples == ()


def test_zsl_only_considers_unseen_candidates():
    # the unseen sample is nearest to seen class 0 overall, to unseen 2 among unseen
    d = np.array([[0.1, 0.9, 0.9], [0.1, 0.9, 0.5]])
    r = gzsl_metrics(d, [0, 2], seen_ids=[0, 1], unseen_ids=[2], beta=0.0)
    assert r.U == 0.0
    assert r.ZSL == 1.0


def test_non_candidate_columns_are_ignored():
    # column 3 is not seen or unseen (like UCF classes outside the split): never predicted
    d = np.array([[0.5, 0.9, 0.9, 0.0], [0.9, 0.9, 0.5, 0.0]])
    r = gzsl_metrics(d, [0, 2], seen_ids=[0, 1], unseen_ids=[2], beta=0.0)
    assert (r.S, r.U, r.ZSL) == (1.0, 1.0, 1.0)
    assert np.isnan(r.per_class_recall[3])


def test_beta_moves_predictions_from_seen_to_unseen():
    # unseen sample: seen class at 1.0, own unseen class at 1.3
    d = np.array([[0.0, 2.0, 2.0], [1.0, 2.0, 1.3]])
    labels = [0, 2]
    r0 = gzsl_metrics(d, labels, [0, 1], [2], beta=0.0)
    r5 = gzsl_metrics(d, labels, [0, 1], [2], beta=0.5)
    assert (r0.S, r0.U, r0.HM) == (1.0, 0.0, 0.0)
    assert (r5.S, r5.U, r5.HM) == (1.0, 1.0, 1.0)
    assert r5.beta == 0.5


def test_ties_go_to_the_lowest_class_id():
    # exact tie within seen classes: class 0 wins over class 1
    r = gzsl_metrics(np.array([[0.5, 0.5, 0.9], [0.9, 0.9, 0.1]]), [1, 2], [0, 1], [2], beta=0.0)
    assert r.per_class_recall[1] == 0.0
    # tie between seen 2 (+beta) and unseen 0: unseen 0 has the lower id and wins
    d = np.array([[1.0, 9.0, 0.5], [9.0, 9.0, 0.0]])
    r = gzsl_metrics(d, [0, 2], seen_ids=[1, 2], unseen_ids=[0], beta=0.5)
    assert r.per_class_recall[0] == 1.0
    # tie between seen 1 (+beta) and unseen 3: seen 1 has the lower id and wins
    d = np.array([[9.0, 0.5, 9.0, 1.0], [9.0, 0.0, 9.0, 9.0]])
    r = gzsl_metrics(d, [3, 1], seen_ids=[1], unseen_ids=[3], beta=0.5)
    assert r.per_class_recall[3] == 0.0 and r.per_class_recall[1] == 1.0


def test_class_without_samples_is_left_out_and_reported():
    d = np.array([[0.1, 0.5, 0.9], [0.9, 0.5, 0.1]])
    r = gzsl_metrics(d, [0, 2], seen_ids=[0, 1], unseen_ids=[2], beta=0.0)
    assert r.classes_without_samples == (1,)
    assert np.isnan(r.per_class_recall[1])
    assert r.S == 1.0 and not np.isnan(r.HM)
    assert r.to_dict()["classes_without_samples"] == [1]
    with pytest.raises(ValueError, match="no evaluation samples of any unseen class"):
        gzsl_metrics(d[:1], [0], seen_ids=[0, 1], unseen_ids=[2])


def test_search_beta_grid_and_smallest_beta_on_ties():
    assert BETAS.shape == (16,) and BETAS[0] == 0.0 and BETAS[-1] == 3.0
    np.testing.assert_allclose(np.diff(BETAS), 0.2)
    # seen sample keeps its class while beta < 0.9; unseen sample needs beta > 0.5
    d = np.array([[0.0, 0.9], [0.0, 0.5]])
    beta, r = search_beta(d, [0, 1], seen_ids=[0], unseen_ids=[1])
    assert beta == pytest.approx(0.6)  # 0.6 and 0.8 both give HM 1
    assert (r.S, r.U, r.HM) == (1.0, 1.0, 1.0)
    beta0, r0 = search_beta(np.array([[0.0, 9.0], [9.0, 0.0]]), [0, 1], [0], [1])
    assert beta0 == 0.0 and r0.HM == 1.0


def test_bad_inputs_raise():
    d = np.zeros((2, 3))
    with pytest.raises(ValueError, match="neither seen nor unseen"):
        gzsl_metrics(d, [0, 1], seen_ids=[0], unseen_ids=[2])
    with pytest.raises(ValueError, match="both seen and unseen"):
        gzsl_metrics(d, [0, 1], seen_ids=[0, 1], unseen_ids=[1])
    with pytest.raises(ValueError, match="labels for"):
        gzsl_metrics(d, [0], seen_ids=[0], unseen_ids=[1])
    with pytest.raises(ValueError, match="NaN"):
        gzsl_metrics(np.full((2, 3), np.nan), [0, 1], seen_ids=[0], unseen_ids=[1])


def _naive(d, labels, seen, unseen, beta):
    """The definition, one sample at a time."""
    cand = sorted(seen + unseen)
    correct = {c: 0 for c in cand}
    total = {c: 0 for c in cand}
    zc = {c: 0 for c in unseen}
    zt = {c: 0 for c in unseen}
    for row, y in zip(d, labels):
        scores = [row[c] + (beta if c in seen else 0.0) for c in cand]
        pred = cand[int(np.argmin(scores))]
        total[y] += 1
        correct[y] += pred == y
        if y in unseen:
            zpred = sorted(unseen)[int(np.argmin([row[c] for c in sorted(unseen)]))]
            zt[y] += 1
            zc[y] += zpred == y
    s = np.mean([correct[c] / total[c] for c in seen if total[c]])
    u = np.mean([correct[c] / total[c] for c in unseen if total[c]])
    z = np.mean([zc[c] / zt[c] for c in unseen if zt[c]])
    return s, u, z


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_definition_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    n, c = 200, 9
    seen, unseen = [0, 2, 3, 7], [1, 5, 8]
    labels = rng.choice(seen + unseen, size=n)
    d = rng.integers(0, 4, size=(n, c)).astype(np.float32) * 0.5  # many exact ties
    for beta in (0.0, 0.5, 1.0):
        r = gzsl_metrics(d, labels, seen, unseen, beta)
        s, u, z = _naive(d.astype(np.float64), labels, seen, unseen, beta)
        assert (r.S, r.U, r.ZSL) == pytest.approx((s, u, z))
        assert r.HM == pytest.approx(harmonic_mean(s, u))
    beta, best = search_beta(d, labels, seen, unseen)
    hms = [gzsl_metrics(d, labels, seen, unseen, b).HM for b in BETAS]
    assert best.HM == pytest.approx(max(hms))
    assert beta == pytest.approx(BETAS[int(np.argmax(hms))])
