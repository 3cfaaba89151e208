"""Sharing statistics — 共享统计: how often shared data was used, by day, organisation, resource.

A sharing use is a row delivered (modes query, bulk and subscribe) or a subject verified (mode
verify), counted from successful entries only. Days are days on Asia/Shanghai clocks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from haihe.audit import repository as repo
from haihe.audit import service
from haihe.audit.models import AuditEntry
from haihe.core.auth import Principal

GroupBy = Literal["day", "org", "resource", "provider"]
GROUPS: tuple[GroupBy, ...] = ("day", "org", "resource", "provider")
# China Standard Time: UTC+8 all year, as Asia/Shanghai has been since 1991.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
MAX_GROUPS = 1000


@dataclass(frozen=True)
class Uses:
    """Sharing uses of one group: its key (a day, an org or resource code), uses, entries."""

    key: str
    uses: int
    entries: int


def day_start(day: dt.date) -> dt.datetime:
    """The UTC instant at which ``day`` begins in Asia/Shanghai."""
    return dt.datetime.combine(day, dt.time(), CHINA_TIME).astimezone(dt.UTC)


def sharing_uses(
    session: Session,
    *,
    actor: Principal,
    group_by: GroupBy,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> list[Uses]:
    """Sharing uses grouped by ``group_by`` over the days ``since``..``until`` (both included),
    of the entries ``actor`` may see; days in order, other groups most used first."""
    visible = service.ledger_scope(actor)
    dialect = session.get_bind().dialect.name
    keys: dict[str, Any] = {
        "day": repo.day_expression(dialect),
        "org": AuditEntry.org_code,
        "resource": AuditEntry.resource_code,
        "provider": AuditEntry.provider_code,
    }
    found = repo.sharing_uses(
        session,
        key=keys[group_by],
        visible=visible,
        since=day_start(since) if since else None,
        until=day_start(until + dt.timedelta(days=1)) if until else None,
        limit=MAX_GROUPS,
    )
    rows = [Uses(key=k or "", uses=u, entries=n) for k, u, n in found]
    if group_by != "day":
        rows.sort(key=lambda r: (-r.uses, r.key))
    return rows
