"""FastAPI plumbing shared by every domain's routes: the session dependency and the caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from haihe.core.auth import Principal, Role
from haihe.core.db import transaction
from haihe.core.errors import Forbidden, NotAuthenticated
from haihe.core.settings import Settings


class Authenticator(Protocol):
    def __call__(self, request: Request, session: Session) -> Principal | None: ...


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """The request's session; the edge commits when the route returns and rolls back on error.

    Function-scoped (below): the commit happens before the response is sent, so a client that
    follows a redirect reads what it just wrote, and a failed commit is an error, not a 2xx.
    """
    with transaction(request.app.state.session_factory) as session:
        yield session


DbSession = Annotated[Session, Depends(get_session, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]


def get_optional_principal(request: Request, session: DbSession) -> Principal | None:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator(request, session)
    request.state.principal = principal
    return principal


def get_principal(
    principal: Annotated[Principal | None, Depends(get_optional_principal)],
) -> Principal:
    if principal is None:
        raise NotAuthenticated(
            "sign in or send 'Authorization: Bearer TOKEN' (get one from POST /api/v1/auth/token)"
        )
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting principals that hold any of ``roles``."""
    names = ", ".join(r.value for r in roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has(*roles):
            raise Forbidden(f"this needs one of the roles: {names}")
        return principal

    return check
