"""The event workflow as data — 事件流转: which action moves an event from which states to which.

One table, read by the workflow service, the API's error messages, the console's buttons and
the tests (which walk every allowed pair and a sample of forbidden ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from haihe.governance.models import AreaLevel, EventStatus

S = EventStatus


class Action(StrEnum):
    """What can be done to an event — 操作."""

    ACCEPT = "accept"  # 受理
    DISPATCH = "dispatch"  # 派遣 (to a unit at a level)
    START = "start"  # 开始处置
    RETURN = "return"  # 退回 (the unit sends it back to the command centre)
    ESCALATE = "escalate"  # 上报上级 (community → street → district → city)
    REASSIGN = "reassign"  # 改派 (to another department)
    RESOLVE = "resolve"  # 办结
    EVALUATE = "evaluate"  # 评价 (1-5)
    REOPEN = "reopen"  # 重新办理 (the reporter is not satisfied)
    CLOSE = "close"  # 结案


class Role(StrEnum):
    """Whose move an action is."""

    COMMAND = "command"  # the command centre holding the event (community/street/district/city)
    UNIT = "unit"  # the unit it was dispatched to
    REPORTER = "reporter"  # the resident, hotline or platform that reported it


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[EventStatus]
    target: EventStatus
    by: Role


def _t(action: Action, sources: set[EventStatus], target: EventStatus, by: Role) -> Transition:
    return Transition(action, frozenset(sources), target, by)


OPEN_HANDLING = {S.ACCEPTED, S.DISPATCHED, S.IN_PROGRESS, S.RETURNED, S.ESCALATED}

TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        _t(Action.ACCEPT, {S.REPORTED}, S.ACCEPTED, Role.COMMAND),
        _t(Action.DISPATCH, {S.ACCEPTED, S.RETURNED, S.ESCALATED}, S.DISPATCHED, Role.COMMAND),
        _t(Action.START, {S.DISPATCHED}, S.IN_PROGRESS, Role.UNIT),
        _t(Action.RETURN, {S.DISPATCHED, S.IN_PROGRESS}, S.RETURNED, Role.UNIT),
        _t(Action.ESCALATE, {S.REPORTED, *OPEN_HANDLING}, S.ESCALATED, Role.COMMAND),
        _t(Action.REASSIGN, {S.DISPATCHED, S.IN_PROGRESS}, S.DISPATCHED, Role.COMMAND),
        _t(Action.RESOLVE, {S.IN_PROGRESS}, S.RESOLVED, Role.UNIT),
        _t(Action.EVALUATE, {S.RESOLVED}, S.EVALUATED, Role.REPORTER),
        _t(Action.REOPEN, {S.RESOLVED, S.EVALUATED}, S.ACCEPTED, Role.REPORTER),
        _t(Action.CLOSE, {S.REPORTED, S.ACCEPTED, S.RESOLVED, S.EVALUATED}, S.CLOSED, Role.COMMAND),
    )
}

# States in which the command centre may blow the whistle (吹哨) on an event.
WHISTLE_STATES = frozenset(OPEN_HANDLING)
# Open311's two statuses: a resolved event is closed for the reporter unless reopened.
CLOSED_FOR_OPEN311 = frozenset({S.RESOLVED, S.EVALUATED, S.CLOSED})
# Still being handled: counted against its deadline.
LIVE = frozenset({S.REPORTED, *OPEN_HANDLING})

LEVELS_UP: dict[AreaLevel, AreaLevel] = {
    AreaLevel.CELL: AreaLevel.COMMUNITY,
    AreaLevel.COMMUNITY: AreaLevel.STREET,
    AreaLevel.STREET: AreaLevel.DISTRICT,
    AreaLevel.DISTRICT: AreaLevel.CITY,
}
# Highest first: the order a command centre may dispatch down to.
LEVEL_RANK: dict[AreaLevel, int] = {
    AreaLevel.CITY: 4,
    AreaLevel.DISTRICT: 3,
    AreaLevel.STREET: 2,
    AreaLevel.COMMUNITY: 1,
    AreaLevel.CELL: 0,
}


def allowed_actions(status: EventStatus) -> list[Action]:
    """The actions the table allows from ``status``, in the table's order."""
    return [t.action for t in TRANSITIONS.values() if status in t.sources]


def check(action: Action, status: EventStatus) -> Transition:
    """The transition for ``action`` from ``status``; ValueError naming the allowed ones if none."""
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        allowed = ", ".join(a.value for a in allowed_actions(status)) or "none (it is closed)"
        raise ValueError(
            f"cannot {action.value} an event that is {status.value}; allowed now: {allowed}"
        )
    return transition
