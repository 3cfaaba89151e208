"""Secrets, tokens and the persons' data never reach the logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from test_gateway_world import build_city, grant, person

from factories import make_client
from haihe.app import WithoutQueryStrings, create_app
from haihe.core.settings import Settings
from haihe.orgs.models import Organisation


def test_a_token_grant_and_a_gateway_call_log_no_secret_token_or_id(
    session: Session,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    city = build_city(session, settings, tmp_path)
    grant(session, city)
    rsj = session.get(Organisation, city.org_ids["RSJ"])
    assert rsj is not None
    api_client, secret = make_client(session, rsj)
    session.commit()
    someone = person(7)["id_number"]
    # every SQL statement and its parameters logged too: the most the server can log
    app = create_app(settings.model_copy(update={"sql_echo": True}))
    with TestClient(app) as client, caplog.at_level(logging.DEBUG):
        token = client.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": api_client.client_id,
                "client_secret": secret,
            },
        ).json()["access_token"]
        r = client.get(
            f"/api/v1/exchange/{city.code}/records?id_number={someone}",
            headers={"Authorization": f"Bearer {token}"},
        )
        refused = client.get(
            f"/api/v1/exchange/{city.code}/records", headers={"Authorization": "Bearer wrong"}
        )
    assert r.status_code == 200
    assert refused.status_code == 401
    # what the server side logged (the test's own HTTP client logs the URLs it asks for)
    server = [rec for rec in caplog.records if not rec.name.startswith("httpx")]
    assert server  # the calls did log something (the SQL at least): the checks below can fail
    logged = "\n".join(rec.getMessage() for rec in server)
    assert secret not in logged
    assert token not in logged
    assert someone not in logged


def test_the_access_log_keeps_the_path_but_not_the_query() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/api/v1/exchange/X/records?id_number=120101194912310025",
            "1.1",
            200,
        ),
        None,
    )
    assert WithoutQueryStrings().filter(record)
    message = record.getMessage()
    assert "120101194912310025" not in message
    assert "/api/v1/exchange/X/records?…" in message


def test_the_app_installs_the_filter_on_uvicorns_access_log(client: TestClient) -> None:
    access = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, WithoutQueryStrings) for f in access.filters)
