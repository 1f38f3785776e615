"""Wikipedia as a corpus: pages fetched online (``api``) or streamed from a dump (``dump``),
turned into an index (``build``). Needs the ``wiki`` extra: ``pip install 'simtools[wiki]'``.

Names load lazily, so importing this package pulls in neither requests nor mwparserfromhell::

    from simtools.wiki import WikipediaFetcher, build_index
    with WikipediaFetcher() as fetcher:
        report = fetcher.fetch_many(["Machine learning", "Tennis"])
    index = build_index(report.pages, encoder="count")
"""

from __future__ import annotations

from .._lazy import lazy_getattr

__all__ = [
    "DumpError",
    "WikipediaError",
    "WikipediaFetcher",
    "build_dump_index",
    "build_index",
    "clean_wikitext",
    "iter_dump",
]

_LAZY = {
    "WikipediaError": "simtools.wiki.client",
    "WikipediaFetcher": "simtools.wiki.api",
    "DumpError": "simtools.wiki.dump",
    "clean_wikitext": "simtools.wiki.wikitext",
    "iter_dump": "simtools.wiki.dump",
    "build_index": "simtools.wiki.build",
    "build_dump_index": "simtools.wiki.build",
}

__getattr__ = lazy_getattr("simtools.wiki", _LAZY)
