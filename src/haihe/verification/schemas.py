"""Verification's API shapes: subjects and parameters in; verdicts, reasons and versions out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

MAX_SUBJECTS = 100  # a single check is a counter clerk's question; more is a batch job


class SubjectIn(BaseModel):
    """A person to check: the ID number, and optionally what identifies them without it."""

    id_number: str = Field(description="Resident ID number (18 or legacy 15 digits).")
    name: str | None = Field(None, description="Name (kept for identity matching; not used yet).")
    birth_date: dt.date | None = Field(None, description="Birth date (for matching; not used yet).")
    region: str | None = Field(None, description="Region code (for matching; not used yet).")


class CheckIn(BaseModel):
    subjects: list[SubjectIn] = Field(min_length=1, max_length=MAX_SUBJECTS)
    params: dict[str, Any] = Field(default_factory=dict, description="The rule's parameters.")


class SubjectAnswer(BaseModel):
    """The answer about one subject — never a source row."""

    ref: int = Field(description="Position of the subject in the request (0-based).")
    id_number: str = Field(description="The subject's ID number, masked.")
    verdict: str = Field(description="yes, no or unknown.")
    reasons: list[str]
    confidence: float = Field(description="Match confidence: 1 for an exact ID match, 0 if none.")


class SourceOut(BaseModel):
    role: str
    resource: str
    version: int


class CheckOut(BaseModel):
    rule: str
    version: int
    params: dict[str, Any]
    sources: list[SourceOut]
    answers: list[SubjectAnswer]
    request_id: str


class ParameterOut(BaseModel):
    name: str
    type: str
    default: Any
    help: str


class RuleOut(BaseModel):
    name: str
    version: int
    title_zh: str
    title_en: str
    combine: str
    parameters: list[ParameterOut]
    sources: dict[str, list[str]]
    reasons: dict[str, dict[str, str]]


class BindIn(BaseModel):
    code: str = Field(description="The catalogue entry that plays this role here.")


class BindingOut(BaseModel):
    role: str
    items: list[str]
    resource: str | None
    current_version: int | None
    bound_by: str | None
    bound_at: dt.datetime | None


class JobOut(BaseModel):
    id: int
    rule: str
    rule_version: int
    params: dict[str, Any]
    status: str
    input_name: str
    subjects: int
    chunks: int
    chunks_done: int
    sources: list[dict[str, Any]]
    summary: dict[str, Any]
    cancel_requested: bool
    error: str | None
    requested_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
