"""The reliability sweep: kills during saves, readers racing a writer, damaged files, hostile lines.

Four measurements, each against a target that must be met exactly (the script exits 1 if one is
missed):

* **kill**: a writer process saves an index in a loop and is killed with SIGKILL at a random
  moment, again and again. After every kill the folder must load (0 unloadable), hold one whole
  version (0 mixed), and after the next save hold nothing but that save (0 bytes of debris).
* **race**: one writer saves two alternating versions while readers load the folder in a loop
  for the given time: 0 failed and 0 mixed loads.
* **damage**: saved folders of every kind (a text index with its encoder, a sparse index, FAISS
  HNSW and IVF-PQ indexes, an encoder, a student model) get one mutation each (a flipped byte, a
  cut, appended bytes, a deleted, emptied or swapped file, a symlink, a FIFO, a folder): 0
  silent loads of changed content and 0 tracebacks. A second pass re-seals the manifest after
  each mutation (as if the saving code had written the damage itself): tracebacks must still be
  0; what loads silently there is reported, not judged (checksums are what catch it).
* **fuzz**: thousands of hostile lines (control characters, blank lines, ``\\r``, U+2028,
  emoji, very long lines, lone surrogates escaped) through ``simtools classify -`` and
  ``simtools search -``: one output line per input line, every time.

Every version a writer saves is self-identifying (a tag in every title, in the vectors' first
column and in the encoder's vocabulary), so a load that pairs the files of two versions is seen.

    python benchmarks/reliability/sweep.py                      # the full sweep (~3 minutes)
    python benchmarks/reliability/sweep.py --quick              # a smoke run (~20 s; CI runs it)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import _harness as h  # noqa: E402

sys.path.insert(0, str(HERE.parents[1]))
from simtools.errors import FormatError  # noqa: E402
from simtools.folders import current_version  # noqa: E402
from simtools.index import Index  # noqa: E402
from simtools.persistence import file_digest  # noqa: E402

SCRIPT = Path(__file__).resolve()


# -- self-identifying versions ----------------------------------------------------------------
def tagged_index(tag: int, rows: int) -> Index:
    """An index whose every part names ``tag``: titles, the vectors' first column, the encoder."""
    from simtools.encoders import make_encoder

    encoder = make_encoder("tfidf").fit([f"tag{tag} common words here", "other common words"])
    index = Index(encoder, metric="euclidean")
    rng = np.random.default_rng(tag)
    vectors = rng.normal(size=(rows, encoder.dim)).astype(np.float32)
    vectors[:, 0] = tag
    index.add_vectors(vectors, titles=[f"tag{tag}"] * rows)
    return index


def check_tagged(folder: Path) -> str:
    """'ok', or what is wrong with the index at ``folder`` ('mixed: ...')."""
    index = Index.load(folder)
    tags = {str(title) for title in index.titles}
    if len(tags) != 1:
        return f"mixed: titles of {sorted(tags)}"
    tag = int(next(iter(tags))[3:])
    first = np.unique(index.stored_vectors()[:, 0])
    if first.tolist() != [float(tag)]:
        return f"mixed: vectors of tags {first.tolist()[:3]} with titles of tag {tag}"
    if f"tag{tag}" not in index.encoder.vocabulary:
        return f"mixed: an encoder without tag{tag}"
    return "ok"


def debris_bytes(folder: Path) -> int:
    """Bytes in ``folder`` that are neither the manifest nor the current version."""
    keep = {"config.json", current_version(folder).name}
    total = 0
    for entry in os.listdir(folder):
        if entry in keep:
            continue
        path = folder / entry
        if path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) + 1
        else:
            total += path.stat().st_size + 1  # an empty stray file still counts
    return total


# -- worker roles (this script run as a subprocess) -------------------------------------------
def role_writer(folder: Path, rows: int, seconds: float, tags: list[int]) -> None:
    versions = [tagged_index(tag, rows) for tag in tags]
    print("ready", flush=True)
    end = time.monotonic() + seconds
    saves = 0
    while time.monotonic() < end:
        versions[saves % len(versions)].save(folder)
        saves += 1
    print(saves, flush=True)


def role_reader(folder: Path, seconds: float) -> None:
    loads = failed = mixed = 0
    errors: dict[str, int] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            verdict = check_tagged(folder)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            failed += 1
            key = f"{type(e).__name__}: {str(e)[:120]}"
            errors[key] = errors.get(key, 0) + 1
        else:
            mixed += verdict != "ok"
        loads += 1
    print(json.dumps({"loads": loads, "failed": failed, "mixed": mixed, "errors": errors}))


def _spawn(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], text=True,
                            stdout=subprocess.PIPE, **kwargs)


# -- the four measurements --------------------------------------------------------------------
def kill_sweep(work: Path, kills: int, rows: int, seed: int) -> dict[str, Any]:
    folder = work / "killed"
    tagged_index(0, rows).save(folder)
    rng = random.Random(seed)
    unloadable = mixed = mid_save = 0
    worst_debris = 0
    for kill in range(kills):
        proc = _spawn("--role", "writer", str(folder), str(rows), "3600",
                      str(2 * kill + 1), str(2 * kill + 2))
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mid_save += any(e.startswith(".v") for e in os.listdir(folder))
        try:
            mixed += check_tagged(folder) != "ok"
        except Exception:  # noqa: BLE001
            unloadable += 1
        tagged_index(1000 + kill, rows).save(folder)
        worst_debris = max(worst_debris, debris_bytes(folder))
    return {"kills": kills, "kills_mid_save": mid_save, "unloadable": unloadable,
            "mixed": mixed, "debris_bytes_after_next_save": worst_debris}


def race(work: Path, seconds: float, readers: int, rows: int) -> dict[str, Any]:
    folder = work / "raced"
    tagged_index(1, rows).save(folder)
    writer = _spawn("--role", "writer", str(folder), str(rows), str(seconds), "1", "2")
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    procs = [_spawn("--role", "reader", str(folder), str(seconds)) for _ in range(readers)]
    results = [json.loads(p.communicate()[0]) for p in procs]
    saves = int(writer.communicate()[0].split()[-1])
    errors: dict[str, int] = {}
    for r in results:
        for key, count in r["errors"].items():
            errors[key] = errors.get(key, 0) + count
    return {"seconds": seconds, "readers": readers, "saves": saves,
            "loads": sum(r["loads"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "mixed": sum(r["mixed"] for r in results), "errors": errors}


def _pristine(work: Path) -> dict[str, tuple[Path, Callable[[Path], Any]]]:
    """Saved folders of every kind, and a function that loads one and returns what it holds."""
    from simtools.encoders import load_encoder, make_encoder
    from simtools.student import StudentClassifier

    texts = ["football is a team sport with a ball", "tennis players hit a ball over a net",
             "machine learning trains a model on data", "the bank cut its profit forecast"]
    folders: dict[str, tuple[Path, Callable[[Path], Any]]] = {}

    def index_answer(path: Path) -> Any:
        index = Index.load(path)
        queries = (np.random.default_rng(0).normal(size=(3, index.dim or 0)).astype(np.float32)
                   if index.encoder is None else ["a ball game", "a model of data"])
        found = index.search(queries, k=min(3, len(index)))
        return [[(n.id, round(n.score, 5), n.title, n.label, n.metadata) for n in row]
                for row in found]

    text = Index("tfidf")
    text.add_texts(texts, titles=["football", "tennis", "ml", "bank"],
                   labels=["sport", "sport", "tech", "money"],
                   metadata=[{"n": i} for i in range(4)])
    folders["text index"] = (text.save(work / "text"), index_answer)
    sparse = Index("count", metric="euclidean")
    sparse.add_texts(texts)
    folders["sparse index"] = (sparse.save(work / "sparse"), index_answer)
    try:
        import faiss  # noqa: F401

        X = np.random.default_rng(1).normal(size=(1200, 16)).astype(np.float32)
        ann_options: tuple[tuple[str, dict[str, Any]], ...] = (
            ("hnsw", {}), ("ivf", {"nlist": 8, "compression": "pq", "pq_m": 4, "pq_bits": 4}))
        for name, options in ann_options:
            ann = Index(metric="cosine", backend=name, **options)
            ann.add_vectors(X)
            folders[f"{name} index"] = (ann.save(work / name), index_answer)
    except ImportError:
        pass
    encoder = make_encoder("tfidf").fit(texts)
    folders["encoder"] = (encoder.save(work / "encoder"),
                          lambda p: load_encoder(p).encode(texts).toarray().round(5).tolist())
    model = StudentClassifier.load()
    folders["model"] = (model.save(work / "model"),
                        lambda p: StudentClassifier.load(p).predict_proba(texts).round(5).tolist())
    return folders


MUTATIONS = ["flip", "cut", "append", "delete", "empty", "swap", "symlink", "fifo", "folder"]


def _mutate(path: Path, kind: str, rng: random.Random, others: list[Path]) -> None:
    data = path.read_bytes()
    if kind == "flip" and data:
        buf = bytearray(data)
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(buf))
    elif kind == "cut":
        path.write_bytes(data[: rng.randrange(len(data))] if data else b"")
    elif kind == "append":
        path.write_bytes(data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))))
    elif kind == "delete":
        path.unlink()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "swap":
        other = rng.choice([o for o in others if o != path] or [path])
        path.write_bytes(other.read_bytes())
    elif kind == "symlink":
        outside = path.parent / f"../../outside-{rng.randrange(10**9)}"
        outside.write_bytes(data)
        path.unlink()
        path.symlink_to(outside.resolve())
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "folder":
        path.unlink()
        path.mkdir()


def _reseal(folder: Path) -> None:
    manifest_path = folder / "config.json"
    manifest = json.loads(manifest_path.read_text())
    version = folder / manifest["current"]
    files = {}
    for path in sorted(version.rglob("*")):
        if path.name != ".readers" and stat.S_ISREG(os.lstat(path).st_mode):
            files[path.relative_to(version).as_posix()] = {
                "bytes": path.stat().st_size, "sha256": file_digest(path)}
    manifest["files"] = files
    manifest_path.write_text(json.dumps(manifest))


def damage_sweep(work: Path, mutations: int, seed: int, *, resealed: bool) -> dict[str, Any]:
    rng = random.Random(seed)
    pristine = _pristine(work / "pristine")
    expected = {name: load(path) for name, (path, load) in pristine.items()}
    counts = {"mutations": 0, "caught": 0, "harmless": 0, "silent": 0, "tracebacks": 0}
    tracebacks: dict[str, int] = {}
    silent: list[str] = []
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("hung")))
    for i in range(mutations):
        name = rng.choice(sorted(pristine))
        source, load = pristine[name]
        copy = work / "damaged" / f"{i}"
        shutil.copytree(source, copy, symlinks=True)
        version = current_version(copy)
        files = sorted(p for p in version.rglob("*") if p.is_file() and p.name != ".readers")
        # the manifest itself is a target too, but not when re-sealing (that rewrites it)
        targets = files if resealed else [*files, copy / "config.json"]
        target = rng.choice(targets)
        kind = rng.choice(MUTATIONS)
        _mutate(target, kind, rng, files)
        if resealed and target != copy / "config.json":
            _reseal(copy)
        counts["mutations"] += 1
        signal.alarm(20)
        try:
            got = load(copy)
        except FormatError:
            counts["caught"] += 1
        except Exception as e:  # noqa: BLE001 - anything else is a traceback a user would see
            counts["tracebacks"] += 1
            key = f"{name}/{target.name}/{kind}: {type(e).__name__}: {str(e)[:100]}"
            tracebacks[key] = tracebacks.get(key, 0) + 1
        else:
            if got == expected[name]:
                counts["harmless"] += 1
            else:
                counts["silent"] += 1
                silent.append(f"{name}/{target.name}/{kind}")
        finally:
            signal.alarm(0)
        shutil.rmtree(copy, ignore_errors=True)
    return {**counts, "resealed": resealed, "traceback_kinds": tracebacks,
            "silent_examples": sorted(set(silent))[:20]}


def _hostile_lines(n: int, rng: random.Random) -> list[str]:
    pieces = ["", " ", "\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028",
              "\u2029", "\x00", "\x07", "\x1b[31m", "\r", "😀", "👀", "😂😂😂", "é", "테니스",
              "مرحبا", "\ufeff", "\u200b", "P O S T E D.", "a", "the", "goal!!!", "#hashtag",
              "@user", "http://t.co/x", "x" * 5000, "word " * 2000]
    lines = []
    for _ in range(n):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        lines.append(line.replace("\n", " "))
    return lines


def fuzz(work: Path, texts: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    lines = _hostile_lines(texts, rng)
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    index = Index("hashing")
    index.add_texts(["football is a team sport", "tennis is played with a racket"],
                    titles=["football", "tennis"])
    index.save(work / "fuzz-index")
    results = {}
    for name, args in (("classify", ["classify", "-"]),
                       ("search", ["search", "-", "--index", str(work / "fuzz-index"), "-k",
                                   "1", "--json"])):
        done = subprocess.run([sys.executable, "-m", "simtools", *args], input=data,
                              capture_output=True, timeout=600)
        out_lines = done.stdout.decode("utf-8", "replace").split("\n")
        if out_lines and out_lines[-1] == "":
            out_lines.pop()
        results[name] = {"exit_status": done.returncode, "lines_in": len(lines),
                         "lines_out": len(out_lines),
                         "traceback": "Traceback" in done.stderr.decode("utf-8", "replace")}
    return {"texts": texts, "commands": results,
            "mismatches": sum(r["lines_in"] != r["lines_out"] for r in results.values()),
            "tracebacks": sum(r["traceback"] for r in results.values())}


# -- main -------------------------------------------------------------------------------------
def readme_table(payload: dict[str, Any]) -> str:
    """The README's table of a run's results (``results/reliability.json``)."""
    return h.markdown_table(["sweep", "n", "result"],
                            [[row["sweep"], row["n"], row["result"]] for row in payload["rows"]])


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, folder, *rest = sys.argv[2:]
        if role == "writer":
            row_count, writer_seconds, *tags = rest
            role_writer(Path(folder), int(row_count), float(writer_seconds),
                        [int(t) for t in tags])
        else:
            role_reader(Path(folder), float(rest[0]))
        return 0
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=30)
    p.add_argument("--race-seconds", type=float, default=60.0)
    p.add_argument("--readers", type=int, default=3)
    p.add_argument("--mutations", type=int, default=300)
    p.add_argument("--fuzz-texts", type=int, default=5000)
    p.add_argument("--rows", type=int, default=50_000, help="rows of the killed/raced index")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-name", default=None, help="results/<name>.json (default: reliability"
                   " or reliability_quick)")
    args = p.parse_args()
    if args.quick:
        args.kills, args.race_seconds, args.mutations = 4, 3.0, 60
        args.fuzz_texts, args.rows = 4000, 5000
    with tempfile.TemporaryDirectory(prefix="simtools-sweep-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        kill = kill_sweep(work, args.kills, args.rows, args.seed)
        raced = race(work, args.race_seconds, args.readers, args.rows // 5)
        damage = damage_sweep(work, args.mutations, args.seed, resealed=False)
        resealed = damage_sweep(work, args.mutations, args.seed + 1, resealed=True)
        fuzzed = fuzz(work, args.fuzz_texts, args.seed)
        seconds = time.perf_counter() - started
    rows = [
        {"sweep": "kill -9 during saves", "n": kill["kills"],
         "result": f"{kill['unloadable']} unloadable, {kill['mixed']} mixed, "
                   f"{kill['debris_bytes_after_next_save']} B debris after the next save "
                   f"({kill['kills_mid_save']} kills landed mid-save)",
         "met": kill["unloadable"] == kill["mixed"] == kill["debris_bytes_after_next_save"] == 0},
        {"sweep": f"race: {raced['readers']} readers, 1 writer, {raced['seconds']:g} s",
         "n": raced["loads"],
         "result": f"{raced['failed']} failed, {raced['mixed']} mixed loads "
                   f"({raced['saves']} saves)",
         "met": raced["failed"] == raced["mixed"] == 0},
        {"sweep": "damaged files", "n": damage["mutations"],
         "result": f"{damage['silent']} silent loads of changed content, "
                   f"{damage['tracebacks']} tracebacks ({damage['caught']} caught, "
                   f"{damage['harmless']} harmless)",
         "met": damage["silent"] == damage["tracebacks"] == 0},
        {"sweep": "damaged files, manifest re-sealed", "n": resealed["mutations"],
         "result": f"{resealed['tracebacks']} tracebacks ({resealed['caught']} caught, "
                   f"{resealed['silent']} load with the damage, {resealed['harmless']} harmless)",
         "met": resealed["tracebacks"] == 0},
        {"sweep": "hostile lines through classify - and search -", "n": fuzzed["texts"],
         "result": f"{fuzzed['mismatches']} line-count mismatches, {fuzzed['tracebacks']} "
                   "tracebacks",
         "met": fuzzed["mismatches"] == fuzzed["tracebacks"] == 0},
    ]
    h.print_table(rows, ["sweep", "n", "result", "met"], title="reliability sweep")
    for label, result in (("race", raced), ("damage", damage), ("damage resealed", resealed)):
        for key, count in (result.get("errors") or result.get("traceback_kinds") or {}).items():
            print(f"  {label}: {count} x {key}")
    print(f"\n{seconds:.0f} s in all\n")
    print(readme_table({"rows": rows}))
    if not args.no_json:
        name = args.json_name or ("reliability_quick" if args.quick else "reliability")
        h.write_json(name, {"quick": args.quick, "seconds": seconds, "rows": rows, "kill": kill,
                            "race": raced, "damage": damage, "damage_resealed": resealed,
                            "fuzz": fuzzed})
    return 0 if all(row["met"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
