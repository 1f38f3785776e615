"""A fake MediaWiki: an API server on 127.0.0.1 that answers the queries the ``wikipedia``
package sends, and builders of small pages-articles dumps.

The package (1.4.0) sends, for ``wikipedia.page(title, auto_suggest=False)`` and ``.content``:

* ``action=query&prop=info|pageprops&inprop=url&ppprop=disambiguation&redirects=&titles=T``
  (page info; ``missing`` marks a missing page, ``query.redirects`` a redirect, ``pageprops`` a
  disambiguation page);
* ``prop=revisions&rvprop=content&rvparse=&rvlimit=1&titles=T`` (a disambiguation page's HTML,
  whose ``<li><a>`` texts become the options);
* ``prop=extracts|revisions&explaintext=&rvprop=ids&titles=T`` (plain text and revision id).

Failures are scripted: ``FakeWiki.script`` is a list of actions used up one per request before
normal answers resume (``("status", code, headers)``, ``"hang"``, ``"html"``); ``FakeWiki.mode``
applies to every request (``"normal"``, ``"hang"``, ``"html"``, ``"500"``, and the slow drips
``"drip"``, which sends the headers at once and then the answer one byte every
``FakeWiki.drip_interval`` seconds, and ``"drip_headers"``, which drips the status line and headers
too). A drip never goes quiet for as long as a read timeout, so only a deadline ends it.
"""

from __future__ import annotations

import bz2
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

FOUR_PAGES = {
    "Machine learning": (
        "Machine learning is a field of artificial intelligence in which computer programs learn "
        "models from data. A learning algorithm fits a model to training data, and the trained "
        "model makes predictions for new data. Supervised learning uses labelled examples; "
        "neural networks, decision trees and support vector machines are common models. "
        "Training a neural network means adjusting its weights to reduce the error of its "
        "predictions on the labelled training data."
    ),
    "Artificial intelligence": (
        "Artificial intelligence is the intelligence of machines and computer programs. "
        "Research covers reasoning, knowledge, planning, learning, perception and language. "
        "Intelligent agents perceive their environment and act to reach goals."
    ),
    "Association football": (
        "Association football, or soccer, is a team sport played between two teams of eleven "
        "players with a ball. Players score a goal by kicking the ball into the goal of the "
        "other team. A football match lasts ninety minutes, and the World Cup is the biggest "
        "football tournament. The goalkeeper defends the goal; clubs play in leagues."
    ),
    "Tennis": (
        "Tennis is a racket sport played on a court by two or four players. Players hit a ball "
        "over a net with a racket. A tennis match is made of sets and games; the Grand Slam "
        "tournaments are the most famous tennis events."
    ),
}


class FakeWiki:
    """Serve ``pages`` (title -> text) at ``self.api_url`` from a background thread."""

    def __init__(self, pages: dict[str, str] | None = None, *,
                 redirects: dict[str, str] | None = None,
                 disambiguation: dict[str, list[str]] | None = None) -> None:
        self.pages = dict(FOUR_PAGES if pages is None else pages)
        self.redirects = dict(redirects or {})
        self.disambiguation = dict(disambiguation or {})
        self.script: list[Any] = []
        self.mode = "normal"
        self.drip_interval = 0.2
        self.requests: list[dict[str, str]] = []
        self.user_agents: list[str] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.api_url = ""

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> FakeWiki:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # silence the server log
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.api_url = f"http://{host}:{port}/w/api.php"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()  # free any handler left hanging
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # -- helpers for tests ------------------------------------------------------------------------
    def pageid(self, title: str) -> int:
        names = sorted(set(self.pages) | set(self.disambiguation))
        return 1000 + names.index(title)

    def queries(self, **match: str) -> list[dict[str, str]]:
        """The requests received whose params include every ``key=value`` in ``match``."""
        return [q for q in self.requests if all(q.get(k) == v for k, v in match.items())]

    # -- answering ---------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self._lock:
            self.requests.append(params)
            self.user_agents.append(handler.headers.get("User-Agent", ""))
            action = self.script.pop(0) if self.script else self.mode
        if action == "hang":
            self._release.wait(10)
            return
        if action in ("drip", "drip_headers"):
            self._drip(handler, params, headers_too=action == "drip_headers")
            return
        if action == "html":
            self._send(handler, 200, b"<html><body>Service unavailable</body></html>",
                       "text/html; charset=utf-8")
            return
        if action == "500":
            action = ("status", 500, {})
        if isinstance(action, tuple) and action[0] == "status":
            _, code, headers = action
            self._send(handler, code, b"<html>busy</html>", "text/html", headers)
            return
        body = json.dumps(self._answer(params)).encode("utf-8")
        self._send(handler, 200, body, "application/json; charset=utf-8")

    def _drip(self, handler: BaseHTTPRequestHandler, params: dict[str, str], *,
              headers_too: bool) -> None:
        body = json.dumps(self._answer(params)).encode("utf-8")
        head = (f"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("ascii")
        slow = head + body if headers_too else body
        try:
            if not headers_too:
                handler.wfile.write(head)
            for byte in slow:
                handler.wfile.write(bytes([byte]))
                if self._release.wait(self.drip_interval):
                    return
        except OSError:  # the client hung up: what a deadline does
            return

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, code: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _answer(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("format") != "json" or params.get("action") != "query":
            return {"error": {"code": "badparams", "info": f"unexpected query {params}"}}
        title = params.get("titles", "")
        prop = params.get("prop", "")
        query: dict[str, Any] = {}
        normalised = title[:1].upper() + title[1:]
        if normalised != title:
            query["normalized"] = [{"from": title, "to": normalised}]
            title = normalised
        if prop == "info|pageprops" and "redirects" in params and title in self.redirects:
            query["redirects"] = [{"from": title, "to": self.redirects[title]}]
            title = self.redirects[title]
        if title not in self.pages and title not in self.disambiguation:
            query["pages"] = {"-1": {"ns": 0, "title": title, "missing": ""}}
            return {"batchcomplete": "", "query": query}
        pageid = self.pageid(title)
        page: dict[str, Any] = {"pageid": pageid, "ns": 0, "title": title}
        if prop == "info|pageprops":
            page["fullurl"] = f"https://fake.wiki/wiki/{title.replace(' ', '_')}"
            if title in self.disambiguation:
                page["pageprops"] = {"disambiguation": ""}
        elif prop == "revisions" and "rvparse" in params:
            items = "".join(f'<li><a href="/wiki/{o}">{o}</a>, something</li>'
                            for o in self.disambiguation.get(title, []))
            page["revisions"] = [{"*": f"<p>{title} may refer to:</p><ul>{items}</ul>"}]
        elif prop == "extracts|revisions":
            page["extract"] = self.pages.get(title, "")
            page["revisions"] = [{"revid": 50000 + pageid, "parentid": 40000 + pageid}]
        else:
            return {"error": {"code": "unsupported", "info": f"fake wiki cannot answer {params}"}}
        query["pages"] = {str(pageid): page}
        return {"batchcomplete": "", "query": query}


# -- dumps -------------------------------------------------------------------------------------
TENNIS = """{{Infobox sport|name=Tennis|image=Tennis.jpg}}
'''Tennis''' is a [[racket sport]] played on a [[Tennis court|court]].<ref>{{cite web|url=http://x.org|title=Rules}}</ref>
Players hit a ball over a net.<ref name="itf" /> See [http://www.itf.com the ITF] &amp; more.
<!-- editors: keep this short -->
[[File:Tennis ball.jpg|thumb|A tennis ball]]

== History ==
The game began in [[England]] in the 19th century.__NOTOC__
{| class="wikitable"
! Year !! Winner
|-
| 1877 || Spencer Gore
|}
<div style="color:red">hidden note</div><b>Bold</b> words stay.

[[Category:Tennis| ]]
[[Category:Racket sports]]
[[fr:Tennis]]
"""

FOOTBALL = """'''Association football''' is a [[team sport]]: two teams kick a [[ball]] into a [[goal]].
== Rules ==
A match lasts ninety minutes.
[[Category:Football]]
"""

LEARNING = """'''Machine learning''' builds [[Statistical model|models]] from [[data]].
[[Category:Machine learning]]
[[Category:Artificial intelligence]]
"""


def page_xml(title: str, pageid: int, text: str, *, ns: int = 0, redirect: str | None = None,
             revid: int | None = None) -> str:
    redirect_tag = f'<redirect title="{escape(redirect)}" />' if redirect else ""
    return (f"<page><title>{escape(title)}</title><ns>{ns}</ns><id>{pageid}</id>{redirect_tag}"
            f"<revision><id>{revid or pageid * 10}</id><timestamp>2020-01-01T00:00:00Z</timestamp>"
            f'<text xml:space="preserve">{escape(text)}</text></revision></page>\n')


def dump_xml(pages: list[str], version: str | None = "0.11") -> str:
    ns = f' xmlns="http://www.mediawiki.org/xml/export-{version}/"' if version else ""
    return (f'<mediawiki{ns} version="{version}" xml:lang="en">\n<siteinfo><sitename>Testwiki'
            "</sitename><base>https://test.wikipedia.org/wiki/Main_Page</base></siteinfo>\n"
            + "".join(pages) + "</mediawiki>\n")


SAMPLE_PAGES = [
    page_xml("Tennis", 3, TENNIS),
    page_xml("Lawn tennis", 4, "#REDIRECT [[Tennis]]", redirect="Tennis"),
    page_xml("Talk:Tennis", 5, "Discussion about [[Tennis]].", ns=1),
    page_xml("Association football", 7, FOOTBALL),
    page_xml("Empty page", 8, "{{stub}}"),
    page_xml("Machine learning", 9, LEARNING),
]


def multistream_cut(pages: list[str], streams: int = 4) -> bytes:
    """A multistream bz2 dump (as Wikimedia publishes) cut inside its last stream."""
    text = dump_xml(pages)
    head, body = text.split("<page>", 1)
    parts = ("<page>" + body).split("<page>")[1:]
    size = -(-len(parts) // streams)
    chunks = [head] + ["<page>" + "<page>".join(parts[i:i + size]) for i in
                       range(0, len(parts), size)]
    blobs = [bz2.compress(chunk.encode("utf-8")) for chunk in chunks]
    return b"".join(blobs[:-1]) + blobs[-1][: len(blobs[-1]) // 2]
