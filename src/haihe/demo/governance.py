"""The demo's grid governance (网格化治理): the synthetic city's grid map, grid workers and the
command centres' staff, a year of past events with their histories, and a fortnight played out
live through the workflow — whistles, escalation, a reopened case, overdue and supervised ones —
so that the queue, the map and the statistics have something real to show.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from rich.progress import Progress
from sqlalchemy.orm import Session

from haihe.core.auth import Principal, Role
from haihe.core.db import utcnow
from haihe.core.errors import StorageError
from haihe.core.settings import Settings
from haihe.governance import (
    categories,
    deadlines,
    grids,
    history,
    intake,
    lookup,
    snapshot,
    workflow,
)
from haihe.governance import repository as governance_repo
from haihe.governance.history import PastEvent, PastMove
from haihe.governance.models import AreaLevel, EventSource
from haihe.governance.schemas import ActionIn, EventIn, ReportBackIn, SummonIn, WhistleIn
from haihe.governance.transitions import Action
from haihe.orgs import auth as orgs_auth
from haihe.orgs import service as orgs
from haihe.orgs.models import TokenKind
from haihe.orgs.schemas import UserCreate

Transaction = Callable[[], AbstractContextManager[Session]]
LEVELS = (
    ("districts", AreaLevel.DISTRICT),
    ("streets", AreaLevel.STREET),
    ("communities", AreaLevel.COMMUNITY),
    ("cells", AreaLevel.CELL),
)
HOTLINE = "ZWFW"  # 政务服务办公室 runs the 12345 hotline
# How often each category comes up, and what people say (the first sentence of a report).
MIX: dict[str, tuple[float, tuple[str, ...]]] = {
    "HJWS": (0.22, ("楼道口暴露垃圾无人清运", "垃圾桶满溢，周边有异味", "绿化带内堆放建筑垃圾")),
    "ZDJY": (0.14, ("早市摊贩占用人行道", "店外经营占道", "流动摊贩堵塞路口")),
    "WZDJ": (0.05, ("楼顶私搭彩钢房", "院内违建棚屋")),
    "ZYRM": (0.09, ("夜间施工噪音扰民", "广场舞音响过大")),
    "DLPS": (0.10, ("路面坑洼积水", "人行道砖松动破损")),
    "JGQS": (0.03, ("井盖缺失，有安全隐患", "井盖破损下沉")),
    "XFTD": (0.05, ("消防通道被车辆占用", "楼道堆放杂物堵塞通道")),
    "LLJF": (0.08, ("楼上漏水邻里纠纷", "停车位争执")),
    "QZF": (0.03, ("疑似群租房，人员进出频繁",)),
    "LDSH": (0.08, ("路灯不亮", "路灯杆倾斜")),
    "GGSS": (0.08, ("健身器材损坏", "小区座椅破损")),
    "LHSH": (0.05, ("行道树被毁", "绿地被踩踏")),
}
SOURCES = (
    (EventSource.GRID_WORKER, 0.40),
    (EventSource.RESIDENT, 0.25),
    (EventSource.HOTLINE_12345, 0.25),
    (EventSource.SENSOR, 0.05),
    (EventSource.PLATFORM, 0.05),
)


@dataclass
class Governed:
    """What the demo's governance step built."""

    cells: int = 0
    accounts: list[dict[str, Any]] = field(default_factory=list)
    past: dict[str, int] = field(default_factory=dict)
    live: int = 0
    whistles: int = 0
    scan: str = ""
    snapshot: str = ""


def past_events_for(persons: int) -> int:
    """A year of events for a city of ``persons``: Tianjin's ~1 million a year for 13.6 million
    people, so about one for every 14 residents (at least a few hundred)."""
    return max(300, persons // 14)


def govern(
    tx: Transaction,
    *,
    settings: Settings,
    actor: Principal,
    synth_dir: Path,
    persons: int,
    seed: int,
    clients: Sequence[dict[str, Any]],
    progress: Progress,
) -> Governed:
    """Import the grids, create the governance accounts, a year of events, play a fortnight."""
    task = progress.add_task("grid governance", total=5)
    out = Governed()
    with tx() as session:
        categories.import_categories(session, actor=actor)
        for name, level in LEVELS:
            data = (synth_dir / "grids" / f"{name}.geojson").read_bytes()
            result = grids.import_geojson(session, actor=actor, data=data, level=level)
        out.cells = result.created + result.updated
    progress.advance(task)
    with tx() as session:
        out.accounts, cells = _accounts(session, actor)
    progress.advance(task)
    now = utcnow()
    with tx() as session:
        out.past = history.import_events(
            session,
            actor=actor,
            events=_past_events(session, past_events_for(persons), seed, now, cells),
        )
    progress.advance(task)
    with tx() as session:
        out.live, out.whistles = _play(session, settings, clients, cells, now)
    progress.advance(task)
    with tx() as session:
        lines = [deadlines.scan_deadlines(session, settings=settings, now=now) for _ in range(3)]
        out.scan = lines[0]
        out.snapshot = snapshot.refresh(session, settings=settings, now=now, full=True)
    progress.advance(task)
    return out


def _accounts(session: Session, actor: Principal) -> tuple[list[dict[str, Any]], list[str]]:
    """Grid workers for the first cells of Heping's first community, and the operators of that
    community and its street (their command centres); (accounts, the workers' cell codes)."""
    community = grids.list_areas(session, level=AreaLevel.COMMUNITY, limit=1)[0][0]
    street = grids.get_area(session, code=community.code[:9])
    cells = [c.code for c in grids.list_areas(session, parent_code=community.code, limit=3)[0]]
    made = []

    def add(username: str, name: str, org: str, role: Role) -> None:
        password = secrets.token_urlsafe(9)
        data = UserCreate(
            username=username, display_name=name, password=password, org_code=org, roles=[role]
        )
        orgs.create_user(session, actor=actor, data=data)
        made.append(
            {
                "username": username,
                "password": password,
                "display_name": name,
                "org_code": org,
                "roles": [role.value],
            }
        )

    for n in range(3):
        add(f"grid{n + 1}", f"{community.name_zh}网格员{n + 1}", community.code, Role.GRID_WORKER)
        cell = cells[n % len(cells)]
        grids.assign_worker(session, actor=actor, cell_code=cell, username=f"grid{n + 1}")
    add("community1", f"{community.name_zh}值班员", community.code, Role.OPERATOR)
    add("street1", f"{street.name_zh}指挥中心值班员", street.code, Role.OPERATOR)
    return made, cells


def _past_events(
    session: Session, n: int, seed: int, now: dt.datetime, hot_cells: list[str]
) -> list[PastEvent]:
    """``n`` events reported over the year before the last fortnight, as the city's former
    system would hand them over: most closed and rated, the recent ones still being handled."""
    rng = np.random.default_rng(seed + 70_007)
    index = lookup.index_for(session)
    bounds = shapely.bounds(index.polygons)
    weight = rng.lognormal(0.0, 1.0, len(index))  # some cells see far more than others
    hot = [i for i, code in enumerate(index.codes) if code in set(hot_cells)]
    weight[hot] *= 20
    cells = rng.choice(len(index), n, p=weight / weight.sum())
    x = bounds[cells, 0] + (bounds[cells, 2] - bounds[cells, 0]) * rng.uniform(0.05, 0.95, n)
    y = bounds[cells, 1] + (bounds[cells, 3] - bounds[cells, 1]) * rng.uniform(0.05, 0.95, n)
    codes = list(MIX)
    mix = np.array([MIX[c][0] for c in codes])
    category = rng.choice(len(codes), n, p=mix / mix.sum())
    source = rng.choice(len(SOURCES), n, p=[p for _, p in SOURCES])
    # report days over the year (fewer in winter), at daytime hours China time
    age_days = rng.integers(14, 365, n)
    hours = np.clip(rng.normal(13.5, 3.5, n), 6, 22)
    cats = {c.code: c for c in categories.list_categories(session)}
    deadlines: dict[tuple[str, dt.date], dt.datetime] = {}
    out = []
    for i in range(n):
        day = (now - dt.timedelta(days=int(age_days[i]))).astimezone(dt.UTC)
        local_midnight = dt.datetime.combine(
            (day + dt.timedelta(hours=8)).date(), dt.time(), dt.UTC
        ) - dt.timedelta(hours=8)
        reported = local_midnight + dt.timedelta(hours=float(hours[i]))
        code = codes[int(category[i])]
        due = categories.due_at_many(session, cats[code], reported, deadlines)
        out.append(
            PastEvent(
                key=f"DEMO-{seed}-{i:07d}",
                category_code=code,
                source=SOURCES[int(source[i])][0],
                description=MIX[code][1][i % len(MIX[code][1])],
                lng=float(x[i]),
                lat=float(y[i]),
                reported_at=reported,
                moves=_moves(rng, reported, due, now),
            )
        )
    return out


def _moves(
    rng: np.random.Generator, reported: dt.datetime, due: dt.datetime, now: dt.datetime
) -> list[PastMove]:
    """A plausible path: accepted, dispatched, worked, resolved (mostly in time), evaluated
    and closed — cut off where it would run past ``now``."""

    def later(at: dt.datetime, low: float, high: float) -> dt.datetime:
        return at + dt.timedelta(hours=float(rng.uniform(low, high)))

    accepted = later(reported, 0.1, 2)
    dispatched = later(accepted, 0.2, 3)
    started = later(dispatched, 0.5, 6)
    allowed = (due - reported).total_seconds() / 3600
    resolved = max(
        reported + dt.timedelta(hours=allowed * float(rng.lognormal(-0.8, 0.6))),
        later(started, 0.5, 2),
    )
    evaluated = later(resolved, 2, 48)
    closed = later(evaluated, 1, 24)
    rating = int(rng.choice([5, 4, 3, 2, 1], p=[0.55, 0.28, 0.1, 0.04, 0.03]))
    path = [
        PastMove(Action.ACCEPT, accepted),
        PastMove(Action.DISPATCH, dispatched),
        PastMove(Action.START, started),
        PastMove(Action.RESOLVE, resolved, note="已处置完毕"),
    ]
    if rng.random() < 0.75:
        path.append(PastMove(Action.EVALUATE, evaluated, rating=rating))
    path.append(PastMove(Action.CLOSE, closed))
    return [m for m in path if m.at < now]


# ---------------------------------------------------------------- a fortnight played out live


def _principal(session: Session, username: str) -> Principal:
    found = orgs_auth.principal_of_user(orgs.get_user(session, username=username))
    if found is None:
        raise StorageError(f"the demo's account {username} cannot act")
    return found


def _hotline(session: Session, settings: Settings, clients: Sequence[dict[str, Any]]) -> Principal:
    client = next(c for c in clients if c["org_code"] == HOTLINE)
    token, _ = orgs_auth.issue_client_token(
        session,
        settings=settings,
        client_id=client["client_id"],
        client_secret=client["client_secret"],
    )
    found = orgs_auth.principal_for_token(session, token, kind=TokenKind.API)
    if found is None:
        raise StorageError("the 12345 hotline's API client cannot sign in")
    return found


def _play(
    session: Session,
    settings: Settings,
    clients: Sequence[dict[str, Any]],
    cells: list[str],
    now: dt.datetime,
) -> tuple[int, int]:
    """Events of the last fortnight, each taken through the workflow by the accounts whose move
    it is (so every step is in the history and the ledger); (events, whistles)."""
    who = {
        name: _principal(session, name)
        for name in ("grid1", "grid2", "community1", "street1", "cgw_admin", "jt_admin")
    }
    who["scjg_admin"] = _principal(session, "scjg_admin")
    who["hotline"] = _hotline(session, settings, clients)
    places = [
        (area.centre_lng, area.centre_lat)
        for area in (grids.get_area(session, code=c) for c in cells)
    ]
    start = now - dt.timedelta(days=14)
    events = whistles = 0

    def at(day: float, hour: float) -> dt.datetime:
        return start + dt.timedelta(days=day, hours=hour)

    def report(by: str, code: str, text: str, n: int, when: dt.datetime) -> int:
        nonlocal events
        lng, lat = places[n % len(places)]
        source = EventSource.HOTLINE_12345 if by == "hotline" else None
        body = EventIn(category_code=code, description=text, lng=lng, lat=lat)
        event = intake.report_event(
            session, actor=who[by], settings=settings, data=body, source=source, at=when
        )
        events += 1
        return event.id

    def move(by: str, event_id: int, action: Action, when: dt.datetime, **data: Any) -> None:
        workflow.act(
            session,
            actor=who[by],
            event_id=event_id,
            action=action,
            data=ActionIn(**data),
            at=when,
        )

    for n in range(4):  # a grid worker's patrol finds litter; the community handles it
        worker = f"grid{n % 2 + 1}"
        e = report(worker, "HJWS", "巡查发现楼道口暴露垃圾", n % 2, at(n * 3, 9))
        move("community1", e, Action.ACCEPT, at(n * 3, 9.5))
        move("community1", e, Action.DISPATCH, at(n * 3, 10))
        move(worker, e, Action.START, at(n * 3, 10.5))
        move(worker, e, Action.RESOLVE, at(n * 3, 15), note="已协调物业清运")
        move("community1", e, Action.CLOSE, at(n * 3 + 1, 9))
    for n in range(3):  # 12345 callers: street vending, dispatched to city management
        e = report("hotline", "ZDJY", "市民来电：早市摊贩占道", n, at(n * 4 + 1, 8))
        move("street1", e, Action.ACCEPT, at(n * 4 + 1, 8.5))
        move("street1", e, Action.DISPATCH, at(n * 4 + 1, 9), unit_code="CGW")
        move("cgw_admin", e, Action.START, at(n * 4 + 1, 11))
        move("cgw_admin", e, Action.RESOLVE, at(n * 4 + 2, 10), note="已劝离并规范经营")
        move("hotline", e, Action.EVALUATE, at(n * 4 + 2, 16), rating=5 - n)
        move("street1", e, Action.CLOSE, at(n * 4 + 3, 9))
    for n in range(2):  # 吹哨报到: the street summons city management and market regulation
        e = report("hotline", "ZDJY", "市民来电：夜市占道经营屡禁不止", n, at(n * 5 + 2, 19))
        move("street1", e, Action.ACCEPT, at(n * 5 + 2, 19.5))
        workflow.blow_whistle(
            session,
            actor=who["street1"],
            event_id=e,
            data=WhistleIn(
                reason="夜市占道涉及城管执法和市场监管，请到场联合处置",
                departments=[
                    SummonIn(department_code="CGW", hours=24),
                    SummonIn(department_code="SCJG", hours=24),
                ],
            ),
            at=at(n * 5 + 2, 20),
        )
        whistles += 1
        for summons in governance_repo.summons_of(session, e):
            if n == 0 or summons.department_code == "CGW":  # the second one: SCJG is late
                workflow.report_back(
                    session,
                    actor=who[summons.department_code.lower() + "_admin"],
                    summons_id=summons.id,
                    data=ReportBackIn(report="已派员到场，联合执法完毕"),
                    at=at(n * 5 + 3, 10),
                )
        move("street1", e, Action.DISPATCH, at(n * 5 + 3, 11), unit_code="CGW")
        move("cgw_admin", e, Action.START, at(n * 5 + 3, 12))
        if n == 0:
            move("cgw_admin", e, Action.RESOLVE, at(n * 5 + 4, 10), note="夜市已规范")
            move("hotline", e, Action.EVALUATE, at(n * 5 + 4, 18), rating=4)
    # a neighbours' quarrel the community cannot settle goes up to the street
    e = report("grid1", "LLJF", "楼上漏水引发邻里纠纷，社区调解未果", 0, at(6, 10))
    move("community1", e, Action.ACCEPT, at(6, 10.5))
    move("community1", e, Action.ESCALATE, at(7, 9), note="涉及物业维修责任，请街道协调")
    move("street1", e, Action.DISPATCH, at(7, 10), level="street")
    move("street1", e, Action.START, at(7, 11))
    move("street1", e, Action.RESOLVE, at(8, 16), note="已约谈物业，维修完毕")
    # a pothole mended, reopened by the caller, mended again
    e = report("hotline", "DLPS", "市民来电：路面坑洼，雨后积水", 1, at(3, 8))
    move("street1", e, Action.ACCEPT, at(3, 8.5))
    move("street1", e, Action.DISPATCH, at(3, 9), unit_code="JT")
    move("jt_admin", e, Action.START, at(3, 14))
    move("jt_admin", e, Action.RESOLVE, at(4, 11))
    move("hotline", e, Action.REOPEN, at(5, 9), note="市民反映仍有积水")
    move("street1", e, Action.DISPATCH, at(5, 10), unit_code="JT")
    move("jt_admin", e, Action.START, at(5, 14))
    move("jt_admin", e, Action.RESOLVE, at(6, 11), note="重新铺设路面")
    move("hotline", e, Action.EVALUATE, at(6, 18), rating=4)
    # still open: a missing manhole cover (4 hours) and litter from yesterday
    e = report("grid2", "JGQS", "井盖缺失，已设置临时警示", 1, at(12, 8))
    move("street1", e, Action.ACCEPT, at(12, 8.2))
    report("grid1", "HJWS", "垃圾桶满溢", 2, at(13, 9))
    return events, whistles
