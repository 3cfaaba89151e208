"""What may be opened — 开放规则: a view checked against its resource's items.

The rule, item by item (sensitivity L1-L4 and the personal flag come from the catalogue):

- **L4 is never opened**: not as a column, not masked, not as a group, not inside a figure.
- **L3 and personal items** (姓名, 身份证号, 电话…) are opened only **masked** (脱敏, by their
  kind) or **aggregated away**: left out of an aggregation's groups, and inside its figures only
  as ``count``. They may not be grouped on, summed, averaged, taken the least or greatest of,
  and no row condition may name them (a condition on an ID number picks one person out).
- L1 and L2 items that are not personal are opened as they are.

A resource that is 不予开放 is never published, and a dataset is never more open than its
resource (an 有条件开放 resource gives 有条件开放 datasets only).
"""

from __future__ import annotations

from dataclasses import dataclass

from haihe.catalogue.models import DataItem, OpenType, Resource, Sensitivity
from haihe.core.errors import InvalidInput
from haihe.portal.schemas import ViewSpec

RESTRICTED = frozenset({Sensitivity.L3, Sensitivity.L4})


@dataclass(frozen=True)
class Column:
    """One column a view gives out: its name, label, Arrow-portable type and origin."""

    name: str
    label_zh: str
    label_en: str | None
    item: str | None
    masked: bool
    figure: str | None = None


def describe(item: DataItem) -> str:
    flags = [item.sensitivity.value] + (["personal"] if item.personal else [])
    return f"{item.name} ({item.name_zh}, {', '.join(flags)})"


def restricted(item: DataItem) -> bool:
    """True for items opened only masked or aggregated away (L3, L4, personal)."""
    return item.sensitivity in RESTRICTED or item.personal


def check_open_type(resource: Resource, wanted: OpenType | None) -> OpenType:
    """Return the dataset's open type; InvalidInput when the resource cannot be opened so."""
    if resource.open_type is OpenType.NOT_OPEN:
        raise InvalidInput(
            f"catalogue entry {resource.code} is 不予开放 (not open): it cannot be published",
            details={"resource": resource.code, "open_type": resource.open_type.value},
        )
    chosen = wanted or resource.open_type
    if chosen is OpenType.NOT_OPEN:
        raise InvalidInput("a published dataset is 无条件开放 or 有条件开放, never 不予开放")
    if resource.open_type is OpenType.CONDITIONAL and chosen is OpenType.UNCONDITIONAL:
        raise InvalidInput(
            f"catalogue entry {resource.code} is 有条件开放: its datasets are conditional too",
            details={"resource": resource.code},
        )
    return chosen


def check_view(resource: Resource, view: ViewSpec) -> list[Column]:
    """Return the columns ``view`` gives out; InvalidInput naming every item it may not open."""
    items = {i.name: i for i in resource.items}
    named = [*view.items, *view.masked, *(c.item for c in view.where), *view.indexed]
    if view.aggregate:
        named += view.aggregate.group_by + [m.item for m in view.aggregate.measures if m.item]
    unknown = sorted({n for n in named if n not in items})
    if unknown:
        raise InvalidInput(
            f"{resource.code} has no data item {', '.join(unknown)}",
            details={"unknown": unknown},
        )
    never = sorted({n for n in named if items[n].sensitivity is Sensitivity.L4})
    if view.aggregate is None:
        chosen = view.items or [i.name for i in resource.items]
        never = sorted({*never, *(n for n in chosen if items[n].sensitivity is Sensitivity.L4)})
    if never:
        raise InvalidInput(
            "L4 items are never opened, not even masked or aggregated: "
            + "; ".join(describe(items[n]) for n in never),
            details={"items": never, "rule": "L4"},
        )
    conditioned = sorted({c.item for c in view.where if restricted(items[c.item])})
    if conditioned:
        raise InvalidInput(
            "a row condition may not name L3 or personal items (it would pick people out): "
            + "; ".join(describe(items[n]) for n in conditioned),
            details={"items": conditioned, "rule": "condition"},
        )
    if view.aggregate is not None:
        return _aggregate_columns(resource, view, items)
    return _plain_columns(resource, view, items)


def _plain_columns(resource: Resource, view: ViewSpec, items: dict[str, DataItem]) -> list[Column]:
    chosen = view.items or [i.name for i in resource.items]
    masked = set(view.masked)
    open_raw = sorted(n for n in chosen if restricted(items[n]) and n not in masked)
    if open_raw:
        raise InvalidInput(
            "L3 and personal items must be masked or aggregated away before they are opened: "
            + "; ".join(describe(items[n]) for n in open_raw),
            details={"items": open_raw, "rule": "mask_or_aggregate"},
        )
    stray = sorted(masked - set(chosen))
    if stray:
        raise InvalidInput(f"masked item(s) {', '.join(stray)} are not among the view's items")
    unindexable = sorted(n for n in view.indexed if n not in chosen or n in masked)
    if unindexable:
        raise InvalidInput(
            f"indexed item(s) {', '.join(unindexable)} must be opened unmasked in the view"
        )
    return [Column(n, items[n].name_zh, items[n].name_en, n, masked=n in masked) for n in chosen]


def _aggregate_columns(
    resource: Resource, view: ViewSpec, items: dict[str, DataItem]
) -> list[Column]:
    assert view.aggregate is not None
    if view.items or view.masked:
        raise InvalidInput("an aggregated view takes group_by and measures, not items or masked")
    grouped = sorted(n for n in view.aggregate.group_by if restricted(items[n]))
    figured = sorted(
        {m.item for m in view.aggregate.measures if m.item and m.fn != "count"}
        & {n for n in items if restricted(items[n])}
    )
    refused = sorted({*grouped, *figured})
    if refused:
        raise InvalidInput(
            "L3 and personal items are aggregated away only when they are neither grouped on "
            "nor summed, averaged or ranked: " + "; ".join(describe(items[n]) for n in refused),
            details={"items": refused, "rule": "mask_or_aggregate"},
        )
    names = [*view.aggregate.group_by, *(m.name for m in view.aggregate.measures)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(f"column name(s) {', '.join(twice)} appear twice in the aggregation")
    unindexable = sorted(set(view.indexed) - set(view.aggregate.group_by))
    if unindexable:
        raise InvalidInput(f"indexed item(s) {', '.join(unindexable)} must be grouped on")
    out = [
        Column(n, items[n].name_zh, items[n].name_en, n, masked=False)
        for n in view.aggregate.group_by
    ]
    for m in view.aggregate.measures:
        label = FIGURE_ZH[m.fn] + (items[m.item].name_zh if m.item else "记录")
        out.append(Column(m.name, label, None, m.item, masked=False, figure=m.fn))
    return out


FIGURE_ZH = {"count": "计数·", "sum": "合计·", "avg": "平均·", "min": "最小·", "max": "最大·"}
