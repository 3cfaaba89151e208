"""``haihe verify …``: rules, source bindings and batch verification jobs.

Runs act for an organisation, under its verify grants: ``--as USER`` (that user), or ``--org
CODE`` (the machine's operator acting for that organisation). Bindings are the platform admin's.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from sqlalchemy.orm import Session

from haihe.audit import subject_sets
from haihe.core.auth import Principal, system_principal
from haihe.core.clikit import JsonOption, print_json, print_table, session_for, settings_of
from haihe.core.db import make_engine, make_session_factory
from haihe.core.errors import InvalidInput, NotFound
from haihe.orgs import repository as orgs_repo
from haihe.orgs.auth import principal_of_user
from haihe.verification import jobs, scoring, service
from haihe.verification.rules import registry
from haihe.verification.scenarios import scenarios

verify_app = typer.Typer(
    help="Data verification (数据核验): rules, source bindings, batch jobs.", no_args_is_help=True
)
AsOption = typer.Option(None, "--as", help="Act as this user (its organisation's grants).")
OrgOption = typer.Option(None, "--org", help="Act for this organisation (its grants).")


def _actor(session: Session, username: str | None, org_code: str | None) -> Principal:
    if username is not None:
        user = orgs_repo.user_by_username(session, username)
        principal = principal_of_user(user) if user else None
        if principal is None:
            raise NotFound(f"no active user {username!r}")
        return principal
    base = system_principal("cli")
    if org_code is None:
        return base
    org = orgs_repo.org_by_code(session, org_code)
    if org is None:
        raise NotFound(f"no organisation {org_code!r}")
    return Principal(
        kind="system",
        id=0,
        name=f"cli:{org.code}",
        org_id=org.id,
        org_code=org.code,
        roles=base.roles,
    )


def _params(values: list[str]) -> dict[str, str]:
    params = {}
    for value in values:
        name, sep, given = value.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--param takes NAME=VALUE, not {value!r}")
        params[name.strip()] = given.strip()
    return params


@verify_app.command("rules")
def rules_list(as_json: bool = JsonOption) -> None:
    """List the verification rules (built-in and the city's own)."""
    rules = sorted(registry().values(), key=lambda r: r.name)
    if as_json:
        print_json(
            [
                {
                    "name": r.name,
                    "version": r.version,
                    "title_zh": r.title_zh,
                    "title_en": r.title_en,
                    "parameters": {p.name: p.type for p in r.parameters.values()},
                    "sources": list(r.sources),
                }
                for r in rules
            ]
        )
        return
    print_table(
        ["rule", "version", "title", "parameters", "sources"],
        [
            (
                r.name,
                r.version,
                r.title_zh,
                ", ".join(f"{p.name}:{p.type}" for p in r.parameters.values()),
                ", ".join(r.sources),
            )
            for r in rules
        ],
    )


@verify_app.command("scenarios")
def scenarios_list(as_json: bool = JsonOption) -> None:
    """List the verification scenarios (built-in and the city's own)."""
    found = sorted(scenarios().values(), key=lambda s: s.name)
    if as_json:
        print_json(
            [
                {
                    "name": s.name,
                    "version": s.version,
                    "title_zh": s.title_zh,
                    "title_en": s.title_en,
                    "steps": {st.name: st.rule for st in s.steps},
                    "outcomes": s.outcome_names(),
                    "input_columns": ["id_number", *s.keep],
                }
                for s in found
            ]
        )
        return
    print_table(
        ["scenario", "version", "title", "rules", "outcomes", "input"],
        [
            (
                s.name,
                s.version,
                s.title_zh,
                ", ".join(st.rule for st in s.steps),
                ", ".join(s.outcome_names()),
                ", ".join(["id_number", *s.keep]),
            )
            for s in found
        ],
    )


@verify_app.command("score")
def score(
    ctx: typer.Context,
    job_id: int,
    truth: Path = typer.Option(..., "--truth", help="Ground truth: Parquet or CSV."),
    as_json: bool = JsonOption,
) -> None:
    """Score a finished scenario job against a ground truth (the key and yes-column its
    scenario names); keep the precision and recall on the job for its report."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        found = scoring.score_job(
            session, actor=system_principal("cli"), settings=settings, job_id=job_id, truth=truth
        )
    if as_json:
        print_json(found)
        return
    typer.echo(
        f"job {job_id}: precision {found['precision']:.4f}, recall {found['recall']:.4f} "
        f"(tp {found['tp']}, fp {found['fp']}, fn {found['fn']})"
    )


@verify_app.command("bindings")
def bindings_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List the source roles and the catalogue entries bound to them."""
    with session_for(settings_of(ctx)) as session:
        rows = service.list_bindings(session)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["role", "resource", "version", "items"],
        [(r["role"], r["resource"], r["current_version"], ", ".join(r["items"])) for r in rows],
    )


@verify_app.command("bind")
def bind(ctx: typer.Context, role: str, code: str) -> None:
    """Bind source ROLE to catalogue entry CODE."""
    with session_for(settings_of(ctx)) as session:
        service.bind(session, actor=system_principal("cli"), role=role, code=code)
    typer.echo(f"{role} → {code}")


@verify_app.command("unbind")
def unbind(ctx: typer.Context, role: str) -> None:
    """Remove the binding of source ROLE."""
    with session_for(settings_of(ctx)) as session:
        service.unbind(session, actor=system_principal("cli"), role=role)
    typer.echo(f"{role} unbound")


@verify_app.command("run")
def run(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="RULE_OR_SCENARIO"),
    input: Path = typer.Option(..., "--input", "-i", help="Subjects: CSV or Parquet."),
    output: Path = typer.Option(..., "--output", "-o", help="Answers: .csv or .parquet."),
    param: list[str] = typer.Option([], "--param", "-p", help="A parameter NAME=VALUE."),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb (default) or spark."),
    username: str | None = AsOption,
    org_code: str | None = OrgOption,
    as_json: bool = JsonOption,
) -> None:
    """Verify every subject of a file by a rule or scenario; write one answer per subject, in
    input order (a scenario adds its outcome: the lists)."""
    settings = settings_of(ctx)
    with session_for(settings) as session:
        actor = _actor(session, username, org_code)
        job_id = jobs.create_job(
            session,
            actor=actor,
            settings=settings,
            name=name,
            params=_params(param),
            input_path=input,
            engine=engine,
        ).id
    typer.echo(f"job {job_id}", err=True)
    _run(ctx, job_id, output, as_json)


@verify_app.command("resume")
def resume(
    ctx: typer.Context,
    job_id: int,
    output: Path = typer.Option(..., "--output", "-o", help="Answers: .csv or .parquet."),
    as_json: bool = JsonOption,
) -> None:
    """Finish a job a crash or kill interrupted, without redoing its finished chunks."""
    _run(ctx, job_id, output, as_json)


@verify_app.command("cancel")
def cancel(ctx: typer.Context, job_id: int) -> None:
    """Stop a job after its current chunk."""
    with session_for(settings_of(ctx)) as session:
        job = jobs.cancel_job(session, actor=system_principal("cli"), job_id=job_id)
        typer.echo(f"job {job.id}: {job.status.value} (cancel requested)")


@verify_app.command("jobs")
def jobs_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List the newest verification jobs."""
    with session_for(settings_of(ctx)) as session:
        rows = [
            (j.id, j.rule, j.status.value, f"{j.chunks_done}/{j.chunks}", j.subjects, j.input_name)
            for j in jobs.repository.list_jobs(session, org_id=None, limit=100)
        ]
    if as_json:
        keys = ("id", "rule", "status", "chunks", "subjects", "input")
        print_json([dict(zip(keys, r, strict=True)) for r in rows])
        return
    print_table(["id", "rule", "status", "chunks", "subjects", "input"], rows)


def _bar() -> Progress:
    """A progress bar on stderr: what, how far, how long."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )


def _run(ctx: typer.Context, job_id: int, output: Path, as_json: bool) -> None:
    settings = settings_of(ctx)
    engine = make_engine(settings)
    try:
        factory = make_session_factory(engine, settings)
        with _bar() as bar:
            task = bar.add_task(f"job {job_id}", total=None)
            status = jobs.run_job(
                factory,
                settings,
                job_id,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        with factory() as session:
            job = jobs.repository.job_by_id(session, job_id)
            assert job is not None
            if status is not jobs.JobStatus.SUCCEEDED:
                raise InvalidInput(f"job {job_id} {status.value}: {job.error or ''}".strip())
            jobs.write_output(jobs.result_path(settings, job), output)
            summary = {"job": job_id, "output": str(output), **job.summary}
        # the job's persons go into the citizen's-view index now rather than at the next tick
        # of the periodic task (the view already finds them in the sets' files meanwhile)
        with _bar() as bar:
            task = bar.add_task("indexing the audited subjects", total=None)
            subject_sets.index_pending(
                factory,
                settings,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        engine.dispose()
    if as_json:
        print_json(summary)
        return
    verdicts = summary.get("verdicts") or summary.get("outcomes", {})
    typer.echo(
        f"job {job_id}: {summary.get('subjects', 0)} subjects → "
        + ", ".join(f"{k} {v}" for k, v in verdicts.items())
        + f"; written to {output}"
    )
