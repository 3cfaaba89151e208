"""REST routes of the members domain: /api/v1/auth, /orgs, /users, /clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Response

from haihe.core.auth import Role
from haihe.core.errors import Forbidden
from haihe.core.web import AppSettings, CurrentPrincipal, DbSession
from haihe.orgs import auth, service
from haihe.orgs.models import OrgKind
from haihe.orgs.schemas import (
    ClientCreate,
    ClientOut,
    ClientUpdate,
    ClientWithSecret,
    OrgCreate,
    OrgOut,
    OrgUpdate,
    Page,
    PasswordChange,
    SystemCreate,
    SystemOut,
    SystemUpdate,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
    WhoAmI,
    client_out,
    org_out,
    system_out,
    user_out,
)

router = APIRouter(prefix="/api/v1")
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (at most 1000).")]
Offset = Annotated[int, Query(ge=0, description="Items to skip.")]


# ---------------------------------------------------------------- auth


@router.post("/auth/token", tags=["auth"], summary="Get a bearer token (OAuth2)")
def token(
    session: DbSession,
    settings: AppSettings,
    grant_type: Annotated[str, Form(description="client_credentials or password")],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
) -> TokenOut:
    """A bearer token for an API client (client_credentials) or a user (password)."""
    auth.require_token_grant(grant_type)
    if grant_type == "client_credentials":
        value, ttl = auth.issue_client_token(
            session, settings=settings, client_id=client_id or "", client_secret=client_secret or ""
        )
    else:
        value, ttl = auth.issue_user_token(
            session, settings=settings, username=username or "", password=password or ""
        )
    return TokenOut(access_token=value, expires_in=ttl)


@router.post("/auth/revoke", tags=["auth"], status_code=204, summary="Revoke a token")
def revoke_token(
    session: DbSession, principal: CurrentPrincipal, token: Annotated[str, Form()]
) -> Response:
    """Revoke one of the caller's own tokens (sign out a script)."""
    auth.revoke(session, token=token)
    return Response(status_code=204)


@router.get("/auth/whoami", tags=["auth"])
def whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI(
        kind=principal.kind,
        name=principal.name,
        org_code=principal.org_code,
        roles=sorted(principal.roles),
        system_id=principal.system_id,
    )


# ---------------------------------------------------------------- organisations


@router.get("/orgs", tags=["orgs"])
def list_orgs(
    session: DbSession,
    principal: CurrentPrincipal,
    kind: OrgKind | None = None,
    parent: str | None = Query(None, description="Only direct children of this org code."),
    q: str | None = Query(None, description="Part of a code or a Chinese or English name."),
    active: bool | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[OrgOut]:
    """The member directory, visible to every signed-in caller."""
    rows, total = service.list_orgs(
        session, kind=kind, parent_code=parent, q=q, active=active, limit=limit, offset=offset
    )
    return Page(items=[org_out(o) for o in rows], total=total, limit=limit, offset=offset)


@router.post("/orgs", tags=["orgs"], status_code=201)
def create_org(session: DbSession, principal: CurrentPrincipal, body: OrgCreate) -> OrgOut:
    return org_out(service.create_org(session, actor=principal, data=body))


@router.get("/orgs/{code}", tags=["orgs"])
def get_org(session: DbSession, principal: CurrentPrincipal, code: str) -> OrgOut:
    return org_out(service.get_org(session, code=code))


@router.patch("/orgs/{code}", tags=["orgs"])
def update_org(
    session: DbSession, principal: CurrentPrincipal, code: str, body: OrgUpdate
) -> OrgOut:
    return org_out(service.update_org(session, actor=principal, code=code, data=body))


@router.get("/orgs/{code}/systems", tags=["orgs"])
def list_systems(session: DbSession, principal: CurrentPrincipal, code: str) -> list[SystemOut]:
    return [system_out(s) for s in service.list_systems(session, org_code=code)]


@router.post("/orgs/{code}/systems", tags=["orgs"], status_code=201)
def create_system(
    session: DbSession, principal: CurrentPrincipal, code: str, body: SystemCreate
) -> SystemOut:
    system = service.create_system(session, actor=principal, org_code=code, data=body)
    return system_out(system)


@router.patch("/orgs/{code}/systems/{system_code}", tags=["orgs"])
def update_system(
    session: DbSession,
    principal: CurrentPrincipal,
    code: str,
    system_code: str,
    body: SystemUpdate,
) -> SystemOut:
    system = service.update_system(
        session, actor=principal, org_code=code, code=system_code, data=body
    )
    return system_out(system)


# ---------------------------------------------------------------- users


@router.get("/users", tags=["users"])
def list_users(
    session: DbSession,
    principal: CurrentPrincipal,
    org: str | None = Query(None, description="Only users of this org code."),
    q: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[UserOut]:
    rows, total = service.list_users(
        session, actor=principal, org_code=org, q=q, limit=limit, offset=offset
    )
    return Page(items=[user_out(u) for u in rows], total=total, limit=limit, offset=offset)


@router.post("/users", tags=["users"], status_code=201)
def create_user(session: DbSession, principal: CurrentPrincipal, body: UserCreate) -> UserOut:
    return user_out(service.create_user(session, actor=principal, data=body))


@router.get("/users/me", tags=["users"])
def me(session: DbSession, principal: CurrentPrincipal) -> UserOut:
    if principal.kind != "user":
        raise Forbidden("an API client is not a user; see /api/v1/auth/whoami")
    return user_out(service.get_user(session, username=principal.name))


@router.post("/users/me/password", tags=["users"], status_code=204)
def change_password(
    session: DbSession, principal: CurrentPrincipal, body: PasswordChange
) -> Response:
    service.change_own_password(
        session,
        actor=principal,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return Response(status_code=204)


@router.get("/users/{username}", tags=["users"])
def get_user(session: DbSession, principal: CurrentPrincipal, username: str) -> UserOut:
    user = service.get_user(session, username=username)
    if not service.can_see_user(principal, user):
        raise Forbidden("you may see only yourself and the users you administer")
    return user_out(user)


@router.patch("/users/{username}", tags=["users"])
def update_user(
    session: DbSession, principal: CurrentPrincipal, username: str, body: UserUpdate
) -> UserOut:
    return user_out(service.update_user(session, actor=principal, username=username, data=body))


# ---------------------------------------------------------------- API clients


@router.get("/clients", tags=["clients"])
def list_clients(
    session: DbSession,
    principal: CurrentPrincipal,
    org: str | None = Query(None, description="Only clients of this org code."),
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[ClientOut]:
    rows, total = auth.list_clients(
        session, actor=principal, org_code=org, limit=limit, offset=offset
    )
    return Page(items=[client_out(c) for c in rows], total=total, limit=limit, offset=offset)


@router.post("/clients", tags=["clients"], status_code=201)
def create_client(
    session: DbSession, principal: CurrentPrincipal, body: ClientCreate
) -> ClientWithSecret:
    """A new API client; the secret is in this response only."""
    client, secret = auth.create_client(session, actor=principal, data=body)
    return ClientWithSecret(**client_out(client).model_dump(), client_secret=secret)


@router.get("/clients/{client_id}", tags=["clients"])
def get_client(session: DbSession, principal: CurrentPrincipal, client_id: str) -> ClientOut:
    client = auth.get_client(session, client_id=client_id)
    if not (principal.has(Role.AUDITOR) or principal.admin_of(client.org_id)):
        raise Forbidden("only the platform admin, auditors or its org's admin may see a client")
    return client_out(client)


@router.patch("/clients/{client_id}", tags=["clients"])
def update_client(
    session: DbSession, principal: CurrentPrincipal, client_id: str, body: ClientUpdate
) -> ClientOut:
    client = auth.update_client(session, actor=principal, client_id=client_id, data=body)
    return client_out(client)


@router.post("/clients/{client_id}/rotate-secret", tags=["clients"])
def rotate_secret(
    session: DbSession, principal: CurrentPrincipal, client_id: str
) -> ClientWithSecret:
    """A new secret for the client; the old one and its tokens stop working at once."""
    client, secret = auth.rotate_client_secret(session, actor=principal, client_id=client_id)
    return ClientWithSecret(**client_out(client).model_dump(), client_secret=secret)
