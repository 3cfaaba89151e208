"""Background work wired at the edge: Haihe's periodic tasks and outbox channels, registered
with the same calls a city's own package uses (``haihe.core.jobs.register_task``,
``haihe.core.outbox.register_channel``), then the city's plugin modules.

The app registers them when it is created and starts the scheduler in its lifespan when
``jobs_enabled`` is set; ``haihe jobs`` registers them for the operator's commands and workers.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy.orm import Session, sessionmaker

from haihe.audit import service as audit_service
from haihe.audit import subject_sets as audit_sets
from haihe.core import jobs, outbox
from haihe.core.auth import system_principal
from haihe.core.clikit import JsonOption, print_json, print_table, settings_of
from haihe.core.db import make_engine, make_session_factory, transaction
from haihe.core.errors import ConfigError
from haihe.core.settings import Settings
from haihe.exchange import exports, webhooks
from haihe.exchange import service as exchange_service
from haihe.governance import deadlines as governance_deadlines
from haihe.governance import snapshot as governance_snapshot
from haihe.portal import service as portal_service
from haihe.verification import daily as verification_daily
from haihe.verification import register as verification_register

log = logging.getLogger("haihe.jobs")

SHANGHAI = ZoneInfo("Asia/Shanghai")


def register_background_work(settings: Settings) -> list[str]:
    """Register the built-in periodic tasks and outbox channels, then import the city's plugins
    (which register theirs with the same calls); return the built-in functions found missing.

    A missing function is logged and skipped rather than stopping the app: the rest still runs.
    """
    missing: list[str] = []

    def optional(module: Any, name: str) -> Callable[..., Any] | None:
        found = getattr(module, name, None)
        if found is None:
            missing.append(f"{module.__name__}.{name}")
            log.warning("periodic task %s.%s is missing; it will not run", module.__name__, name)
        return found

    def every(seconds: float) -> dt.timedelta:
        return dt.timedelta(seconds=seconds)

    def task(name: str, seconds: float, run: jobs.TaskFunction, description: str) -> None:
        jobs.register_task(name, every(seconds), run, description=description, replace=True)

    outbox.register_channel(webhooks.CHANNEL, webhooks.deliver_webhook, replace=True)
    task(
        "outbox.deliver",
        settings.jobs_tick_seconds,
        lambda c: outbox.deliver_due(c.session_factory, settings=c.settings, now=c.now),
        "deliver due outbox messages (webhooks), with retries",
    )
    expire = optional(exchange_service, "expire_grants")
    if expire is not None:
        task("exchange.expire_grants", 60, lambda c: expire(c.session, now=c.now), "expire grants")
    escalate = optional(exchange_service, "escalate_overdue")
    if escalate is not None:
        task(
            "exchange.escalate_overdue",
            3600,
            lambda c: escalate(c.session, today=c.now.astimezone(SHANGHAI).date()),
            "escalate access requests past their 10 working days",
        )
    checkpoint = optional(audit_service, "checkpoint")
    if checkpoint is not None:
        task(
            "audit.checkpoint",
            getattr(settings, "audit_checkpoint_every", 3600),
            lambda c: checkpoint(c.session, settings=c.settings),
            "sign each audit chain's head",
        )
    task(
        "exchange.exports.run_queued",
        60,
        lambda c: exports.run_queued_exports(c.session_factory, settings=c.settings),
        "run bulk exports left queued by a stopped process",
    )
    task(
        "exchange.exports.remove_expired",
        3600,
        lambda c: exports.remove_expired_exports(c.session, now=c.now),
        "delete the files of expired exports",
    )
    task(
        "exchange.subscriptions.scan",
        settings.subscription_scan_seconds,
        lambda c: webhooks.scan_subscriptions(c.session, settings=c.settings, now=c.now),
        "queue webhook events for newly loaded versions",
    )
    scan = optional(governance_deadlines, "scan_deadlines")
    if scan is not None:
        task(
            "governance.deadlines",
            settings.governance_deadline_scan_seconds,
            lambda c: scan(c.session, settings=c.settings, now=c.now),
            "remind, flag overdue and supervise governance events and whistles",
        )
    refresh = optional(governance_snapshot, "refresh")
    if refresh is not None:
        task(
            "governance.snapshot",
            settings.governance_snapshot_seconds,
            lambda c: refresh(c.session, settings=c.settings, now=c.now),
            "take the events written since into the governance statistics snapshot",
        )
    refresh_portal = optional(portal_service, "refresh_stale")
    if refresh_portal is not None:
        task(
            "portal.refresh_stale",
            settings.portal_refresh_seconds,
            lambda c: refresh_portal(
                c.session, settings=c.settings, actor=system_principal("portal-refresh")
            ),
            "rewrite open datasets from their resources' newly loaded versions",
        )
    task(
        audit_sets.TASK,
        settings.audit_index_seconds,
        lambda c: audit_sets.index_pending(c.session_factory, c.settings),
        "index the persons of batch verifications for the citizen's view",
    )
    task(
        verification_register.TASK,
        settings.verification_stop_scan_seconds,
        lambda c: verification_register.ensure_current(c.session, c.settings),
        "build the identity register's blocking index when a new version is loaded",
    )
    task(
        verification_daily.TASK,
        settings.verification_stop_scan_seconds,
        lambda c: verification_daily.run_daily_stop(c.session_factory, c.settings, now=c.now),
        "run the pension stop on newly loaded death records (a verification job)",
    )
    for name in settings.plugins:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"plugin module {name!r} cannot be imported: {exc}") from None
    return missing


# ---------------------------------------------------------------- `haihe jobs`

jobs_app = typer.Typer(help="Background work: periodic jobs and the outbox.")
outbox_app = typer.Typer(help="The outbox: messages to deliver (webhooks), dead letters.")
jobs_app.add_typer(outbox_app, name="outbox")


@contextmanager
def _factory(ctx: typer.Context) -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    settings = settings_of(ctx)
    engine = make_engine(settings)
    try:
        register_background_work(settings)
        yield settings, make_session_factory(engine, settings)
    finally:
        engine.dispose()


def _print_runs(runs: list[jobs.TaskRun]) -> None:
    print_table(
        ["task", "outcome", "seconds", "result"],
        [(r.name, r.outcome, r.seconds, r.result) for r in runs],
        title="" if runs else "no task was due",
    )


@jobs_app.command("list")
def jobs_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List the periodic jobs, how often they run and how their last run went."""
    with _factory(ctx) as (_settings, factory), factory() as session:
        schedule = jobs.schedule_of(session)
    rows, tasks = [], jobs.registered_tasks()
    for task in tasks:
        row = schedule.get(task.name)
        rows.append(
            {
                "task": task.name,
                "every_seconds": task.every.total_seconds(),
                "next_run_at": row.next_run_at if row else None,
                "last_outcome": row.last_outcome if row else None,
                "last_result": row.last_result if row else None,
            }
        )
    if as_json:
        print_json([{**r, "description": t.description} for r, t in zip(rows, tasks, strict=True)])
        return
    print_table(list(rows[0]) if rows else ["task"], [list(r.values()) for r in rows])


@jobs_app.command("run-once")
def jobs_run_once(
    ctx: typer.Context,
    task: list[str] = typer.Option([], "--task", help="Run only this job (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Run even if not due yet."),
) -> None:
    """Run the jobs that are due now (or the named ones), each in its own transaction."""
    with _factory(ctx) as (settings, factory):
        chosen = [jobs.find_task(name) for name in task] if task else None
        runs = jobs.run_due(factory, settings=settings, tasks=chosen, force=force)
    _print_runs(runs)
    if any(r.outcome != "ok" for r in runs):
        raise typer.Exit(1)


@jobs_app.command("run")
def jobs_run(ctx: typer.Context) -> None:
    """Run due jobs every HAIHE_JOBS_TICK_SECONDS until stopped (a worker process)."""
    with _factory(ctx) as (settings, factory):
        typer.echo(f"running jobs every {settings.jobs_tick_seconds} s (Ctrl-C to stop)")
        try:
            while True:
                for run in jobs.run_due(factory, settings=settings):
                    if run.outcome != "ok":
                        typer.echo(f"{run.name}: {run.result}", err=True)
                time.sleep(settings.jobs_tick_seconds)
        except KeyboardInterrupt:
            typer.echo("stopped")


@outbox_app.command("list")
def outbox_list(
    ctx: typer.Context,
    status: outbox.OutboxStatus | None = typer.Option(None, help="Only this status."),
    channel: str | None = typer.Option(None, help="Only this channel."),
    limit: int = typer.Option(50, min=1, max=10_000, help="At most this many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """List outbox messages, newest first (e.g. --status dead for dead letters)."""
    with _factory(ctx) as (_settings, factory), factory() as session:
        messages = outbox.list_messages(session, status=status, channel=channel, limit=limit)
        rows = [
            {
                "id": m.id,
                "channel": m.channel,
                "key": m.key,
                "status": m.status.value,
                "attempts": m.attempts,
                "next_attempt_at": m.next_attempt_at,
                "last_error": m.last_error,
            }
            for m in messages
        ]
    if as_json:
        print_json(rows)
        return
    print_table(list(rows[0]) if rows else ["id"], [list(r.values()) for r in rows])


@outbox_app.command("redeliver")
def outbox_redeliver(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(..., help="Outbox message ids."),
) -> None:
    """Queue messages again with fresh attempts (dead letters once the receiver is fixed)."""
    with _factory(ctx) as (_settings, factory), transaction(factory) as session:
        done = outbox.redeliver(session, ids=ids)
    typer.echo(f"queued again: {', '.join(str(m.id) for m in done)}")
