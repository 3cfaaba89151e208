"""`haihe portal …` over the module's city: list, publish, refresh, applications, usage."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable

import pytest
from portal_city import City, user

from haihe.cli import main
from haihe.portal import service
from haihe.portal.schemas import ApplicationIn

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def haihe(city: City, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``haihe ARGS`` in-process on the city's database; (exit code, stdout, stderr)."""
    monkeypatch.setenv("HAIHE_DATA_DIR", str(city.settings.data_dir))
    monkeypatch.setenv("HAIHE_DATABASE_URL", str(city.settings.database_url))

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["haihe", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_list_publish_refresh_and_withdraw(haihe: Run, city: City) -> None:
    code, out, _ = haihe("portal", "list", "--json")
    assert code == 0
    assert sorted(d["name"] for d in json.loads(out)) == sorted(city.names.values())

    view = json.dumps({"items": ["record_no", "diagnosis"]})
    code, _, err = haihe("portal", "publish", city.codes["open"], "--title-zh", "诊断",
                         "--topic", "health", "--view", view)  # fmt: skip
    assert code == 2
    assert err.startswith("error: L4 items are never opened")
    assert "diagnosis (诊断, L4)" in err
    assert err.count("\n") == 1

    view = json.dumps({"aggregate": {"group_by": ["age"], "measures": [{"name": "n"}]}})
    code, out, err = haihe("portal", "publish", city.codes["open"], "--title-zh", "按年龄统计",
                           "--topic", "health", "--name", "care-by-age", "--tags", "养老,年龄",
                           "--view", view, "--json")  # fmt: skip
    assert code == 0, err
    made = json.loads(out)[0]
    assert made["name"] == "care-by-age"
    assert made["row_count"] == 30  # ages 60-89
    assert set(made["tags"]) == {"年龄", "养老"}

    code, out, _ = haihe("portal", "refresh")
    assert (code, out.strip()) == (0, "refreshed 0 dataset(s)")
    code, out, _ = haihe("portal", "refresh", "care-by-age")
    assert (code, out.strip()) == (0, "care-by-age: already current")
    code, out, _ = haihe("portal", "withdraw", "care-by-age")
    assert code == 0
    code, out, _ = haihe("portal", "list", "--json")
    states = {d["name"]: d["state"] for d in json.loads(out)}
    assert states["care-by-age"] == "withdrawn"
    code, _, err = haihe("portal", "list", "--as", "rs_op")
    assert code == 2
    assert "admins" in err


def test_applications_decided_from_the_command_line(haihe: Run, city: City) -> None:

    with city.sessions() as s:
        wanted = ApplicationIn(dataset=city.names["conditional"], purpose="研究", accept_terms=True)
        app = service.apply(s, actor=user(s, "resident2"), data=wanted)
        s.commit()
        app_id = app.id
    code, out, _ = haihe("portal", "applications", "--status", "pending", "--json")
    assert code == 0
    assert [(a["id"], a["applicant"]) for a in json.loads(out)] == [(app_id, "resident2")]
    refuse = ("portal", "refuse", str(app_id), "--reason", "用途不明", "--as")
    code, _, err = haihe(*refuse, "rs_admin")
    assert code == 2
    assert err.strip() == f"error: application {app_id} does not exist"
    code, out, _ = haihe(*refuse, "mz_admin")
    assert (code, out.strip()) == (0, f"application {app_id}: refused")
    code, out, _ = haihe("portal", "applications", "--json")
    decided = {a["id"]: (a["status"], a["reason"]) for a in json.loads(out)}
    assert decided[app_id] == ("refused", "用途不明")


def test_usage_from_the_command_line(haihe: Run, city: City) -> None:
    ds = city.dataset("care-subsidies-80-plus")
    with city.sessions() as s:
        for what in ("views", "views", "downloads"):
            service.count_use(s, ds=ds, what=what)
        s.commit()
    code, out, _ = haihe("portal", "usage", "--by", "topic", "--json")
    assert code == 0
    rows = {r["key"]: (r["title"], r["views"], r["downloads"]) for r in json.loads(out)["rows"]}
    assert rows["health"] == ("医疗卫生", 2, 1)
    code, _, err = haihe("portal", "usage", "--start", "2026-02-30")
    assert code == 2
    assert err.startswith("error: a day is written 2026-01-31")
