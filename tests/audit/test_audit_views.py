"""What each reader sees: org admins' share of the ledger, CSV for Excel, statistics, "my data"."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from audit_support import GATEWAY, entry, sign_heads, sql
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD, ROOT, bearer, make_org, make_resource, make_user
from haihe.audit import service
from haihe.audit.models import AuditEntry
from haihe.core.auth import Role
from haihe.core.i18n import LANG_COOKIE
from haihe.core.masking import pseudonymise
from haihe.core.settings import Settings
from haihe.orgs import service as orgs

Factory = sessionmaker[Session]
ID = "11010519491231002X"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _token(client: TestClient, username: str) -> dict[str, str]:
    return bearer(client, username=username)


def _use(n: int, **fields: object) -> service.NewEntry:
    """A use of GA's data by MZ (unless ``fields`` say otherwise)."""
    base: dict[str, object] = {
        "action": "exchange.query",
        "outcome": "ok",
        "provider_code": "GA",
        "resource_code": "101-000001",
        "rows": 0,
        "purpose": None,
        "subjects": (),
    }
    return entry(n, **(base | fields))


@pytest.fixture
def people(session_factory: Factory, settings: Settings) -> str:
    """MZ and GA admins, a resident linked to ID; entries by MZ on GA's data and by WJW."""
    token = pseudonymise(settings.secret_key_bytes(), ID)
    with session_factory() as s:
        mz = make_org(s, code="MZ", name_zh="市民政局")
        ga = make_org(s, code="GA", name_zh="市公安局")
        wjw = make_org(s, code="WJW", name_zh="市卫健委")
        make_user(s, Role.ORG_ADMIN, org=mz, username="mz_admin")
        make_user(s, Role.ORG_ADMIN, org=ga, username="ga_admin")
        make_user(s, Role.ORG_ADMIN, org=wjw, username="wjw_admin")
        make_user(s, Role.RESIDENT, username="resident")
        make_user(s, Role.RESIDENT, username="neighbour")
        orgs.link_identity(
            s, actor=ROOT, username="resident", id_number=ID, key=settings.secret_key_bytes()
        )
        noon = dt.datetime(2026, 3, 1, 12, tzinfo=SHANGHAI)
        late = dt.datetime(2026, 3, 1, 23, 30, tzinfo=SHANGHAI)  # 15:30 UTC, still 1 March
        service.record_many(
            s,
            [
                _use(1, mode="query", rows=5, purpose="低保核查", at=noon, subjects=[token]),
                _use(2, mode="verify", subjects=[token, "b" * 32], at=late),
                _use(3, mode="bulk", rows=100, outcome="refused", at=noon),
                _use(4, mode="query", rows=7, at=late + dt.timedelta(hours=1)),
                _use(5, mode="query", rows=1, actor=GATEWAY, provider_code="WJW", at=noon),
            ],
        )
        s.commit()
    return token


def test_an_org_admin_sees_its_uses_and_uses_of_its_data(client: TestClient, people: str) -> None:
    seen = {}
    for who in ("mz_admin", "ga_admin", "wjw_admin"):
        r = client.get("/api/v1/audit/entries", headers=_token(client, who))
        seen[who] = {e["seq"] for e in r.json()["items"]}
    assert seen["mz_admin"] == {1, 2, 3, 4, 5}  # MZ acted in all of them
    assert seen["ga_admin"] == {1, 2, 3, 4}  # GA's data was used in these
    assert seen["wjw_admin"] == {5}


def test_the_ledger_pages_by_id_with_filters(client: TestClient, people: str) -> None:
    auth = _token(client, "mz_admin")
    first = client.get("/api/v1/audit/entries?limit=2&mode=query", headers=auth).json()
    rest = client.get(
        f"/api/v1/audit/entries?limit=2&mode=query&before={first['next_before']}", headers=auth
    ).json()
    assert [e["seq"] for e in first["items"]] == [5, 4]
    assert [e["seq"] for e in rest["items"]] == [1]


def test_the_csv_export_opens_in_excel(client: TestClient, people: str) -> None:
    r = client.get("/api/v1/audit/entries.csv", headers=_token(client, "mz_admin"))
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeffid,chain,seq,time")
    assert "低保核查" in text
    assert len(list(csv.reader(io.StringIO(text)))) == 6


def test_sharing_uses_count_rows_and_verified_subjects_by_shanghai_day(
    client: TestClient, people: str
) -> None:
    auth = _token(client, "mz_admin")
    by_day = client.get("/api/v1/audit/statistics?group_by=day", headers=auth).json()
    by_provider = client.get("/api/v1/audit/statistics?group_by=provider", headers=auth).json()
    # 1 March: 5 rows + 2 subjects verified + 1 row (the refused bulk is not a use)
    assert [(r["key"], r["uses"]) for r in by_day["rows"]] == [
        ("2026-03-01", 8),
        ("2026-03-02", 7),
    ]
    assert [(r["key"], r["uses"]) for r in by_provider["rows"]] == [("GA", 14), ("WJW", 1)]


def test_statistics_between_days(client: TestClient, people: str) -> None:
    r = client.get(
        "/api/v1/audit/statistics?group_by=day&from=2026-03-02&to=2026-03-02",
        headers=_token(client, "mz_admin"),
    )
    assert r.json()["total"] == 7


def test_a_resident_sees_only_uses_of_their_own_data(client: TestClient, people: str) -> None:
    mine = client.get("/api/v1/audit/me", headers=_token(client, "resident")).json()
    theirs = client.get("/api/v1/audit/me", headers=_token(client, "neighbour")).json()
    assert [(u["org_code"], u["purpose"]) for u in mine["items"]] == [
        ("MZ", None),
        ("MZ", "低保核查"),
    ]
    assert theirs == {"linked": False, "items": [], "next_before": None}


def test_the_my_data_page_names_departments(client: TestClient, people: str) -> None:
    client.post("/login", data={"username": "resident", "password": PASSWORD})
    page = client.get("/audit/me", headers={"Accept": "text/html"}).text
    assert "我的数据使用记录" in page
    assert "市民政局" in page
    assert "低保核查" in page


def test_the_statistics_page_draws_a_chart_in_english(client: TestClient, people: str) -> None:
    client.post("/login", data={"username": "mz_admin", "password": PASSWORD})
    client.cookies.set(LANG_COOKIE, "en")
    page = client.get("/audit/statistics?group_by=org", headers={"Accept": "text/html"}).text
    assert "Sharing statistics" in page
    assert "echarts.min.js" in page
    found = re.search(r'<script type="application/json" id="audit-chart-data">(.*?)</script>', page)
    assert found is not None
    chart = json.loads(found.group(1))  # what the chart script parses: JSON, not escaped HTML
    assert chart["labels"]
    assert len(chart["values"]) == len(chart["labels"])


def test_the_ledger_page_lists_entries(client: TestClient, people: str) -> None:
    client.post("/login", data={"username": "ga_admin", "password": PASSWORD})
    page = client.get("/audit?mode=query", headers={"Accept": "text/html"}).text
    assert "审计日志" in page
    assert page.count("exchange.") == 2


def test_linking_an_identity_stores_only_its_pseudonym(
    session_factory: Factory, settings: Settings, people: str
) -> None:
    with session_factory() as s:
        stored = orgs.get_user(s, username="resident").subject_token
    assert stored == people
    assert ID not in str(stored)


def test_catalogue_changes_are_audited(session_factory: Factory) -> None:
    with session_factory() as s:
        ga = make_org(s, code="GA2")
        resource = make_resource(s, ga)
        s.commit()
        rows = s.execute(
            select(AuditEntry.action, AuditEntry.resource_code, AuditEntry.provider_code)
        ).all()
    assert [tuple(r) for r in rows] == [("catalogue.create", resource.code, "GA2")]


def test_verify_over_rest_names_each_problem(
    client: TestClient, people: str, session_factory: Factory, settings: Settings
) -> None:
    with session_factory() as s:
        make_user(s, Role.AUDITOR, username="auditor")
        s.commit()
    auth = _token(client, "auditor")
    intact = client.post("/api/v1/audit/verify", json={}, headers=auth).json()
    sign_heads(session_factory, settings)
    sealed = client.post("/api/v1/audit/verify", json={}, headers=auth).json()
    sql(session_factory, "UPDATE audit_entries SET rows = 0 WHERE seq = 4")
    tampered = client.post("/api/v1/audit/verify", json={}, headers=auth).json()
    bad_key = client.post("/api/v1/audit/verify", json={"public_key": "x"}, headers=auth)
    assert intact["intact"] is True
    assert intact["chains"][0]["sealed"] == 0  # no checkpoint yet: entry by entry
    assert sealed["intact"] is True
    assert sealed["chains"][0]["sealed"] == sealed["entries"] > 0  # all in signed blocks
    assert tampered["problems"] == [
        {
            "chain": "main",
            "seq": 4,
            "check": "hash",
            "message": "the entry's content does not match its hash (the entry was edited)",
        }
    ]
    assert bad_key.status_code == 400
