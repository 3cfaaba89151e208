"""Scoring — 评估: a scenario's primary list against a ground truth, as precision and recall.

A truth file (Parquet or CSV, e.g. the synthetic city's ``truth/bus_cards.parquet``) holds the
scenario's key column (``card_no``…) and a yes-column (``should_revoke``…); its ``[score]``
section names both. Precision: of the rows on the primary list, the share the truth says yes
to. Recall: of the truth's yes rows, the share on the list — over the whole truth, so someone
missing from the input list counts as missed. Rows whose outcome the scenario excludes
(``already_stopped``…) are outside the question on both sides.

The platform's own commands score a job by path (``score_job``: ``haihe verify score``, the
demo); REST and the console score it with an uploaded file (``score_upload``), for a caller who
may see the job and could run it now. Scoring reads the job's result and the caller's file,
never a source, so a score is not a use of anyone's data and is not in the audit ledger — as
cancelling or downloading a job is not; a caller refused for want of verify grants is, as
everywhere the grants are checked.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from haihe.core.auth import Principal
from haihe.core.errors import Conflict, InvalidInput
from haihe.core.settings import Settings
from haihe.verification import jobs, service
from haihe.verification.models import JobStatus, VerificationJob
from haihe.verification.rules import get_rule
from haihe.verification.scenarios import Scenario, ScoreSpec

ACTION = "verification.score"  # the action a refusal for want of verify grants is audited as
TRUTH_SUFFIXES = (".csv", ".txt", ".parquet")


def score(result: pa.Table, truth: pa.Table, scenario: Scenario) -> dict[str, Any]:
    """Return tp, fp, fn, precision and recall of ``scenario``'s primary list in ``result``."""
    spec = scenario.score
    if spec is None:
        raise InvalidInput(f"scenario {scenario.name} declares no [score]")
    lacking = [c for c in (spec.key, spec.column) if c not in truth.column_names]
    if lacking:
        raise InvalidInput(
            f"the truth lacks the column(s) {', '.join(lacking)}; {expected_truth(scenario, spec)}",
            details={"lacking": lacking, "columns": truth.column_names},
        )
    lacking = [c for c in (spec.key, "outcome") if c not in result.column_names]
    if lacking:
        raise InvalidInput(f"the result lacks {', '.join(lacking)}")
    keys = [str(k) for k in result[spec.key].to_pylist()]
    outcome = result["outcome"].to_pylist()
    listed = {k for k, o in zip(keys, outcome, strict=True) if o == scenario.primary}
    excluded = {k for k, o in zip(keys, outcome, strict=True) if o in spec.exclude}
    try:
        yes_column = pc.cast(truth[spec.column], pa.bool_())
    except pa.ArrowException:
        raise InvalidInput(
            f"the truth's {spec.column} column is not true/false (or 1/0) in every row; "
            + expected_truth(scenario, spec)
        ) from None
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


def expected_truth(scenario: Scenario, spec: ScoreSpec) -> str:
    """Say what a truth file for ``scenario`` holds (the end of an error message)."""
    yes = "true" if spec.value else "false"
    return (
        f"a ground truth for {scenario.name} has a row per {spec.key} and a column {spec.column} "
        f"that is {yes} where the row belongs on the {scenario.primary} list"
    )


def read_truth(path: Path, *, name: str | None = None) -> pa.Table:
    """Return a truth file as a table (Parquet, or CSV for any other suffix); ``name`` is what
    an error calls it (the uploaded file's name; the path's by default)."""
    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path)
        return pacsv.read_csv(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(
            f"{name or path.name} is not a readable truth file (CSV in UTF-8, or Parquet): {exc}"
        ) from None


def score_job(
    session: Session, *, actor: Principal, settings: Settings, job_id: int, truth: Path
) -> dict[str, Any]:
    """Score a finished scenario job against the truth file ``truth``; keep the score on the
    job (flushed). For the platform's own commands: the actor need only see the job."""
    job = jobs.get_job(session, actor=actor, job_id=job_id)
    scenario = _scorable(job)
    return _keep(session, settings, job, scenario, read_truth(truth))


def score_upload(
    session: Session,
    *,
    actor: Principal,
    settings: Settings,
    job_id: int,
    upload: BinaryIO,
    filename: str,
) -> dict[str, Any]:
    """Score a finished scenario job against an uploaded truth file (REST, the console); keep
    the score on the job (flushed) and return it.

    NotFound for a job the actor may not see; Conflict for a rule job, a scenario without
    ``[score]`` or a job that has not succeeded; Forbidden (audited) unless the actor could run
    the job now, as ``POST /jobs`` requires — the verify grants of every step at the job's
    parameters; InvalidInput for a file that is not CSV or Parquet, cannot be read, or lacks
    the scenario's key or yes-column (the message says what the file needs).
    """
    job = jobs.get_job(session, actor=actor, job_id=job_id)
    scenario = _scorable(job)
    _check_may_run(session, actor, job, scenario)
    suffix = Path(filename).suffix.lower() or ".csv"
    if suffix not in TRUTH_SUFFIXES:
        raise InvalidInput(f"upload the ground truth as a .csv or .parquet file, not {filename!r}")
    path = settings.data_dir / "tmp" / f"truth-{uuid.uuid4().hex}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("wb") as fh:
            shutil.copyfileobj(upload, fh)
        truth = read_truth(path, name=filename)
    finally:
        path.unlink(missing_ok=True)
    return _keep(session, settings, job, scenario, truth)


def _scorable(job: VerificationJob) -> Scenario:
    """The job's scenario, if the job can be scored; Conflict saying why not otherwise."""
    if job.kind != jobs.SCENARIO:
        raise Conflict(f"job {job.id} runs rule {job.rule}; only scenario jobs are scored")
    scenario, _ = jobs.resolve(job.rule)
    if scenario.score is None:
        raise Conflict(f"scenario {scenario.name} declares no [score]; its jobs are not scored")
    if job.status is not JobStatus.SUCCEEDED:
        raise Conflict(f"job {job.id} is {job.status.value}; it is scored once it succeeds")
    return scenario


def _check_may_run(
    session: Session, actor: Principal, job: VerificationJob, scenario: Scenario
) -> None:
    """Forbidden, naming the grants missing, unless ``actor`` holds the verify grants every step
    of ``job`` needs (the check a new job makes; its refusal is audited as ``ACTION``)."""
    values = scenario.params(job.params)
    for step in scenario.steps:
        service.prepare(
            session,
            actor=actor,
            rule=get_rule(step.rule),
            params=scenario.step_params(step, values),
            action=ACTION,
        )


def _keep(
    session: Session,
    settings: Settings,
    job: VerificationJob,
    scenario: Scenario,
    truth: pa.Table,
) -> dict[str, Any]:
    """Score ``job``'s result against ``truth``; keep the score on the job (flushed)."""
    path = jobs.result_path(settings, job)
    assert scenario.score is not None
    present = set(pq.read_schema(path).names)
    wanted = [c for c in (scenario.score.key, "outcome") if c in present]
    found = score(pq.read_table(path, columns=wanted), truth, scenario)
    job.score = found
    session.flush()
    return found
