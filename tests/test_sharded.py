"""Sharded indexes: exact merged search, routing, incremental saves, faults (folder and search)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from simtools.data import Document
from simtools.errors import FolderInUseError, FormatError, InputError
from simtools.folders import FolderWriter, open_folder
from simtools.index import Index
from simtools.index.build import build_index
from simtools.index.sharded import ShardedIndex, merge_topk_shards
from simtools.index.shards_store import is_sharded, shard_dirs_in

METRICS = ["cosine", "euclidean", "normalized_euclidean", "inner_product"]


def pair(X, metric, backend="exact", shard_size=37, **options):
    """The same rows in one index and in a sharded one (added in two calls)."""
    one = Index(None, metric=metric, backend=backend, **options)
    one.add_vectors(X)
    many = ShardedIndex(None, metric=metric, backend=backend, shard_size=shard_size, **options)
    many.add_vectors(X[:50])
    many.add_vectors(X[50:])
    return one, many


def same_results(a, b, Q, k):
    sa, pa = a.search_vectors(Q, k)
    sb, pb = b.search_vectors(Q, k)
    np.testing.assert_array_equal(pa, pb)
    # float32 dot products summed in a different order (one matrix product against one per
    # shard) differ by a few ulps of the largest score, not of each score: a score near 0
    # from vectors of norm ~20 carries an absolute error of ~1e-5
    scale = max(1.0, float(np.abs(sa).max()))
    np.testing.assert_allclose(sa, sb, rtol=1e-6, atol=1e-6 * scale)


@pytest.fixture
def queries(rng):
    return rng.normal(size=(9, 16)).astype(np.float32) * 4


@pytest.mark.parametrize("metric", METRICS)
def test_exact_dense_matches_one_index_before_and_after_removals(vectors, queries, metric):
    one, many = pair(vectors, metric)
    assert many.n_shards == 9 and len(many) == 300
    same_results(one, many, queries, 15)
    gone = [str(i) for i in range(30, 80)] + ["5", "299"]
    assert one.remove(gone) == many.remove(gone) == 52
    assert many.ids == one.ids
    same_results(one, many, queries, 15)
    same_results(one, many, queries, len(one))  # every row, across every shard


def test_removing_a_whole_shard_keeps_positions(vectors, queries):
    one, many = pair(vectors, "cosine", shard_size=50)
    gone = [str(i) for i in range(50, 100)]  # exactly shard 1
    one.remove(gone)
    many.remove(gone)
    assert many.n_shards == 5
    same_results(one, many, queries, 20)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("encoder", ["tfidf", "count", "hashing"])
def test_exact_sparse_matches_one_index(corpus, tweets, metric, encoder):
    from simtools.encoders import make_encoder

    texts = [f"{text} {i}" for i in range(6) for text in corpus.values()]
    fitted = make_encoder(encoder).fit(texts)
    one = Index(fitted, metric=metric)
    one.add_texts(texts)
    many = ShardedIndex(fitted, metric=metric, shard_size=5)
    many.add_texts(texts)
    queries = list(tweets.values()) + ["tennis racket court"]
    for a, b in zip(one.search(queries, k=7), many.search(queries, k=7)):
        same_ranking(a, b, metric)
    drop = [str(i) for i in range(3, 19)]
    one.remove(drop)
    many.remove(drop)
    other = ShardedIndex(fitted, metric=metric, shard_size=3)
    other.add_texts(texts)
    other.remove(drop)
    for a, b, c in zip(*(i.search(queries, k=5) for i in (one, many, other))):
        same_ranking(a, b, metric)
        assert b == c  # bit for bit, whatever the shard size


def same_ranking(one, sharded, metric):
    """The same neighbours with the same scores (to float32 rounding: one index's sparse
    scores vary in the last bit); documents tied come in position order in the sharded index
    (checked where the score shown is the one ranked by: a distance is the root of the
    squared distance ranked by, and two of those can round to one), and the documents tied at
    the last place kept may be other copies."""
    assert len(one) == len(sharded)
    np.testing.assert_allclose([n.score for n in one], [n.score for n in sharded], rtol=1e-5)
    groups: dict[float, tuple[list[str], list[str]]] = {}
    for a, b in zip(one, sharded):
        key = round(b.score, 4)
        groups.setdefault(key, ([], []))
        groups[key][0].append(a.id)
        groups[key][1].append(b.id)
    for before, after in zip(sharded, sharded[1:]):
        if before.score == after.score and metric in ("cosine", "inner_product"):
            assert int(before.id) < int(after.id)
    for i, (ids_one, ids_sharded) in enumerate(groups.values()):
        if i < len(groups) - 1:
            assert sorted(ids_one) == sorted(ids_sharded)


@pytest.mark.parametrize("metric", METRICS)
def test_faiss_flat_matches_one_index(vectors, queries, metric):
    pytest.importorskip("faiss")
    one, many = pair(vectors, metric, backend="flat")
    same_results(one, many, queries, 10)
    gone = [str(i) for i in range(10, 60)]
    one.remove(gone)
    many.remove(gone)
    same_results(one, many, queries, 10)


@pytest.mark.parametrize("metric", METRICS)
def test_faiss_hnsw_and_ivf_match_when_searched_exhaustively(vectors, queries, metric):
    """Approximate shards are approximate each on their own; searched exhaustively (a beam as
    wide as the shard, every IVF cell probed) they give one index's answers."""
    pytest.importorskip("faiss")
    for backend, options in (("hnsw", {"ef_search": 400}), ("ivf", {"nlist": 2, "nprobe": 2})):
        one, many = pair(vectors, metric, backend=backend, shard_size=100, **options)
        same_results(one, many, queries, 10)
        gone = [str(i) for i in range(0, 300, 7)]
        one.remove(gone)
        many.remove(gone)
        same_results(one, many, queries, 10)


def test_ties_are_broken_by_position_across_shards(rng):
    """The same vector in every shard: each copy scores the same, listed in position order."""
    base = rng.normal(size=(1, 8)).astype(np.float32)
    X = np.vstack([base if i % 4 == 0 else rng.normal(size=(1, 8)).astype(np.float32)
                   for i in range(40)])
    one = Index(None)
    one.add_vectors(X)
    many = ShardedIndex(None, shard_size=6)
    many.add_vectors(X)
    for index in (one, many):
        hits = index.search(base, k=10)[0]
        assert [h.id for h in hits] == [str(i) for i in range(0, 40, 4)]
    assert many.search(base, k=10) == many.search(base, k=10)


def test_merge_puts_missing_neighbours_last_and_keeps_ties_in_position_order():
    parts = [(np.array([[0.9, 0.5, -np.inf]], np.float32), np.array([[2, 0, -1]])),
             (np.array([[0.9, 0.7]], np.float32), np.array([[1, 0]]))]
    scores, positions = merge_topk_shards(parts, [0, 10], 4, largest=True)
    assert positions.tolist() == [[2, 11, 10, 0]]
    assert scores.tolist()[0][:2] == pytest.approx([0.9, 0.9])
    scores, positions = merge_topk_shards(parts, [0, 10], 5, largest=False)
    assert positions[0, -1] == -1


def test_adding_routes_to_the_last_shard_and_ids_stay_unique(vectors):
    index = ShardedIndex(None, shard_size=100)
    index.add_vectors(vectors[:150], ids=[f"d{i}" for i in range(150)])
    assert [len(s) for s in index.shards.shards] == [100, 50]
    with pytest.raises(ValueError, match="already in the index"):
        index.add_vectors(vectors[:1], ids=["d7"])
    index.add_vectors(vectors[150:], ids=[f"d{i}" for i in range(150, 300)])
    assert [len(s) for s in index.shards.shards] == [100, 100, 100]
    index.remove(["d3", "d250"])
    assert [len(s) for s in index.shards.shards] == [99, 100, 99]
    with pytest.raises(KeyError, match="unknown id"):
        index.remove(["nope"])


def test_shard_size_is_checked():
    with pytest.raises(InputError, match="shard_size must be a positive number"):
        ShardedIndex(None, shard_size=0)


# -- saving and loading ------------------------------------------------------------------------
def test_round_trip_through_index_load(tmp_path, corpus, tweets):
    docs = [Document(f"{text} copy {i}", title, f"L{i % 3}", "src", {"n": i})
            for i in range(5) for title, text in corpus.items()]
    built = build_index(docs, encoder="tfidf", shard_size=6)
    assert isinstance(built, ShardedIndex) and built.n_shards == 4
    built.save(tmp_path / "idx")
    assert is_sharded(tmp_path / "idx") and len(shard_dirs_in(tmp_path / "idx")) == 4
    loaded = Index.load(tmp_path / "idx")
    assert isinstance(loaded, ShardedIndex) and loaded.ids == built.ids
    assert loaded.labels == built.labels and loaded.metadata == built.metadata
    queries = list(tweets.values())
    assert loaded.search(queries, k=5) == built.search(queries, k=5)
    reference = build_index(docs, encoder="tfidf")
    assert [[n.id for n in row] for row in reference.search(queries, k=5)] == \
        [[n.id for n in row] for row in loaded.search(queries, k=5)]


def test_one_shard_is_saved_as_an_ordinary_folder(tmp_path, vectors):
    index = ShardedIndex(None, shard_size=1000)
    index.add_vectors(vectors)
    index.save(tmp_path / "one")
    assert not is_sharded(tmp_path / "one")
    manifest = json.loads((tmp_path / "one" / "config.json").read_text())
    assert manifest["layout"] == "versioned"
    plain = Index.load(tmp_path / "one")
    assert type(plain) is Index and plain.ids == index.ids


def test_a_save_writes_only_the_shards_that_changed(tmp_path, vectors, queries):
    index = ShardedIndex(None, shard_size=100)
    index.add_vectors(vectors)
    index.save(tmp_path / "idx")
    before = shard_dirs_in(tmp_path / "idx")
    index.remove(["150"])
    index.save(tmp_path / "idx")
    after = shard_dirs_in(tmp_path / "idx")
    assert after[0] == before[0] and after[2] == before[2] and after[1] != before[1]
    loaded = Index.load(tmp_path / "idx")
    loaded.add_vectors(vectors[:5], ids=["n1", "n2", "n3", "n4", "n5"])
    loaded.save(tmp_path / "idx")
    again = shard_dirs_in(tmp_path / "idx")
    assert again[:2] == after[:2] and len(again) == 4  # shard 2 was full: a new shard 3
    final = Index.load(tmp_path / "idx")
    assert len(final) == 304
    one = Index(None)
    one.add_vectors(np.vstack([np.delete(vectors, 150, axis=0), vectors[:5]]))
    same_results(one, final, queries, 12)


def test_saving_elsewhere_writes_every_shard(tmp_path, vectors):
    index = ShardedIndex(None, shard_size=100)
    index.add_vectors(vectors)
    index.save(tmp_path / "a")
    index.save(tmp_path / "b")
    assert len(shard_dirs_in(tmp_path / "b")) == 3
    assert Index.load(tmp_path / "b").ids == index.ids


def test_a_reader_keeps_its_shards_while_a_save_replaces_them(tmp_path, vectors):
    from simtools.index.shards_store import open_shards

    index = ShardedIndex(None, shard_size=100)
    index.add_vectors(vectors)
    index.save(tmp_path / "idx")
    with open_shards(tmp_path / "idx") as (_, folders, _encoder):
        index.remove(["1"])
        index.save(tmp_path / "idx")
        assert folders[0].is_dir()  # held by this reader: not removed yet
    index.remove(["2"])
    index.save(tmp_path / "idx")
    assert not folders[0].exists() and len(shard_dirs_in(tmp_path / "idx")) == 3


def test_sharded_and_plain_folders_replace_each_other(tmp_path, vectors):
    plain = Index(None)
    plain.add_vectors(vectors)
    plain.save(tmp_path / "idx")
    sharded = ShardedIndex(None, shard_size=100)
    sharded.add_vectors(vectors)
    sharded.save(tmp_path / "idx")
    names = os.listdir(tmp_path / "idx")
    assert not any(n.startswith("v") for n in names)  # the one-folder version went
    assert Index.load(tmp_path / "idx").n_shards == 3


def test_with_metric_and_stored_vectors(vectors):
    index = ShardedIndex(None, metric="cosine", shard_size=64)
    index.add_vectors(vectors)
    np.testing.assert_allclose(index.stored_vectors(raw=True), vectors, rtol=1e-5, atol=1e-5)
    euclid = index.with_metric("euclidean")
    assert isinstance(euclid, ShardedIndex) and euclid.n_shards == 5
    one = Index(None, metric="cosine")
    one.add_vectors(vectors)
    same_results(one.with_metric("euclidean"), euclid, vectors[:4] + 0.5, 6)


def test_search_and_classify_from_the_command_line(tmp_path, corpus, tweets):
    from click.testing import CliRunner
    from simtools_cli.main import main

    folder = tmp_path / "texts"
    for label, text in corpus.items():
        (folder / label).mkdir(parents=True)
        for i in range(3):
            (folder / label / f"{i}.txt").write_text(f"{text} variant {i}", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["index", "files", str(folder), "--out", str(tmp_path / "idx"),
                                  "--encoder", "tfidf", "--shard-size", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert is_sharded(tmp_path / "idx")
    assert json.loads(result.output.splitlines()[-1])["documents"] == 12
    searched = runner.invoke(main, ["search", tweets["Tennis"], "--index", str(tmp_path / "idx"),
                                    "-k", "2", "--json"])
    assert searched.exit_code == 0, searched.output
    assert json.loads(searched.output)["neighbours"][0]["label"] == "Tennis"
    plain = runner.invoke(main, ["index", "files", str(folder), "--out", str(tmp_path / "one"),
                                 "--encoder", "tfidf"])
    assert plain.exit_code == 0 and not is_sharded(tmp_path / "one")
    answers = []
    for index in ("idx", "one"):
        classified = runner.invoke(main, ["classify", *tweets.values(), "-k", "3", "--index",
                                          str(tmp_path / index)])
        assert classified.exit_code == 0, classified.output
        answers.append(classified.output)
    assert answers[0] == answers[1]
    assert answers[0].startswith("Machine learning")


# -- faults -------------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path, vectors):
    index = ShardedIndex(None, shard_size=100)
    index.add_vectors(vectors)
    index.save(tmp_path / "idx")
    return tmp_path / "idx"


def test_a_missing_shard_is_named(saved):
    shutil.rmtree(saved / shard_dirs_in(saved)[1])
    with pytest.raises(FormatError, match=r"shard 1 of 3 \(shard-00001-[0-9a-f]{8}\) is missing"):
        Index.load(saved)


def test_a_corrupted_shard_is_named(saved):
    victim = saved / shard_dirs_in(saved)[2] / "vectors.npy"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"shard 2 of 3 \(shard-00002-.*\) .*damaged.*checksum"):
        Index.load(saved)


def test_a_manifest_of_another_format_version_is_refused(saved):
    manifest = json.loads((saved / "config.json").read_text())
    manifest["format_version"] = 3
    (saved / "config.json").write_text(json.dumps(manifest))
    with pytest.raises(FormatError, match="format version 3; this simtools reads version 2"):
        Index.load(saved)


def test_an_older_reader_refuses_a_sharded_folder_clearly(saved):
    from simtools.persistence import read_config

    with open_folder(saved, kind="index") as folder, \
            pytest.raises(FormatError, match="format version 2; this simtools reads"):
        read_config(folder, kind="index", versions=(1,))


def test_two_saves_into_one_folder_at_once_are_refused(saved, vectors):
    index = Index.load(saved)
    with FolderWriter(saved, kind="index"), \
            pytest.raises(FolderInUseError, match="being saved by another process"):
        index.save(saved)


def test_an_interrupted_first_save_leaves_a_folder_simtools_knows(tmp_path, vectors, monkeypatch):
    from simtools.index import shards_store

    index = ShardedIndex(None, shard_size=100)
    index.add_vectors(vectors)
    original = shards_store.ShardStore.write_shard
    calls = []

    def failing(self, number, write, count):
        calls.append(number)
        if number == 2:
            raise KeyboardInterrupt
        return original(self, number, write, count)

    monkeypatch.setattr(shards_store.ShardStore, "write_shard", failing)
    with pytest.raises(KeyboardInterrupt):
        index.save(tmp_path / "idx")
    with pytest.raises(FormatError, match="holds no saved index yet"):
        Index.load(tmp_path / "idx")
    monkeypatch.setattr(shards_store.ShardStore, "write_shard", original)
    index._forget_records()
    index.save(tmp_path / "idx")  # no --force needed: the folder is simtools' own
    assert len(shard_dirs_in(tmp_path / "idx")) == 3  # the orphans of the killed save went
    assert Index.load(tmp_path / "idx").ids == index.ids


def test_use_device_moves_every_shard_and_those_added_later(vectors, queries):
    from simtools.index.device import Device, cuda_available

    one, many = pair(vectors, "cosine")
    assert many.use_device("cpu") is many and many.shards.device is Device.CPU
    many.add_vectors(vectors[:40] + 1.0)
    one.add_vectors(vectors[:40] + 1.0)
    same_results(one, many, queries, 15)
    if not cuda_available():
        with pytest.raises(InputError, match="torch sees no CUDA GPU|needs torch"):
            many.use_device("cuda")
    with pytest.raises(ValueError, match="device"):
        many.use_device("tpu")


def test_a_one_folder_save_over_a_sharded_folder_removes_its_shards(tmp_path, vectors):
    index = ShardedIndex(None, shard_size=100)
    index.add_vectors(vectors)
    index.save(tmp_path / "idx")
    assert len(shard_dirs_in(tmp_path / "idx")) == 3
    small = Index(None)
    small.add_vectors(vectors[:10])
    small.save(tmp_path / "idx")  # an ordinary index replaces the sharded one...
    assert Index.load(tmp_path / "idx").ids == small.ids
    again = ShardedIndex.load(tmp_path / "idx")
    again.save(tmp_path / "idx")  # ...and the next sharded-aware save removes the old shards
    assert shard_dirs_in(tmp_path / "idx") == []
    assert not is_sharded(tmp_path / "idx") and Index.load(tmp_path / "idx").ids == small.ids


def test_hybrid_files_refuse_workers_and_shards(tmp_path):
    from click.testing import CliRunner
    from simtools_cli.main import main

    (tmp_path / "a.txt").write_text("some text", encoding="utf-8")
    for extra in (["--workers", "2"], ["--shard-size", "5"], ["--engine", "ray"]):
        result = CliRunner().invoke(main, ["index", "files", str(tmp_path / "a.txt"), "--out",
                                           str(tmp_path / "i"), "--encoder", "hybrid", *extra])
        assert result.exit_code == 2 and "leave --workers, --engine and --shard-size out" in result.output
