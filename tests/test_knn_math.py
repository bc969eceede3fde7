"""p_kNN and its interpolation with the model, against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from knnie.memory.knn import KERNELS, interpolate, knn_probs

# 2 queries × 3 neighbours, 3 labels
DIST = np.array([[1.0, 2.0, 4.0], [0.0, 1.0, 1.0]])
LABELS = np.array([[0, 1, 0], [2, 2, 1]])
P_MODEL = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])


def by_label(weights: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Normalise one query's weights and add them up per label (3 labels)."""
    w = weights / weights.sum()
    return np.array([w[labels == y].sum() for y in range(3)])


def test_plain_kernel_matches_hand_computation():
    # T = 2, w = exp(-d / T)
    # query 1: d = 1, 2, 4 -> w = 0.60653066, 0.36787944, 0.13533528 (sum 1.10974538)
    #          normalised 0.54654939, 0.33149896, 0.12195165; labels 0, 1, 0
    #          p = [0.54654939 + 0.12195165, 0.33149896, 0] = [0.66850104, 0.33149896, 0]
    # query 2: d = 0, 1, 1 -> w = 1, 0.60653066, 0.60653066 (sum 2.21306132)
    #          normalised 0.45186276, 0.27406862, 0.27406862; labels 2, 2, 1
    #          p = [0, 0.27406862, 0.45186276 + 0.27406862] = [0, 0.27406862, 0.72593138]
    expected = np.array([
        by_label(np.exp([-0.5, -1.0, -2.0]), LABELS[0]),
        by_label(np.exp([0.0, -0.5, -0.5]), LABELS[1]),
    ])
    np.testing.assert_allclose(expected, [[0.66850104, 0.33149896, 0], [0, 0.27406862, 0.72593138]], atol=1e-8)
    np.testing.assert_allclose(knn_probs(DIST, LABELS, 3, 2.0, "plain"), expected, rtol=0, atol=1e-9)


def test_rbf_kernel_matches_hand_computation():
    # T = 0.5; d is divided by 2·var(d of the query) + 1e-8 (population variance), then by T
    # query 1: d = 1, 2, 4, mean 7/3, var = (16/9 + 1/9 + 25/9) / 3 = 14/9 -> scale 28/9 + 1e-8
    #          d / scale / T = 0.64285714, 1.28571428, 2.57142856
    #          w = 0.52578803, 0.27645305, 0.07642629 -> normalised 0.59839258, 0.31462765, 0.08697977
    #          p = [0.59839258 + 0.08697977, 0.31462765, 0] = [0.68537235, 0.31462765, 0]
    # query 2: d = 0, 1, 1, mean 2/3, var = (4/9 + 1/9 + 1/9) / 3 = 2/9 -> scale 4/9 + 1e-8
    #          d / scale / T = 0, 4.4999999, 4.4999999
    #          w = 1, 0.011109, 0.011109 -> normalised 0.97826491, 0.01086754, 0.01086754
    #          p = [0, 0.01086754, 0.97826491 + 0.01086754] = [0, 0.01086754, 0.98913245]
    s1, s2 = 28 / 9 + 1e-8, 4 / 9 + 1e-8
    expected = np.array([
        by_label(np.exp(-np.array([1.0, 2.0, 4.0]) / s1 / 0.5), LABELS[0]),
        by_label(np.exp(-np.array([0.0, 1.0, 1.0]) / s2 / 0.5), LABELS[1]),
    ])
    np.testing.assert_allclose(expected, [[0.68537235, 0.31462765, 0], [0, 0.01086754, 0.98913245]], atol=1e-8)
    np.testing.assert_allclose(knn_probs(DIST, LABELS, 3, 0.5, "rbf"), expected, rtol=0, atol=1e-9)


def test_interpolation_matches_hand_computation():
    # λ = 0.25 with the plain p_kNN above (T = 2):
    # query 1: 0.25·[0.66850104, 0.33149896, 0] + 0.75·[0.2, 0.3, 0.5] = [0.31712526, 0.30787474, 0.375]
    # query 2: 0.25·[0, 0.27406862, 0.72593138] + 0.75·[0.6, 0.3, 0.1] = [0.45, 0.29351716, 0.25648285]
    p_knn = knn_probs(DIST, LABELS, 3, 2.0, "plain")
    expected = 0.25 * p_knn + 0.75 * P_MODEL
    np.testing.assert_allclose(expected, [[0.31712526, 0.30787474, 0.375], [0.45, 0.29351716, 0.25648285]],
                               atol=1e-8)
    p = interpolate(p_knn, P_MODEL, 0.25)
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_interpolation_with_an_array_of_lambdas_stacks_one_distribution_per_lambda():
    p_knn = knn_probs(DIST, LABELS, 3, 2.0, "plain")
    p = interpolate(p_knn, P_MODEL, np.array([0.0, 0.25, 1.0]))
    assert p.shape == (3, 2, 3)
    np.testing.assert_allclose(p[0], P_MODEL, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p[1], interpolate(p_knn, P_MODEL, 0.25), rtol=0, atol=1e-12)
    np.testing.assert_allclose(p[2], p_knn, rtol=0, atol=1e-12)


def test_unknown_kernel_is_refused():
    with pytest.raises(ValueError, match="unknown kernel 'cosine'"):
        knn_probs(DIST, LABELS, 3, 1.0, "cosine")


@pytest.mark.parametrize("kernel", KERNELS)
def test_neighbours_an_index_could_not_find_get_no_weight_and_no_nan(kernel):
    """An approximate index may return fewer than k hits (distance inf): they count for nothing,
    and a query with no hit at all gets p_kNN = 0 rather than NaN."""
    dist = np.array([[1.0, 2.0, np.inf], [np.inf, np.inf, np.inf]])
    labels = np.array([[0, 1, 2], [0, 0, 0]])
    p = knn_probs(dist, labels, 3, 1.0, kernel)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p[0], knn_probs(dist[:1, :2], labels[:1, :2], 3, 1.0, kernel)[0])
    np.testing.assert_array_equal(p[1], [0.0, 0.0, 0.0])
