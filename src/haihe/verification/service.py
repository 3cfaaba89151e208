"""Verification's logic: source bindings, grants, verdicts and the audit of every check.

A rule reads its sources by role; which catalogue entry plays each role here is a binding the
platform admin sets (``SourceBinding`` — catalogue codes differ between cities). Before a rule
runs, ``prepare`` resolves each role it reads to the entry's current version and the caller's
*verify* grant on it (共享授权, mode verify, naming the items the rule needs); a missing grant
refuses the whole check (403 naming every missing grant), recorded in the ledger even though
the request rolls back. Answers carry verdicts, reason codes and the versions consulted — never
rows. Services flush, never commit.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from haihe.audit import service as audit
from haihe.catalogue import repository as catalogue_repo
from haihe.catalogue.models import ItemKind, Resource, SharingMode
from haihe.core.auth import Principal, Role
from haihe.core.db import on_rollback, utcnow
from haihe.core.errors import Conflict, Forbidden, HaiheError, InvalidInput, NotFound
from haihe.exchange import service as exchange
from haihe.orgs.models import Organisation
from haihe.verification import repository
from haihe.verification.matching import MATCH_ITEMS
from haihe.verification.models import SourceBinding
from haihe.verification.rules import Check, Rule, all_roles, registry

YES, NO, UNKNOWN = "yes", "no", "unknown"
OWN_DATA = "本单位自有数据"  # the purpose recorded when a consumer checks against its own entry
IDENTITY_ROLE = "household"  # the register identity matching links subjects to
VERDICTS = (YES, NO, UNKNOWN)
MODE = SharingMode.VERIFY.value


@dataclass(frozen=True)
class BoundSource:
    """A source role resolved for one run: its entry, current version and the grant used."""

    role: str
    code: str
    provider_code: str | None
    version: int
    id_item: str
    items: tuple[str, ...]
    types: dict[str, str]  # item name → portable type
    keys: tuple[str, ...]
    id_items: tuple[str, ...]  # items of kind id_number (the row store indexes them)
    grant_id: int
    purpose: str

    def consulted(self) -> dict[str, Any]:
        return {"role": self.role, "resource": self.code, "version": self.version}


@dataclass
class Plan:
    """A rule ready to run for one caller: parameters, active checks and bound sources."""

    rule: Rule
    params: dict[str, Any]
    checks: list[Check]
    sources: dict[str, BoundSource] = field(default_factory=dict)

    def consulted(self) -> list[dict[str, Any]]:
        return [s.consulted() for s in self.sources.values()]


# ---------------------------------------------------------------- bindings


def bind(session: Session, *, actor: Principal, role: str, code: str) -> SourceBinding:
    """Bind source ``role`` to catalogue entry ``code`` (platform admin); return the binding.

    NotFound for an unknown entry; InvalidInput for a role no rule reads; Conflict when the
    entry lacks items the rules need of that role (named).
    """
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin binds verification sources")
    needed = all_roles(list(registry().values()))
    if role not in needed:
        raise InvalidInput(
            f"no rule reads a source {role!r}; roles: {', '.join(sorted(needed))}",
            details={"role": role},
        )
    resource = catalogue_repo.resource_by_code(session, code)
    if resource is None:
        raise NotFound(f"no catalogue entry {code!r}")
    have = {i.name for i in resource.items}
    missing = sorted(needed[role] - have)
    if missing:
        raise Conflict(
            f"{code} lacks items the rules read of {role}: {', '.join(missing)}",
            details={"role": role, "missing_items": missing},
        )
    found = repository.binding(session, role)
    if found is None:
        found = SourceBinding(role=role, resource_id=resource.id, bound_by=actor.name)
        session.add(found)
    else:
        found.resource_id, found.bound_by, found.bound_at = resource.id, actor.name, utcnow()
    audit.record(
        session,
        actor=actor,
        action="verification.bind",
        resource_code=code,
        provider_code=_provider_code(session, resource),
        detail={"role": role},
    )
    session.flush()
    return found


def unbind(session: Session, *, actor: Principal, role: str) -> None:
    """Remove the binding of ``role`` (platform admin); NotFound when it has none."""
    if not actor.is_platform_admin:
        raise Forbidden("only the platform admin binds verification sources")
    found = repository.binding(session, role)
    if found is None:
        raise NotFound(f"source role {role!r} is not bound")
    session.delete(found)
    audit.record(session, actor=actor, action="verification.unbind", detail={"role": role})
    session.flush()


def list_bindings(session: Session) -> list[dict[str, Any]]:
    """Every role the rules read, with the entry bound to it (or None)."""
    bound = {b.role: (b, r) for b, r in repository.bindings(session)}
    out = []
    for role, items in sorted(all_roles(list(registry().values())).items()):
        b, r = bound.get(role, (None, None))
        out.append(
            {
                "role": role,
                "items": sorted(items),
                "resource": r.code if r else None,
                "current_version": r.current_version if r else None,
                "bound_by": b.bound_by if b else None,
                "bound_at": b.bound_at if b else None,
            }
        )
    return out


def _provider_code(session: Session, resource: Resource) -> str | None:
    org = session.get(Organisation, resource.provider_id)
    return org.code if org else None


# ---------------------------------------------------------------- planning a run


def prepare(
    session: Session,
    *,
    actor: Principal,
    rule: Rule,
    params: Mapping[str, Any],
    action: str,
    request_id: str | None = None,
    today: dt.date | None = None,
) -> Plan:
    """Return the plan of ``rule`` for ``actor``: sources resolved, verify grants checked.

    Conflict for an unbound role or an entry that lost the items; NotFound for a source without
    a current version; Forbidden naming every source without a verify grant (with the needed
    items) — that refusal is audited in a fresh transaction after the caller's rolls back.
    """
    values = rule.params(params, today=today)
    plan = Plan(rule=rule, params=values, checks=rule.active_checks(values))
    missing: list[dict[str, Any]] = []
    entries = repository.bound_entries(session)
    for role in rule.roles_read(values):
        source = rule.sources[role]
        found = _resolve(session, actor, role, source.id_item, source.items, entries.get(role))
        if isinstance(found, BoundSource):
            plan.sources[role] = found
        else:
            missing.append(found)
    if missing:
        exc = Forbidden(
            f"{actor.org_code or actor.name} holds no verify grant for "
            + "; ".join(f"{m['role']} ({m['resource']}: {', '.join(m['items'])})" for m in missing)
            + "; request access first (POST /api/v1/exchange/requests, mode verify)",
            details={"missing_grants": missing},
        )
        on_rollback(session, _refusal(actor, rule, action, exc, request_id))
        raise exc
    return plan


def _resolve(
    session: Session,
    actor: Principal,
    role: str,
    id_item: str,
    items: tuple[str, ...],
    entry: Row[Any] | None,
) -> BoundSource | dict[str, Any]:
    """Return the source bound to ``role`` with the grant used, or the grant that is missing.

    Conflict for an unbound role or an entry lacking items; NotFound without a current
    version. A consumer reads its own organisation's entries without a grant (it needs none
    to use its own data, as the exchange says when one is requested).
    """
    if entry is None:
        raise Conflict(
            f"source {role!r} is not bound to a catalogue entry; the platform admin binds it "
            f"(haihe verify bind {role} CODE)",
            details={"role": role},
        )
    shape = _shape_of(session, entry)
    lacking = [i for i in items if i not in shape.types]
    if lacking:
        raise Conflict(
            f"{entry.code}, bound to {role}, lacks {', '.join(lacking)}",
            details={"role": role, "missing_items": lacking},
        )
    if entry.current_version is None:
        raise NotFound(
            f"source {role} ({entry.code}) has no current version: nothing is loaded",
            details={"role": role, "resource": entry.code},
        )
    if actor.org_id is not None and actor.org_id == entry.provider_id:
        grant_id, purpose = 0, OWN_DATA
    else:
        try:
            grant = exchange.grant_terms_for(
                session,
                actor=actor,
                resource_id=entry.id,
                resource_code=entry.code,
                mode=SharingMode.VERIFY,
            )
        except Forbidden:
            return {"role": role, "resource": entry.code, "items": list(items)}
        short = [i for i in items if i not in grant.items]
        if short:
            return {"role": role, "resource": entry.code, "items": short}
        grant_id, purpose = grant.id, grant.purpose
    return BoundSource(
        role=role,
        code=entry.code,
        provider_code=shape.provider_code,
        version=entry.current_version,
        id_item=id_item,
        items=items,
        types=shape.types,
        keys=shape.keys,
        id_items=shape.id_items,
        grant_id=grant_id,
        purpose=purpose,
    )


def identity_source(session: Session, *, actor: Principal) -> BoundSource | str:
    """Return the identity register (the ``household`` source with the items identity matching
    reads) under the actor's verify grant, or the reason it cannot be used."""
    entries = repository.bound_entries(session)
    try:
        found = _resolve(
            session, actor, IDENTITY_ROLE, "id_number", MATCH_ITEMS, entries.get(IDENTITY_ROLE)
        )
    except (Conflict, NotFound):
        return "match_unavailable"
    return found if isinstance(found, BoundSource) else "match_not_granted"


@dataclass(frozen=True)
class _Shape:
    """What a run needs of a bound entry's items, and its provider's code."""

    types: dict[str, str]
    keys: tuple[str, ...]
    id_items: tuple[str, ...]
    provider_code: str | None


_SHAPES: dict[tuple[int, dt.datetime], _Shape] = {}
_MAX_SHAPES = 256


def _shape_of(session: Session, entry: Row[Any]) -> _Shape:
    """Return the entry's items and provider code, kept per process until the entry changes.

    Every change to an entry moves its ``updated_at`` (as the exchange gateway relies on too),
    so the key never serves stale items; a check then spares two queries per source.
    """
    key = (entry.id, entry.updated_at)
    shape = _SHAPES.get(key)
    if shape is None:
        items = repository.item_rows(session, entry.id)
        org = session.get(Organisation, entry.provider_id)
        shape = _Shape(
            types={i.name: i.type for i in items},
            keys=tuple(i.name for i in items if i.is_key),
            id_items=tuple(i.name for i in items if i.kind == ItemKind.ID_NUMBER),
            provider_code=org.code if org else None,
        )
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        _SHAPES[key] = shape
    return shape


def _refusal(
    actor: Principal, rule: Rule, action: str, exc: HaiheError, request_id: str | None
) -> Callable[[Session], None]:
    def record(after: Session) -> None:
        audit.record(
            after,
            actor=actor,
            action=action,
            outcome="refused",
            mode=MODE,
            request_id=request_id,
            detail={
                "rule": rule.name,
                "version": rule.version,
                "status": exc.status,
                "reason": exc.message,
                "missing_grants": exc.details["missing_grants"],
            },
        )

    return record


# ---------------------------------------------------------------- verdicts


def birth_of(body: int) -> dt.date | None:
    """Return the birth date a 17-digit ID body carries (None if it is not a real date)."""
    ymd = (body // 1000) % 100_000_000
    try:
        return dt.date(ymd // 10000, ymd // 100 % 100, ymd % 100)
    except ValueError:
        return None


def age_holds(body: int, *, at_least: int, on: dt.date) -> bool | None:
    """True when the subject is ``at_least`` years old on ``on``; None if born after ``on``."""
    born = birth_of(body)
    if born is None or born > on:
        return None
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return age >= at_least


def decide(rule: Rule, held: Mapping[str, bool | None]) -> tuple[str, list[str]]:
    """Return the verdict and reason codes from what each check found (None: undecidable)."""
    holding = [name for name, h in held.items() if h]
    undecided = [name for name, h in held.items() if h is None]
    if holding:
        return (YES if rule.combine == "any" else NO), holding
    if undecided:
        return UNKNOWN, [f"{name}_undecidable" for name in undecided]
    return (NO if rule.combine == "any" else YES), [rule.otherwise]


def age_checks(plan: Plan, body: int) -> dict[str, bool | None]:
    """Return the outcome of the plan's age checks for one valid ID body."""
    return {
        c.name: age_holds(body, at_least=plan.params[c.at_least or ""], on=plan.params[c.on or ""])
        for c in plan.checks
        if c.kind == "age"
    }


# ---------------------------------------------------------------- the ledger


def record_checks(
    session: Session,
    *,
    actor: Principal,
    plan: Plan,
    action: str,
    subjects: Iterable[str] = (),
    verdicts: Counter[str],
    request_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
    subject_set: audit.SubjectSet | None = None,
) -> None:
    """Audit a run: one entry per source consulted (so its provider sees the use), or one
    entry when the rule reads no source; subjects are keyed pseudonyms — or, for a batch, the
    subject set kept once for all the entries — rows 0."""
    tokens = list(subjects)
    detail = {
        "rule": plan.rule.name,
        "version": plan.rule.version,
        "params": {k: _plain(v) for k, v in plan.params.items()},
        "verdicts": {v: verdicts.get(v, 0) for v in VERDICTS},
        **(extra or {}),
    }
    # one advance of the chain for all the entries: a single check's hot path
    audit.record_many(
        session,
        [
            audit.NewEntry(
                actor=actor,
                action=action,
                resource_code=source.code if source else None,
                provider_code=source.provider_code if source else None,
                items=source.items if source else (),
                purpose=source.purpose if source else None,
                mode=MODE,
                rows=0,
                subjects=tokens,
                subject_set=subject_set,
                personal=True,
                request_id=request_id,
                detail={**detail, **({"source": source.consulted()} if source else {})},
            )
            for source in plan.sources.values() or [None]
        ],
    )


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def actor_record(actor: Principal) -> dict[str, Any]:
    """Return what a job keeps of its requester, to check grants and audit when it runs."""
    return {
        "kind": actor.kind,
        "id": actor.id,
        "name": actor.name,
        "org_id": actor.org_id,
        "org_code": actor.org_code,
        "roles": sorted(r.value for r in actor.roles),
        "system_id": actor.system_id,
    }


def actor_of(record: Mapping[str, Any]) -> Principal:
    return Principal(
        kind=record["kind"],
        id=record["id"],
        name=record["name"],
        org_id=record["org_id"],
        org_code=record["org_code"],
        roles=frozenset(Role(r) for r in record["roles"]),
        system_id=record["system_id"],
    )


def record_match(
    session: Session,
    *,
    actor: Principal,
    source: BoundSource,
    subjects: Iterable[str],
    tried: int,
    matched: int,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Audit identity matching against the register: the use of its name, birth date and
    region for ``tried`` rows, ``matched`` of them linked (subjects are the linked persons'
    pseudonyms)."""
    audit.record_many(
        session,
        [
            audit.NewEntry(
                actor=actor,
                action="verification.match",
                resource_code=source.code,
                provider_code=source.provider_code,
                items=source.items,
                purpose=source.purpose,
                mode=MODE,
                rows=0,
                subjects=list(subjects),
                personal=True,
                detail={
                    "tried": tried,
                    "matched": matched,
                    "source": source.consulted(),
                    **(extra or {}),
                },
            )
        ],
    )
