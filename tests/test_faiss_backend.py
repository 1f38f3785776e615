"""FAISS backends: every kind and inner metric against a NumPy reference, removal, persistence,
damaged files, the missing-extra message and the GPU guard (mocked: no GPU here)."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from simtools.index import faiss as fb  # noqa: E402
from simtools.index.backend import Backend, BackendKind  # noqa: E402
from simtools.persistence import FormatError  # noqa: E402

DIM = 32
# (kind, options); small build beams keep the suite fast, PQ gets 2 dimensions per code.
CONFIGS = {
    "flat": ("flat", {}),
    "hnsw": ("hnsw", {"ef_construction": 64}),
    "hnsw-sq8": ("hnsw", {"ef_construction": 64, "compression": "sq8"}),
    "ivf": ("ivf", {}),
    "ivf-sq8": ("ivf", {"compression": "sq8"}),
    "ivf-pq": ("ivf", {"compression": "pq", "pq_m": 16}),
    "ivf-pq-refine": ("ivf", {"compression": "pq", "pq_m": 8, "refine": 4}),
}
# recall@10 floors: graph and IVF search must find >= 90%; codes lose a little precision.
MIN_RECALL = {"flat": 1.0, "hnsw": 0.9, "hnsw-sq8": 0.9, "ivf": 0.9, "ivf-sq8": 0.9,
              "ivf-pq": 0.75, "ivf-pq-refine": 0.9}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """2,000 database rows and 100 queries in 20 seeded clusters, unit length."""
    rng = np.random.default_rng(42)
    centres = rng.normal(size=(20, DIM)).astype(np.float32) * 3
    X = centres[rng.integers(0, 20, 2100)] + rng.normal(size=(2100, DIM)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    X = np.ascontiguousarray(X, dtype=np.float32)
    return X[:2000], X[2000:]


def reference(X: np.ndarray, Q: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Brute force in float64: inner products descending or squared distances ascending."""
    Xd, Qd = X.astype(np.float64), Q.astype(np.float64)
    if metric == "ip":
        S = Qd @ Xd.T
        order = np.argsort(-S, axis=1, kind="stable")[:, :k]
    else:
        S = (Qd**2).sum(1)[:, None] - 2 * Qd @ Xd.T + (Xd**2).sum(1)[None, :]
        order = np.argsort(S, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(S, order, axis=1), order


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / truth.shape[1] for f, t in zip(found, truth, strict=True)]))


def build(name: str, metric: str, X: np.ndarray) -> fb.FaissBackend:
    kind, options = CONFIGS[name]
    backend = fb.make_backend(kind, DIM, metric, **options)
    backend.add(X[:1500])  # two batches: IVF buffers both and trains once
    backend.add(X[1500:])
    return backend


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_search_matches_reference(name: str, metric: str, data) -> None:
    X, Q = data
    backend = build(name, metric, X)
    assert isinstance(backend, Backend)
    assert len(backend) == 2000 and backend.dim == DIM
    scores, positions = backend.search(Q, 10)
    assert scores.dtype == np.float32 and positions.dtype == np.int64
    assert scores.shape == positions.shape == (100, 10)
    ref_scores, ref_positions = reference(X, Q, 10, metric)
    if name == "flat":
        np.testing.assert_array_equal(positions, ref_positions)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    else:
        assert recall(positions, ref_positions) >= MIN_RECALL[name]
    steps = np.diff(scores, axis=1)
    assert (steps <= 1e-6).all() if metric == "ip" else (steps >= -1e-6).all()


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_remove_compacts_positions(name: str, metric: str, data) -> None:
    X, _ = data
    backend = build(name, metric, X)
    if name.startswith("ivf"):
        backend.train()
        backend.nprobe = backend.nlist  # visit every cell: the check below is then exact
    gone = np.array([0, 5, 6, 999, 1999])
    backend.remove(gone)
    kept = np.delete(X, gone, axis=0)
    assert len(backend) == 1995
    _, positions = backend.search(kept, 1)
    # Each surviving row finds itself at its new, compacted position.
    assert np.mean(positions[:, 0] == np.arange(1995)) >= (1.0 if name in ("flat", "ivf") else 0.97)
    backend.add(X[:2])  # rows keep being appended after the survivors
    assert len(backend) == 1997
    _, positions = backend.search(X[:1], 1)
    assert positions[0, 0] == 1995


def test_refine_reranks_pq_candidates_exactly(data) -> None:
    X, Q = data
    truth = reference(X, Q, 10, "ip")
    coarse = fb.make_backend("ivf", DIM, "ip", compression="pq", pq_m=4, nprobe=64)
    refined = fb.make_backend("ivf", DIM, "ip", compression="pq", pq_m=4, nprobe=64, refine=8)
    for backend in (coarse, refined):
        backend.add(X)
    coarse_recall = recall(coarse.search(Q, 10)[1], truth[1])
    scores, positions = refined.search(Q, 10)
    assert recall(positions, truth[1]) >= 0.95 > coarse_recall
    # re-ranked scores are the exact inner products of the rows returned
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", Q, X[positions]), atol=1e-5)
    refined.refine = 1  # the knob moves at search time, like nprobe
    assert recall(refined.search(Q, 10)[1], truth[1]) < recall(positions, truth[1])
    # after a removal the full vectors and the codes still line up, position for position
    gone = np.array([3, 4, 500, 1999])
    refined.remove(gone)
    kept = np.delete(X, gone, axis=0)
    scores, positions = refined.search(Q, 10)
    assert len(refined) == 1996 and positions.max() < 1996
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", Q, kept[positions]), atol=1e-5)


def test_refine_needs_codes_and_full_vectors(data) -> None:
    with pytest.raises(ValueError, match="without compression scores exactly"):
        fb.make_backend("ivf", DIM, "ip", refine=4)
    with pytest.raises(ValueError, match="refine must be at least 0"):
        fb.make_backend("ivf", DIM, "ip", compression="pq", refine=-1)
    plain = fb.make_backend("ivf", DIM, "ip", compression="sq8")
    plain.add(data[0])
    plain.train()
    with pytest.raises(ValueError, match="built without refine"):
        plain.refine = 4


def test_remove_from_untrained_ivf_buffer(data) -> None:
    X, _ = data
    backend = fb.make_backend("ivf", DIM, "ip")
    backend.add(X)
    backend.remove(np.arange(100))
    assert not backend.is_trained and len(backend) == 1900
    _, positions = backend.search(X[100:101], 1)
    assert backend.is_trained and positions[0, 0] == 0


def test_remove_rejects_positions_out_of_range(data) -> None:
    backend = build("flat", "ip", data[0])
    with pytest.raises(ValueError, match="outside 0..1999"):
        backend.remove([2000])


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_save_load_round_trip(name: str, mmap: bool, data, tmp_path) -> None:
    X, Q = data
    backend = build(name, "ip", X)
    before = backend.search(Q, 10)
    config = backend.save(tmp_path)
    json.dumps(config)  # the config must be plain JSON
    assert (tmp_path / "index.faiss").is_file()
    loaded = fb.load_backend(tmp_path, config, mmap=mmap)
    assert loaded.kind is BackendKind(CONFIGS[name][0]) and len(loaded) == 2000
    after = loaded.search(Q, 10)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], atol=1e-6)
    # A mapped index is copied into memory before the first write (FAISS would abort).
    loaded.add(X[:3])
    loaded.remove([0])
    assert len(loaded) == 2002


def test_knobs_are_saved_and_settable_after_load(data, tmp_path) -> None:
    X, Q = data
    hnsw = build("hnsw", "ip", X)
    hnsw.ef_search = 7
    (tmp_path / "h").mkdir()
    loaded = fb.load_backend(tmp_path / "h", hnsw.save(tmp_path / "h"))
    assert loaded.ef_search == 7
    loaded.ef_search = 128
    loaded.search(Q, 10)
    assert loaded._index.hnsw.efSearch == 128

    ivf = build("ivf", "ip", X)
    ivf.nprobe = 1
    (tmp_path / "i").mkdir()
    loaded = fb.load_backend(tmp_path / "i", ivf.save(tmp_path / "i"))
    low = recall(loaded.search(Q, 10)[1], reference(X, Q, 10, "ip")[1])
    loaded.nprobe = loaded.nlist
    full = recall(loaded.search(Q, 10)[1], reference(X, Q, 10, "ip")[1])
    assert full == 1.0 and low <= full


def test_corrupted_file_is_a_format_error(data, tmp_path) -> None:
    config = build("hnsw", "ip", data[0]).save(tmp_path)
    path = tmp_path / "index.faiss"
    raw = path.read_bytes()
    path.write_bytes(b"not a faiss index" + raw[17:])  # same size, broken header
    with pytest.raises(FormatError, match="corrupted or truncated"):
        fb.load_backend(tmp_path, config)


def test_truncated_file_is_a_format_error(data, tmp_path) -> None:
    config = build("ivf", "l2", data[0]).save(tmp_path)
    path = tmp_path / "index.faiss"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FormatError, match="truncated"):
        fb.load_backend(tmp_path, config)
    # Without the recorded size FAISS itself notices, and that too becomes a FormatError.
    del config["file_bytes"]
    with pytest.raises(FormatError, match="FAISS could not read it"):
        fb.load_backend(tmp_path, config, mmap=False)


def test_missing_file_and_bad_config(data, tmp_path) -> None:
    config = build("flat", "ip", data[0]).save(tmp_path)
    with pytest.raises(FormatError, match="incomplete or wrong"):
        fb.load_backend(tmp_path, {k: v for k, v in config.items() if k != "dim"})
    with pytest.raises(FormatError, match="inconsistent"):
        fb.load_backend(tmp_path, {**config, "ntotal": 5})
    (tmp_path / "index.faiss").unlink()
    with pytest.raises(FormatError, match="missing"):
        fb.load_backend(tmp_path, config)


def test_too_few_vectors_to_train(data) -> None:
    backend = fb.make_backend("ivf", DIM, "ip", compression="pq", pq_m=16)
    backend.add(data[0][:100])
    with pytest.raises(ValueError, match="too few vectors to train the ivf index: got 100, need at least 256"):
        backend.search(data[1], 5)


def test_small_ivf_trains_with_fewer_cells(data) -> None:
    backend = fb.make_backend("ivf", DIM, "l2")
    backend.add(data[0][:50])
    _, positions = backend.search(data[0][:5], 1)
    assert backend.nlist == 1 and positions[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_empty_and_short_results_are_marked_missing(data) -> None:
    for kind in ("flat", "ivf"):
        empty = fb.make_backend(kind, DIM, "ip")
        scores, positions = empty.search(data[1][:2], 3)
        assert (positions == -1).all() and np.isneginf(scores).all()
    small = fb.make_backend("flat", DIM, "l2")
    small.add(data[0][:2])
    scores, positions = small.search(data[1][:1], 4)
    assert positions[0].tolist()[2:] == [-1, -1] and np.isposinf(scores[0, 2:]).all()


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("exact", {}, "not a FAISS backend"),
        ("annoy", {}, "valid values are"),
        ("hnsw", {"nprobe": 3}, "unknown option"),
        ("hnsw", {"compression": "pq"}, "needs kind='ivf'"),
        ("ivf", {"compression": "zip"}, "unknown compression"),
        ("ivf", {"compression": "pq", "pq_m": 5}, "does not divide dim=32"),
        ("ivf", {"nprobe": 0}, "at least 1"),
    ],
)
def test_bad_options(kind: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fb.make_backend(kind, DIM, "ip", **options)


def test_knob_setters_check_their_values() -> None:
    hnsw = fb.make_backend("hnsw", DIM, "ip")
    with pytest.raises(TypeError, match="ef_search must be an integer, got NoneType"):
        hnsw.ef_search = None
    ivf = fb.make_backend("ivf", DIM, "ip")
    with pytest.raises(ValueError, match="nprobe must be at least 1, got 0"):
        ivf.nprobe = 0


def test_wrong_query_dimension(data) -> None:
    backend = build("flat", "ip", data[0])
    with pytest.raises(ValueError, match="dimension 16, but 32 was expected"):
        backend.search(np.zeros((1, 16), dtype=np.float32), 1)


def test_missing_faiss_names_the_extra(monkeypatch) -> None:
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(ImportError, match=r"pip install simtools\[ann\]"):
        fb.make_backend("hnsw", DIM, "ip")


class _FakeGpu:
    """Stands in for FAISS's GPU functions: records each copy and searches on a CPU clone."""

    def __init__(self, fail: bool = False) -> None:
        self.copies = 0
        self.fail = fail

    def __call__(self, index):
        if self.fail:
            raise RuntimeError("Error: this index type is not implemented on GPU")
        self.copies += 1
        return faiss.clone_index(index)


def _pretend_gpu(monkeypatch, fake: _FakeGpu, count: int = 1) -> None:
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: count)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", fake, raising=False)


def test_gpu_guard(monkeypatch) -> None:
    monkeypatch.delattr(faiss, "StandardGpuResources", raising=False)
    assert fb.gpu_available(faiss) is False  # the CPU build: no GPU symbols at all
    _pretend_gpu(monkeypatch, _FakeGpu(), count=0)
    assert fb.gpu_available(faiss) is False  # a GPU build on a machine without one
    _pretend_gpu(monkeypatch, _FakeGpu(), count=2)
    assert fb.gpu_available(faiss) is True


def test_search_moves_to_all_gpus_and_saves_the_cpu_index(monkeypatch, data, tmp_path) -> None:
    X, Q = data
    fake = _FakeGpu()
    _pretend_gpu(monkeypatch, fake)
    backend = build("ivf", "ip", X)
    expected = reference(X, Q, 10, "ip")[1]
    backend.train()
    backend.nprobe = backend.nlist
    _, positions = backend.search(Q, 10)
    backend.search(Q, 10)
    assert fake.copies == 1  # the replica is reused while nothing changes
    assert recall(positions, expected) == 1.0
    backend.nprobe = 2  # a knob change re-makes the replica with the new value
    backend.search(Q, 10)
    assert fake.copies == 2 and backend._gpu_index.nprobe == 2
    backend.add(X[:1])
    backend.search(Q, 10)
    assert fake.copies == 3
    config = backend.save(tmp_path)
    assert type(faiss.read_index(str(tmp_path / "index.faiss"))).__name__ == "IndexIVFFlat"
    assert config["ntotal"] == 2001


def test_kind_without_gpu_support_stays_on_cpu(monkeypatch, data) -> None:
    X, Q = data
    _pretend_gpu(monkeypatch, _FakeGpu(fail=True))
    backend = build("hnsw", "l2", X)
    _, positions = backend.search(Q, 10)
    assert recall(positions, reference(X, Q, 10, "l2")[1]) >= 0.9


@pytest.mark.parametrize("name", ["flat", "ivf"])
def test_mapped_index_resaved_over_its_own_folder(name: str, data, tmp_path) -> None:
    from simtools.folders import current_version, open_folder, save_folder

    X, Q = data
    folder = tmp_path / "index"
    with save_folder(folder, kind="index") as tmp:
        config = build(name, "l2", X).save(tmp)
    with open_folder(folder, kind="index") as files:
        mapped = fb.load_backend(files, config, mmap=True)
    expected = mapped.search(Q, 5)[1]
    first = current_version(folder)
    # The version the map points into is removed by the next save: the mapping must survive.
    with save_folder(folder, kind="index") as tmp:
        config = mapped.save(tmp)
    assert not first.exists()
    np.testing.assert_array_equal(mapped.search(Q, 5)[1], expected)
    np.testing.assert_array_equal(
        fb.load_backend(current_version(folder), config).search(Q, 5)[1], expected)
