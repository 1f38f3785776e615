"""``simtools index wikipedia`` (pages fetched online) and ``simtools index dump`` (a dump file)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import click

from .common import emit_json, friendly_errors, in_flags, progress, read_texts
from .index import (
    DEFAULT_ENCODER,
    ENCODER_DEFAULT_HELP,
    ENCODER_HELP,
    METRIC_HELP,
    METRICS,
    engine_options,
    pick_encoder,
    resolve_metric,
    shard_size_option,
)
from .output import OUT_HELP, check_out, force_option

__all__ = ["dump_command", "wikipedia_command"]


def _lexical_or_dense(encoder: str) -> Any:
    """The encoder named by --encoder; hybrid is for `simtools index files` only."""
    from simtools.encoders import make_encoder

    if encoder.partition(":")[0] == "hybrid":
        raise click.UsageError("--encoder hybrid is available with `simtools index files`; "
                               f"here use --encoder {DEFAULT_ENCODER} or student")
    return make_encoder(encoder)


def _err(message: str) -> None:
    click.echo(message, err=True)


@click.command("wikipedia")
@click.argument("titles", nargs=-1, required=True)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help=OUT_HELP.format(kind="index"))
@force_option
@click.option("--api-url", default=None, metavar="URL", envvar="SIMTOOLS_WIKIPEDIA_API_URL",
              help="MediaWiki api.php address [env SIMTOOLS_WIKIPEDIA_API_URL; "
                   "default https://en.wikipedia.org/w/api.php].")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Page cache [default $SIMTOOLS_CACHE_DIR/wikipedia or "
                   "~/.cache/simtools/wikipedia].")
@click.option("--refresh", is_flag=True, help="Fetch again even when a page is cached.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the page cache.")
@click.option("--encoder", default=DEFAULT_ENCODER,
              help=ENCODER_HELP + " Fitted on the fetched pages. " + ENCODER_DEFAULT_HELP)
@click.option("--metric", type=click.Choice(METRICS), default=None, help=METRIC_HELP)
@click.option("--timeout", type=click.FloatRange(min=0.001), default=30.0, show_default=True,
              help="Deadline of each API request, from connecting to the last byte of the "
                   "answer (not per read: a server that drips bytes is cut off too).")
@click.option("--retries", type=click.IntRange(min=0), default=4, show_default=True,
              help="Retries on HTTP 429, 5xx, connection errors and timeouts (backoff 1, 2, 4, "
                   "8 s; at most 30 s even if Retry-After asks for more).")
@click.option("--budget", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds the whole run may spend on the network: requests, retries and the "
                   "waits between them. When it runs out, the titles left come from the cache "
                   "or fail; fetched pages are cached, so a rerun continues. 0: no limit.")
@click.option("--user-agent", default=None,
              help="User-Agent to send (Wikimedia asks for contact details in it).")
@shard_size_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@friendly_errors
def wikipedia_command(titles: tuple[str, ...], out: Path, force: bool, api_url: str | None,
                      cache_dir: Path | None, refresh: bool, no_cache: bool, encoder: str,
                      metric: str | None, timeout: float, retries: int, budget: float,
                      user_agent: str | None, shard_size: int, as_json: bool) -> None:
    """Fetch Wikipedia pages by exact title and index them (page title = label).

    Titles are fetched exactly (no search, no auto-suggest); redirects are followed. Pages are
    cached on disk, so re-indexing works offline. If some titles fail, the others are still
    indexed, the failures are listed on stderr and the exit status is 1. '-' reads titles from
    stdin, one per line.

    \b
    Example:
      simtools index wikipedia "Machine learning" "Artificial intelligence" \\
          "Association football" "Tennis" --out wiki-index
      simtools search "a great goal in the final" --index wiki-index
    """
    from simtools.index.build import build_index
    from simtools.wiki.api import WikipediaFetcher
    from simtools.wiki.build import page_documents
    from simtools.wiki.client import DEFAULT_USER_AGENT

    encoder = pick_encoder(encoder, metric)
    vectoriser = _lexical_or_dense(encoder)  # a wrong name fails now, not after the downloads
    metric = resolve_metric(vectoriser, metric)
    check_out(str(out), kind="index", force=force)
    wanted = read_texts(titles, what="title")
    for number, title in enumerate(wanted, 1):
        if not title.strip():
            raise click.UsageError(f"title {number} is empty; give exact page titles, "
                                   "e.g. \"Machine learning\"")
    fetcher = WikipediaFetcher(api_url=api_url, cache_dir=cache_dir, use_cache=not no_cache,
                               refresh=refresh, timeout=timeout, max_retries=retries,
                               budget=budget or None, user_agent=user_agent or DEFAULT_USER_AGENT)
    with fetcher:
        report = fetcher.fetch_many(progress(wanted, length=len(wanted), label="fetching"))
    for title, reason in report.failures.items():
        _err(f"failed: {title}: {reason}")
    if fetcher.client.budget_exhausted and report.failures:
        _err(f"hint: the time budget ran out (--budget {budget:g}); rerun to fetch the rest "
             "(fetched pages are cached), or raise --budget")
    elif report.unreachable and report.failures:
        # Cached pages were used whatever --refresh says; the failed titles had no cached copy.
        cache = ("--no-cache is on, so no page cached earlier was used (drop it to use the "
                 "cache)" if no_cache else "the failed titles are not in the page cache")
        _err(f"hint: {fetcher.api_url} cannot be reached and {cache}; check the network, or "
             "give a reachable mirror with --api-url")
    for title, first in report.duplicates.items():
        _err(f"note: {title!r} is the same page as {first!r}; indexed once")
    if not report.pages:
        raise click.ClickException(f"none of the {len(wanted)} title(s) could be fetched; "
                                   "no index written")
    index = build_index(page_documents(report.pages, label_from="title"), encoder=vectoriser,
                        metric=metric, shard_size=shard_size)
    index.save(out, force=force)
    summary = {"out": str(out), "pages": len(report.pages), "from_cache": report.from_cache,
               "failed": sorted(report.failures), "api_url": fetcher.api_url,
               "encoder": encoder, "metric": metric,
               "titles": [page.title for page in report.pages]}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"indexed {len(report.pages)} page(s) into {out} ({encoder}, {metric}; "
                   f"{report.from_cache} from the cache, {len(report.failures)} failed)", err=True)
    if report.failures:
        sys.exit(1)


@click.command("dump")
@click.argument("dump_file", metavar="FILE",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help=OUT_HELP.format(kind="index") + " Checkpointed as the build goes.")
@force_option
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Stop after N articles (in total, when resuming).")
@click.option("--label-from", type=click.Choice(["none", "category", "title"]), default="none",
              show_default=True, help="Label of each page: its first category, its title, or none.")
@click.option("--encoder", default=DEFAULT_ENCODER,
              help=ENCODER_HELP + " hashing needs no vocabulary; bm25 (its idf and mean "
                   "document length), count, tfidf and char are fitted on the first "
                   "--fit-pages articles and then frozen. " + ENCODER_DEFAULT_HELP)
@click.option("--metric", type=click.Choice(METRICS), default=None, help=METRIC_HELP)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Articles encoded and added at a time.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=10_000,
              show_default=True, help="Save the index (and progress) every N articles.")
@click.option("--fit-pages", type=click.IntRange(min=1), default=2_000, show_default=True,
              help="Articles the bm25/count/tfidf/char vocabulary and weights are fitted on.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that clean wikitext and encode (the main process only merges); "
                   "e.g. the number of cores. A multistream dump (with its "
                   "-multistream-index.txt.bz2 beside it) is read by the workers themselves, by "
                   "byte offset; a plain one is read here once and fanned out.")
@click.option("--index-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None,
              help="The dump's -multistream-index.txt.bz2, when it is not beside FILE under the "
                   "name Wikimedia gives it (FILE is then read by byte offset).")
@shard_size_option
@engine_options
@click.option("--max-page-bytes", type=click.IntRange(min=0), default=2 * 1024 * 1024,
              show_default=True,
              help="Skip (and count) pages with more wikitext than this, in bytes; their text "
                   "is dropped as it streams past, never held. The default is MediaWiki's own "
                   "page size limit. 0: no limit.")
@click.option("--max-nesting", type=click.IntRange(min=0), default=50, show_default=True,
              help="Skip (and count) pages with more HTML-style tags open at once than this "
                   "(each tag left open costs a rescan of the rest of the page; the sample "
                   "dump's articles reach 3). 0: no limit.")
@click.option("--resume", is_flag=True, help="Continue an interrupted build in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@friendly_errors
def dump_command(dump_file: Path, out: Path, force: bool, limit: int | None, label_from: str, encoder: str,
                 metric: str | None, batch_size: int, checkpoint_every: int, fit_pages: int,
                 workers: int, index_file: Path | None, shard_size: int, engine: str,
                 ray_address: str | None, max_page_bytes: int, max_nesting: int, resume: bool,
                 as_json: bool) -> None:
    """Index the articles of a MediaWiki pages-articles dump (.xml.bz2), streamed.

    Redirects, non-article pages, second pages with an id already seen, and pages over
    --max-page-bytes or --max-nesting are skipped and counted; wikitext is cleaned into plain
    text (templates, references, tables, images and categories removed; link text and headings
    kept). Page id,
    title, URL and categories go into each document's metadata. An interrupted build continues
    with --resume. A truncated dump keeps the articles read before the cut (exit status 1).

    \b
    Example:
      simtools index dump enwiki-latest-pages-articles.xml.bz2 --out enwiki-index \\
          --limit 100000 --label-from category
      simtools index dump enwiki-latest-pages-articles.xml.bz2 --out enwiki-index --resume
      simtools index dump enwiki-latest-pages-articles-multistream.xml.bz2 --out enwiki-index \\
          --engine ray --workers 16 --ray-address 10.0.0.5:6379
    """
    from simtools.wiki.build import build_dump_index
    from simtools.wiki.dump import DumpError

    encoder = pick_encoder(encoder, metric)
    metric = resolve_metric(_lexical_or_dense(encoder), metric)
    options: dict[str, Any] = {"encoder": encoder, "metric": metric, "label_from": label_from,
                               "limit": limit, "batch_size": batch_size,
                               "checkpoint_every": checkpoint_every, "fit_pages": fit_pages,
                               "workers": workers, "shard_size": shard_size,
                               "index_file": index_file, "engine": engine,
                               "ray_address": ray_address,
                               "resume": resume, "force": force,
                               "max_page_bytes": max_page_bytes or None,
                               "max_nesting": max_nesting or None}
    check_out(str(out), kind="index", force=force)
    # Without --limit the number of articles is unknown: count up, no ETA.
    ticks = None if limit is not None else itertools.repeat(None)
    with click.progressbar(ticks, length=limit, label="indexing articles", file=sys.stderr,
                           show_pos=True, show_eta=limit is not None) as bar:
        try:
            report = build_dump_index(dump_file, out, on_article=bar.update, **options)
        except DumpError as e:
            partial = getattr(e, "report", None)
            if partial is not None:
                _summarise(partial, as_json)
            raise click.ClickException(in_flags(str(e)).splitlines()[0]) from None
    _summarise(report, as_json)


def _summarise(report: Any, as_json: bool) -> None:
    stats = report.stats
    if as_json:
        emit_json(report.to_dict())
    else:
        resumed = ("" if report.resumed_after_pageid is None
                   else f", resumed after page id {report.resumed_after_pageid}")
        click.echo(f"indexed {report.articles_indexed} article(s) into {report.out} "
                   f"({report.articles_this_run} this run{resumed})", err=True)
    workers = (f" (+ {report.worker_peak_memory_mib:.0f} MiB per worker, {report.workers} "
               "workers)" if report.worker_peak_memory_mib else "")
    stages = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in
                       sorted(report.cpu_seconds_by_stage.items()))
    _err(f"{report.reader} dump, {report.shards} shard(s); CPU s by stage: {stages or '-'}")
    _err(f"{report.articles_this_run} articles in {report.seconds:.1f} s: "
         f"{report.pages_per_s:.1f} pages/s, {report.cpu_seconds:.1f} CPU s, "
         f"peak memory {report.peak_memory_mib:.0f} MiB{workers}; "
         f"skipped {stats.redirects} redirect(s), {stats.other_namespaces} non-article page(s), "
         f"{stats.empty + report.skipped_no_tokens} empty, {stats.parse_failures} unparsable, "
         f"{stats.too_large} too large, {stats.too_nested} too deeply nested, "
         f"{stats.duplicates} duplicate id(s)")
