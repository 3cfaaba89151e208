"""`haihe demo`: a synthetic city registered as members, with accounts that really sign in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from haihe.core.errors import Conflict
from haihe.core.settings import Settings
from haihe.demo import CREDENTIALS, run_demo


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


def test_credentials_file_is_private(built: Settings) -> None:
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
