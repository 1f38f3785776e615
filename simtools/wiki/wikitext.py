"""Wikitext cleaned into plain text: templates, references, tables, files, categories and
tags go; link text and heading text stay; ``[[Category:...]]`` links are collected.

Markup with more than ``max_nesting`` tags open at once is refused before mwparserfromhell sees
it (it rescans the rest of a page for each tag left open), so cleaning costs bounded work.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InputError

__all__ = ["DEFAULT_MAX_NESTING", "MarkupTooDeepError", "clean_wikitext"]

#: Pages with more tags open at once than this are skipped: mwparserfromhell rescans the rest of
#: the page for each tag left open (20,000 unclosed <b> take about 10 CPU s). The sample dump's
#: articles reach 3.
DEFAULT_MAX_NESTING = 50


# Link prefixes whose target is not article text: media, categories, other wikis' languages.
_DROP_LINK_PREFIXES = ("file:", "image:", "media:", "category:")
_LANGUAGE_LINK = re.compile(r"^[a-z]{2,3}(-[a-z]+)?:")
# Tags whose contents are not running text.
_DROP_TAGS = frozenset({
    "ref", "references", "table", "gallery", "math", "chem", "ce", "score", "timeline",
    "graph", "imagemap", "templatedata", "syntaxhighlight", "source", "pre", "code",
    "hiero", "inputbox", "mapframe", "maplink", "categorytree", "noinclude", "includeonly",
    "onlyinclude", "style", "script", "div",
})
_BREAK_TAGS = frozenset({"br", "p", "li", "dd", "dt", "tr", "hr"})
_MAGIC_WORD = re.compile(r"__[A-Z]+__|'{2,}")  # magic words; bold/italic quote runs
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_LEFTOVER = re.compile(r"\{\{|\}\}|\{\||\|\}|^[|!].*$", re.MULTILINE)
# Cheap pre-pass: references, comments, templates and tables make up most of an article's parse
# tree (citation templates inside <ref>), and none of them is kept, so they are cut out by a
# linear scan before mwparserfromhell builds the tree; it then parses only what is rendered.
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_REF = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>", re.DOTALL | re.IGNORECASE)
_TEMPLATE_BRACES = re.compile(r"\{\{|\}\}")
_TABLE_MARKS = re.compile(r"^[ \t]*(\{\||\|\})", re.MULTILINE)
# "<b " or "</b x" with no ">" before the next "<": never a tag, but mwparserfromhell scans to
# the end of the page for each such opener before giving up (quadratic). Written as an entity
# it is the same text to the renderer and costs nothing.
_BROKEN_OPENER = re.compile(r"<(?=/?[A-Za-z])(?=[^<>]*(?:<|\Z))")
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^<>]*?(/?)>")
# Tags that stand alone (mwparserfromhell's "single" tags): they open nothing.
_UNPAIRED_TAGS = frozenset({"br", "wbr", "hr", "meta", "link", "img", "li", "dt", "dd", "th",
                            "td", "tr"})


class MarkupTooDeepError(InputError):
    """Wikitext with more tags open at once than ``max_nesting`` (cleaning it would take
    quadratic time)."""


def clean_wikitext(wikitext: str, *,
                   max_nesting: int | None = DEFAULT_MAX_NESTING) -> tuple[str, list[str]]:
    """Plain text and categories of a page's wikitext.

    Returns ``(text, categories)``: the text keeps paragraphs, link text and headings (each on
    its own line); categories are the ``[[Category:Name]]`` names in page order, without sort
    keys or duplicates. Raises :class:`MarkupTooDeepError` when more than ``max_nesting``
    HTML-style tags are open at once (``None``: no limit), before any slow parsing.
    """
    try:
        import mwparserfromhell
        from mwparserfromhell import nodes
    except ImportError as e:
        raise ImportError("cleaning wikitext needs mwparserfromhell: "
                          "pip install 'simtools[wiki]'") from e

    wikitext = _REF.sub("", _COMMENT.sub("", wikitext))
    wikitext = _cut_nested(_cut_nested(wikitext, _TEMPLATE_BRACES, "{{"), _TABLE_MARKS, "{|")
    wikitext = _BROKEN_OPENER.sub("&lt;", wikitext)
    if max_nesting is not None:
        depth = _tag_depth(wikitext, max_nesting)
        if depth > max_nesting:
            raise MarkupTooDeepError(
                f"the wikitext has more than {max_nesting} tags open at once; raise max_nesting "
                "to clean it anyway (the time it takes grows with the square of the nesting)")
    code = mwparserfromhell.parse(wikitext, skip_style_tags=True)
    pieces: list[str] = []
    categories: list[str] = []
    _render(code, pieces, categories, nodes)
    text = _MAGIC_WORD.sub("", "".join(pieces))
    text = _LEFTOVER.sub("", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return text, list(dict.fromkeys(categories))


def _cut_nested(text: str, marks: re.Pattern[str], opener: str) -> str:
    """``text`` without the outermost spans between balanced ``marks`` (openers and closers).

    As MediaWiki does, an opener never closed is literal text (only the opener itself is
    dropped); a stray closer is dropped.
    """
    kept: list[str] = []
    depth = 0
    start = 0
    outer_end = 0
    for match in marks.finditer(text):
        if match.group().strip() == opener:
            if depth == 0:
                kept.append(text[start:match.start()])
                outer_end = match.end()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                start = match.end()
        else:
            kept.append(text[start:match.start()])
            start = match.end()
    kept.append(text[outer_end:] if depth else text[start:])
    return "".join(kept)


def _tag_depth(text: str, limit: int) -> int:
    """The most HTML-style tags open at once in ``text``; counting stops just past ``limit``.

    A closing tag closes the latest open tag of its name and any opened after it (as browsers
    do); one with no open match is ignored. Linear in ``len(text)``.
    """
    opened: list[str] = []
    deepest = 0
    for match in _TAG.finditer(text):
        closing, name, self_closing = match.groups()
        name = name.lower()
        if closing:
            if name in opened:
                del opened[len(opened) - 1 - opened[::-1].index(name):]
        elif not self_closing and name not in _UNPAIRED_TAGS:
            opened.append(name)
            deepest = max(deepest, len(opened))
            if deepest > limit:
                break
    return deepest


def _render(code: Any, out: list[str], categories: list[str], nodes: Any) -> None:
    for node in code.nodes:
        if isinstance(node, nodes.Text):
            out.append(node.value)
        elif isinstance(node, nodes.Wikilink):
            target = str(node.title).strip()
            lowered = target.lower()
            if lowered.startswith("category:"):
                name = target.split(":", 1)[1].strip()
                if name:
                    categories.append(name)
            elif lowered.startswith(":category:"):
                _render(node.text if node.text is not None else node.title, out, categories, nodes)
            elif lowered.lstrip(":").startswith(_DROP_LINK_PREFIXES):
                continue
            elif _LANGUAGE_LINK.match(lowered) and node.text is None:
                continue  # interlanguage link such as [[fr:Tennis]]
            else:
                _render(node.text if node.text is not None else node.title, out, categories, nodes)
        elif isinstance(node, nodes.Heading):
            out.append("\n")
            _render(node.title, out, categories, nodes)
            out.append("\n")
        elif isinstance(node, nodes.Tag):
            tag = str(node.tag).strip().lower()
            if tag in _DROP_TAGS:
                continue
            if tag in _BREAK_TAGS:
                out.append("\n")
            if node.contents is not None:
                _render(node.contents, out, categories, nodes)
        elif isinstance(node, nodes.ExternalLink):
            if node.brackets and node.title is not None:
                _render(node.title, out, categories, nodes)
        elif isinstance(node, nodes.HTMLEntity):
            try:
                out.append(node.normalize())
            except ValueError:
                continue
        # Templates, template arguments and comments carry no running text.
