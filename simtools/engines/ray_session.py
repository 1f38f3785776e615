"""Joining a Ray cluster, or starting a local one: the ``simtools[ray]`` extra.

:func:`connect` joins the cluster at ``address`` (or ``$RAY_ADDRESS``); without one it starts
Ray on this machine. A Ray session already running in this process (``ray.init`` called by
the caller, as the tests do) is used as it is. An address that cannot be reached fails within
``timeout`` seconds with one line, instead of Ray's own retries.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from ..errors import SimtoolsError

__all__ = ["RayUnavailableError", "actor_pool", "connect", "import_ray"]

#: Seconds to wait for a cluster to answer before giving up.
CONNECT_TIMEOUT = 15.0


class RayUnavailableError(SimtoolsError, ConnectionError):
    """Ray is not installed, or the cluster named cannot be reached."""


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or an ImportError that says what to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ImportError(f"the Ray engine needs Ray ({e}); install it with "
                          "pip install 'simtools[ray]'") from e
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; None for "auto"."""
    if address in ("auto", "local"):
        return None
    rest = address.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(f"the Ray address {address!r} is not host:port (e.g. "
                                  "10.0.0.5:6379 or ray://10.0.0.5:10001)")
    return host.strip("[]"), int(port)


def _reachable(address: str, timeout: float) -> None:
    where = _host_port(address)
    if where is None:
        return
    try:
        with socket.create_connection(where, timeout=timeout):
            pass
    except OSError as e:
        raise RayUnavailableError(
            f"cannot reach the Ray cluster at {address} ({e.strerror or e}) within "
            f"{timeout:g} s; check ray_address (or RAY_ADDRESS), or leave it out to start "
            "Ray on this machine") from None


def connect(address: str | None = None, *, num_cpus: int | None = None,
            timeout: float = CONNECT_TIMEOUT) -> Any:
    """The ``ray`` module, connected: to ``address`` (or ``$RAY_ADDRESS``), to the session this
    process has already, or to a new local Ray with ``num_cpus`` CPUs. Ray Data is set to keep
    the order of its inputs and to show no progress bars."""
    ray = import_ray()
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            _reachable(address, timeout)
        _init_within(ray, timeout, address=address, num_cpus=None if address else num_cpus,
                     include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    # Ray Data says at every run that progress bars are off: they are, on purpose.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    return ray


def _init_within(ray: Any, timeout: float, **options: Any) -> None:
    """``ray.init(**options)``, or a one-line error when it does not return within ``timeout``
    (a port that answers but is not Ray's)."""
    failure: list[BaseException] = []
    if not options.get("address"):
        # A local start: in this thread (a driver initialised from another thread is ended
        # by Ray, silently, once a pipeline runs); there is no answer to wait for.
        try:
            ray.init(**options)
        except (ConnectionError, TimeoutError, RuntimeError) as e:
            raise RayUnavailableError(f"cannot start Ray: {_first_line(e)}") from e
        return

    def start() -> None:
        try:
            ray.init(**options)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            failure.append(e)

    thread = threading.Thread(target=start, daemon=True, name="simtools-ray-init")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise RayUnavailableError(f"the Ray cluster at {options['address']} did not answer "
                                  f"within {timeout:g} s; is it a Ray head node?")
    if failure:
        error = failure[0]
        if isinstance(error, (ConnectionError, TimeoutError, RuntimeError)):
            raise RayUnavailableError(f"cannot join Ray: {_first_line(error)}") from error
        raise error


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def actor_pool(workers: int) -> Any:
    """Ray Data's strategy for ``workers`` actors, each loading its model once."""
    ray = import_ray()
    return ray.data.ActorPoolStrategy(size=workers)
