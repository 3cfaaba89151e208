"""Scoring — 评估: a scenario's primary list against a ground truth, as precision and recall.

A truth file (Parquet or CSV, e.g. the synthetic city's ``truth/bus_cards.parquet``) holds the
scenario's key column (``card_no``…) and a yes-column (``should_revoke``…); its ``[score]``
section names both. Precision: of the rows on the primary list, the share the truth says yes
to. Recall: of the truth's yes rows, the share on the list — over the whole truth, so someone
missing from the input list counts as missed. Rows whose outcome the scenario excludes
(``already_stopped``…) are outside the question on both sides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from haihe.core.auth import Principal
from haihe.core.errors import Conflict, InvalidInput
from haihe.core.settings import Settings
from haihe.verification import jobs
from haihe.verification.scenarios import Scenario, get_scenario


def score(result: pa.Table, truth: pa.Table, scenario: Scenario) -> dict[str, Any]:
    """Return tp, fp, fn, precision and recall of ``scenario``'s primary list in ``result``."""
    spec = scenario.score
    if spec is None:
        raise InvalidInput(f"scenario {scenario.name} declares no [score]")
    for table, name, columns in (
        (truth, "the truth", (spec.key, spec.column)),
        (result, "the result", (spec.key, "outcome")),
    ):
        lacking = [c for c in columns if c not in table.column_names]
        if lacking:
            raise InvalidInput(f"{name} lacks {', '.join(lacking)}")
    keys = [str(k) for k in result[spec.key].to_pylist()]
    outcome = result["outcome"].to_pylist()
    listed = {k for k, o in zip(keys, outcome, strict=True) if o == scenario.primary}
    excluded = {k for k, o in zip(keys, outcome, strict=True) if o in spec.exclude}
    yes_column = pc.cast(truth[spec.column], pa.bool_())
    truth_keys = [str(k) for k in truth[spec.key].to_pylist()]
    positive = {
        k
        for k, v in zip(truth_keys, yes_column.to_pylist(), strict=True)
        if v is not None and v == spec.value and k not in excluded
    }
    tp = len(listed & positive)
    fp = len(listed - positive)
    fn = len(positive - listed)
    return {
        "truth": spec.truth,
        "list": scenario.primary,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
    }


def read_truth(path: Path) -> pa.Table:
    """Return a truth file as a table (Parquet, or CSV for any other suffix)."""
    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path)
        return pacsv.read_csv(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"{path.name} is not a readable truth file: {exc}") from None


def score_job(
    session: Session, *, actor: Principal, settings: Settings, job_id: int, truth: Path
) -> dict[str, Any]:
    """Score a finished scenario job against ``truth``; keep the score on the job (flushed)."""
    job = jobs.get_job(session, actor=actor, job_id=job_id)
    if job.kind != jobs.SCENARIO:
        raise Conflict(f"job {job_id} runs rule {job.rule}; only scenario jobs are scored")
    result = pq.read_table(jobs.result_path(settings, job))
    found = score(result, read_truth(truth), get_scenario(job.rule))
    job.score = found
    session.flush()
    return found
