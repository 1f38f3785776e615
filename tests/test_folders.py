"""simtools.folders: what --out may replace, versioned saves, locks, checksums, hostile folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from folder_tools import live, reseal
from simtools_cli.main import main

from simtools.errors import FolderInUseError, FormatError, OutputExistsError
from simtools.folders import FolderWriter, check_output, current_version, open_folder, save_folder
from simtools.index import Index
from simtools.persistence import read_json

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def small_index(n: int = 20, dim: int = 8, seed: int = 0) -> Index:
    rng = np.random.default_rng(seed)
    index = Index(metric="cosine")
    index.add_vectors(rng.normal(size=(n, dim)).astype(np.float32),
                      titles=[f"doc {i}" for i in range(n)])
    return index


def text_index() -> Index:
    index = Index("tfidf")
    index.add_texts(["football is a team sport with a ball", "tennis players hit a ball",
                     "machine learning trains a model"], titles=["football", "tennis", "ml"])
    return index


def entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.txt").write_text("my thesis")
    return folder


# -- 1. --out never deletes a user's files ------------------------------------------------------
def test_index_files_refuses_to_replace_a_folder_of_other_files(tmp_path):
    folder = notes(tmp_path)
    result = run("index", "files", str(folder), "--out", str(folder))
    assert result.exit_code == 1
    assert "is not empty and is not a simtools folder" in result.output
    assert str(folder) in result.output and "--force" in result.output
    assert (folder / "thesis.txt").read_text() == "my thesis"
    assert entries(folder) == ["thesis.txt"]  # nothing was written either


@pytest.mark.parametrize("command", [
    ["index", "wikipedia", "Tennis", "--api-url", "http://127.0.0.1:9/w/api.php",
     "--no-cache"],
    ["index", "dump", "DUMP"],
    ["distill", "--data", "DATA", "--method", "none"],
])
def test_every_out_command_refuses_a_folder_of_other_files(tmp_path, command):
    folder = notes(tmp_path)
    (tmp_path / "d.xml.bz2").write_bytes(b"not read: --out is checked first")
    (tmp_path / "data.csv").write_text("text,label\na,b\n")
    args = [str(tmp_path / "d.xml.bz2") if a == "DUMP" else
            str(tmp_path / "data.csv") if a == "DATA" else a for a in command]
    result = run(*args, "--out", str(folder))
    assert result.exit_code == 1 and "is not empty and is not a simtools folder" in result.output
    assert entries(folder) == ["thesis.txt"]


def test_force_saves_beside_foreign_files_and_never_deletes_them(tmp_path):
    folder = notes(tmp_path)
    text_index().save(folder, force=True)
    assert (folder / "thesis.txt").read_text() == "my thesis"
    assert len(Index.load(folder)) == 3
    text_index().save(folder)  # now a simtools index folder: no force needed
    assert (folder / "thesis.txt").read_text() == "my thesis"
    assert sorted(entries(folder)) == sorted(["config.json", "thesis.txt",
                                              current_version(folder).name])


def test_cli_force_saves_beside_foreign_files(tmp_path):
    folder = notes(tmp_path)
    result = run("index", "files", str(folder), "--out", str(folder), "--force")
    assert result.exit_code == 0, result.output
    assert (folder / "thesis.txt").read_text() == "my thesis"
    assert Index.load(folder).titles == ["thesis.txt"]


def test_a_foreign_config_json_is_never_overwritten_even_forced(tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "config.json").write_text('{"theme": "dark"}')
    for force in (False, True):
        with pytest.raises(OutputExistsError, match="config.json that simtools did not write"):
            text_index().save(folder, force=force)
    assert (folder / "config.json").read_text() == '{"theme": "dark"}'


def test_another_kind_is_replaced_only_when_forced(tmp_path):
    from simtools.encoders import make_encoder

    folder = tmp_path / "thing"
    make_encoder("count").fit(["alpha beta gamma"]).save(folder)
    with pytest.raises(OutputExistsError, match="holds a simtools encoder, not an index"):
        text_index().save(folder)
    text_index().save(folder, force=True)
    assert len(Index.load(folder)) == 3 and len(entries(folder)) == 2


def test_a_file_is_never_an_output_folder(tmp_path):
    (tmp_path / "f").write_text("keep")
    with pytest.raises(OutputExistsError, match="is a file, not a folder"):
        check_output(tmp_path / "f", kind="index", force=True)
    assert (tmp_path / "f").read_text() == "keep"


def test_a_symlinked_out_stays_a_symlink(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    text_index().save(link)
    text_index().save(link)
    assert link.is_symlink() and (real / "config.json").is_file()
    assert len(Index.load(link)) == 3


def test_resaving_keeps_one_version_and_no_debris(tmp_path):
    folder = tmp_path / "idx"
    for seed in range(3):
        small_index(seed=seed).save(folder)
    assert entries(folder) == ["config.json", current_version(folder).name]
    assert read_json(folder / "config.json")["version"] == 3


# -- 2. crashes, debris, readers and writers --------------------------------------------------
def test_stale_temporaries_and_unpublished_versions_are_removed_by_the_next_save(tmp_path):
    folder = tmp_path / "idx"
    small_index().save(folder)
    (folder / ".config.json.k3j_x9q2.tmp").write_text("{")  # killed while swapping the manifest
    for name in (".v7-0123abcd.tmp", "v8-0123abcd"):  # what a killed save leaves
        (folder / name).mkdir()
        (folder / name / "vectors.npy").write_bytes(b"\0" * 100_000)
    (folder / "v8-0123abcd" / ".readers").touch()
    assert len(Index.load(folder)) == 20  # debris never disturbs a reader
    small_index(seed=1).save(folder)
    assert entries(folder) == ["config.json", current_version(folder).name]


@pytest.mark.parametrize("step", ["seal", "rename", "manifest"])
def test_a_failure_at_any_step_of_a_save_keeps_the_old_index(tmp_path, monkeypatch, step):
    import simtools.folders.write as folders

    folder = tmp_path / "idx"
    small_index(n=20).save(folder)

    def broken(*args, **kwargs):
        raise OSError(f"crash at {step}")

    target = {"seal": "_seal", "rename": "os.rename", "manifest": "atomic_write"}[step]
    if target == "os.rename":
        monkeypatch.setattr(folders.os, "rename", broken)
    else:
        monkeypatch.setattr(folders, target, broken)
    with pytest.raises(OSError, match=f"crash at {step}"):
        small_index(n=30).save(folder)
    monkeypatch.undo()
    assert len(Index.load(folder)) == 20
    assert entries(folder) == ["config.json", current_version(folder).name]


KILLED_SAVER = textwrap.dedent("""
    import sys, numpy as np
    from simtools.index import Index
    folder, n = sys.argv[1], int(sys.argv[2])
    index = Index(metric="cosine")
    index.add_vectors(np.random.default_rng(n).normal(size=(n, 64)).astype(np.float32))
    print("ready", flush=True)
    while True:
        index.save(folder)
""")


def test_kill_during_saves_never_leaves_a_broken_index_or_debris(tmp_path):
    folder = tmp_path / "idx"
    small_index(n=20).save(folder)
    rng = np.random.default_rng(0)
    for kill in range(4):
        n = 20_000 + kill
        proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(folder), str(n)],
                                stdout=subprocess.PIPE, cwd=ROOT)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        try:
            proc.wait(timeout=float(rng.uniform(0.05, 0.4)))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert len(Index.load(folder)) in (20, *range(20_000, n + 1))
    small_index(n=20).save(folder)
    assert entries(folder) == ["config.json", current_version(folder).name]


def test_a_reader_holds_its_version_until_it_is_done(tmp_path):
    folder = tmp_path / "idx"
    small_index(seed=0).save(folder)
    first = current_version(folder)
    with open_folder(folder, kind="index") as files:
        assert files == first
        small_index(seed=1).save(folder)  # may not remove the version being read
        assert first.exists() and current_version(folder) != first
    small_index(seed=2).save(folder)
    assert not first.exists()


def test_a_second_writer_gets_a_lock_error(tmp_path):
    folder = tmp_path / "idx"
    with FolderWriter(folder, kind="index"), pytest.raises(FolderInUseError, match=(
            rf"is being saved by another process \(pid {os.getpid()} on .*\); wait")):
        small_index().save(folder)
    small_index().save(folder)  # the lock went with its writer
    assert entries(folder) == ["config.json", current_version(folder).name]


def test_a_dead_writers_lock_is_no_obstacle(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / ".simtools.lock").write_text('{"pid": 999999, "host": "gone", "since": "then"}')
    small_index().save(folder)
    assert ".simtools.lock" not in entries(folder)


READER = textwrap.dedent("""
    import sys, time
    from simtools.index import Index
    folder, seconds = sys.argv[1], float(sys.argv[2])
    loads = bad = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            index = Index.load(folder)
            n = len(index)
            # each version is self-consistent: n documents titled 'v{n}' and n vectors
            if index.titles[0] != f"v{n}" or index.stored_vectors().shape[0] != n:
                bad += 1
        except Exception as e:
            print(type(e).__name__, e, file=sys.stderr)
            bad += 1
        loads += 1
    print(loads, bad)
""")


def test_readers_never_see_a_half_saved_or_mixed_index(tmp_path):
    folder = tmp_path / "idx"

    def version(n):
        index = Index("hashing")
        index.add_texts([f"text {i} of {n}" for i in range(n)], titles=[f"v{n}"] * n)
        return index

    versions = [version(n) for n in (50, 80)]
    versions[0].save(folder)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(folder), "3"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True)
    saves = 0
    while reader.poll() is None:
        versions[saves % 2].save(folder)
        saves += 1
    out, err = reader.communicate()
    loads, bad = map(int, out.split())
    assert bad == 0, err
    assert loads > 0 and saves > 1


# -- checksums: a changed byte is an error, never a silently wrong answer ---------------------
@pytest.mark.parametrize("name", ["vectors.npy", "norms.npy", "documents.jsonl", "config.json"])
def test_a_changed_byte_in_any_file_is_caught(tmp_path, name):
    folder = tmp_path / "idx"
    small_index().save(folder)
    path = live(folder) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=f"{name} does not match the checksum"):
        Index.load(folder)


def test_nan_rows_in_vectors_are_caught(tmp_path):
    folder = tmp_path / "idx"
    small_index().save(folder)
    path = live(folder) / "vectors.npy"
    vectors = np.load(path)
    vectors[3] = np.nan
    np.save(path, vectors)
    with pytest.raises(FormatError, match="does not match the checksum"):
        Index.load(folder)


def test_a_changed_faiss_file_is_caught(tmp_path):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    index = Index(metric="cosine", backend="hnsw")
    index.add_vectors(rng.normal(size=(200, 8)).astype(np.float32))
    folder = tmp_path / "idx"
    index.save(folder)
    path = live(folder) / "index.faiss"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="index.faiss does not match the checksum"):
        Index.load(folder)


def test_a_file_the_manifest_does_not_name_is_refused(tmp_path):
    folder = tmp_path / "idx"
    small_index().save(folder)
    (live(folder) / "extra.npy").write_bytes(b"x")
    with pytest.raises(FormatError, match="extra.npy is not part of the saved folder"):
        Index.load(folder)


# -- 3. only regular files inside the folder are opened ---------------------------------------
def test_a_faiss_file_outside_the_folder_is_refused(tmp_path):
    pytest.importorskip("faiss")
    index = Index(metric="cosine", backend="flat")
    index.add_vectors(np.eye(4, dtype=np.float32))
    folder = tmp_path / "idx"
    index.save(folder)
    config_path = live(folder) / "config.json"
    config = json.loads(config_path.read_text())
    config["backend"]["file"] = "../../outside.faiss"
    config_path.write_text(json.dumps(config))
    (tmp_path / "outside.faiss").write_bytes((live(folder) / "index.faiss").read_bytes())
    reseal(folder)
    with pytest.raises(FormatError, match="not a plain file name inside the folder"):
        Index.load(folder)


def test_a_symlink_inside_the_folder_is_refused(tmp_path):
    folder = tmp_path / "idx"
    small_index().save(folder)
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_bytes((live(folder) / "documents.jsonl").read_bytes())
    (live(folder) / "documents.jsonl").unlink()
    (live(folder) / "documents.jsonl").symlink_to(outside)
    reseal(folder)  # even a manifest that agrees does not make a link acceptable
    with pytest.raises(FormatError, match="documents.jsonl is a symbolic link"):
        Index.load(folder)


def test_a_symlink_in_an_old_style_folder_is_refused(tmp_path):
    folder = tmp_path / "idx"
    small_index().save(folder)
    flat = tmp_path / "flat"
    live(folder).rename(flat)  # the files of a simtools 0.1 folder: no manifest
    (flat / ".readers").unlink()
    (tmp_path / "norms-elsewhere.npy").write_bytes((flat / "norms.npy").read_bytes())
    (flat / "norms.npy").unlink()
    (flat / "norms.npy").symlink_to(tmp_path / "norms-elsewhere.npy")
    with pytest.raises(FormatError, match="norms.npy is a symbolic link"):
        Index.load(flat)


def test_a_fifo_never_blocks_a_load(tmp_path):
    folder = tmp_path / "idx"
    small_index().save(folder)
    (live(folder) / "documents.jsonl").unlink()
    os.mkfifo(live(folder) / "documents.jsonl")
    signal.alarm(20)  # a regression would hang here; fail instead of blocking the suite
    try:
        with pytest.raises(FormatError, match="documents.jsonl is not a regular file"):
            Index.load(folder)
        # the same in a folder without a manifest
        (live(folder) / ".readers").unlink()
        with pytest.raises(FormatError, match="documents.jsonl is not a regular file"):
            Index.load(live(folder))
    finally:
        signal.alarm(0)


# -- 4. hostile JSON and array headers are format errors --------------------------------------
@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"kind": "index", "layout": "versioned", "version": 1e999}', "out of range"),
    ('{"kind": "index", "format_version": NaN}', "not a number simtools writes"),
])
def test_hostile_json_is_a_format_error(tmp_path, text, message):
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "config.json").write_text(text)
    with pytest.raises(FormatError, match=message):
        Index.load(folder)


def test_count_1e999_in_an_inner_config_is_a_format_error(tmp_path):
    folder = tmp_path / "idx"
    small_index().save(folder)
    path = live(folder) / "config.json"
    path.write_text(path.read_text().replace('"count": 20', '"count": 1e999'))
    reseal(folder)
    with pytest.raises(FormatError, match="out of range"):
        Index.load(folder)


def test_an_array_header_claiming_huge_rows_is_a_format_error(tmp_path):
    folder = tmp_path / "idx"
    small_index().save(folder)
    with open(live(folder) / "norms.npy", "wb") as handle:  # 10^12 rows claimed, 80 bytes held
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
        handle.write(b"\0" * 80)
    reseal(folder)
    with pytest.raises(FormatError, match=r"norms.npy is corrupted or truncated \(its header claims"):
        Index.load(folder)


# -- old folders ------------------------------------------------------------------------------
def test_a_simtools_0_1_folder_loads_and_the_first_save_converts_it(tmp_path):
    folder = tmp_path / "idx"
    text_index().save(folder)
    flat = tmp_path / "flat"
    live(folder).rename(flat)
    (flat / ".readers").unlink()
    (flat / "my-notes.txt").write_text("keep me")  # a user's file beside the 0.1 files
    assert len(Index.load(flat)) == 3
    small_index().save(flat)
    assert len(Index.load(flat)) == 20
    assert entries(flat) == sorted(["config.json", current_version(flat).name, "my-notes.txt"])


def test_a_0_1_save_interrupted_between_its_renames_is_rolled_back_on_load(tmp_path):
    folder = tmp_path / "idx"
    text_index().save(folder)
    live(folder).rename(tmp_path / ".idx.old-abc123")  # 0.1 moved the old copy aside, then died
    (tmp_path / ".idx.old-abc123" / ".readers").unlink()
    (folder / "config.json").unlink()
    folder.rmdir()
    assert len(Index.load(folder)) == 3
    assert folder.is_dir() and not (tmp_path / ".idx.old-abc123").exists()


def test_an_interrupted_first_save_says_so(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / ".v1-0123abcd.tmp").mkdir()
    with pytest.raises(FormatError, match="its first save was interrupted; save it again"):
        Index.load(folder)
    small_index().save(folder)  # and the next save simply proceeds
    assert len(Index.load(folder)) == 20


def test_save_folder_yields_a_fresh_folder_and_publishes_it(tmp_path):
    with save_folder(tmp_path / "x", kind="thing") as tmp:
        (tmp / "a.txt").write_text("one")
        assert not (tmp_path / "x" / "config.json").exists()
    with open_folder(tmp_path / "x", kind="thing") as files:
        assert (files / "a.txt").read_text() == "one"
    with pytest.raises(FormatError, match="holds a simtools 'thing', not an index"), \
            open_folder(tmp_path / "x", kind="index"):
        pass


def test_debris_of_0_1_saves_beside_the_folder_is_removed_once_an_hour_old(tmp_path):
    folder = tmp_path / "idx"
    small_index().save(folder)
    old, young = tmp_path / ".idx.tmp-abcd1234", tmp_path / ".idx.old-efgh5678"
    for path in (old, young):
        path.mkdir()
        (path / "vectors.npy").write_bytes(b"\0" * 1000)
    os.utime(old, (0, 0))
    other = tmp_path / ".other.tmp-abcd1234"  # another folder's: not ours to judge
    other.mkdir()
    os.utime(other, (0, 0))
    small_index().save(folder)
    assert not old.exists() and young.exists() and other.exists()


def test_a_0_1_save_interrupted_between_its_renames_is_rolled_back_on_save(tmp_path):
    folder = tmp_path / "idx"
    text_index().save(folder)
    live(folder).rename(tmp_path / ".idx.old-abc12345")
    (tmp_path / ".idx.old-abc12345" / ".readers").unlink()
    (folder / "config.json").unlink()
    folder.rmdir()
    small_index().save(folder)  # the old copy is put back first, then replaced properly
    assert len(Index.load(folder)) == 20
    assert not (tmp_path / ".idx.old-abc12345").exists()
