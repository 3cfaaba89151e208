"""The exchange's console pages over HTTP: request form, inbox, request and grant pages."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD, ROOT, make_org, make_resource, make_user
from haihe.catalogue import service as catalogue
from haihe.core.auth import Role
from haihe.exchange import repository, service
from haihe.exchange.models import RequestStatus
from haihe.exchange.schemas import RequestIn

HTML = {"accept": "text/html"}


def text_of(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def sign_in(client: TestClient, username: str) -> TestClient:
    client.cookies.clear()
    r = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303
    return client


@pytest.fixture
def deaths(session_factory: sessionmaker[Session]) -> str:
    with session_factory() as s:
        rs, wjw = make_org(s, code="RS"), make_org(s, code="WJW")
        make_user(s, Role.OPERATOR, org=rs, username="rs_op")
        make_user(s, Role.ORG_ADMIN, org=wjw, username="wjw_admin")
        r = make_resource(s, wjw, name_zh="居民死亡医学证明")
        catalogue.publish(s, actor=ROOT, code=r.code)
        s.commit()
        return r.code


def _submit(client: TestClient, code: str, **overrides: object) -> object:
    form: dict[str, object] = {
        "resource": code,
        "items": ["id_number", "death_date"],
        "modes": ["verify"],
        "purpose": "养老金停发核查",
        "days": "180",
    }
    form.update(overrides)
    return client.post("/exchange/request", data=form, headers=HTML, follow_redirects=False)


def test_the_catalogue_page_links_to_the_request_form(client: TestClient, deaths: str) -> None:
    page = sign_in(client, "rs_op").get(f"/catalogue/{deaths}", headers=HTML).text
    assert f'href="/exchange/request?resource={deaths}"' in page
    form = client.get(f"/exchange/request?resource={deaths}", headers=HTML)
    assert form.status_code == 200
    assert "有条件共享：提交后由提供单位在 10 个工作日内审批。" in text_of(form.text)


def test_a_request_from_the_form_waits_in_the_providers_inbox(
    client: TestClient, deaths: str, session_factory: sessionmaker[Session]
) -> None:
    r = _submit(sign_in(client, "rs_op"), deaths)
    assert r.status_code == 303  # type: ignore[attr-defined]
    location = r.headers["location"]  # type: ignore[attr-defined]
    assert location.endswith("?done=submitted")
    mine = text_of(client.get("/exchange", headers=HTML).text)
    assert "居民死亡医学证明" in mine
    assert "待审批" in mine
    inbox = text_of(sign_in(client, "wjw_admin").get("/exchange/inbox", headers=HTML).text)
    assert "剩 10 个工作日" in inbox


def test_a_bad_form_shows_what_to_fix_and_keeps_the_input(client: TestClient, deaths: str) -> None:
    r = _submit(sign_in(client, "rs_op"), deaths, items=[])
    assert r.status_code == 422  # type: ignore[attr-defined]
    page = r.text  # type: ignore[attr-defined]
    assert "name at least one data item" in text_of(page)
    assert "养老金停发核查" in page


def test_overdue_requests_are_red_in_the_inbox(
    client: TestClient, deaths: str, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        data = RequestIn.model_validate(
            {
                "resource_code": deaths,
                "consumer_org_code": "RS",
                "items": ["id_number"],
                "purpose": "核查",
                "modes": ["verify"],
            }
        )
        long_ago = dt.datetime(2020, 1, 6, 2, tzinfo=dt.UTC)
        service.submit_request(s, actor=ROOT, data=data, now=long_ago)
        s.commit()
    page = sign_in(client, "wjw_admin").get("/exchange/inbox", headers=HTML).text
    assert 'class="ex-overdue"' in page
    assert "已逾期" in text_of(page)


def test_the_provider_approves_then_revokes_from_the_pages(
    client: TestClient, deaths: str, session_factory: sessionmaker[Session]
) -> None:
    location = _submit(sign_in(client, "rs_op"), deaths).headers["location"]  # type: ignore[attr-defined]
    request_id = int(location.split("/")[-1].split("?")[0])
    sign_in(client, "wjw_admin")
    page = client.get(f"/exchange/requests/{request_id}", headers=HTML).text
    assert 'data-testid="decide"' in page
    r = client.post(
        f"/exchange/requests/{request_id}/approve",
        data={"items": ["id_number"], "modes": ["verify"], "days": "90", "unmasked": []},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_factory() as s:
        req = repository.request_by_id(s, request_id)
        assert req is not None
        assert req.status is RequestStatus.APPROVED
        grant = repository.grant_of_request(s, request_id)
        assert grant is not None
        assert grant.items == ["id_number"]
        grant_id = grant.id
    grant_page = text_of(client.get(f"/exchange/grants/{grant_id}", headers=HTML).text)
    assert "有效" in grant_page
    r = client.post(
        f"/exchange/grants/{grant_id}/revoke",
        data={"reason": "超范围使用"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    revoked = text_of(client.get(f"/exchange/grants/{grant_id}", headers=HTML).text)
    assert "已撤销" in revoked
    assert "超范围使用" in revoked


def test_refusing_without_a_reason_is_an_error_page(client: TestClient, deaths: str) -> None:
    location = _submit(sign_in(client, "rs_op"), deaths).headers["location"]  # type: ignore[attr-defined]
    request_id = location.split("/")[-1].split("?")[0]
    r = sign_in(client, "wjw_admin").post(
        f"/exchange/requests/{request_id}/refuse", data={"reason": " "}, headers=HTML
    )
    assert r.status_code == 422
    assert "give a reason" in r.text


def test_pages_speak_english_too(client: TestClient, deaths: str) -> None:
    sign_in(client, "rs_op")
    client.cookies.set("haihe_lang", "en")
    page = text_of(client.get("/exchange", headers=HTML).text)
    assert "Access requests" in page
    assert "My requests" in page
