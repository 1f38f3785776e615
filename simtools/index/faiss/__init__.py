"""FAISS search backends: exact ``flat``, graph ``hnsw`` and inverted-file ``ivf`` (PQ / SQ8).

Each backend follows :class:`~simtools.index.backend.Backend`: rows live at positions
``0..len-1`` and ``search`` answers ``(scores, positions)`` under the inner metric ``"ip"``
(inner product, descending) or ``"l2"`` (squared Euclidean distance, ascending); ``-1`` marks a
missing neighbour, with score ``-inf`` (ip) or ``+inf`` (l2).

Recall and speed knobs (``ef_search`` for HNSW, ``nprobe`` for IVF) are plain attributes that can
be changed at any time, after :func:`load_backend` too. Their defaults were measured with
``benchmarks/bench_ann.py`` (see the README's benchmark section).

Behaviours worth knowing:

* **IVF training.** An IVF index must be trained (k-means) before it holds anything. Added rows
  are buffered until the first ``search``, ``save`` or explicit :meth:`IVFBackend.train`, then
  the index is trained on all of them, with ``nlist`` defaulting to ``4 * sqrt(n)`` (at most
  ``n // 39`` so that every centroid gets FAISS's recommended 39 training points). PQ needs at
  least ``2 ** pq_bits`` training rows; fewer raise a ``ValueError`` saying how many to add.
* **Removal.** FAISS cannot delete from an HNSW graph, so an HNSW backend rebuilds the graph from
  the stored vectors (``reconstruct``) without the removed rows: O(n log n), fine for occasional
  deletes. Flat compacts in place; IVF deletes with ``remove_ids`` and renumbers the survivors
  list by list, which keeps the compressed codes untouched (no re-encoding drift for PQ).
* **GPU.** On a FAISS GPU build with at least one visible GPU, searches run on a replica spread
  over all GPUs (``index_cpu_to_all_gpus``); the master copy stays on the CPU, so ``save``
  always writes a CPU index. Kinds the GPU cannot hold (HNSW) stay on the CPU, with a log line.
* **Memory mapping.** ``load_backend(..., mmap=True)`` maps the file (``IO_FLAG_MMAP_IFC``)
  instead of reading it, for every kind. A mapped index is read-only inside FAISS (a write
  aborts the process), so the first ``add``/``remove`` copies it into memory first.

FAISS is an optional extra: ``pip install simtools[ann]`` (CPU) or ``pip install simtools[gpu]``.
"""

from __future__ import annotations

from .base import KINDS, FaissBackend, load_backend, make_backend
from .common import INDEX_FILE, gpu_available
from .flat import FlatBackend, HNSWBackend
from .ivf import IVFBackend

__all__ = ["KINDS", "FaissBackend", "FlatBackend", "HNSWBackend", "INDEX_FILE", "IVFBackend",
           "gpu_available", "load_backend", "make_backend"]
