"""Tables of verification: which catalogue entry plays each source role, and batch jobs (of a
rule or a scenario)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haihe.core.db import Base, UTCDateTime, str_enum, utcnow


class SourceBinding(Base):
    """Which catalogue entry plays a source role here — 核验数据源绑定 (codes differ by city)."""

    __tablename__ = "verification_bindings"

    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("catalogue_resources.id", ondelete="CASCADE"), index=True
    )
    bound_by: Mapped[str] = mapped_column(String(200))
    bound_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class VerificationJob(Base):
    """A batch verification — 批量核验: a subject file checked chunk by chunk, resumable."""

    __tablename__ = "verification_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))  # the rule or scenario run
    rule_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="rule")  # rule or scenario
    engine: Mapped[str] = mapped_column(String(16), default="duckdb")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    requested_by: Mapped[str] = mapped_column(String(200))
    actor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus, "verification_job_status"))
    input_name: Mapped[str] = mapped_column(String(300))
    subjects: Mapped[int] = mapped_column(BigInteger, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    score: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # precision/recall vs a truth
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
