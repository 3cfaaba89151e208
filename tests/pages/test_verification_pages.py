"""Verification's console pages over HTTP: who may open them, the counter's single check, a
batch job from upload to report and its score against a ground truth, and a job of another
organisation staying out of sight."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from factories import PASSWORD, make_user
from haihe.core.auth import Role
from haihe.core.settings import Settings
from haihe.orgs import repository as orgs_repo
from verification.verify_world import World, build_world, csv_bytes, grant_all, payments, pid

HTML = {"accept": "text/html"}
PAGES = ["/verification", "/verification/check", "/verification/jobs", "/verification/jobs/new"]
# who → may open the pages (the roles the home page shows verification to)
CALLERS = {
    "platform": True,
    "wjw_admin": True,
    "rsj_op": True,
    "officer": True,
    "auditor": False,
    "resident": False,
}
BAD_ID = pid(0)[:17] + ("1" if pid(0)[17] == "0" else "0")  # its check character fails
CSV = f"id_number\n{pid(0)}\n{pid(3)}\n{BAD_ID}\n".encode()


def text_of(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def sign_in(client: TestClient, username: str) -> TestClient:
    client.cookies.clear()
    r = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return client


@pytest.fixture
def world(client: TestClient, session: Session, settings: Settings, tmp_path: Path) -> World:
    built = build_world(session, settings, tmp_path / "in")
    grant_all(session, built)
    make_user(session, Role.OFFICER, org=orgs_repo.org_by_code(session, "CL"), username="officer")
    make_user(session, Role.AUDITOR, username="auditor")
    session.commit()
    return built


def test_the_pages_open_for_the_roles_verification_serves(client: TestClient, world: World) -> None:
    for path in PAGES:
        r = client.get(path, headers=HTML, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")
    for who, admitted in CALLERS.items():
        sign_in(client, who)
        for path in PAGES:
            r = client.get(path, headers=HTML)
            assert r.status_code == (200 if admitted else 403), (who, path)
        home = client.get("/", headers=HTML).text
        assert ('href="/verification"' in home) is admitted, who


def test_the_overview_lists_scenarios_and_rules_with_parameters_and_bound_sources(
    client: TestClient, world: World
) -> None:
    page = sign_in(client, "rsj_op").get("/verification", headers=HTML).text
    words = text_of(page)
    for title in ("养老金领取资格认证", "死亡人员养老金停发", "在世核验", "生存迹象核验"):
        assert title in words
    assert "today-365d" in words  # pension certification's `since` default
    assert world.codes["deaths"] in words  # the entry bound to `deaths`
    assert "未绑定" in words  # roles with no entry in this small world (e.g. mobile)


def test_a_single_check_answers_with_reasons_and_versions_never_rows(
    client: TestClient, world: World
) -> None:
    sign_in(client, "rsj_op")
    form = {"rule": "alive", "id_number": pid(0), "param_on": "2024-12-31"}
    r = client.post("/verification/check", data=form, headers=HTML)
    assert r.status_code == 200
    words = text_of(r.text)
    assert "核验结论: 否" in words
    assert "有死亡医学证明" in words
    assert "有火化记录" in words
    assert f"{world.codes['deaths']} v1" in words
    assert pid(0) not in r.text  # the ID is shown masked
    assert f"{pid(0)[:6]}********{pid(0)[-4:]}" in words
    assert "2024-03-01" not in words  # no source row's values: the death date stays with WJW
    # a bad check character: unknown, with its reason in the reader's language
    client.cookies.set("haihe_lang", "en")
    r = client.post("/verification/check", data={**form, "id_number": BAD_ID})
    words = text_of(r.text)
    assert "Verdict: unknown" in words
    assert "the ID number's check character is wrong" in words


def test_a_check_without_grants_shows_the_grants_missing(client: TestClient, world: World) -> None:
    sign_in(client, "cl_op")
    form = {"rule": "alive", "id_number": pid(0), "param_on": "2024-12-31"}
    r = client.post("/verification/check", data=form, headers=HTML)
    assert r.status_code == 403
    assert "holds no verify grant for deaths" in text_of(r.text)
    assert pid(0) in r.text  # the form keeps what was typed


def test_a_batch_job_runs_from_the_upload_to_its_report(client: TestClient, world: World) -> None:
    sign_in(client, "rsj_op")
    r = client.post(
        "/verification/jobs",
        data={"name": "alive", "param_on": "2024-12-31", "engine": "duckdb"},
        files={"file": ("名单.csv", CSV, "text/csv")},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    job_page = r.headers["location"]
    job_id = int(job_page.rsplit("/", 1)[1])
    page = client.get(job_page, headers=HTML).text  # the test client ran the job already
    words = text_of(page)
    assert "已完成" in words
    assert "名单.csv" in words
    assert f"/api/v1/verify/jobs/{job_id}/download?format=csv" in page
    # the first list is `yes`: pid(3); `no` holds pid(0); masked on screen
    listed = text_of(client.get(f"{job_page}?list=no", headers=HTML).text)
    assert f"{pid(0)[:6]}********{pid(0)[-4:]}" in listed
    assert pid(0) not in listed
    assert "有死亡医学证明" in listed
    unknown = text_of(client.get(f"{job_page}?list=unknown", headers=HTML).text)
    assert "身份证号校验码错误" in unknown
    # htmx polls the progress: a finished job tells it to reload the page
    r = client.get(f"{job_page}/progress", headers={**HTML, "hx-request": "true"})
    assert r.headers["hx-refresh"] == "true"
    assert "3 / 1" not in r.text
    assert "1 个分块" in text_of(r.text)
    r = client.post(f"{job_page}/cancel", headers=HTML)
    assert r.status_code == 409  # finished jobs are not cancelled
    jobs_list = text_of(client.get("/verification/jobs", headers=HTML).text)
    assert "在世核验" in jobs_list
    assert "名单.csv" in jobs_list
    # another organisation neither sees it listed nor opens it
    sign_in(client, "cl_op")
    assert "名单.csv" not in client.get("/verification/jobs", headers=HTML).text
    assert client.get(job_page, headers=HTML).status_code == 404


def test_a_bad_upload_shows_the_form_again_with_what_to_fix(
    client: TestClient, world: World
) -> None:
    sign_in(client, "rsj_op")
    r = client.post(
        "/verification/jobs",
        data={"name": "bus_card_audit", "param_age": "65"},
        files={"file": ("cards.csv", b"id_number\n110101195001010010\n", "text/csv")},
        headers=HTML,
    )
    assert r.status_code == 422
    words = text_of(r.text)
    assert "lacks the column(s) card_no, status" in words
    assert 'value="65"' in r.text  # the parameters given are kept


def test_a_scenario_job_is_scored_on_its_page_and_the_report_shows_precision_and_recall(
    client: TestClient, world: World
) -> None:
    sign_in(client, "rsj_op")
    r = client.post(
        "/verification/jobs",
        data={"name": "pension_death_stop", "param_on": "2024-12-31"},
        files={"file": ("payments.csv", csv_bytes(payments()), "text/csv")},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    job_page = r.headers["location"]
    page = client.get(job_page, headers=HTML).text
    assert f'action="{job_page}/score"' in page
    assert "尚未与真实情况比对" in text_of(page)
    # a file without the key: the page again, saying what the file needs
    r = client.post(
        f"{job_page}/score",
        files={"truth": ("truth.csv", b"payment,alive\nP000,false\n", "text/csv")},
        headers=HTML,
    )
    assert r.status_code == 422
    words = text_of(r.text)
    assert "未能评分： the truth lacks the column(s) pension_no" in words
    assert "has a row per pension_no and a column alive" in words
    # the stop list is P000 and P002; this truth says P000 and P004 died: one right, one
    # wrong, one missed — precision 1/2, recall 1/2
    truth = csv_bytes([{"pension_no": f"P{i:03d}", "alive": i not in (0, 4)} for i in range(8)])
    r = client.post(
        f"{job_page}/score",
        files={"truth": ("真实情况.csv", truth, "text/csv")},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"{job_page}#score"
    words = text_of(client.get(r.headers["location"], headers=HTML).text)
    assert "0.500 精确率" in words
    assert "0.500 召回率" in words
    assert "1 / 1 / 1" in words
    # the platform admin sees the job but holds no grant to run it: the page says so
    sign_in(client, "platform")
    r = client.post(
        f"{job_page}/score", files={"truth": ("t.csv", truth, "text/csv")}, headers=HTML
    )
    assert r.status_code == 403
    assert "holds no verify grant for deaths" in text_of(r.text)
