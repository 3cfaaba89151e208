"""Open311 API keys — 接口密钥: each key stands for one orgs API client (the 12345 hotline's
system, a sensor platform, another Haihe platform) and the event source it reports as.

A city issues a key with ``haihe governance open311-keys create --client CLIENT_ID``; the key
is shown once and only its SHA-256 is kept. Events posted with the key are reported by that
client, so the client's organisation sees them and the ledger names it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.core.auth import Principal
from haihe.core.db import utcnow
from haihe.core.errors import Forbidden
from haihe.core.security import digest, new_token
from haihe.governance import repository as repo
from haihe.governance.models import EventSource, Open311Key
from haihe.governance.schemas import Open311KeyIn, Open311KeyOut
from haihe.orgs import auth as orgs_auth


def create_key(session: Session, *, actor: Principal, data: Open311KeyIn) -> tuple[Open311Key, str]:
    """A new key for the API client ``data.client_id``; the key itself is returned once."""
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin issues Open311 keys")
    client = orgs_auth.get_client(session, client_id=data.client_id)
    secret = new_token("o311", 24)
    row = Open311Key(
        key_hash=digest(secret),
        prefix=secret[:10],
        client_id=client.id,
        source=data.source,
        name=data.name,
        active=True,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="governance.open311.key_create",
        detail={"key_id": row.id, "client": client.client_id, "source": data.source.value},
    )
    return row, secret


def list_keys(session: Session, *, actor: Principal) -> Sequence[Open311Key]:
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin sees Open311 keys")
    return repo.open311_keys(session)


def describe(session: Session, key: Open311Key) -> Open311KeyOut:
    client = repo.api_client(session, key.client_id)
    return Open311KeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        client_id=client.client_id if client else "?",
        source=key.source,
        active=key.active,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
    )


def principal_for_key(session: Session, api_key: str) -> tuple[Principal, EventSource] | None:
    """The API client a key stands for and its source, or None for an unknown or dead key."""
    row = repo.open311_key(session, digest(api_key))
    if row is None or not row.active:
        return None
    client = repo.api_client(session, row.client_id)
    if client is None or not client.active or not client.org.active:
        return None
    repo.touch_open311_key(session, row.id, utcnow())
    principal = Principal(
        kind="client",
        id=client.id,
        name=client.client_id,
        org_id=client.org_id,
        org_code=client.org.code,
        system_id=client.system_id,
    )
    return principal, row.source
