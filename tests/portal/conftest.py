"""The portal's module-scoped city: one migrated database per backend, one data directory, the
register loaded and published once, and (for the client tests) a live uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient
from portal_city import City, build_city, empty
from sqlalchemy import Engine

from haihe.core.db import make_session_factory
from haihe.core.settings import Settings


@pytest.fixture(scope="module")
def city(migrated_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("portal-data"),
        database_url=migrated_engine.url.render_as_string(hide_password=False),
        secret_key="portal-test-secret-key",
        jobs_enabled=False,
    )
    sessions = make_session_factory(migrated_engine)
    try:
        yield build_city(settings, sessions, tmp_path_factory.mktemp("portal-csv"))
    finally:
        empty(migrated_engine)


@pytest.fixture(scope="module")
def web(city: City) -> Iterator[TestClient]:
    """An in-process client on the real app over the module's city."""
    from haihe.app import create_app

    app = create_app(city.settings)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def live(city: City) -> Iterator[City]:
    """The city behind a live uvicorn server on a free local port (``city.url``)."""
    from haihe.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(city.settings)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live Haihe server did not start")
        time.sleep(0.05)
    city.url = f"http://127.0.0.1:{port}"
    try:
        yield city
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        app.state.engine.dispose()
