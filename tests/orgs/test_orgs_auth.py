"""Credentials: tokens expire and can be revoked, secrets are only hashes, sign-in is guarded."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from factories import PASSWORD, make_client, make_org, make_user
from haihe.core.auth import Role
from haihe.orgs.auth import MAX_FAILED_LOGINS
from haihe.orgs.models import ApiClient, AuthToken, User

WHOAMI = "/api/v1/auth/whoami"


def _token(client: TestClient, **form: str) -> str:
    r = client.post("/api/v1/auth/token", data=form)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    return str(body["access_token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_client_credentials_token_acts_for_org_and_system(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        org = make_org(s, code="GA")
        api_client, secret = make_client(s, org)
        s.commit()
        cid = api_client.client_id
    token = _token(client, grant_type="client_credentials", client_id=cid, client_secret=secret)
    me = client.get(WHOAMI, headers=_bearer(token)).json()
    assert me == {"kind": "client", "name": cid, "org_code": "GA", "roles": [], "system_id": None}


def test_secrets_and_tokens_are_stored_only_as_hashes(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        org = make_org(s, code="GA")
        api_client, secret = make_client(s, org)
        make_user(s, Role.OPERATOR, org=org, username="op")
        s.commit()
        cid = api_client.client_id
    token = _token(client, grant_type="client_credentials", client_id=cid, client_secret=secret)
    with session_factory() as s:
        dump = " ".join(
            str(row)
            for table in ("api_clients", "auth_tokens", "users")
            for row in s.execute(text(f"SELECT * FROM {table}"))
        )
    assert secret not in dump
    assert token not in dump
    assert PASSWORD not in dump
    assert "$argon2id$" in dump


def test_wrong_credentials_are_401_with_the_error_shape(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        make_user(s, Role.RESIDENT, username="li")
        s.commit()
    for form in (
        {"grant_type": "password", "username": "li", "password": "wrong password"},
        {"grant_type": "password", "username": "nobody", "password": PASSWORD},
        {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    ):
        r = client.post("/api/v1/auth/token", data=form)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "not_authenticated"
    r = client.post("/api/v1/auth/token", data={"grant_type": "implicit"})
    assert r.status_code == 422
    assert "unsupported grant_type 'implicit'" in r.json()["error"]["message"]
    # the same message for an unknown user and a wrong password: no user enumeration
    a = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "li", "password": "nope nope"},
    )
    b = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "zz", "password": "nope nope"},
    )
    assert a.json()["error"]["message"] == b.json()["error"]["message"]


def test_lockout_after_repeated_failures_then_reset(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        make_user(s, Role.RESIDENT, username="li")
        s.commit()
    for _ in range(MAX_FAILED_LOGINS):
        client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "li", "password": "bad guess"},
        )
    r = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "li", "password": PASSWORD},
    )
    assert r.status_code == 401
    assert "too many failed sign-ins" in r.json()["error"]["message"]


def test_expired_and_revoked_tokens_stop_working(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        make_user(s, Role.RESIDENT, username="li")
        s.commit()
    form = {"grant_type": "password", "username": "li", "password": PASSWORD}
    expiring, revoked = _token(client, **form), _token(client, **form)
    assert client.get(WHOAMI, headers=_bearer(expiring)).status_code == 200
    with session_factory() as s:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        first = s.scalars(select(AuthToken).order_by(AuthToken.id)).first()
        assert first is not None
        first.expires_at = past
        s.commit()
    r = client.get(WHOAMI, headers=_bearer(expiring))
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]
    assert r.headers["www-authenticate"] == "Bearer"
    assert (
        client.post(
            "/api/v1/auth/revoke", data={"token": revoked}, headers=_bearer(revoked)
        ).status_code
        == 204
    )
    assert client.get(WHOAMI, headers=_bearer(revoked)).status_code == 401


def test_password_change_signs_out_other_tokens(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        make_user(s, Role.RESIDENT, username="li")
        s.commit()
    token = _token(client, grant_type="password", username="li", password=PASSWORD)
    r = client.post(
        "/api/v1/users/me/password",
        json={"current_password": "not it at all", "new_password": "a new secret"},
        headers=_bearer(token),
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "the current password is wrong"
    r = client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a new secret"},
        headers=_bearer(token),
    )
    assert r.status_code == 204
    assert client.get(WHOAMI, headers=_bearer(token)).status_code == 401
    _token(client, grant_type="password", username="li", password="a new secret")


def test_rotated_or_disabled_client_loses_access(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        org = make_org(s, code="GA")
        api_client, secret = make_client(s, org)
        make_user(s, Role.ORG_ADMIN, org=org, username="adm")
        s.commit()
        cid = api_client.client_id
    admin = _bearer(_token(client, grant_type="password", username="adm", password=PASSWORD))
    old = _token(client, grant_type="client_credentials", client_id=cid, client_secret=secret)
    rotated = client.post(f"/api/v1/clients/{cid}/rotate-secret", headers=admin).json()
    assert client.get(WHOAMI, headers=_bearer(old)).status_code == 401
    r = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert r.status_code == 401
    new = _token(
        client,
        grant_type="client_credentials",
        client_id=cid,
        client_secret=rotated["client_secret"],
    )
    assert (
        client.patch(f"/api/v1/clients/{cid}", json={"active": False}, headers=admin).status_code
        == 200
    )
    assert client.get(WHOAMI, headers=_bearer(new)).status_code == 401
    with session_factory() as s:
        row = s.scalars(select(ApiClient).where(ApiClient.client_id == cid)).one()
        assert row.active is False


def test_malformed_authorization_header(client: TestClient) -> None:
    r = client.get(WHOAMI, headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "the Authorization header must be 'Bearer TOKEN'"
    assert client.get(WHOAMI).status_code == 401


def test_disabled_user_cannot_sign_in(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as s:
        make_user(s, Role.RESIDENT, username="li")
        s.commit()
        user = s.scalars(select(User).where(User.username == "li")).one()
        user.active = False
        s.commit()
    r = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "li", "password": PASSWORD},
    )
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "this account is disabled"
