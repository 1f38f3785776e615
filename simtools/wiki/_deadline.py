"""A hard deadline on one HTTP request made with requests: connecting, headers and body together.

requests' ``timeout`` bounds each socket operation, not the exchange: a server that sends a byte
a second never trips it, and can hold a request for as long as it likes. Here a timer is armed
for each request; when it fires, the socket of the connection the request runs on is shut down,
which wakes the blocked read at once, and the request fails with :class:`DeadlineExceeded`.

The socket is reached through urllib3's extension points rather than by patching anything
process-wide: :class:`DeadlineAdapter` gives its pool managers pool classes whose
``ConnectionCls`` reports itself, when a request starts on it, to the deadline of the thread
sending that request. Needs requests (the ``wiki`` extra); imported only by ``ApiClient``.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter

__all__ = ["DeadlineAdapter", "DeadlineExceeded", "get_within"]

_CURRENT = threading.local()


class DeadlineExceeded(requests.exceptions.Timeout):
    """The whole answer did not arrive within the request's deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:g} s")
        self.seconds = seconds


class _Deadline:
    """One request's timer; cuts the socket it was told about when it fires."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._done = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, sock: Any) -> None:
        if not isinstance(sock, socket.socket):
            return  # not connected yet (the connect timeout bounds that), or not a plain socket
        with self._lock:
            self._sock = sock
            late = self.expired
        if late:  # the timer fired while the connection was still being opened
            _cut(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sock = self._sock
        if sock is not None:
            _cut(sock)

    def __enter__(self) -> _Deadline:
        self._outer = getattr(_CURRENT, "deadline", None)
        _CURRENT.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()
        _CURRENT.deadline = self._outer


def _cut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for TLS: it wakes a read blocked in another thread,
    # where close() would not, and leaves the SSL object for that thread to fail on.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _ReportingConnection:
    """Mixed into a urllib3 connection class: tells the thread's deadline which socket to cut.

    The socket itself is handed over, not the connection: a connection that will close after
    this answer lets go of its socket in ``getresponse()``, while the answer is still read from it.
    """

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _report(self)  # a kept-alive connection already has its socket
        return super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _report(self)  # the request was sent: the socket exists now
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


def _report(connection: Any) -> None:
    deadline = getattr(_CURRENT, "deadline", None)
    if deadline is not None:
        deadline.watch(getattr(connection, "sock", None))


@functools.cache
def _reporting_pool(pool_cls: Any) -> Any:
    connection_cls = pool_cls.ConnectionCls
    if issubclass(connection_cls, _ReportingConnection):
        return pool_cls
    reporting = type(f"Reporting{connection_cls.__name__}", (_ReportingConnection, connection_cls),
                     {})
    return type(f"Reporting{pool_cls.__name__}", (pool_cls,), {"ConnectionCls": reporting})


def _report_from(manager: Any) -> Any:
    manager.pool_classes_by_scheme = {scheme: _reporting_pool(cls)
                                      for scheme, cls in manager.pool_classes_by_scheme.items()}
    return manager


class DeadlineAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections can be cut by :func:`get_within`'s deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _report_from(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return _report_from(super().proxy_manager_for(proxy, **proxy_kwargs))


def get_within(session: Any, url: str, *, params: dict[str, Any], seconds: float) -> Any:
    """``session.get(url, params=params)`` with its body read, all within ``seconds``.

    Raises :class:`DeadlineExceeded` (a ``requests.Timeout``) when the deadline passes first;
    other ``requests`` errors pass through. ``session`` needs a :class:`DeadlineAdapter`
    mounted for the deadline to cut a dripping answer; without one, only ``timeout`` applies.
    """
    with _Deadline(seconds) as deadline:
        try:
            response = session.get(url, params=params, timeout=(seconds, seconds))
        except Exception as e:
            # Once the socket is cut, whatever failed (a reset, a short body, TLS) failed for that.
            if deadline.expired:
                raise DeadlineExceeded(seconds) from e
            raise
    if deadline.expired:  # the last bytes came as the timer fired, perhaps cut short
        response.close()
        raise DeadlineExceeded(seconds)
    return response
