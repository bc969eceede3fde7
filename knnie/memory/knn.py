"""The kNN distribution and its interpolation with the model, as plain array math.

Distances are squared L2 (what FAISS returns). Two kernels:

* ``plain``: w_i = exp(-d_i / T)
* ``rbf``:   w_i = exp(-(d_i / (2 * var_q)) / T), var_q the variance of the query's k
  distances (the kNN-RE anchor code's variant): queries whose neighbours lie at similar
  distances get sharper weights. It does not remove the distance scale (d / var scales as
  1 / scale), so T is still tuned on dev for each kernel.

p_kNN(y) = sum_i 1[y = r_i] w_i / sum_i w_i, computed as a softmax so it never underflows.
Labels only a memory holds (the classifier head never saw them) are predicted through p_kNN:
see `interpolate`.
"""

from __future__ import annotations

import numpy as np

KERNELS = ("plain", "rbf")


def kernel_distances(distances: np.ndarray, kernel: str) -> np.ndarray:
    """Distances (n, k) as the kernel sees them, before the temperature. A neighbour an
    approximate index could not find has distance inf: it stays inf (weight 0) and is left out
    of the rbf variance."""
    d = distances.astype(np.float64)
    if kernel == "plain":
        return d
    if kernel == "rbf":
        found = np.isfinite(d)
        n = np.maximum(found.sum(axis=1, keepdims=True), 1)
        mean = np.where(found, d, 0.0).sum(axis=1, keepdims=True) / n
        var = np.where(found, (d - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / n
        return d / (2.0 * var + 1e-8)
    raise ValueError(f"unknown kernel '{kernel}'; choose one of {KERNELS}")


def knn_probs(distances: np.ndarray, neighbour_labels: np.ndarray, n_labels: int, temperature: float,
              kernel: str = "plain") -> np.ndarray:
    """p_kNN (n, n_labels) from the distances and labels (n, k) of each query's neighbours."""
    return knn_from_kernel_distances(kernel_distances(distances, kernel), neighbour_labels, n_labels, temperature)


def knn_from_kernel_distances(kd: np.ndarray, neighbour_labels: np.ndarray, n_labels: int,
                              temperature: float) -> np.ndarray:
    """p_kNN from distances already transformed by the kernel (the tuner reuses these); a query
    with no neighbour found at all gets p_kNN = 0 (no evidence), never NaN."""
    logits = -kd / temperature
    top = logits.max(axis=1, keepdims=True)
    w = np.exp(logits - np.where(np.isfinite(top), top, 0.0))
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    n = kd.shape[0]
    flat = (np.arange(n)[:, None] * n_labels + neighbour_labels).ravel()
    return np.bincount(flat, weights=w.ravel(), minlength=n * n_labels).reshape(n, n_labels)


def interpolate(p_knn: np.ndarray, p_model: np.ndarray, lam: float | np.ndarray, known: int | None = None
                ) -> np.ndarray:
    """p = λ·p_kNN + (1 − λ)·p_model; an array of λ gives one distribution per λ (leading axis).

    `known`: the head's labels are the first `known` of the label space, the rest only memories
    hold (p_model is 0 there). The head's softmax is then read as p(y | y is one of its labels),
    with no opinion on the others: the memory's kNN mass on them, u, goes through whole, and
    the head speaks for the rest, p_head = p_kNN on unknown labels + (1 − u)·p_model. Without
    kNN mass on unknown labels (u = 0) this is exactly the plain formula."""
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim:
        lam = lam[:, None, None]
    if known is not None and known < p_knn.shape[-1]:
        unknown = np.where(np.arange(p_knn.shape[-1]) >= known, p_knn, 0.0)
        p_model = unknown + (1.0 - unknown.sum(axis=1, keepdims=True)) * p_model
    return lam * p_knn + (1.0 - lam) * p_model
