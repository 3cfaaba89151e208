"""Reports — 核验报告: what a job's page shows — its lists page by page, ID numbers masked.

A scenario job's lists are its outcomes (the cancellation list, the stop list…); a rule job's are
its verdicts. A page of a list holds the rows the consumer sent, with each step's verdict, the
reasons, the match confidence and derived values — the consumer's own list, never a source's
rows — and the ID numbers masked for the screen (the download has them whole).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from haihe.core.masking import MaskKind, mask_array
from haihe.core.settings import Settings
from haihe.verification import jobs
from haihe.verification.models import VerificationJob
from haihe.verification.scenarios import Scenario
from haihe.verification.service import VERDICTS

LIST_PAGE = 50


@dataclass(frozen=True)
class ListPage:
    """One page of one list of a finished job."""

    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int


def list_names(job: VerificationJob, scenario: Scenario) -> list[str]:
    """Return the job's lists: the scenario's outcomes (primary first), or a rule's verdicts."""
    if job.kind == jobs.RULE:
        return list(VERDICTS)
    names = scenario.outcome_names()
    return [scenario.primary, *(n for n in names if n != scenario.primary)]


def list_columns(job: VerificationJob, scenario: Scenario) -> list[str]:
    """Return the columns a list shows, in order."""
    if job.kind == jobs.RULE:
        return ["row", "id_number", "verdict", "reasons", "confidence", "match"]
    return [
        "row",
        "id_number",
        *scenario.keep,
        *(s.name for s in scenario.steps),
        "reasons",
        "confidence",
        "match",
        *(d.name for d in scenario.derived),
    ]


def list_page(
    settings: Settings,
    job: VerificationJob,
    scenario: Scenario,
    *,
    name: str,
    page: int = 1,
    size: int = LIST_PAGE,
) -> ListPage:
    """Return page ``page`` (from 1; clamped) of list ``name`` of a finished job, IDs masked.

    Conflict until the job has a result (``jobs.result_path``).
    """
    path = jobs.result_path(settings, job)
    column = "verdict" if job.kind == jobs.RULE else "outcome"
    table = pq.read_table(path, filters=[(column, "=", name)])
    total = table.num_rows
    pages = max(1, math.ceil(total / size))
    page = min(max(page, 1), pages)
    part = table.slice((page - 1) * size, size)
    part = part.set_column(
        part.schema.get_field_index("id_number"),
        "id_number",
        mask_array(pc.fill_null(part["id_number"], ""), MaskKind.ID_NUMBER),
    )
    columns = [c for c in list_columns(job, scenario) if c in part.column_names]
    return ListPage(
        name=name,
        columns=columns,
        rows=part.select(columns).to_pylist(),
        total=total,
        page=page,
        pages=pages,
    )
