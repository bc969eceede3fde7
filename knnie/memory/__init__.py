"""The memory (labelled vectors + FAISS), the kNN distribution and the dev-set tuner; large
memories are built in shards by `knnie.memory.build`."""

from knnie.memory.knn import KERNELS, interpolate, knn_probs
from knnie.memory.memory import INDEXES, METRICS, Memory, MemoryConfig, reindex, write_memory
from knnie.memory.tuner import GridResult, KnnParams, tune_grid, tune_weights

__all__ = [
    "INDEXES", "KERNELS", "METRICS", "GridResult", "KnnParams", "Memory", "MemoryConfig",
    "interpolate", "knn_probs", "reindex", "tune_grid", "tune_weights", "write_memory",
]
