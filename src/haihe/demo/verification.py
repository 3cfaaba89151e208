"""Demo step: verification at work — 核验 (数据可用不可见): yes/no answers, never rows.

The platform admin binds the rules' source roles to the synthetic city's entries (death
certificates, cremations, 低保 holders, the household register and six activity sources); the
consumer departments of the seed scenarios — transport (JT, the elderly bus-card audit), social
security (RS, pension certification and the death-triggered stop) and the housing fund (GJJ,
withdrawals by low-income families) — request verify grants naming the items the rules read,
which the providers approve; then each asks a few single checks at the counter through its API
client, and RS runs one batch job over a few thousand pension recipients.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
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
from haihe.verification import checks, jobs
from haihe.verification import service as verification
from haihe.verification.models import JobStatus
from haihe.verification.rules import get_rule
from haihe.verification.schemas import SubjectIn

# source role → (provider, entry name) in the synthetic city
SOURCES: dict[str, tuple[str, str]] = {
    "deaths": ("WJW", "居民死亡医学证明"),
    "cremations": ("MZ", "火化信息"),
    "low_income": ("MZ", "最低生活保障对象"),
    "household": ("GA", "户籍人口登记信息"),
    "transit": ("JT", "公共交通刷卡记录"),
    "medical": ("WJW", "医疗机构就诊记录"),
    "water": ("ZLS", "居民水费缴纳记录"),
    "electricity": ("DL", "居民电费缴纳记录"),
    "gas": ("RQ", "居民燃气费缴纳记录"),
    "mobile": ("DX", "移动电话实名登记信息"),
}
# consumer → (purpose, the rules it checks) — the seed scenarios' departments
CONSUMERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "JT": ("老年人乘车优待卡资格核验", ("alive", "registered_resident")),
    "RS": ("养老金领取资格认证及死亡停发", ("alive", "evidence_of_life")),
    "GJJ": ("低保家庭提取住房公积金核验", ("low_income_holder",)),
}
BATCH_SUBJECTS = 3000  # pension recipients in the batch job (fewer when the city is small)
SUBJECTS_PER_CHECK = 3


@dataclass
class Verified:
    """What the step did: grants, single checks (by verdict) and the batch job."""

    bound: int = 0
    grants: int = 0
    checks: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    job_id: int | None = None
    job_subjects: int = 0
    job_verdicts: dict[str, int] = field(default_factory=dict)
    result: Path | None = None


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
    """Bind, grant, check and run one batch job; ``principals``: consumers' API clients."""
    done = Verified()
    task = progress.add_task("verification", total=4)
    with transaction(factory) as session:
        done.bound, done.grants = _bind_and_grant(session, actor=actor)
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
    for consumer, (_, rules) in CONSUMERS.items():
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
    _batch(factory, settings, principals["RS"], manifest, synth_dir, params["alive"], done)
    progress.advance(task, 2)
    return done


def _bind_and_grant(session: Session, *, actor: Principal) -> tuple[int, int]:
    """Bind every role to its entry; each consumer requests verify on the sources of its rules
    (the items those rules read), and the provider approves. Returns (bound, granted)."""
    codes = {}
    for role, (provider, name_zh) in SOURCES.items():
        resource = entry_of(session, provider, name_zh)
        if resource is None:
            raise StorageError(f"the demo's city has no published {provider} {name_zh}")
        verification.bind(session, actor=actor, role=role, code=resource.code)
        codes[role] = resource.code
    granted = 0
    for consumer, (purpose, rules) in CONSUMERS.items():
        needed: dict[str, list[str]] = {}
        for name in rules:
            for role, source in get_rule(name).sources.items():
                needed.setdefault(role, [])
                needed[role] = list(dict.fromkeys([*needed[role], *source.items]))
        for role, items in needed.items():
            data = RequestIn(
                resource_code=codes[role],
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


def _batch(
    factory: sessionmaker[Session],
    settings: Settings,
    actor: Principal,
    manifest: CityManifest,
    synth_dir: Path,
    params: dict[str, Any],
    done: Verified,
) -> None:
    """RS checks up to ``BATCH_SUBJECTS`` pension recipients are alive, as a batch job."""
    path = synth_dir / manifest.dataset("RS.pension_recipients").path
    ids = pq.read_table(path, columns=["id_number"]).column(0).slice(0, BATCH_SUBJECTS)
    upload = settings.data_dir / "verify" / "demo-pension-recipients.csv"
    upload.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.table({"id_number": ids.cast(pa.string())}), upload)
    with transaction(factory) as session:
        job = jobs.create_job(
            session,
            actor=actor,
            settings=settings,
            rule_name="alive",
            params=params,
            input_path=upload,
        )
        job_id = job.id
    status = jobs.run_job(factory, settings, job_id)
    with factory() as session:
        job = jobs.get_job(session, actor=actor, job_id=job_id)
        if status is not JobStatus.SUCCEEDED:
            raise StorageError(f"the demo's verification job {job_id} failed: {job.error}")
        done.job_id, done.job_subjects = job_id, job.subjects
        done.job_verdicts = dict(job.summary.get("verdicts", {}))
        done.result = jobs.result_path(settings, job)
