"""Demo step: the grants at work — 共享使用: consumers use what they were granted.

Each consumer's API client signs in (its principal built by ``orgs.auth`` from a token, as for
any caller) and uses its grants through the real services: gateway queries by the ID numbers of
persons in the loaded data (so that the ledger names whose records were used), by enterprises'
credit codes, or page by page through a list; one bulk export; one subscription with a read of
its change feed. Then three residents whose records those queries used get accounts linked to
their identities, so that their "my data" page (/audit/me) lists the uses.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq
from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from haihe.catalogue.models import ItemKind, Resource
from haihe.catalogue.models import SharingMode as Mode
from haihe.core.auth import Principal, Role
from haihe.core.db import transaction, utcnow
from haihe.core.errors import StorageError
from haihe.core.settings import Settings
from haihe.engine import make_store
from haihe.exchange import exports, feeds, gateway, repository, webhooks
from haihe.exchange.models import ExportStatus, Grant
from haihe.orgs import auth as orgs_auth
from haihe.orgs import service as orgs
from haihe.orgs.models import Organisation, TokenKind
from haihe.orgs.schemas import UserCreate

DEFAULT_CALLS = 300
RESIDENTS = 3
# A person's ID number weighs more than a key of a non-personal entry when calls are shared out.
PERSON_WEIGHT = 3
PAGE = 50  # rows a paging call asks for


@dataclass(frozen=True)
class Use:
    """A grant in force that the demo uses: whose, which entry, how, and what it looks up by."""

    grant_id: int
    consumer: str
    code: str
    modes: tuple[str, ...]
    # the granted item queries look up by: an ID number, else a credit code; None: pages
    lookup: str | None
    person: bool  # the lookup item is a resident ID number
    name: str | None = None  # the entry's item of persons' names (to name the residents)


@dataclass(frozen=True)
class Resident:
    """A demo resident (居民) whose identity is linked to a synthetic person."""

    username: str
    password: str
    display_name: str


@dataclass
class Usage:
    """What the step did."""

    grants: int = 0
    calls: int = 0
    rows: int = 0
    exported_rows: int = 0
    changes: int = 0
    residents: list[Resident] = field(default_factory=list)


def put_grants_to_use(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    actor: Principal,
    clients: Sequence[dict[str, Any]],
    calls: int = DEFAULT_CALLS,
    seed: int,
    progress: Progress,
) -> Usage:
    """Use every grant in force through its consumer's API client; link ``RESIDENTS`` residents.

    ``clients`` are the demo's API clients (org_code, client_id, client_secret); ``actor``
    creates the residents' accounts (the platform admin's work).
    """
    task = progress.add_task("gateway queries", total=None)
    with factory() as session:
        uses = _uses(session)
    usage = Usage(grants=len(uses))
    principals = sign_in(factory, settings, clients, {u.consumer for u in uses})
    rng = random.Random(seed)
    query = [u for u in uses if Mode.QUERY.value in u.modes]
    lookups = _lookup_values(settings, [u for u in query if u.lookup], rng)
    chosen = _residents_to_be(lookups, [u for u in query if u.person])
    plan = _plan(query, lookups, chosen, calls, rng)
    progress.update(task, total=len(plan))
    cursors: dict[int, str | None] = {}
    for n, (use, value) in enumerate(plan, start=1):
        with transaction(factory) as session:
            page = gateway.query_records(
                session,
                actor=principals[use.consumer],
                settings=settings,
                code=use.code,
                filters=[] if value is None else [{"item": use.lookup, "op": "eq", "value": value}],
                after=None if value is not None else cursors.get(use.grant_id),
                limit=PAGE,
                request_id=f"demo-{n:05d}",
            )
        if value is None:
            cursors[use.grant_id] = page.next
        usage.calls += 1
        usage.rows += len(page.records)
        progress.advance(task)
    usage.exported_rows = _export(factory, settings, uses, principals, progress)
    usage.changes = _read_feed(factory, settings, uses, principals, progress)
    with transaction(factory) as session:
        usage.residents = _link_residents(session, settings, actor, chosen, progress)
    return usage


def _uses(session: Session) -> list[Use]:
    """The grants in force with the entries they are for, oldest first."""
    now = utcnow()
    rows = session.execute(
        select(Grant, Resource, Organisation.code)
        .join(Resource, Resource.id == Grant.resource_id)
        .join(Organisation, Organisation.id == Grant.consumer_org_id)
        .order_by(Grant.id)
    ).all()
    uses = []
    for grant, resource, consumer in rows:
        in_force = repository.grants_in_force(
            session,
            resource_id=resource.id,
            org_id=grant.consumer_org_id,
            system_id=None,
            now=now,
        )
        if grant.id not in {g.id for g in in_force}:
            continue
        granted = [i for i in resource.items if i.name in grant.items]
        ids = [i.name for i in granted if i.kind is ItemKind.ID_NUMBER]
        codes = [i.name for i in granted if i.kind is ItemKind.USCC]
        names = [i.name for i in resource.items if i.kind is ItemKind.NAME]
        lookup = next(iter(ids or codes), None)
        uses.append(
            Use(
                grant_id=grant.id,
                consumer=consumer,
                code=resource.code,
                modes=tuple(grant.modes),
                lookup=lookup,
                person=bool(ids),
                name=next(iter(names), None),
            )
        )
    return uses


def sign_in(
    factory: sessionmaker[Session],
    settings: Settings,
    clients: Sequence[dict[str, Any]],
    consumers: set[str],
) -> dict[str, Principal]:
    """Each consumer's API client, signed in with its secret: code → principal."""
    found: dict[str, Principal] = {}
    with transaction(factory) as session:
        for client in clients:
            if client["org_code"] not in consumers:
                continue
            token, _ = orgs_auth.issue_client_token(
                session,
                settings=settings,
                client_id=client["client_id"],
                client_secret=client["client_secret"],
            )
            principal = orgs_auth.principal_for_token(session, token, kind=TokenKind.API)
            if principal is None:
                raise StorageError(f"the demo's API client of {client['org_code']} cannot sign in")
            found[client["org_code"]] = principal
    return found


@dataclass(frozen=True)
class _Values:
    """Values of one entry's lookup item in its loaded data, and persons' names by ID number."""

    values: list[Any]
    names: dict[str, str]


def _lookup_values(
    settings: Settings, uses: Sequence[Use], rng: random.Random
) -> dict[str, _Values]:
    """The lookup item's distinct values in each entry's current version, shuffled: code → them."""
    store = make_store(settings)
    found: dict[str, _Values] = {}
    for use in uses:
        assert use.lookup is not None
        paths = store.paths(store.manifest(use.code))
        named = use.person and use.name is not None
        columns = [use.lookup, use.name] if named else [use.lookup]
        table = pq.ParquetDataset(paths).read(columns=columns)
        values = [v for v in dict.fromkeys(table.column(use.lookup).to_pylist()) if v is not None]
        rng.shuffle(values)
        names: dict[str, str] = {}
        if named:
            ids, who = table.column(0).to_pylist(), table.column(1).to_pylist()
            names = {i: n for i, n in zip(ids, who, strict=True) if i and n}
        found[use.code] = _Values(values=values, names=names)
    return found


def _residents_to_be(lookups: dict[str, _Values], person_uses: Sequence[Use]) -> dict[str, str]:
    """ID number → name of the residents to link: persons in the most of the entries queried by
    ID number first (so that several departments' uses show on their page)."""
    seen: dict[str, int] = {}
    names: dict[str, str] = {}
    for use in person_uses:
        for value in lookups[use.code].values:
            seen[value] = seen.get(value, 0) + 1
        names.update(lookups[use.code].names)
    ranked = sorted((v for v in seen if v in names), key=lambda v: -seen[v])
    return {v: names[v] for v in ranked[:RESIDENTS]}


def _plan(
    query: Sequence[Use],
    lookups: dict[str, _Values],
    residents: dict[str, str],
    calls: int,
    rng: random.Random,
) -> list[tuple[Use, Any]]:
    """The calls to make under the ``query`` grants, shuffled: (use, value looked up, or None
    for the next page).

    Every resident is looked up in every entry queried by ID number; the other calls are shared
    out over the grants, persons' entries weighing ``PERSON_WEIGHT`` times more.
    """
    if not query:
        return []
    plan: list[tuple[Use, Any]] = [(u, r) for u in query if u.person for r in residents]
    weights = [PERSON_WEIGHT if u.person else 1 for u in query]
    left = max(0, calls - len(plan))
    share = [left * w // sum(weights) for w in weights]
    for i in range(left - sum(share)):  # what rounding left over, one each from the first
        share[i % len(share)] += 1
    for use, count in zip(query, share, strict=True):
        if use.lookup is None:
            plan.extend((use, None) for _ in range(count))
            continue
        values = [v for v in lookups[use.code].values if v not in residents]
        plan.extend((use, values[i % len(values)]) for i in range(count) if values)
    rng.shuffle(plan)
    return plan


def _export(
    factory: sessionmaker[Session],
    settings: Settings,
    uses: Sequence[Use],
    principals: dict[str, Principal],
    progress: Progress,
) -> int:
    """Run one bulk export (批量导出) under the first grant with mode bulk; return its rows."""
    use = next((u for u in uses if Mode.BULK.value in u.modes), None)
    if use is None:
        return 0
    task = progress.add_task(f"bulk export of {use.code}", total=1)
    actor = principals[use.consumer]
    with transaction(factory) as session:
        job = exports.create_export(
            session, actor=actor, code=use.code, items=None, filters=[], format="parquet"
        )
        export_id = job.id
    status = exports.run_export(factory, settings=settings, export_id=export_id, actor=actor)
    with factory() as session:
        job = exports.get_export(session, actor=actor, export_id=export_id)
        if status is not ExportStatus.SUCCEEDED:
            raise StorageError(f"the demo's export {export_id} failed: {job.error}")
        rows = job.rows or 0
    progress.advance(task)
    return rows


def _read_feed(
    factory: sessionmaker[Session],
    settings: Settings,
    uses: Sequence[Use],
    principals: dict[str, Principal],
    progress: Progress,
) -> int:
    """Subscribe (订阅) under the first grant with mode subscribe and read its change feed from
    the first version loaded; return how many changes came."""
    use = next((u for u in uses if Mode.SUBSCRIBE.value in u.modes), None)
    if use is None:
        return 0
    task = progress.add_task(f"subscription to {use.code}", total=1)
    actor = principals[use.consumer]
    with transaction(factory) as session:
        webhooks.create_subscription(
            session, actor=actor, settings=settings, code=use.code, callback_url=None
        )
        page = feeds.read_changes(
            session,
            actor=actor,
            settings=settings,
            code=use.code,
            since=feeds.encode_cursor(1, 0),
            limit=PAGE,
            request_id="demo-feed",
        )
    progress.advance(task)
    return len(page.changes)


def _link_residents(
    session: Session,
    settings: Settings,
    actor: Principal,
    residents: dict[str, str],
    progress: Progress,
) -> list[Resident]:
    """Create a resident account per chosen person and link it to the person's identity."""
    task = progress.add_task("residents", total=len(residents))
    made = []
    for n, (id_number, name) in enumerate(residents.items(), start=1):
        username, password = f"resident{n}", secrets.token_urlsafe(9)
        data = UserCreate(
            username=username,
            display_name=name,
            password=password,
            org_code=None,
            roles=[Role.RESIDENT],
        )
        orgs.create_user(session, actor=actor, data=data)
        orgs.link_identity(
            session,
            actor=actor,
            username=username,
            id_number=id_number,
            key=settings.secret_key_bytes(),
        )
        made.append(Resident(username=username, password=password, display_name=name))
        progress.advance(task)
    return made
