"""Demo step: the synthetic departments request each other's data — 共享申请 played out.

A dozen requests between the departments of the synthetic city, decided the way the rules
decide them: unconditional entries granted at once, conditional ones approved (some narrowed),
one refused, one left pending past its deadline and escalated, one still waiting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from haihe.catalogue.models import Resource, ResourceStatus, SharingMode
from haihe.core.auth import Principal, system_principal
from haihe.core.calendar import city_today
from haihe.core.db import utcnow
from haihe.core.settings import Settings
from haihe.exchange import decisions, service
from haihe.exchange.schemas import ApproveIn, RequestIn
from haihe.orgs.models import Organisation

ACTOR = system_principal("demo")


@dataclass(frozen=True)
class Ask:
    """One request of the demo: who asks whom for which entry, why, and what becomes of it."""

    consumer: str
    provider: str
    name_zh: str
    purpose: str
    modes: tuple[SharingMode, ...]
    outcome: str  # granted (by the rule), approved, refused, overdue, pending
    items: int = 4  # how many of the entry's first items are asked for


QUERY, VERIFY, BULK = SharingMode.QUERY, SharingMode.VERIFY, SharingMode.BULK
SUBSCRIBE = SharingMode.SUBSCRIBE
ASKS: tuple[Ask, ...] = (
    Ask("GA", "SCJG", "企业登记信息", "核查涉案企业登记状态", (QUERY, BULK), "granted"),
    Ask("RS", "MZ", "社区（村）", "社保服务下沉到社区", (QUERY, SUBSCRIBE), "granted"),
    Ask("GA", "JT", "网络预约出租汽车驾驶员证", "核查非法网约车", (VERIFY, QUERY), "granted"),
    Ask("ZWFW", "SCJG", "行政处罚信息", "政务服务信用核查", (QUERY,), "granted"),
    Ask("RS", "WJW", "居民死亡医学证明", "发现死亡后停发养老金", (VERIFY,), "approved"),
    Ask("GJJ", "MZ", "最低生活保障对象", "低保家庭提取公积金", (VERIFY,), "approved"),
    Ask("JT", "GA", "户籍人口登记信息", "老年人乘车优待卡资格核验", (VERIFY,), "approved"),
    Ask("RS", "MZ", "火化信息", "发现死亡后停发养老金", (VERIFY,), "approved"),
    Ask("MZ", "GJJ", "住房公积金个人账户", "低保家庭经济状况核对", (QUERY,), "approved"),
    Ask("ZJW", "WJW", "医疗机构就诊记录", "住房保障资格审核", (QUERY,), "refused"),
    Ask("YB", "RS", "养老保险待遇领取人员", "医保待遇核查", (VERIFY,), "overdue"),
    Ask("CL", "WJW", "老年人健康体检记录", "残疾老人健康服务", (QUERY,), "pending"),
)
REFUSAL = "就诊记录属敏感个人信息，住房保障审核不需要，不符合最小必要原则。"


@dataclass
class PlayedOut:
    """What the step did: request ids by outcome, and the asks it skipped (entry missing)."""

    outcomes: dict[str, list[int]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def play_out(
    session: Session,
    *,
    settings: Settings,
    now: dt.datetime | None = None,
    actor: Principal = ACTOR,
) -> PlayedOut:
    """Submit and decide the demo's requests (``settings``: the installation the demo builds)."""
    now = now or utcnow()
    played = PlayedOut()
    for ask in ASKS:
        resource = entry_of(session, ask.provider, ask.name_zh)
        consumer = session.scalars(
            select(Organisation).where(Organisation.code == ask.consumer)
        ).first()
        if resource is None or consumer is None:
            played.skipped.append(f"{ask.consumer} → {ask.provider} {ask.name_zh}")
            continue
        modes = [m for m in ask.modes if m.value in resource.sharing_modes]
        submitted = now - dt.timedelta(days=30) if ask.outcome == "overdue" else now
        data = RequestIn(
            resource_code=resource.code,
            consumer_org_code=ask.consumer,
            items=[i.name for i in resource.items][: ask.items],
            purpose=ask.purpose,
            modes=modes or [SharingMode(resource.sharing_modes[0])],
            duration_days=365,
        )
        req = service.submit_request(session, actor=actor, data=data, now=submitted)
        if ask.outcome == "approved":
            narrowed = ApproveIn(items=data.items[:3], calls_per_day=10_000)
            decisions.approve(session, actor=actor, request_id=req.id, data=narrowed, now=now)
        elif ask.outcome == "refused":
            decisions.refuse(session, actor=actor, request_id=req.id, reason=REFUSAL, now=now)
        played.outcomes.setdefault(ask.outcome, []).append(req.id)
    service.escalate_overdue(session, today=city_today(now))
    return played


def entry_of(session: Session, provider: str, name_zh: str) -> Resource | None:
    """The published entry ``name_zh`` of ``provider`` (the first, if several), or None."""
    return session.scalars(
        select(Resource)
        .join(Organisation, Organisation.id == Resource.provider_id)
        .where(
            Organisation.code == provider,
            Resource.name_zh == name_zh,
            Resource.status == ResourceStatus.PUBLISHED,
        )
        .order_by(Resource.id)
    ).first()
