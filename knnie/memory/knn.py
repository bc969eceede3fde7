"""The kNN distribution and its interpolation with the model, as plain array math.

Distances are squared L2 (what FAISS returns). Two kernels:

* ``plain``: w_i = exp(-d_i / T)
* ``rbf``:   w_i = exp(-(d_i / (2 * var_q)) / T), var_q the variance of the query's k
  distances (the kNN-RE anchor code's variant): queries whose neighbours lie at similar
  distances get sharper weights. It does not remove the distance scale (d / var scales as
  1 / scale), so T is still tuned on dev for each kernel.

p_kNN(y) = sum_i 1[y = r_i] w_i / sum_i w_i, computed as a softmax so it never underflows.
"""

from __future__ import annotations

import numpy as np

KERNELS = ("plain", "rbf")


def kernel_distances(distances: np.ndarray, kernel: str) -> np.ndarray:
    """Distances (n, k) as the kernel sees them, before the temperature."""
    d = distances.astype(np.float64)
    if kernel == "plain":
        return d
    if kernel == "rbf":
        return d / (2.0 * d.var(axis=1, keepdims=True) + 1e-8)
    raise ValueError(f"unknown kernel '{kernel}'; choose one of {KERNELS}")


def knn_probs(distances: np.ndarray, neighbour_labels: np.ndarray, n_labels: int, temperature: float,
              kernel: str = "plain") -> np.ndarray:
    """p_kNN (n, n_labels) from the distances and labels (n, k) of each query's neighbours."""
    return knn_from_kernel_distances(kernel_distances(distances, kernel), neighbour_labels, n_labels, temperature)


def knn_from_kernel_distances(kd: np.ndarray, neighbour_labels: np.ndarray, n_labels: int,
                              temperature: float) -> np.ndarray:
    """p_kNN from distances already transformed by the kernel (the tuner reuses these)."""
    logits = -kd / temperature
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    n = kd.shape[0]
    flat = (np.arange(n)[:, None] * n_labels + neighbour_labels).ravel()
    return np.bincount(flat, weights=w.ravel(), minlength=n * n_labels).reshape(n, n_labels)


def interpolate(p_knn: np.ndarray, p_model: np.ndarray, lam: float | np.ndarray) -> np.ndarray:
    """p = λ·p_kNN + (1 − λ)·p_model; an array of λ gives one distribution per λ (leading axis)."""
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim:
        lam = lam[:, None, None]
    return lam * p_knn + (1.0 - lam) * p_model
