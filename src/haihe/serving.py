"""Serving the app in several worker processes — what ``haihe serve --workers N`` runs.

Each worker is a uvicorn server with its own listening socket on the same address
(``SO_REUSEPORT``), so the kernel spreads new connections evenly over the workers. uvicorn's own
multi-worker mode shares one socket instead, and two things go wrong with it (both measured with
``benchmarks/gateway.py``): the first worker to wake accepts every pending connection (asyncio
accepts up to the backlog in one go), so with a handful of keep-alive clients — a load balancer's
pooled connections — one worker served 8 of every 9 requests while the other idled; and its
re-made socket lacks the TCP protocol number, so asyncio does not set ``TCP_NODELAY`` on accepted
connections and a response written in two parts waits ~40 ms for a delayed ACK.

Each worker appends to an audit chain of its own (``haihe serve`` names them ``<audit_chain>.w1``,
``.w2`` …): on PostgreSQL a shared chain's head row is locked by every audited call until it
commits, so the workers' calls would queue behind each other (DESIGN.md, "Past one machine").

The parent only supervises: it starts the workers, starts a new one when one dies, and passes
SIGTERM/SIGINT on so each finishes its requests in flight before exiting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import uvicorn

log = logging.getLogger("haihe.serving")
RESTART_PAUSE = 1.0  # seconds between restarts of a worker that keeps dying


def listening_socket(host: str, port: int) -> socket.socket:
    """Return a TCP socket bound to (host, port) that other workers may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_workers(
    app: str,
    *,
    host: str,
    port: int,
    workers: int,
    factory: bool = False,
    log_level: str = "info",
    worker_env: Callable[[int], Mapping[str, str]] | None = None,
    **config: Any,
) -> None:
    """Serve ``app`` (an import string) from ``workers`` processes until SIGTERM or SIGINT.

    ``worker_env(n)`` gives environment variables for worker ``n`` (1, 2, …), set before the app
    is loaded; a restarted worker keeps its number.
    """
    listening_socket(host, port).close()  # fail here, once, if the address is taken
    children: dict[int, int] = {}  # pid → worker number
    stopping = False

    def start(number: int) -> None:
        pid = os.fork()
        if pid == 0:
            os.environ.update(worker_env(number) if worker_env else {})
            _worker(app, host, port, factory, log_level, config)
        children[pid] = number

    def stop(_signum: int, _frame: Any) -> None:
        # SIGTERM, whichever came: a second SIGINT (Ctrl-C reaches the children as well) would
        # make uvicorn drop the requests in flight
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(1, workers + 1):
        start(number)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        number = children.pop(pid)
        if stopping:
            continue
        log.error("worker %d (pid %d) exited with status %d; starting another", number, pid, status)
        time.sleep(RESTART_PAUSE)
        if not stopping:
            start(number)


def _worker(
    app: str, host: str, port: int, factory: bool, log_level: str, config: dict[str, Any]
) -> None:
    """In a forked child: serve on a socket of its own, then leave without returning."""
    code = 0
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        sock = listening_socket(host, port)
        settings = uvicorn.Config(app, factory=factory, log_level=log_level, **config)
        uvicorn.Server(settings).run(sockets=[sock])
    except BaseException:
        log.exception("worker failed")
        code = 1
    finally:
        os._exit(code)
