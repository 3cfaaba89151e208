"""`haihe demo`: build a synthetic city, register its members and accounts, ready to serve.

The demo is a sequence of steps over one data directory. Later parts add their own steps (the
catalogue registers the city's datasets, the exchange plays out requests, …).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from haihe.audit import service as audit
from haihe.audit import signing
from haihe.audit.verify import verify_ledger
from haihe.core.auth import Role, system_principal
from haihe.core.db import ensure_data_dir, make_engine, make_session_factory, transaction
from haihe.core.errors import Conflict
from haihe.core.settings import Settings
from haihe.demo import catalogue as demo_catalogue
from haihe.demo import exchange as demo_exchange
from haihe.demo import governance as demo_governance
from haihe.demo import portal as demo_portal
from haihe.demo import usage as demo_usage
from haihe.demo import verification as demo_verification
from haihe.migrations import upgrade
from haihe.orgs import auth as orgs_auth
from haihe.orgs import service as orgs
from haihe.orgs.models import OrgKind
from haihe.orgs.schemas import ClientCreate, OrgCreate, SystemCreate, UserCreate
from haihe.synth import DEFAULT_AS_OF, CityManifest, generate_city

DEFAULT_PERSONS = 200_000
CITY_CODE = "120000"
OPERATOR_CODE = "DSJ"  # 大数据管理中心, the bureau that runs the platform
MARKER = "demo.json"
CREDENTIALS = "demo-credentials.json"
ACTOR = system_principal("demo")


@dataclass
class Account:
    username: str
    password: str
    display_name: str
    org_code: str | None
    roles: list[str]


@dataclass
class DemoResult:
    data_dir: Path
    persons: int
    seed: int
    seconds: float
    admin: Account
    accounts: list[Account] = field(default_factory=list)
    clients: list[dict[str, Any]] = field(default_factory=list)
    reused: bool = False
    generated_entries: int = 0
    loads: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)  # outcome → how many
    usage: demo_usage.Usage | None = None
    verified: demo_verification.Verified | None = None
    portal: demo_portal.Published | None = None
    governed: demo_governance.Governed | None = None
    ledger: Ledger | None = None


@dataclass(frozen=True)
class Ledger:
    """The audit ledger at the end of the demo: entries, and whether it verifies."""

    entries: int
    checkpoints: int
    intact: bool
    problems: list[str]


def run_demo(
    settings: Settings, *, persons: int, seed: int, console: Console | None = None
) -> DemoResult:
    """Build the demo in ``settings.data_dir`` (or reuse one built with the same size and seed)."""
    console = console or Console(stderr=True)
    started = time.perf_counter()
    ensure_data_dir(settings)
    previous = _previous_build(settings.data_dir)
    if previous is not None:
        if (previous["persons"], previous["seed"]) != (persons, seed):
            raise Conflict(
                f"{settings.data_dir} already holds a demo of {previous['persons']} persons "
                f"(seed {previous['seed']}); use another --data-dir or delete that one"
            )
        return _reuse(settings, previous)
    if (settings.data_dir / "haihe.db").exists() and settings.database_url is None:
        raise Conflict(
            f"{settings.data_dir} already holds a Haihe database that is not a demo; "
            "use another --data-dir"
        )
    engine = make_engine(settings)
    try:
        with _progress(console) as progress:
            upgrade(engine)
            manifest = _synthesise(settings, persons=persons, seed=seed, progress=progress)
            factory = make_session_factory(engine, settings)
            with transaction(factory) as session:
                _register_members(session, settings.data_dir / "synth", progress)
            with transaction(factory) as session:
                result = _create_accounts(session, manifest, progress)
            synth_dir = settings.data_dir / "synth"
            with transaction(factory) as session:
                codes = demo_catalogue.register_catalogue(
                    session, actor=ACTOR, manifest=manifest, synth_dir=synth_dir, progress=progress
                )
            with transaction(factory) as session:
                result.generated_entries = demo_catalogue.register_generated(
                    session,
                    actor=ACTOR,
                    count=demo_catalogue.generated_count(persons, len(codes)),
                    seed=seed,
                    synth_dir=synth_dir,
                    progress=progress,
                )
            result.loads = demo_catalogue.load_datasets(
                lambda: transaction(factory),
                actor=ACTOR,
                settings=settings,
                manifest=manifest,
                synth_dir=synth_dir,
                codes=codes,
                progress=progress,
            )
            result.requests, result.usage = _exchange(factory, settings, result, seed, progress)
            result.accounts.extend(
                Account(r.username, r.password, r.display_name, None, [Role.RESIDENT.value])
                for r in result.usage.residents
            )
            result.verified = demo_verification.verify_in_the_city(
                factory,
                settings=settings,
                actor=ACTOR,
                principals=demo_usage.sign_in(
                    factory, settings, result.clients, set(demo_verification.CONSUMERS)
                ),
                manifest=manifest,
                synth_dir=synth_dir,
                progress=progress,
            )
            result.portal = demo_portal.publish_open_catalogue(
                lambda: transaction(factory),
                settings=settings,
                actor=ACTOR,
                codes=codes,
                applicant=result.usage.residents[0].username if result.usage.residents else None,
                progress=progress,
            )
            result.governed = demo_governance.govern(
                lambda: transaction(factory),
                settings=settings,
                actor=ACTOR,
                synth_dir=synth_dir,
                persons=persons,
                seed=seed,
                clients=result.clients,
                progress=progress,
            )
            result.accounts.extend(Account(**a) for a in result.governed.accounts)
            result.ledger = _close_ledger(factory, settings, progress)
    finally:
        engine.dispose()
    result.data_dir, result.persons, result.seed = settings.data_dir, persons, seed
    result.seconds = time.perf_counter() - started
    _write_credentials(settings.data_dir, result)
    _print_summary(console, settings, result)
    return result


# ---------------------------------------------------------------- steps


def _synthesise(settings: Settings, *, persons: int, seed: int, progress: Progress) -> CityManifest:
    task = progress.add_task("synthetic city", total=None)

    def report(step: str, done: int, total: int) -> None:
        progress.update(task, description=f"synthetic city: {step}", completed=done, total=total)

    manifest = generate_city(
        settings.data_dir / "synth",
        persons=persons,
        seed=seed,
        as_of=DEFAULT_AS_OF,
        progress=report,
        overwrite=True,
    )
    progress.update(task, description="synthetic city", completed=1, total=1)
    return manifest


# (file in synth/city, kind, code column, parent column or None for the city, region column)
LEVELS: tuple[tuple[str, OrgKind, str, str | None, str | None], ...] = (
    ("departments", OrgKind.MUNICIPAL_DEPARTMENT, "code", None, None),
    ("institutions", OrgKind.INSTITUTION, "code", None, None),
    ("districts", OrgKind.DISTRICT, "region_code", None, "region_code"),
    ("streets", OrgKind.STREET, "street_code", "district_code", "street_code"),
    ("communities", OrgKind.COMMUNITY, "community_code", "street_code", "community_code"),
)


def _register_members(session: Session, synth_dir: Path, progress: Progress) -> None:
    """Register the city, its departments, institutions, districts, streets and communities."""
    entries = [
        OrgCreate(
            code=CITY_CODE,
            name_zh="天津市",
            name_en="Tianjin",
            kind=OrgKind.CITY,
            region_code=CITY_CODE,
        )
    ]
    for name, kind, code, parent, region in LEVELS:
        for row in pq.read_table(synth_dir / "city" / f"{name}.parquet").to_pylist():
            english = row["name_en"]
            entries.append(
                OrgCreate(
                    code=row[code],
                    name_zh=row["name_zh"],
                    name_en=f"{english} District" if kind is OrgKind.DISTRICT else english,
                    kind=kind,
                    parent_code=row[parent] if parent else CITY_CODE,
                    region_code=row[region] if region else None,
                    credit_code=row.get("uscc"),
                )
            )
    task = progress.add_task("members", total=len(entries))
    for entry in entries:
        orgs.create_org(session, actor=ACTOR, data=entry)
        progress.advance(task)


def _create_accounts(session: Session, manifest: CityManifest, progress: Progress) -> DemoResult:
    """The platform admin, an auditor, each department's and district's admin, and API clients."""
    providers = sorted({d.provider for d in manifest.datasets})
    departments, _ = orgs.list_orgs(session, kind=OrgKind.MUNICIPAL_DEPARTMENT, limit=1000)
    institutions, _ = orgs.list_orgs(session, kind=OrgKind.INSTITUTION, limit=1000)
    districts, _ = orgs.list_orgs(session, kind=OrgKind.DISTRICT, limit=1000)
    members = [*departments, *institutions]
    task = progress.add_task("accounts", total=2 + len(members) * 2 + len(districts))

    def add(username: str, name: str, org: str | None, *roles: Role) -> Account:
        password = secrets.token_urlsafe(9)
        data = UserCreate(
            username=username,
            display_name=name,
            password=password,
            org_code=org,
            roles=list(roles),
        )
        orgs.create_user(session, actor=ACTOR, data=data)
        progress.advance(task)
        return Account(username, password, name, org, [r.value for r in roles])

    admin = add("admin", "平台管理员", OPERATOR_CODE, Role.PLATFORM_ADMIN)
    result = DemoResult(data_dir=Path(), persons=0, seed=0, seconds=0.0, admin=admin)
    result.accounts.append(add("auditor", "审计员", None, Role.AUDITOR))
    for org in members:
        result.accounts.append(
            add(f"{org.code.lower()}_admin", f"{org.name_zh}管理员", org.code, Role.ORG_ADMIN)
        )
        system = orgs.create_system(
            session,
            actor=ACTOR,
            org_code=org.code,
            data=SystemCreate(code="main", name=f"{org.name_zh}业务系统"),
        )
        client, secret = orgs_auth.create_client(
            session,
            actor=ACTOR,
            data=ClientCreate(
                name=f"{org.name_zh}数据接口", org_code=org.code, system_code=system.code
            ),
        )
        result.clients.append(
            {
                "org_code": org.code,
                "org_name": org.name_zh,
                "client_id": client.client_id,
                "client_secret": secret,
                "provides_data": org.code in providers,
            }
        )
        progress.advance(task)
    for org in districts:
        result.accounts.append(
            add(f"d{org.code}_admin", f"{org.name_zh}管理员", org.code, Role.ORG_ADMIN)
        )
    return result


def _exchange(
    factory: sessionmaker[Session],
    settings: Settings,
    result: DemoResult,
    seed: int,
    progress: Progress,
) -> tuple[dict[str, int], demo_usage.Usage]:
    """Play out the departments' requests, then put the grants to use; requests by outcome."""
    task = progress.add_task("access requests", total=len(demo_exchange.ASKS))
    with transaction(factory) as session:
        played = demo_exchange.play_out(session, settings=settings, actor=ACTOR)
    progress.update(task, completed=len(demo_exchange.ASKS))
    usage = demo_usage.put_grants_to_use(
        factory,
        settings=settings,
        actor=ACTOR,
        clients=result.clients,
        seed=seed,
        progress=progress,
    )
    return {k: len(v) for k, v in played.outcomes.items()}, usage


def _close_ledger(factory: sessionmaker[Session], settings: Settings, progress: Progress) -> Ledger:
    """Sign a checkpoint of every chain, then verify the whole ledger against it."""
    task = progress.add_task("audit checkpoint and verification", total=1)
    with transaction(factory) as session:
        made = audit.checkpoint(session, settings=settings)
    with factory() as session:
        key = signing.signing_key(settings).public_key()
        report = verify_ledger(session, public_keys=[key], workers=1)
    progress.advance(task)
    return Ledger(
        entries=report.entries,
        checkpoints=len(made),
        intact=report.intact,
        problems=[p.line() for p in report.problems],
    )


# ---------------------------------------------------------------- files and output


def _previous_build(data_dir: Path) -> dict[str, Any] | None:
    marker = data_dir / MARKER
    if not marker.exists():
        return None
    built: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
    return built


def _reuse(settings: Settings, previous: dict[str, Any]) -> DemoResult:
    creds = json.loads((settings.data_dir / CREDENTIALS).read_text(encoding="utf-8"))
    admin = Account(**creds["platform_admin"])
    result = DemoResult(
        data_dir=settings.data_dir,
        persons=previous["persons"],
        seed=previous["seed"],
        seconds=0.0,
        admin=admin,
        reused=True,
    )
    Console().print(
        f"[bold]Haihe demo[/] already built in {settings.data_dir} "
        f"({previous['persons']:,} persons, seed {previous['seed']}); reusing it."
    )
    _print_where(Console(), settings, result)
    return result


def _write_credentials(data_dir: Path, result: DemoResult) -> None:
    body = {
        "platform_admin": result.admin.__dict__,
        "accounts": [a.__dict__ for a in result.accounts],
        "clients": result.clients,
    }
    path = data_dir / CREDENTIALS
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(body, fh, ensure_ascii=False, indent=2)
    marker = {"persons": result.persons, "seed": result.seed}
    (data_dir / MARKER).write_text(json.dumps(marker), encoding="utf-8")


def _print_summary(console: Console, settings: Settings, result: DemoResult) -> None:
    out = Console()
    out.print(
        f"\n[bold]Haihe demo ready[/] in {settings.data_dir} — {result.persons:,} persons, "
        f"seed {result.seed}, built in {result.seconds:.0f} s"
    )
    table = Table("account", "password", "organisation", "roles", title="Accounts (a few)")
    shown = {"auditor", "ga_admin", "wjw_admin", "mz_admin", "rs_admin", "gjj_admin", "resident1"}
    for account in [result.admin, *(a for a in result.accounts if a.username in shown)]:
        table.add_row(
            account.username, account.password, account.org_code or "", ", ".join(account.roles)
        )
    out.print(table)
    if result.loads:
        read = sum(r for r, _, _ in result.loads.values())
        rejected = sum(x for _, _, x in result.loads.values())
        out.print(
            f"Catalogue: {len(result.loads)} entries with data ({read:,} rows read, "
            f"{rejected:,} rejected as dirty) and {result.generated_entries:,} more described"
        )
    _print_exchange(out, result)
    _print_governance(out, result)
    _print_where(out, settings, result)


def _print_governance(out: Console, result: DemoResult) -> None:
    """The closing lines on grid governance and its accounts."""
    gov = result.governed
    if gov is None:
        return
    past = sum(gov.past.values())
    out.print(
        f"Grid governance: {gov.cells:,} grid cells; {past:,} events over the past year "
        f"({gov.past.get('closed', 0):,} closed) and {gov.live} played out in the last fortnight "
        f"with {gov.whistles} whistles (吹哨报到); deadline scan — {gov.scan}"
    )
    names = ", ".join(f"{a['username']} / {a['password']}" for a in gov.accounts)
    out.print(f"  grid workers and command centres: {names} — see /governance")


def _print_exchange(out: Console, result: DemoResult) -> None:
    """The closing lines on requests, grants, their use and the audit ledger."""
    n = result.requests
    if n:
        out.print(
            f"Exchange: {sum(n.values())} requests — {n.get('granted', 0)} granted at once, "
            f"{n.get('approved', 0)} approved, {n.get('refused', 0)} refused, "
            f"{n.get('pending', 0)} pending, {n.get('overdue', 0)} overdue and escalated"
        )
    usage = result.usage
    if usage is not None:
        out.print(
            f"  {usage.grants} grants in force; {usage.calls:,} gateway calls "
            f"({usage.rows:,} rows), 1 bulk export ({usage.exported_rows:,} rows), "
            f"1 change-feed read ({usage.changes:,} changes)"
        )
        names = ", ".join(f"{r.username} ({r.display_name})" for r in usage.residents)
        out.print(f"  residents whose records were used: {names} — see /audit/me")
    verified = result.verified
    if verified is not None:
        out.print(
            f"Verification: {verified.bound} source roles bound, {verified.grants} verify grants "
            f"(JT, RS, GJJ, MZ); {verified.checks} single checks "
            f"({sum(verified.verdicts.values())} persons) — answers, never rows"
        )
        for run in verified.scenarios:
            sc = run.score
            out.print(
                f"  scenario {run.scenario} ({run.consumer}, job {run.job_id}, "
                f"{run.subjects:,} subjects): list {sc['list']} {sc['tp'] + sc['fp']:,}; "
                f"precision {sc['precision']:.3f}, recall {sc['recall']:.3f}"
                + "".join(f"; {k} {v:,.2f}" for k, v in run.derived.items())
            )
    published = result.portal
    if published is not None:
        key = (
            f"; {published.applicant} was approved for 有条件开放 dataset "
            f"{demo_portal.APPLIED_FOR} (API key {published.api_key})"
            if published.applicant
            else ""
        )
        out.print(
            f"Open portal: {len(published.datasets)} datasets ({published.views} views and "
            f"aggregations, {published.conditional} 有条件开放) in {len(published.topics)} "
            f"topics, {published.rows:,} rows — /portal, /api/3/action/, /catalog.ttl" + key
        )
    ledger = result.ledger
    if ledger is not None:
        verdict = (
            "[green]the ledger verifies (intact)[/]"
            if ledger.intact
            else f"[red]the ledger does NOT verify[/]: {'; '.join(ledger.problems[:3])}"
        )
        out.print(
            f"Audit: {ledger.entries:,} entries, {ledger.checkpoints} checkpoint(s) signed; "
            + verdict
        )


def _print_where(out: Console, settings: Settings, result: DemoResult) -> None:
    url = settings.resolved_public_url
    out.print(
        f"  console    {url}/   (sign in as {result.admin.username} / {result.admin.password})"
    )
    out.print(f"  API docs   {url}/api/v1/docs")
    out.print(
        f"  accounts   {settings.data_dir / CREDENTIALS}  "
        "(every admin, API client and demo resident)"
    )


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description:<48}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        yield progress
