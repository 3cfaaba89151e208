"""Demo step: verification at work — 核验 (数据可用不可见): yes/no answers, never rows.

The platform admin binds the rules' source roles to the synthetic city's entries (death
certificates, cremations, 低保 holders, the household register and six activity sources); the
consumer departments of the seed scenarios — transport (JT, the elderly bus-card audit), social
security (RS, pension certification and the death-triggered stop) and the housing fund (GJJ,
withdrawals by low-income families) — request verify grants naming the items the rules read,
which the providers approve; then each asks a few single checks at the counter through its API
client. Then the five seed scenarios run as batch jobs over each consumer's own list — JT's
elderly bus cards, RS's pensioners (certification, and the stop on death), GJJ's withdrawal
applications, MZ's hardship household members (social-security outreach) — and each is scored
against the city's ground truth (precision and recall of its list, kept on the job for its
report page).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress
from sqlalchemy.orm import Session, sessionmaker

from haihe.catalogue.models import SharingMode
from haihe.core.auth import Principal
from haihe.core.db import transaction
from haihe.core.errors import StorageError
from haihe.core.settings import Settings
from haihe.demo.exchange import entry_of
from haihe.exchange import decisions
from haihe.exchange import service as exchange
from haihe.exchange.schemas import ApproveIn, RequestIn
from haihe.synth import CityManifest
from haihe.verification import checks, jobs, scoring
from haihe.verification import service as verification
from haihe.verification.matching import MATCH_ITEMS
from haihe.verification.models import JobStatus
from haihe.verification.rules import get_rule
from haihe.verification.scenarios import get_scenario
from haihe.verification.schemas import SubjectIn
from haihe.verification.service import IDENTITY_ROLE

# source role → the synthetic city's dataset that plays it
ROLE_DATASETS: dict[str, str] = {
    "deaths": "WJW.death_certificates",
    "cremations": "MZ.cremations",
    "low_income": "MZ.minimum_living_security",
    "household": "GA.household_registration",
    "transit": "JT.transit_taps",
    "medical": "WJW.medical_visits",
    "water": "ZLS.water_payments",
    "electricity": "DL.electricity_payments",
    "gas": "RQ.gas_payments",
    "mobile": "DX.mobile_subscriptions",
    "heating": "GR.heating_payments",
    "checkups": "WJW.health_checkups",
    "medical_insurance": "YB.medical_insurance",
    "housing_fund": "GJJ.accounts",
    "pension_insurance": "RS.pension_insurance",
    "pensions": "RS.pension_recipients",
}
# consumer → (purpose, the rules it checks, its scenarios) — the seed scenarios' departments
CONSUMERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "JT": ("老年人乘车优待卡资格核验", ("alive", "registered_resident"), ("bus_card_audit",)),
    "RS": (
        "养老金领取资格认证及死亡停发",
        ("alive", "evidence_of_life"),
        ("pension_certification", "pension_death_stop"),
    ),
    "GJJ": (
        "低保家庭提取住房公积金核验",
        ("low_income_holder",),
        ("housing_fund_low_income",),
    ),
    "MZ": ("困难家庭社保精准扩面", ("registered_resident",), ("social_security_outreach",)),
}
# scenario → the consumer's own list, as SQL over the city's datasets ({DATASET.id} → file)
INPUTS: dict[str, str] = {
    "bus_card_audit": "SELECT id_number, name, birth_date, district_code AS region, card_no, "
    "status FROM {JT.elderly_bus_cards}",
    "pension_certification": "SELECT id_number, name, birth_date, district_code AS region, "
    "pension_no FROM {RS.pension_recipients}",
    "pension_death_stop": "SELECT id_number, name, birth_date, district_code AS region, "
    "pension_no, monthly_amount, status FROM {RS.pension_recipients}",
    "housing_fund_low_income": "SELECT a.id_number, a.name, a.application_no, "
    "c.status AS account_status FROM {GJJ.withdrawal_applications} a "
    "LEFT JOIN {GJJ.accounts} c USING (account_no)",
    "social_security_outreach": "SELECT DISTINCT g.id_number, g.name, g.birth_date, "
    "g.district_code AS region, g.household_no FROM {GA.household_registration} g "
    "WHERE g.household_no IN (SELECT household_no FROM {GA.household_registration} "
    "WHERE id_number IN (SELECT id_number FROM {MZ.minimum_living_security} "
    "UNION SELECT id_number FROM {CL.disability_certificates})) ORDER BY g.household_no, "
    "g.id_number",
}
SUBJECTS_PER_CHECK = 3


@dataclass
class ScenarioRun:
    """One scenario's job and its score against the ground truth."""

    scenario: str
    consumer: str
    job_id: int
    subjects: int
    outcomes: dict[str, int]
    score: dict[str, Any]
    derived: dict[str, float] = field(default_factory=dict)


@dataclass
class Verified:
    """What the step did: grants, single checks (by verdict) and the scenario jobs."""

    bound: int = 0
    grants: int = 0
    checks: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    scenarios: list[ScenarioRun] = field(default_factory=list)


def verify_in_the_city(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    actor: Principal,
    principals: dict[str, Principal],
    manifest: CityManifest,
    synth_dir: Path,
    progress: Progress,
) -> Verified:
    """Bind, grant, check and run the five scenarios; ``principals``: consumers' API clients."""
    done = Verified()
    task = progress.add_task("verification", total=2 + len(INPUTS))
    with transaction(factory) as session:
        done.bound, done.grants = bind_and_grant(session, actor=actor, manifest=manifest)
    progress.advance(task)
    on = manifest.as_of
    params: dict[str, dict[str, Any]] = {
        "alive": {"on": on.isoformat()},
        "registered_resident": {},
        "low_income_holder": {"on": on.isoformat()},
        "evidence_of_life": {
            "since": (on - dt.timedelta(days=365)).isoformat(),
            "until": on.isoformat(),
        },
    }
    people = _people(manifest, synth_dir)
    for consumer, (_, rules, _) in CONSUMERS.items():
        for rule in rules:
            subjects = [SubjectIn(id_number=n) for n in people[rule]]
            with transaction(factory) as session:
                answer = checks.check_subjects(
                    session,
                    actor=principals[consumer],
                    settings=settings,
                    rule_name=rule,
                    subjects=subjects,
                    params=params[rule],
                    request_id=f"demo-verify-{consumer}-{rule}",
                )
            done.checks += 1
            done.verdicts.update(a.verdict for a in answer.answers)
    progress.advance(task)
    for consumer, (_, _, names) in CONSUMERS.items():
        for name in names:
            done.scenarios.append(
                run_scenario(
                    factory,
                    settings=settings,
                    actor=principals[consumer],
                    consumer=consumer,
                    scenario=name,
                    manifest=manifest,
                    synth_dir=synth_dir,
                )
            )
            progress.advance(task)
    return done


def bind_and_grant(
    session: Session, *, actor: Principal, manifest: CityManifest
) -> tuple[int, int]:
    """Bind every role to its entry; each consumer requests verify on the sources of its rules
    and scenarios (the items they read, and the register's for identity matching) except its
    own, and the provider approves. Returns (bound, granted)."""
    codes = {}
    for role, dataset_id in ROLE_DATASETS.items():
        dataset = manifest.dataset(dataset_id)
        resource = entry_of(session, dataset.provider, dataset.name_zh)
        if resource is None:
            raise StorageError(f"the demo's city has no published {dataset_id}")
        verification.bind(session, actor=actor, role=role, code=resource.code)
        codes[role] = (resource.code, dataset.provider)
    granted = 0
    for consumer, (purpose, rules, names) in CONSUMERS.items():
        needed: dict[str, list[str]] = {IDENTITY_ROLE: list(MATCH_ITEMS)}
        wanted = set(rules) | {st.rule for n in names for st in get_scenario(n).steps}
        for name in sorted(wanted):
            for role, source in get_rule(name).sources.items():
                needed[role] = list(dict.fromkeys([*needed.get(role, []), *source.items]))
        for role, items in needed.items():
            code, provider = codes[role]
            if provider == consumer:
                continue  # its own data: no grant needed
            data = RequestIn(
                resource_code=code,
                consumer_org_code=consumer,
                items=items,
                purpose=purpose,
                modes=[SharingMode.VERIFY],
                duration_days=365,
            )
            req = exchange.submit_request(session, actor=actor, data=data)
            decisions.approve(
                session, actor=actor, request_id=req.id, data=ApproveIn(calls_per_day=10_000)
            )
            granted += 1
    return len(codes), granted


def scenario_input(scenario: str, manifest: CityManifest, synth_dir: Path) -> pa.Table:
    """The consumer's own list for ``scenario``, read from the city's datasets."""
    import duckdb

    sql = INPUTS[scenario]
    for dataset in manifest.datasets:
        sql = sql.replace("{" + dataset.id + "}", f"read_parquet('{synth_dir / dataset.path}')")
    with duckdb.connect() as con:
        return con.sql(sql).to_arrow_table()


def run_scenario(
    factory: sessionmaker[Session],
    *,
    settings: Settings,
    actor: Principal,
    consumer: str,
    scenario: str,
    manifest: CityManifest,
    synth_dir: Path,
    engine: str = "duckdb",
) -> ScenarioRun:
    """Run ``scenario`` over the consumer's list as of the city's day; score it (kept)."""
    upload = settings.data_dir / "verify" / f"demo-{scenario}.parquet"
    upload.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(scenario_input(scenario, manifest, synth_dir), upload)
    on = manifest.as_of.isoformat()
    with transaction(factory) as session:
        job_id = jobs.create_job(
            session,
            actor=actor,
            settings=settings,
            name=scenario,
            params={"on": on},
            input_path=upload,
            engine=engine,
            today=manifest.as_of,
        ).id
    status = jobs.run_job(factory, settings, job_id)
    truth = synth_dir / manifest.truth_file(_truth_of(scenario)).path
    with transaction(factory) as session:
        job = jobs.get_job(session, actor=actor, job_id=job_id)
        if status is not JobStatus.SUCCEEDED:
            raise StorageError(f"the demo's {scenario} job {job_id} failed: {job.error}")
        score = scoring.score_job(
            session, actor=actor, settings=settings, job_id=job_id, truth=truth
        )
        return ScenarioRun(
            scenario=scenario,
            consumer=consumer,
            job_id=job_id,
            subjects=job.subjects,
            outcomes=dict(job.summary.get("outcomes", {})),
            score=score,
            derived=dict(job.summary.get("derived", {})),
        )


def _truth_of(scenario: str) -> str:
    spec = get_scenario(scenario).score
    assert spec is not None
    return spec.truth


def _people(manifest: CityManifest, synth_dir: Path) -> dict[str, list[str]]:
    """A few ID numbers per rule: some the sources know, some they do not."""

    def ids(dataset: str, n: int = SUBJECTS_PER_CHECK) -> list[str]:
        table = pq.read_table(synth_dir / manifest.dataset(dataset).path, columns=["id_number"])
        found = [v for v in table.column(0).to_pylist() if v]
        return found[:n]

    dead = ids("WJW.death_certificates")
    living = ids("GA.household_registration", 10)[-SUBJECTS_PER_CHECK:]
    return {
        "alive": [*dead, *living],
        "registered_resident": living,
        "low_income_holder": [*ids("MZ.minimum_living_security"), *living[:1]],
        "evidence_of_life": [*living, *dead[:1]],
    }
