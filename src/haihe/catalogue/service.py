"""The catalogue — 政务信息资源目录: describing entries, who may change them, and their history.

An organisation's admin describes its own entries (drafts); the platform admin publishes and
retires them. Every change is kept with who, when, and the entry before and after.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.catalogue import repository as repo
from haihe.catalogue.models import (
    DataItem,
    ItemKind,
    OpenType,
    Resource,
    ResourceChange,
    ResourceStatus,
    Sensitivity,
    SharingType,
)
from haihe.catalogue.schemas import ItemIn, ResourceIn, ResourceOut, ResourceUpdate, resource_out
from haihe.catalogue.search import search_document
from haihe.catalogue.topics import classification_code, resource_code
from haihe.core.auth import Principal, Role
from haihe.core.db import utcnow
from haihe.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from haihe.orgs import service as orgs
from haihe.orgs.models import Organisation

# Fields whose change alters the shape of loaded data: allowed only before the first load.
STRUCTURAL = ("name", "type", "is_key", "nullable")


def actor_label(actor: Principal) -> str:
    """How an actor is written in history: ``user:name``, ``client:id`` or ``system:name``."""
    return f"{actor.kind}:{actor.name}"


# ---------------------------------------------------------------- who may


def can_view(actor: Principal, resource: Resource) -> bool:
    """Published and retired entries are for every signed-in caller; drafts for their provider."""
    if resource.status is not ResourceStatus.DRAFT:
        return True
    return (
        actor.is_platform_admin
        or actor.has(Role.AUDITOR)
        or (actor.org_id is not None and actor.org_id == resource.provider_id)
    )


def can_edit(actor: Principal, resource: Resource) -> bool:
    return actor.admin_of(resource.provider_id)


def can_load(actor: Principal, resource: Resource) -> bool:
    """The provider's admins, operators and API clients load data; so does the platform admin."""
    if actor.is_platform_admin:
        return True
    if actor.org_id != resource.provider_id:
        return False
    return actor.kind == "client" or actor.has(Role.ORG_ADMIN, Role.OPERATOR)


# ---------------------------------------------------------------- reading


def get_resource(session: Session, *, actor: Principal, code: str) -> Resource:
    """The entry ``code``, if the actor may see it (a draft of another org reads as not found)."""
    resource = repo.resource_by_code(session, code)
    if resource is None or not can_view(actor, resource):
        raise NotFound(f"catalogue entry {code!r} does not exist")
    return resource


def describe(session: Session, resource: Resource) -> ResourceOut:
    provider = repo.provider_of(session, resource)
    return resource_out(
        resource,
        provider=(provider.code, provider.name_zh),
        related=repo.related_codes(session, resource.id),
    )


def history(session: Session, *, actor: Principal, code: str, limit: int = 100) -> list[Any]:
    resource = get_resource(session, actor=actor, code=code)
    return list(repo.changes_of(session, resource.id, limit=limit))


# ---------------------------------------------------------------- changing


def create_resource(session: Session, *, actor: Principal, data: ResourceIn) -> Resource:
    """A new draft entry with the next code in its classification."""
    provider = orgs.get_org(session, code=data.provider_code)
    if not actor.admin_of(provider.id):
        raise Forbidden("only the provider's admin or the platform admin may describe its data")
    _check_rules(data.sharing_type, data.sharing_conditions, data.legal_basis, data.sharing_modes)
    _check_open(data.open_type, data.open_conditions)
    _check_items(data.items)
    classification = classification_code(
        base_library=data.base_library, topic=data.topic, provider_code=provider.code
    )
    sequence = repo.next_sequence(session, classification)
    resource = _new_resource(
        data,
        provider_id=provider.id,
        code=resource_code(classification, sequence),
        status=ResourceStatus.DRAFT,
        published_on=None,
    )
    session.add(resource)
    session.flush()
    repo.set_related(session, resource, _related(session, data.related, resource))
    _index(session, resource, provider)
    _record(session, resource, actor, "create", before=None)
    return resource


def restore_resource(
    session: Session,
    *,
    actor: Principal,
    data: ResourceIn,
    code: str,
    status: ResourceStatus,
    published_on: dt.date | None,
) -> Resource:
    """An entry re-created with the code, status and date it had where it was exported.

    For moving a catalogue between installations (the platform admin's import); relations and
    history follow in ``finish_restore`` once every restored entry exists.
    """
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin may restore entries with their codes")
    if repo.resource_by_code(session, code) is not None:
        raise Conflict(f"catalogue entry {code} already exists")
    provider = orgs.get_org(session, code=data.provider_code)
    _check_rules(data.sharing_type, data.sharing_conditions, data.legal_basis, data.sharing_modes)
    _check_open(data.open_type, data.open_conditions)
    _check_items(data.items)
    classification, _, sequence = code.rpartition("-")
    if not classification or not sequence.isdigit():
        raise InvalidInput(f"{code!r} is not a catalogue code (classification-sequence)")
    resource = _new_resource(
        data, provider_id=provider.id, code=code, status=status, published_on=published_on
    )
    session.add(resource)
    session.flush()
    return resource


def finish_restore(
    session: Session, *, actor: Principal, resource: Resource, related: list[str]
) -> None:
    """Give a restored entry its relations, search text and a 'restore' history entry."""
    repo.set_related(session, resource, _related(session, related, resource))
    _index(session, resource, repo.provider_of(session, resource))
    _record(session, resource, actor, "restore", before=None)


def update_resource(
    session: Session, *, actor: Principal, code: str, data: ResourceUpdate
) -> Resource:
    """The entry after applying the given fields (the provider's admin or the platform admin)."""
    resource = get_resource(session, actor=actor, code=code)
    if not can_edit(actor, resource):
        raise Forbidden("only the provider's admin or the platform admin may edit this entry")
    if resource.status is ResourceStatus.RETIRED:
        raise Conflict(f"catalogue entry {code} is retired; it can no longer be changed")
    before = snapshot(session, resource)
    fields = data.model_dump(exclude_unset=True, exclude={"items", "related"}, mode="python")
    for name, value in fields.items():
        if name == "sharing_modes":
            value = [m.value for m in value or []]
        if value is None and name in ("name_zh", "summary_zh", "sharing_type", "open_type"):
            raise InvalidInput(f"{name} cannot be emptied")
        setattr(resource, name, value)
    _check_rules(
        resource.sharing_type,
        resource.sharing_conditions,
        resource.legal_basis,
        resource.sharing_modes,
    )
    _check_open(resource.open_type, resource.open_conditions)
    if data.items is not None:
        _check_items(data.items)
        _replace_items(resource, data.items)
    if data.related is not None:
        repo.set_related(session, resource, _related(session, data.related, resource))
    resource.updated_at = utcnow()
    session.flush()
    _index(session, resource, repo.provider_of(session, resource))
    _record(session, resource, actor, "update", before=before)
    return resource


def publish(session: Session, *, actor: Principal, code: str) -> Resource:
    """The entry, published (platform admin only): visible to every member from today."""
    return _move(session, actor, code, ResourceStatus.DRAFT, ResourceStatus.PUBLISHED)


def retire(session: Session, *, actor: Principal, code: str) -> Resource:
    """The entry, retired (platform admin only): kept for history, no longer offered."""
    return _move(session, actor, code, ResourceStatus.PUBLISHED, ResourceStatus.RETIRED)


def _move(
    session: Session,
    actor: Principal,
    code: str,
    source: ResourceStatus,
    target: ResourceStatus,
) -> Resource:
    resource = get_resource(session, actor=actor, code=code)
    if not actor.is_platform_admin:
        raise Forbidden(f"only the platform admin may make an entry {target.value}")
    if resource.status is not source:
        raise Conflict(
            f"catalogue entry {code} is {resource.status.value}; only a {source.value} entry "
            f"can become {target.value}"
        )
    before = snapshot(session, resource)
    resource.status = target
    if target is ResourceStatus.PUBLISHED:
        resource.published_on = dt.date.today()
    resource.updated_at = utcnow()
    session.flush()
    _record(session, resource, actor, target.value, before=before)
    return resource


def record_change(
    session: Session,
    *,
    resource: Resource,
    actor: Principal,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Keep one history entry (used by loads, which change versions rather than metadata) and
    record the change in the audit ledger as ``catalogue.<action>``."""
    session.add(
        ResourceChange(
            resource_id=resource.id,
            action=action,
            actor=actor_label(actor),
            at=utcnow(),
            before=before,
            after=after,
        )
    )
    provider = repo.provider_of(session, resource)
    audit.record(
        session,
        actor=actor,
        action=f"catalogue.{action}",
        resource_code=resource.code,
        provider_code=provider.code,
    )


# ---------------------------------------------------------------- rules


def _check_rules(
    sharing: SharingType, conditions: str | None, basis: str | None, modes: list[Any]
) -> None:
    if sharing is SharingType.CONDITIONAL and not (conditions and basis):
        raise InvalidInput(
            "a conditionally shared entry (有条件共享) needs sharing_conditions and legal_basis"
        )
    if sharing is SharingType.NOT_SHARED and not basis:
        raise InvalidInput("an entry that is not shared (不予共享) needs the legal_basis for it")
    if sharing is not SharingType.NOT_SHARED and not modes:
        raise InvalidInput("a shared entry needs at least one sharing mode")


def _check_open(open_type: OpenType, conditions: str | None) -> None:
    if open_type is OpenType.CONDITIONAL and not conditions:
        raise InvalidInput("a conditionally open entry (有条件开放) needs open_conditions")


def _check_items(items: list[ItemIn]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise InvalidInput(f"data item {item.name!r} appears twice")
        seen.add(item.name)
        if item.kind is ItemKind.ID_NUMBER and item.type != "string":
            raise InvalidInput(f"data item {item.name!r} holds ID numbers, so its type is string")
        if item.personal and item.sensitivity is Sensitivity.L1:
            raise InvalidInput(
                f"data item {item.name!r} is personal information, so its sensitivity is L2-L4"
            )
        if item.is_key and item.nullable:
            raise InvalidInput(f"data item {item.name!r} is a key, so it cannot be nullable")


def _new_resource(
    data: ResourceIn,
    *,
    provider_id: int,
    code: str,
    status: ResourceStatus,
    published_on: dt.date | None,
) -> Resource:
    """An unsaved entry with ``code`` (classification-sequence) and the described fields."""
    classification, _, sequence = code.rpartition("-")
    now = utcnow()
    return Resource(
        code=code,
        classification_code=classification,
        sequence=int(sequence),
        provider_id=provider_id,
        status=status,
        published_on=published_on,
        created_at=now,
        updated_at=now,
        **data.model_dump(
            exclude={"provider_code", "items", "related", "sharing_modes"}, mode="python"
        ),
        sharing_modes=[m.value for m in data.sharing_modes],
        items=[_item(i, n) for n, i in enumerate(data.items)],
    )


def _item(data: ItemIn, position: int) -> DataItem:
    return DataItem(position=position, **data.model_dump(mode="python"))


def _replace_items(resource: Resource, items: list[ItemIn]) -> None:
    if resource.current_version is not None:
        old = [tuple(getattr(i, f) for f in STRUCTURAL) for i in resource.items]
        new = [tuple(getattr(i, f) for f in STRUCTURAL) for i in items]
        if old != new:
            raise Conflict(
                f"catalogue entry {resource.code} already holds data: its items' names, types, "
                "keys and nullability stay as loaded (describe a new entry for a new structure)"
            )
    by_name = {i.name: i for i in resource.items}
    kept: list[DataItem] = []
    for position, data in enumerate(items):
        item = by_name.get(data.name) or DataItem(name=data.name)
        for field, value in data.model_dump(mode="python").items():
            setattr(item, field, value)
        item.position = position
        kept.append(item)
    resource.items = kept


def _related(session: Session, codes: list[str], resource: Resource) -> list[Resource]:
    found = {r.code: r for r in repo.resources_by_codes(session, codes)}
    missing = sorted(set(codes) - set(found))
    if missing:
        raise InvalidInput(f"related entry {missing[0]!r} does not exist")
    if resource.code in found:
        raise InvalidInput("an entry cannot be related to itself")
    return [found[c] for c in codes]


def _index(session: Session, resource: Resource, provider: Organisation) -> None:
    resource.search_text = search_document(resource, provider)


def snapshot(session: Session, resource: Resource) -> dict[str, Any]:
    """The entry as plain JSON values, for history."""
    return describe(session, resource).model_dump(mode="json", exclude={"created_at", "updated_at"})


def _record(
    session: Session, resource: Resource, actor: Principal, action: str, *, before: Any
) -> None:
    session.flush()
    record_change(
        session,
        resource=resource,
        actor=actor,
        action=action,
        before=before,
        after=snapshot(session, resource),
    )
