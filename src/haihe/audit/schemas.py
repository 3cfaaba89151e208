"""What the ledger's routes and commands take and give: entries, verification, statistics."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import BaseModel, Field

from haihe.audit.models import AuditEntry

# China Standard Time (Asia/Shanghai, UTC+8 all year): how exported times read.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))


class EntryOut(BaseModel):
    """One ledger entry as the API shows it (subjects only as a count)."""

    id: int
    chain: str
    seq: int
    at: dt.datetime
    action: str
    outcome: str
    actor_kind: str
    actor_id: int
    actor_name: str
    org_code: str | None
    system_id: int | None
    resource_code: str | None
    provider_code: str | None
    items: list[str]
    purpose: str | None
    mode: str | None
    rows: int
    subjects: int
    personal: bool
    request_id: str | None
    detail: dict[str, Any] | None
    hash: str


class EntryPage(BaseModel):
    items: list[EntryOut]
    next_before: int | None = Field(
        None, description="Pass as `before` for the next (older) page; null on the last page."
    )


def entry_out(entry: AuditEntry) -> EntryOut:
    return EntryOut(
        id=entry.id,
        chain=entry.chain,
        seq=entry.seq,
        at=entry.at,
        action=entry.action,
        outcome=entry.outcome,
        actor_kind=entry.actor_kind,
        actor_id=entry.actor_id,
        actor_name=entry.actor_name,
        org_code=entry.org_code,
        system_id=entry.system_id,
        resource_code=entry.resource_code,
        provider_code=entry.provider_code,
        items=json.loads(entry.items_json),
        purpose=entry.purpose,
        mode=entry.mode,
        rows=entry.rows,
        subjects=entry.subjects,
        personal=entry.personal,
        request_id=entry.request_id,
        detail=json.loads(entry.detail_json) if entry.detail_json else None,
        hash=entry.hash,
    )


CSV_COLUMNS = (
    "id",
    "chain",
    "seq",
    "time",
    "action",
    "outcome",
    "actor_kind",
    "actor_name",
    "org_code",
    "system_id",
    "resource_code",
    "provider_code",
    "items",
    "purpose",
    "mode",
    "rows",
    "subjects",
    "personal",
    "request_id",
    "hash",
)


def csv_row(entry: AuditEntry) -> list[Any]:
    """An entry as one CSV row in ``CSV_COLUMNS`` order, times on the city's clock."""
    return [
        entry.id,
        entry.chain,
        entry.seq,
        entry.at.astimezone(CHINA_TIME).isoformat(),
        entry.action,
        entry.outcome,
        entry.actor_kind,
        entry.actor_name,
        entry.org_code,
        entry.system_id,
        entry.resource_code,
        entry.provider_code,
        "|".join(json.loads(entry.items_json)),
        entry.purpose,
        entry.mode,
        entry.rows,
        entry.subjects,
        int(entry.personal),
        entry.request_id,
        entry.hash,
    ]


class VerifyIn(BaseModel):
    chain: str | None = Field(None, description="Only this chain (default: every chain).")
    public_key: str | None = Field(
        None,
        description="PEM of the Ed25519 public key checkpoints must be signed with (default: "
        "this installation's key).",
    )


class ProblemOut(BaseModel):
    chain: str
    seq: int | None
    check: str = Field(description="hash, link, sequence, head, anchor, checkpoint or signature")
    message: str


class ChainOut(BaseModel):
    name: str
    entries: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    sealed: int = Field(
        description="Entries verified by their block's signed digest (the rest one by one)."
    )
    more_problems: int


class VerifyOut(BaseModel):
    intact: bool
    entries: int
    seconds: float
    chains: list[ChainOut]
    problems: list[ProblemOut]


class UsesOut(BaseModel):
    key: str = Field(description="The day (YYYY-MM-DD), or the org, resource or provider code.")
    uses: int = Field(description="Rows delivered plus subjects verified.")
    entries: int


class StatisticsOut(BaseModel):
    group_by: str
    since: dt.date | None
    until: dt.date | None
    total: int
    rows: list[UsesOut]


class MyUseOut(BaseModel):
    """One use of records about the signed-in resident: when, who, why, what."""

    at: dt.datetime
    org_code: str | None = Field(description="The organisation that used the records.")
    provider_code: str | None = Field(description="The organisation whose data it was.")
    resource_code: str | None
    action: str
    mode: str | None
    purpose: str | None
    items: list[str]
    outcome: str


class MyUsesOut(BaseModel):
    linked: bool = Field(description="False until an identity is linked to this account.")
    items: list[MyUseOut]
    next_before: int | None


def my_use_out(entry: AuditEntry) -> MyUseOut:
    return MyUseOut(
        at=entry.at,
        org_code=entry.org_code,
        provider_code=entry.provider_code,
        resource_code=entry.resource_code,
        action=entry.action,
        mode=entry.mode,
        purpose=entry.purpose,
        items=json.loads(entry.items_json),
        outcome=entry.outcome,
    )
