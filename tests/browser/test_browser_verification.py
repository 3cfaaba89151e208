"""Verification in a real browser: the rules and scenarios, the counter's single check, a batch
job from upload through its progress to the report with its lists, a scenario's report scored
against a ground truth uploaded on its page — desktop and phone, Chinese and English."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_support import LiveServer
from playwright.sync_api import Page, expect

from factories import PASSWORD
from haihe.core.auth import Principal
from haihe.core.db import transaction
from haihe.core.settings import Settings
from haihe.orgs import repository as orgs_repo
from haihe.orgs.auth import principal_of_user
from haihe.verification import jobs
from verification.verify_world import build_world, grant_all, payments, pid, write_csv

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Page]
BAD_ID = pid(3)[:17] + ("1" if pid(3)[17] == "0" else "0")


def _sign_in(page: Page, username: str, path: str) -> None:
    page.goto(path)
    page.get_by_label(re.compile("用户名|Username")).fill(username)
    page.get_by_label(re.compile("密码|Password")).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("^(登录|Sign in)$")).click()


@pytest.fixture(scope="module")
def city(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The hand-made sources of tests/verification on the live server, bound and granted to
    RSJ (once); a stop-list job for the report. Returns the server's settings."""
    with live_server.sessions() as session:
        db_path = Path(str(session.get_bind().url.database))
        # the live server keeps its data beside its database (DATA_DIR/haihe.db)
        settings = Settings(data_dir=db_path.parent, secret_key="browser-test-secret-key")
        if orgs_repo.user_by_username(session, "rsj_op") is not None:
            return settings
        tmp = tmp_path_factory.mktemp("verification-browser")
        world = build_world(session, settings, tmp / "in")
        grant_all(session, world)
        user = orgs_repo.user_by_username(session, "rsj_op")
        assert user is not None
        actor = principal_of_user(user)
        assert actor is not None
    _stop_list_job(live_server, settings, actor, tmp)
    return settings


def _stop_list_job(
    live_server: LiveServer, settings: Settings, actor: Principal, tmp: Path
) -> None:
    path = write_csv(tmp / "payments.csv", payments())
    with transaction(live_server.sessions) as session:
        job_id = jobs.create_job(
            session, actor=actor, settings=settings, name="pension_death_stop",
            params={"on": "2024-12-31"}, input_path=path, input_name="养老金发放名单.csv",
        ).id  # fmt: skip
    assert jobs.run_job(live_server.sessions, settings, job_id) is jobs.JobStatus.SUCCEEDED


def test_the_rules_and_a_single_check_at_the_counter(
    open_page: OpenPage, city: Settings, screenshots: Path
) -> None:
    page = open_page()
    _sign_in(page, "rsj_op", "/verification")
    expect(page.get_by_role("heading", name="数据核验", exact=True)).to_be_visible()
    expect(page.get_by_test_id("scenario")).to_have_count(5)
    expect(page.locator("#rule-alive")).to_contain_text("在世核验")
    page.screenshot(path=screenshots / "desktop-zh-verification.png", full_page=True)

    page.locator("#rule-alive").get_by_role("link", name="单笔核验").click()
    page.get_by_label("身份证号").fill(pid(0))
    page.get_by_label(re.compile("^on")).fill("2024-12-31")
    page.get_by_role("button", name="核验", exact=True).click()
    answer = page.get_by_test_id("answer")
    expect(answer.get_by_test_id("verdict")).to_have_text("否")
    expect(answer.get_by_test_id("reasons")).to_contain_text("有死亡医学证明")
    expect(answer.get_by_test_id("masked-id")).to_have_text(f"{pid(0)[:6]}********{pid(0)[-4:]}")
    expect(answer.get_by_test_id("consulted").locator("tbody tr")).to_have_count(2)
    page.screenshot(path=screenshots / "desktop-zh-verification-check.png", full_page=True)


def test_a_single_check_on_a_phone_in_english(
    open_page: OpenPage, city: Settings, screenshots: Path
) -> None:
    page = open_page(phone=True, locale="en-GB")
    _sign_in(page, "rsj_op", "/verification/check?rule=alive")
    page.get_by_label("ID number").fill(BAD_ID)
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.get_by_test_id("verdict")).to_have_text("unknown")
    expect(page.get_by_test_id("reasons")).to_contain_text("check character is wrong")
    page.screenshot(path=screenshots / "phone-en-verification-check.png", full_page=True)


def test_a_batch_job_from_upload_to_its_lists(
    open_page: OpenPage, city: Settings, screenshots: Path, tmp_path: Path
) -> None:
    subjects = write_csv(
        tmp_path / "subjects.csv", [{"id_number": i} for i in (pid(0), pid(3), BAD_ID, pid(6))]
    )
    page = open_page(locale="en-GB")
    _sign_in(page, "rsj_op", "/verification/jobs/new")
    page.get_by_label("Rule or scenario").select_option("alive")  # htmx brings its parameters
    expect(page.get_by_test_id("columns")).to_have_text("id_number")
    page.get_by_label("Subject file").set_input_files(subjects)
    page.get_by_label(re.compile("^on")).fill("2024-12-31")
    page.get_by_role("button", name="Start the job").click()
    expect(page).to_have_url(re.compile(r"/verification/jobs/\d+$"))
    # the job runs after the answer: htmx polls its progress and reloads the page at the end
    expect(page.get_by_test_id("status").first).to_have_text("succeeded", timeout=20_000)
    counts = page.get_by_test_id("counts")
    expect(counts).to_contain_text("yes")
    expect(page.get_by_test_id("list").locator("tbody tr")).to_have_count(2)  # pid(3), pid(6)
    page.get_by_test_id("list-tabs").get_by_role("link", name="unknown").click()
    expect(page.get_by_test_id("list")).to_contain_text("check character is wrong")
    page.screenshot(path=screenshots / "desktop-en-verification-job.png", full_page=True)


def test_a_scenario_report_scored_against_the_truth_on_a_phone(
    open_page: OpenPage, city: Settings, screenshots: Path, tmp_path: Path
) -> None:
    truth = write_csv(
        tmp_path / "真实情况.csv",
        [{"pension_no": f"P{i:03d}", "alive": i not in (0, 2)} for i in range(8)],
    )
    page = open_page(phone=True)
    _sign_in(page, "rsj_op", "/verification/jobs")
    page.get_by_test_id("jobs").get_by_role("link", name="死亡人员养老金停发").first.click()
    form = page.get_by_test_id("score-form")
    expect(form).to_be_visible()
    form.scroll_into_view_if_needed()
    page.screenshot(path=screenshots / "phone-zh-verification-score-form.png")
    form.get_by_label("真实情况文件").set_input_files(truth)
    form.get_by_role("button", name="对照真实情况评分").click()
    expect(page.get_by_test_id("precision")).to_have_text("1.000")
    expect(page.get_by_test_id("recall")).to_have_text("1.000")
    stop = page.get_by_test_id("list")
    expect(stop.locator("tbody tr")).to_have_count(2)  # pid(0) and pid(2) died
    expect(stop).to_contain_text(f"{pid(0)[:6]}********{pid(0)[-4:]}")
    expect(page.get_by_test_id("derived")).to_contain_text("74,400.00")  # (3000 + 3200) × 12
    page.screenshot(path=screenshots / "phone-zh-verification-report.png", full_page=True)
    desktop = open_page(locale="en-GB")
    _sign_in(desktop, "rsj_op", urlsplit(page.url).path)
    expect(desktop.get_by_test_id("score-form")).to_contain_text("Score against ground truth")
    desktop.screenshot(path=screenshots / "desktop-en-verification-score.png", full_page=True)
