"""simtools.index.torch_exact and device selection: the torch backend on the CPU device against
a float64 reference (every dtype, metric and retry path), the GPU simulated by monkeypatching
the detection, the exact backend staying exact on a GPU machine, and the bad-input errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import simtools.index.device as device_mod
from simtools.errors import InputError
from simtools.folders import current_version
from simtools.index import Index
from simtools.index.exact import ExactDense, ExactSparse
from simtools.metrics import Metric

torch = pytest.importorskip("torch", reason="torch (the train extra) is not installed")
import simtools.index.torch_exact as te  # noqa: E402

DTYPES = list(te.DTYPES)


def reference(X: np.ndarray, Q: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Positions of the k best rows by float64 scores, ties to the smaller position."""
    X64, Q64 = X.astype(np.float64), Q.astype(np.float64)
    key = ((Q64[:, None, :] - X64[None]) ** 2).sum(-1) if metric == "l2" else -(Q64 @ X64.T)
    return np.argsort(key, axis=1, kind="stable")[:, :k]


def torch_backend(X: np.ndarray, metric: str, dtype: str) -> te.TorchExactDense:
    backend = te.TorchExactDense(X.shape[1], metric, device="cpu", dtype=dtype)
    backend.add(X)
    return backend


@pytest.fixture
def pretend_gpu(monkeypatch):
    """A machine where torch 'sees a GPU': the GPU device is this CPU."""
    monkeypatch.setattr(device_mod, "cuda_available", lambda: True)
    monkeypatch.setattr(te, "GPU_DEVICE", "cpu")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_every_dtype_returns_the_reference(metric, dtype, rng, monkeypatch):
    monkeypatch.setattr(te, "BLOCK_BYTES", 4 * 40 * 300)  # several device blocks
    monkeypatch.setattr(te, "QUERY_BATCH", 25)  # several query batches
    X = rng.normal(size=(2000, 32)).astype(np.float32)
    Q = rng.normal(size=(60, 32)).astype(np.float32)
    scores, positions = torch_backend(X, metric, dtype).search(Q, 10)
    np.testing.assert_array_equal(positions, reference(X, Q, 10, metric))
    cpu = ExactDense(32, metric)
    cpu.add(X)
    cpu_scores, cpu_positions = cpu.search(Q, 10)
    np.testing.assert_array_equal(positions, cpu_positions)
    np.testing.assert_allclose(scores, cpu_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_go_to_the_smaller_position(dtype, rng):
    # Small integers: exact in every dtype, and most scores tie, across the candidate edge too.
    X = rng.integers(-2, 3, size=(500, 6)).astype(np.float32)
    Q = rng.integers(-2, 3, size=(30, 6)).astype(np.float32)
    for k in (1, 10, 100):
        positions = torch_backend(X, "ip", dtype).search(Q, k)[1]
        np.testing.assert_array_equal(positions, reference(X, Q, k, "ip"))


def test_uncertified_queries_are_searched_again(rng, monkeypatch):
    monkeypatch.setattr(te, "EXTRA_CANDIDATES", 0)  # k candidates only: float16 must retry
    calls = []
    backend = torch_backend(rng.normal(size=(3000, 48)).astype(np.float32), "ip", "float16")
    original = backend._candidates
    monkeypatch.setattr(backend, "_candidates",
                        lambda Q, wanted: calls.append((len(Q), wanted)) or original(Q, wanted))
    Q = rng.normal(size=(40, 48)).astype(np.float32)
    np.testing.assert_array_equal(backend.search(Q, 10)[1],
                                  reference(backend.vectors, Q, 10, "ip"))
    assert calls[0] == (40, 10) and len(calls) > 1 and calls[1][1] == 40


def test_device_copy_follows_adds_and_removes(rng):
    X = rng.normal(size=(400, 8)).astype(np.float32)
    backend = torch_backend(X[:200], "ip", "bfloat16")
    assert backend.to_device() >= 0
    backend.add(X[200:])
    backend.remove(np.arange(0, 400, 2))
    Q = rng.normal(size=(5, 8)).astype(np.float32)
    np.testing.assert_array_equal(backend.search(Q, 4)[1], reference(X[1::2], Q, 4, "ip"))


@pytest.mark.parametrize("metric", [m.value for m in Metric])
def test_index_on_a_gpu_machine_uses_torch_and_matches_cpu(metric, pretend_gpu, vectors, rng):
    gpu = Index(metric=metric, dtype="float16")
    gpu.add_vectors(vectors)
    assert isinstance(gpu._backend, te.TorchExactDense)
    cpu = Index(metric=metric, device="cpu")
    cpu.add_vectors(vectors)
    assert type(cpu._backend) is ExactDense
    Q = vectors[:15] + rng.normal(size=(15, 16)).astype(np.float32) * 0.5
    got, want = gpu.search_vectors(Q, 7), cpu.search_vectors(Q, 7)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)


def test_exact_stays_exact_on_a_gpu_machine_and_loads_without_one(pretend_gpu, vectors,
                                                                   tmp_path, monkeypatch):
    # The bug: backend="exact" became FAISS flat when FAISS saw a GPU; then with_metric
    # failed and the folder needed FAISS to load. FAISS seeing a GPU must change nothing.
    import simtools.index.faiss as faiss_pkg

    monkeypatch.setattr(faiss_pkg, "gpu_available", lambda *a: True)
    index = Index(metric="cosine", backend="exact")
    index.add_vectors(vectors)
    assert index.backend_kind.value == "exact" and isinstance(index._backend, ExactDense)
    euclidean = index.with_metric("euclidean")  # needs the stored vectors: exact keeps them
    assert euclidean.metric is Metric.EUCLIDEAN and len(euclidean) == len(vectors)
    expected = index.search_vectors(vectors[:5], 3)
    index.save(tmp_path / "idx")
    config = json.loads((current_version(tmp_path / "idx") / "config.json").read_text())
    assert config["backend"] == {"kind": "exact", "inner_metric": "ip", "dim": 16}
    assert "device" not in json.dumps(config)
    monkeypatch.setattr(device_mod, "cuda_available", lambda: False)  # now a CPU-only machine
    loaded = Index.load(tmp_path / "idx")
    assert type(loaded._backend) is ExactDense
    got = loaded.search_vectors(vectors[:5], 3)
    np.testing.assert_array_equal(got[1], expected[1])


def test_use_device_moves_both_ways(pretend_gpu, vectors):
    index = Index(metric="inner_product", device="cpu")
    index.add_vectors(vectors)
    want = index.search_vectors(vectors[:4], 5)
    assert isinstance(index.use_device("cuda", dtype="bfloat16")._backend, te.TorchExactDense)
    np.testing.assert_array_equal(index.search_vectors(vectors[:4], 5)[1], want[1])
    assert type(index.use_device("cpu")._backend) is ExactDense
    assert index._backend.vectors is index.stored_vectors()  # rows shared, never copied


# -- bad input ---------------------------------------------------------------------------
def test_cuda_without_a_gpu_is_one_clear_error(vectors, monkeypatch):
    monkeypatch.setattr(device_mod, "cuda_available", lambda: False)
    index = Index(device="cuda")
    with pytest.raises(InputError, match="torch sees no CUDA GPU on this machine; use "
                                         "device='cpu'"):
        index.add_vectors(vectors)
    assert device_mod.resolve_device("auto") is device_mod.Device.CPU


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'simtools\[train\]'"):
        device_mod.resolve_device("cuda")


def test_an_index_too_big_for_the_gpu_says_how_big_and_what_to_do(rng, monkeypatch):
    monkeypatch.setattr(te, "free_memory", lambda torch, device: 1 << 20)
    backend = torch_backend(rng.normal(size=(100, 8)).astype(np.float32), "ip", "float32")
    with pytest.raises(InputError, match=r"needs 2\.0 GiB on cpu \(100 vectors of dimension 8 "
                                         r"in float32.*0\.0 GiB are free; use dtype='float16'"
                                         r".*device='cpu', or split the index into shards"):
        backend.search(rng.normal(size=(2, 8)).astype(np.float32), 3)


def test_float16_overflow_is_refused(rng):
    big = torch_backend(rng.normal(size=(20, 4)).astype(np.float32) * 1e5, "ip", "float16")
    with pytest.raises(InputError, match="does not fit in float16"):
        big.to_device()
    small = torch_backend(np.ones((5, 4), np.float32) * 100, "ip", "float16")
    with pytest.raises(InputError, match="float16 scores would overflow"):
        small.search(np.ones((1, 4), np.float32) * 1000, 2)


def test_wrong_dtype_and_device_combinations(pretend_gpu, rng, monkeypatch):
    with pytest.raises(InputError, match="unknown dtype 'int8'"):
        te.TorchExactDense(4, dtype="int8")
    with pytest.raises(InputError, match="dtype='float16' is for GPU search"):
        Index(device="cpu", dtype="float16").add_vectors(np.ones((3, 4), np.float32))
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        Index(device="tpu")
    import scipy.sparse as sp

    sparse = sp.random(10, 30, density=0.3, format="csr", random_state=0, dtype=np.float32)
    sparse = sparse + sp.eye(10, 30, format="csr", dtype=np.float32)
    with pytest.raises(InputError, match="device='cuda' searches dense vectors"):
        Index(device="cuda").add_vectors(sparse)
    auto = Index()  # auto on a GPU machine: sparse vectors stay on the CPU
    auto.add_vectors(sparse)
    assert isinstance(auto._backend, ExactSparse)
    with pytest.raises(InputError, match="device and dtype apply to backend='exact'"):
        Index(backend="flat", device="cuda").add_vectors(np.ones((3, 4), np.float32))


# -- the CLI -------------------------------------------------------------------------------
def test_cli_device_option(tmp_path, monkeypatch):
    from simtools_cli.main import main

    (tmp_path / "docs").mkdir()
    for name, text in {"a.txt": "tennis racket ball net", "b.txt": "football goal match"}.items():
        (tmp_path / "docs" / name).write_text(text)
    runner = CliRunner()
    built = runner.invoke(main, ["index", "files", str(tmp_path / "docs"), "--out",
                                 str(tmp_path / "idx"), "--device", "cpu"])
    assert built.exit_code == 0, built.output
    found = runner.invoke(main, ["search", "tennis", "--index", str(tmp_path / "idx"),
                                 "--device", "cpu", "-k", "1"])
    assert found.exit_code == 0 and "a.txt" in found.output, found.output
    monkeypatch.setattr(device_mod, "cuda_available", lambda: False)
    for args, message in (
            (["search", "tennis", "--index", str(tmp_path / "idx")],
             "device='cuda' searches dense vectors, but this index is sparse"),  # bm25
            (["index", "files", str(tmp_path / "docs"), "--out", str(tmp_path / "other")],
             "torch sees no CUDA GPU on this machine")):
        failed = runner.invoke(main, [*args, "--device", "cuda"])
        errors = [line for line in failed.output.splitlines() if line.startswith("Error")]
        assert failed.exit_code == 1 and len(errors) == 1, failed.output
        assert message in errors[0] and "Traceback" not in failed.output


def test_gpu_check_script_runs_on_the_cpu_device(tmp_path):
    """benchmarks/gpu_check.py, prepared for a GPU machine, at a tiny size on the CPU device;
    its JSON goes to $OUT (what a lent machine sends back), not into the checkout."""
    import os
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--device", "cpu"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OUT": str(tmp_path / "out")})
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "out" / "gpu_check_quick.json").read_text())
    assert written["device"] == "cpu" and written["checks"], written
    assert done.stdout.count("50 identical, 0 ties, 0 different") == 2, done.stdout
    for dtype in ("float32", "float16"):
        assert any(line.startswith(f"{dtype}  100 ") for line in done.stdout.splitlines())
