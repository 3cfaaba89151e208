"""`haihe demo`: a synthetic city registered as members, with accounts that really sign in,
whose departments request, are granted and use each other's data, every use in a ledger that
verifies."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from haihe.catalogue.models import Resource
from haihe.core.errors import Conflict
from haihe.core.settings import Settings
from haihe.demo import CREDENTIALS, run_demo
from haihe.demo.usage import DEFAULT_CALLS, RESIDENTS
from haihe.exchange.models import AccessRequest, Grant, GrantBasis, RequestStatus


@pytest.fixture
def built(settings: Settings) -> Settings:
    run_demo(settings, persons=3000, seed=7, console=Console(quiet=True))
    return settings


def test_demo_registers_the_city_and_its_accounts_sign_in(
    built: Settings, client: TestClient
) -> None:
    creds = json.loads((built.data_dir / CREDENTIALS).read_text(encoding="utf-8"))
    admin = creds["platform_admin"]
    r = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": admin["username"],
            "password": admin["password"],
        },
    )
    assert r.status_code == 200
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    totals = {
        kind: client.get(f"/api/v1/orgs?kind={kind}&limit=1", headers=headers).json()["total"]
        for kind in (
            "city",
            "district",
            "municipal_department",
            "institution",
            "street",
            "community",
        )
    }
    assert totals["city"] == 1
    assert totals["district"] == 16
    assert totals["municipal_department"] == 68
    assert totals["institution"] == 5
    assert totals["street"] >= 16 * 3
    assert totals["community"] >= totals["street"] * 3
    heping = client.get("/api/v1/orgs/120101", headers=headers).json()
    assert heping["name_zh"] == "和平区"
    assert heping["parent_code"] == "120000"
    # every department and institution has an admin and an API client that work
    assert len(creds["clients"]) == 73
    ga = next(c for c in creds["clients"] if c["org_code"] == "GA")
    assert ga["provides_data"] is True
    r = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": ga["client_id"],
            "client_secret": ga["client_secret"],
        },
    )
    me = client.get(
        "/api/v1/auth/whoami", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    assert me.json()["org_code"] == "GA"
    ga_admin = next(a for a in creds["accounts"] if a["username"] == "ga_admin")
    r = client.post(
        "/login",
        data={"username": "ga_admin", "password": ga_admin["password"]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    # the credentials file is the operator's alone
    assert (built.data_dir / CREDENTIALS).stat().st_mode & 0o077 == 0


def test_rerun_reuses_and_other_size_is_refused(built: Settings) -> None:
    again = run_demo(built, persons=3000, seed=7, console=Console(quiet=True))
    assert again.reused is True
    with pytest.raises(Conflict, match="already holds a demo of 3000 persons"):
        run_demo(built, persons=4000, seed=7, console=Console(quiet=True))


def test_demo_refuses_a_directory_with_a_real_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    (tmp_path / "haihe.db").write_bytes(b"")
    with pytest.raises(Conflict, match="not a demo"):
        run_demo(settings, persons=3000, seed=7, console=Console(quiet=True))


def _token(client: TestClient, username: str, password: str) -> dict[str, str]:
    r = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_demo_plays_out_the_exchange_and_its_ledger_verifies(
    settings: Settings,
    session_factory: sessionmaker[Session],
    client: TestClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_demo(settings, persons=3000, seed=7, console=Console(quiet=True))
    summary = " ".join(capsys.readouterr().out.split())
    creds = json.loads((settings.data_dir / CREDENTIALS).read_text(encoding="utf-8"))
    admin = _token(client, creds["platform_admin"]["username"], creds["platform_admin"]["password"])

    # the requests end as the demo describes them
    with session_factory() as session:
        rows = session.execute(
            select(AccessRequest.status, AccessRequest.escalated_at.is_not(None), Grant.basis)
            .outerjoin(Grant, Grant.request_id == AccessRequest.id)
            .order_by(AccessRequest.id)
        ).all()
    states = Counter((status, escalated, basis) for status, escalated, basis in rows)
    assert states == {
        (RequestStatus.APPROVED, False, GrantBasis.UNCONDITIONAL): 4,
        # the 5 approved of the exchange step, and 23 verify grants of the verification step
        (RequestStatus.APPROVED, False, GrantBasis.APPROVED): 5 + 23,
        (RequestStatus.REFUSED, False, None): 1,
        (RequestStatus.PENDING, True, None): 1,
        (RequestStatus.PENDING, False, None): 1,
    }
    assert result.requests == {
        "granted": 4,
        "approved": 5,
        "refused": 1,
        "pending": 1,
        "overdue": 1,
    }

    # the grants did real work, and the summary says so
    assert result.usage is not None
    assert result.usage.grants == 9
    assert result.usage.calls == DEFAULT_CALLS
    assert result.usage.exported_rows > 0
    assert result.usage.changes > 0
    assert "4 granted at once, 5 approved, 1 refused, 1 pending, 1 overdue" in summary
    assert f"9 grants in force; {DEFAULT_CALLS} gateway calls" in summary
    assert "the ledger verifies (intact)" in summary

    # the ledger verifies, checkpoint included, and holds every call
    r = client.post("/api/v1/audit/verify", json={}, headers=admin)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["intact"] is True
    assert report["entries"] > DEFAULT_CALLS
    assert sum(c["checkpoints"] for c in report["chains"]) >= 1
    assert result.ledger is not None
    assert result.ledger.entries == report["entries"]
    queries = client.get(
        "/api/v1/audit/entries?action=exchange.query&outcome=ok&limit=500", headers=admin
    ).json()["items"]
    assert len(queries) == DEFAULT_CALLS
    assert sum(1 for e in queries if e["subjects"] > 0) >= DEFAULT_CALLS // 2

    # statistics count uses of every entry the gateway served
    stats = client.get("/api/v1/audit/statistics?group_by=resource", headers=admin).json()
    used = {row["key"] for row in stats["rows"] if row["uses"] > 0}
    with session_factory() as session:
        queried = _codes_of_grants(session, mode="query")
    assert len(queried) == 5
    assert queried <= used

    # verification: single checks and the five scenarios, under verify grants, audited, no rows
    verified = result.verified
    assert verified is not None
    assert verified.grants == 23
    assert verified.checks == 6
    checked = client.get(
        "/api/v1/audit/entries?action=verification.check&outcome=ok&limit=500", headers=admin
    ).json()["items"]
    assert {e["mode"] for e in checked} == {"verify"}
    assert {e["rows"] for e in checked} == {0}
    assert {e["org_code"] for e in checked} == {"JT", "RS", "GJJ", "MZ"}
    assert {e["provider_code"] for e in checked} >= {"WJW", "MZ", "GA"}
    assert [r.scenario for r in verified.scenarios] == [
        "bus_card_audit",
        "pension_certification",
        "pension_death_stop",
        "housing_fund_low_income",
        "social_security_outreach",
    ]
    for run in verified.scenarios:
        upload = pq.read_table(settings.data_dir / "verify" / f"demo-{run.scenario}.parquet")
        assert sum(run.outcomes.values()) == run.subjects == upload.num_rows
        assert run.score["tp"] > 0
        assert run.score["precision"] >= 0.9, run
        assert f"scenario {run.scenario} ({run.consumer}, job {run.job_id}" in summary

    # the open portal opens the large non-personal dataset in full, and no register of people
    assert result.portal is not None
    assert {"air-quality-hourly", "air-quality-stations"} <= set(result.portal.datasets)
    pkg = client.get("/api/3/action/package_show?id=air-quality-hourly").json()["result"]
    assert pkg["organization"]["name"] == "sthj"
    assert {e["key"]: e["value"] for e in pkg["extras"]}["row_count"] == str(4 * 365 * 24)
    listed = client.get("/api/3/action/package_list").json()["result"]
    assert not any("household" in name or "taps" in name for name in listed)

    # each demo resident signs in and sees uses of their records, on the API and the page
    residents = [a for a in creds["accounts"] if a["roles"] == ["resident"]]
    assert len(residents) == RESIDENTS
    for resident in residents:
        mine = client.get(
            "/api/v1/audit/me", headers=_token(client, resident["username"], resident["password"])
        ).json()
        assert mine["linked"] is True
        assert any(use["action"] == "exchange.query" for use in mine["items"])
        r = client.post(
            "/login",
            data={"username": resident["username"], "password": resident["password"]},
            follow_redirects=False,
        )
        assert r.status_code == 303
        page = client.get("/audit/me")
        assert page.status_code == 200
        assert mine["items"][0]["purpose"] in page.text
        client.cookies.clear()

    # grid governance: the city's grids, a year of events and a fortnight played out live
    gov = result.governed
    assert gov is not None
    assert gov.cells == len(
        json.loads((settings.data_dir / "synth/grids/cells.geojson").read_text())["features"]
    )
    assert sum(gov.past.values()) == 300
    assert gov.live == 13
    assert gov.whistles == 2
    assert "2 overdue, 2 supervised" in gov.scan
    assert "Grid governance:" in summary
    worker = next(a for a in creds["accounts"] if a["username"] == "grid1")
    tasks = client.get(
        "/api/v1/governance/events", headers=_token(client, "grid1", worker["password"])
    ).json()
    assert tasks["total"] >= 4
    today = dt.date.today()
    period = f"from={today - dt.timedelta(days=400)}&to={today + dt.timedelta(days=1)}"
    year = client.get(f"/api/v1/governance/statistics?{period}", headers=admin).json()
    assert year["totals"]["reported"] == 300 + 13
    assert year["totals"]["satisfaction"] is not None
    assert year["by_status"]["closed"] >= 300
    heat = client.get(f"/api/v1/governance/statistics/heatmap?{period}", headers=admin).json()
    assert sum(c["count"] for c in heat) == 313


def _codes_of_grants(session: Session, *, mode: str) -> set[Any]:
    grants = session.execute(select(Grant.modes, Resource.code).join(Resource)).all()
    return {code for modes, code in grants if mode in modes}
