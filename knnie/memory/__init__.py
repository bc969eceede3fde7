"""The memory (labelled vectors + FAISS), the kNN distribution and the dev-set tuner."""

from knnie.memory.knn import KERNELS, interpolate, knn_probs
from knnie.memory.memory import INDEXES, Memory, MemoryConfig
from knnie.memory.tuner import GridResult, KnnParams, tune_alpha, tune_grid

__all__ = [
    "INDEXES", "KERNELS", "GridResult", "KnnParams", "Memory", "MemoryConfig",
    "interpolate", "knn_probs", "tune_alpha", "tune_grid",
]
