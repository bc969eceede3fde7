"""The memory (labelled vectors + FAISS), the kNN distribution and the dev-set tuner."""

from knnie.memory.knn import KERNELS, interpolate, knn_probs
from knnie.memory.memory import INDEXES, METRICS, Memory, MemoryConfig
from knnie.memory.tuner import GridResult, KnnParams, tune_grid, tune_weights

__all__ = [
    "INDEXES", "KERNELS", "METRICS", "GridResult", "KnnParams", "Memory", "MemoryConfig",
    "interpolate", "knn_probs", "tune_grid", "tune_weights",
]
