"""Credentials — 凭证: API clients, bearer tokens, console sessions, who a request is from."""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import time
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from haihe.core.auth import Principal, Role
from haihe.core.db import on_rollback, utcnow
from haihe.core.errors import Forbidden, InvalidInput, NotAuthenticated, NotFound
from haihe.core.security import digest, hash_password, new_token, same_digest, verify_password
from haihe.core.settings import Settings
from haihe.orgs import repository as repo
from haihe.orgs.models import ApiClient, AuthToken, Organisation, TokenKind, User, UserRole
from haihe.orgs.schemas import ClientCreate, ClientUpdate
from haihe.orgs.service import get_org, get_system, require_admin_of

SESSION_COOKIE = "haihe_session"
MAX_FAILED_LOGINS = 10
LOCKOUT = dt.timedelta(minutes=15)
WRONG_CREDENTIALS = "wrong username or password"


@functools.cache
def _dummy_hash() -> str:
    """A real hash to check unknown users against, so their timing matches a wrong password's."""
    return hash_password(secrets.token_hex(16))


# ---------------------------------------------------------------- API clients


def get_client(session: Session, *, client_id: str) -> ApiClient:
    client = repo.client_by_client_id(session, client_id)
    if client is None:
        raise NotFound(f"API client {client_id!r} does not exist")
    return client


def create_client(
    session: Session, *, actor: Principal, data: ClientCreate
) -> tuple[ApiClient, str]:
    """A new API client of an organisation and its secret (returned once, stored as a hash)."""
    org = get_org(session, code=data.org_code)
    require_admin_of(actor, org.id)
    system = (
        get_system(session, org_code=org.code, code=data.system_code) if data.system_code else None
    )
    secret = new_token("hh_cs")
    client = ApiClient(
        client_id=new_token("hh_ci", 12),
        name=data.name,
        secret_hash=digest(secret),
        org_id=org.id,
        org=org,
        system_id=system.id if system else None,
        system=system,
        active=True,
    )
    session.add(client)
    session.flush()
    return client, secret


def rotate_client_secret(
    session: Session, *, actor: Principal, client_id: str
) -> tuple[ApiClient, str]:
    """The client with a new secret; the old secret and its tokens stop working at once."""
    client = get_client(session, client_id=client_id)
    require_admin_of(actor, client.org_id)
    secret = new_token("hh_cs")
    client.secret_hash = digest(secret)
    repo.revoke_tokens(session, client_id=client.id, now=utcnow())
    session.flush()
    return client, secret


def update_client(
    session: Session, *, actor: Principal, client_id: str, data: ClientUpdate
) -> ApiClient:
    client = get_client(session, client_id=client_id)
    require_admin_of(actor, client.org_id)
    if data.name is not None:
        client.name = data.name
    if data.active is not None:
        client.active = data.active
        if not data.active:
            repo.revoke_tokens(session, client_id=client.id, now=utcnow())
    session.flush()
    return client


def list_clients(
    session: Session,
    *,
    actor: Principal,
    org_code: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[Sequence[ApiClient], int]:
    """Clients the actor may see: all for the platform admin and auditors, else its own org's."""
    org_id = get_org(session, code=org_code).id if org_code else None
    if not (actor.is_platform_admin or actor.has(Role.AUDITOR)):
        if not actor.has(Role.ORG_ADMIN) or actor.org_id is None:
            raise Forbidden("listing API clients needs the org_admin role")
        if org_id is not None and org_id != actor.org_id:
            raise Forbidden("an org admin sees only its own organisation's clients")
        org_id = actor.org_id
    return repo.list_clients(session, org_id=org_id, limit=limit, offset=offset)


# ---------------------------------------------------------------- tokens and sign-in


def issue_client_token(
    session: Session, *, settings: Settings, client_id: str, client_secret: str
) -> tuple[str, int]:
    """A bearer token for an API client (OAuth2 client credentials) and its lifetime in seconds."""
    client = repo.client_by_client_id(session, client_id)
    if client is None or not same_digest(client.secret_hash, client_secret):
        raise NotAuthenticated("invalid client_id or client_secret")
    if not client.active or not client.org.active:
        raise NotAuthenticated("this API client is disabled")
    client.last_used_at = utcnow()
    ttl = settings.token_ttl_seconds
    return _issue(session, kind=TokenKind.API, client=client, ttl=ttl), ttl


def issue_user_token(
    session: Session, *, settings: Settings, username: str, password: str
) -> tuple[str, int]:
    """A bearer token for a user (OAuth2 password grant) and its lifetime in seconds."""
    user = check_password(session, username=username, password=password)
    ttl = settings.token_ttl_seconds
    return _issue(session, kind=TokenKind.API, user=user, ttl=ttl), ttl


def login(
    session: Session, *, settings: Settings, username: str, password: str
) -> tuple[User, str]:
    """The user and a new console session token, after checking the password."""
    user = check_password(session, username=username, password=password)
    token = _issue(session, kind=TokenKind.SESSION, user=user, ttl=settings.session_ttl_seconds)
    return user, token


def check_password(session: Session, *, username: str, password: str) -> User:
    """The active user whose password this is; counts failures and locks after too many."""
    now = utcnow()
    user = repo.user_by_username(session, username.strip())
    if user is None:
        verify_password(_dummy_hash(), password)
        raise NotAuthenticated(WRONG_CREDENTIALS)
    if user.locked_until is not None and user.locked_until > now:
        raise NotAuthenticated(
            "too many failed sign-ins; try again after "
            f"{user.locked_until:%H:%M} UTC or ask an administrator to reset the password"
        )
    if not verify_password(user.password_hash, password):
        on_rollback(session, functools.partial(_count_failure, user_id=user.id, now=now))
        raise NotAuthenticated(WRONG_CREDENTIALS)
    if not user.active:
        raise NotAuthenticated("this account is disabled")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def _count_failure(session: Session, *, user_id: int, now: dt.datetime) -> None:
    """Count a failed sign-in (run after the request rolled back); lock after too many."""
    user = session.get(User, user_id)
    if user is None:
        return
    user.failed_logins += 1
    if user.failed_logins >= MAX_FAILED_LOGINS:
        user.locked_until = now + LOCKOUT
        user.failed_logins = 0


def revoke(session: Session, *, token: str) -> None:
    """Revoke a token or session (sign-out); unknown tokens are ignored."""
    row = repo.token_by_hash(session, digest(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()


def _issue(
    session: Session,
    *,
    kind: TokenKind,
    ttl: int,
    user: User | None = None,
    client: ApiClient | None = None,
) -> str:
    token = new_token("hh_ss" if kind is TokenKind.SESSION else "hh_at")
    now = utcnow()
    session.add(
        AuthToken(
            token_hash=digest(token),
            kind=kind,
            user_id=user.id if user else None,
            client_id=client.id if client else None,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=ttl),
        )
    )
    session.flush()
    return token


# Principals of recent tokens, per process: the gateway would otherwise spend most of a call
# finding its caller. Any change to users, roles, clients, organisations or tokens made through
# this process clears it (``_forget_on_change``); other processes see a change within
# ``Settings.auth_cache_seconds``.
_PRINCIPALS: dict[tuple[str, TokenKind], tuple[float, Principal]] = {}
_PRINCIPALS_MAX = 10_000


def principal_for_token(
    session: Session, token: str, *, kind: TokenKind, cache_seconds: float = 0
) -> Principal | None:
    """The principal a live token of ``kind`` stands for, or None.

    With ``cache_seconds``, a found principal is kept that long in this process (never past
    the token's expiry).
    """
    key = (digest(token), kind)
    if cache_seconds > 0:
        hit = _PRINCIPALS.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    now = utcnow()
    row = repo.live_token(session, key[0], now)
    if row is None or row.kind is not kind:
        return None
    principal = _principal_of_token(row)
    if principal is not None and cache_seconds > 0:
        left = (row.expires_at - now).total_seconds()
        if len(_PRINCIPALS) >= _PRINCIPALS_MAX:
            _PRINCIPALS.clear()
        _PRINCIPALS[key] = (time.monotonic() + min(cache_seconds, left), principal)
    return principal


def _principal_of_token(row: AuthToken) -> Principal | None:
    if row.user is not None:
        return principal_of_user(row.user)
    client = row.client
    if client is None or not client.active or not client.org.active:
        return None
    return Principal(
        kind="client",
        id=client.id,
        name=client.client_id,
        org_id=client.org_id,
        org_code=client.org.code,
        roles=frozenset(),
        system_id=client.system_id,
    )


_WHO = (User, UserRole, ApiClient, AuthToken, Organisation)


@event.listens_for(Session, "after_flush")
def _forget_on_change(session: Session, _context: Any) -> None:
    """Clear the principal cache when this process changes anything a principal derives from."""
    if _PRINCIPALS and any(
        isinstance(obj, _WHO) for obj in (*session.new, *session.dirty, *session.deleted)
    ):
        _PRINCIPALS.clear()


@event.listens_for(Session, "do_orm_execute")
def _forget_on_bulk_change(state: ORMExecuteState) -> None:
    """The same for UPDATE and DELETE statements (revoking every token of a user, say)."""
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        if issubclass(state.bind_mapper.class_, _WHO):
            _PRINCIPALS.clear()


def principal_of_user(user: User) -> Principal | None:
    if not user.active:
        return None
    return Principal(
        kind="user",
        id=user.id,
        name=user.username,
        org_id=user.org_id,
        org_code=user.org.code if user.org else None,
        roles=user.roles,
        language=user.language,
        subject=user.subject_token,
    )


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def authenticate(request: Request, session: Session) -> Principal | None:
    """The caller of ``request``: a bearer token, else a console session cookie, else None.

    Cookie-authenticated writes must come from the same origin (the cookie is SameSite=Lax too),
    so another site cannot make a signed-in browser change anything.
    """
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("the Authorization header must be 'Bearer TOKEN'")
        principal = principal_for_token(
            session, token.strip(), kind=TokenKind.API, cache_seconds=_cache_seconds(request)
        )
        if principal is None:
            raise NotAuthenticated("the bearer token is invalid, expired or revoked")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    principal = principal_for_token(
        session, cookie, kind=TokenKind.SESSION, cache_seconds=_cache_seconds(request)
    )
    if principal is not None and request.method in UNSAFE_METHODS:
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") != str(request.base_url).rstrip("/"):
            raise Forbidden("cross-site request refused")
    return principal


def _cache_seconds(request: Request) -> float:
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings.auth_cache_seconds if settings is not None else 0


def require_token_grant(grant_type: str) -> None:
    if grant_type not in ("client_credentials", "password"):
        raise InvalidInput(
            f"unsupported grant_type {grant_type!r}; use client_credentials or password"
        )
