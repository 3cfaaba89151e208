"""Verification's API shapes: subjects and parameters in; verdicts, reasons and versions out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

MAX_SUBJECTS = 100  # a single check is a counter clerk's question; more is a batch job


class SubjectIn(BaseModel):
    """A person to check: the ID number, and optionally what identifies them without it."""

    id_number: str = Field(description="Resident ID number (18 or legacy 15 digits).")
    name: str | None = Field(
        None, description="Name: identifies the person when the ID number is missing or fails."
    )
    birth_date: dt.date | None = Field(None, description="Birth date (for identity matching).")
    region: str | None = Field(None, description="Region (district) code (identity matching).")


class CheckIn(BaseModel):
    subjects: list[SubjectIn] = Field(min_length=1, max_length=MAX_SUBJECTS)
    params: dict[str, Any] = Field(default_factory=dict, description="The rule's parameters.")


class SubjectAnswer(BaseModel):
    """The answer about one subject — never a source row."""

    ref: int = Field(description="Position of the subject in the request (0-based).")
    id_number: str = Field(description="The subject's ID number, masked.")
    verdict: str = Field(description="yes, no or unknown.")
    reasons: list[str]
    confidence: float = Field(
        description="Match confidence: 1 for an exact ID match, the probability of an identity "
        "match by name and birth date, 0 if none."
    )


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


class ScenarioOut(BaseModel):
    name: str
    version: int
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str
    input_columns: list[str]
    parameters: list[ParameterOut]
    steps: dict[str, str] = Field(description="Step name → the rule it runs.")
    outcomes: list[str]
    primary: str = Field(description="The outcome that is the scenario's list.")
    derived: list[str]


class JobOut(BaseModel):
    id: int
    rule: str = Field(description="The rule or scenario run.")
    rule_version: int
    kind: str = Field(description="rule or scenario.")
    engine: str
    score: dict[str, Any] | None = Field(description="Precision and recall against a truth.")
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


class ScoreOut(BaseModel):
    """A scenario job's primary list against a ground truth — kept on the job for its report."""

    job_id: int
    scenario: str
    truth: str = Field(description="What the scenario's truth is known by ([score] truth).")
    list: str = Field(description="The list scored: the scenario's primary outcome.")
    tp: int = Field(description="On the list, and the truth says they belong there.")
    fp: int = Field(description="On the list, but the truth says they do not belong there.")
    fn: int = Field(description="Not on the list, but the truth says they belong there.")
    precision: float = Field(description="tp / (tp + fp); 1 when the list is empty.")
    recall: float = Field(description="tp / (tp + fn); 1 when the truth has no one to list.")
