"""Benchmark: pension eligibility certification (养老金领取资格认证) as a Haihe scenario job,
beside the best hand-written DuckDB SQL over the same Parquet files.

Generates a synthetic city of ``--persons`` people (at 13.6 M, 3.17 M pensioners: Tianjin's
scale), loads the 16 datasets the verification rules read through the real catalogue load, binds
them and grants the social-security bureau (RS) verify on them as the demo does, and writes RS's
pensioner list. Then, each side in a fresh child process (its own wall time and peak RSS):

- **Haihe**: ``jobs.create_job`` + ``jobs.run_job`` of scenario ``pension_certification`` (alive
  in neither deaths nor cremations; evidence of life in 10 activity sources over a year) on
  DuckDB, ``--chunk-rows`` subjects per chunk — IDs normalised, invalid ones identity-matched,
  every chunk audited (the chunk's persons kept once as a subject set of keyed pseudonyms, one
  ledger entry per source pointing at it), one answer row per subject in input order with
  verdicts, reasons and the outcome. The time the periodic task then takes to index the
  audited persons for the citizen's view is printed apart;
- **SQL, EXISTS**: one ``SELECT`` with 12 ``EXISTS`` sub-queries over the 17-digit ID body as
  BIGINT, the outcome computed in SQL, written to Parquet;
- **SQL, bitmask**: the 12 sources' qualifying bodies as one ``UNION ALL`` with a bit each,
  ``bit_or`` per body, left-joined to the list — the form that ran in half the memory.

The baseline is the faster SQL form; prints a table and the ratio Haihe / baseline.

    .venv/bin/python benchmarks/verify_pension.py [--persons 1000000] [--chunk-rows 250000]
        [--rounds 1] [--keep DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

AS_OF = dt.date(2026, 11, 1)
SCENARIO = "pension_certification"
SECRET = "benchmark-secret-key-verify-pension"
# The checks of the scenario by hand: (role, the condition a qualifying record meets)
CHECKS = [
    ("deaths", "death_date <= DATE '{on}'"),
    ("cremations", "death_date <= DATE '{on}'"),
    ("transit", "CAST(tapped_at AS DATE) BETWEEN DATE '{since}' AND DATE '{on}'"),
    ("medical", "visit_date BETWEEN DATE '{since}' AND DATE '{on}'"),
    ("water", "paid_on BETWEEN DATE '{since}' AND DATE '{on}'"),
    ("electricity", "paid_on BETWEEN DATE '{since}' AND DATE '{on}'"),
    ("gas", "paid_on BETWEEN DATE '{since}' AND DATE '{on}'"),
    ("mobile", "last_active_on BETWEEN DATE '{since}' AND DATE '{on}'"),
    ("heating", "paid_on BETWEEN DATE '{since}' AND DATE '{on}'"),
    ("checkups", "checkup_date BETWEEN DATE '{since}' AND DATE '{on}'"),
    ("medical_insurance", "last_paid_on BETWEEN DATE '{since}' AND DATE '{on}'"),
    ("housing_fund", "last_deposit_month BETWEEN DATE '{since}' AND DATE '{on}'"),
]


def settings_for(work: Path, threads: int | None) -> Any:
    from haihe.core.settings import Settings

    settings = Settings(data_dir=work / "data", secret_key=SECRET)
    return settings.model_copy(update={"duckdb_threads": threads}) if threads else settings


# ---------------------------------------------------------------- set-up (parent process)


def set_up(work: Path, persons: int, threads: int | None) -> dict[str, Any]:
    """Generate the city, load the rules' datasets, bind, grant; write RS's pensioner list."""
    import pyarrow.parquet as pq

    from haihe.catalogue import service as catalogue
    from haihe.catalogue.loading import LoadSource, load_resource
    from haihe.core.auth import system_principal
    from haihe.core.db import make_engine, make_session_factory, transaction
    from haihe.demo.catalogue import resource_for
    from haihe.demo.verification import CONSUMERS, ROLE_DATASETS, bind_and_grant, scenario_input
    from haihe.migrations import upgrade
    from haihe.orgs import repository as orgs_repo
    from haihe.orgs import service as orgs
    from haihe.orgs.models import OrgKind
    from haihe.orgs.schemas import OrgCreate
    from haihe.synth import generate_city
    from haihe.verification import service as verification

    settings = settings_for(work, threads)
    root = system_principal("benchmark")
    started = time.perf_counter()
    manifest = generate_city(work / "city", persons=persons, seed=20261121, as_of=AS_OF)
    generated = time.perf_counter() - started
    engine = make_engine(settings)
    upgrade(engine)
    factory = make_session_factory(engine, settings)
    providers = {manifest.dataset(d).provider for d in ROLE_DATASETS.values()} | set(CONSUMERS)
    with transaction(factory) as s:
        for code in sorted(providers):
            kind = OrgKind.MUNICIPAL_DEPARTMENT
            orgs.create_org(s, actor=root, data=OrgCreate(code=code, name_zh=code, kind=kind))
    started, rows = time.perf_counter(), 0
    codes: dict[str, str] = {}
    for role, dataset_id in ROLE_DATASETS.items():
        dataset = manifest.dataset(dataset_id)
        with transaction(factory) as s:
            entry = catalogue.create_resource(
                s, actor=root, data=resource_for(dataset, work / "city")
            )
            catalogue.publish(s, actor=root, code=entry.code)
            source = LoadSource.for_file(work / "city" / dataset.path)
            load_resource(s, actor=root, settings=settings, code=entry.code, source=source)
            codes[role] = entry.code
        rows += pq.read_metadata(work / "city" / dataset.path).num_rows
    loaded = time.perf_counter() - started
    with transaction(factory) as s:
        bind_and_grant(s, actor=root, manifest=manifest)
        rs = orgs_repo.org_by_code(s, "RS")
        assert rs is not None
        rs_id = rs.id
        bound = {b["role"]: b["resource"] for b in verification.list_bindings(s)}
    engine.dispose()
    subjects = scenario_input(SCENARIO, manifest, work / "city")
    pq.write_table(subjects, work / "pensioners.parquet")
    return {
        "persons": persons,
        "pensioners": subjects.num_rows,
        "source_rows": rows,
        "generated_s": round(generated, 1),
        "loaded_s": round(loaded, 1),
        "rs_id": rs_id,
        "codes": {role: bound[role] for role in codes},
    }


def background_work(work: Path, threads: int | None) -> float:
    """What the platform's periodic tasks do after the loads, before anyone runs a job: build
    the identity register's blocking index (``verification.register_index``). Idempotent;
    returns the seconds it took."""
    from haihe.core.db import make_engine, make_session_factory, transaction
    from haihe.verification import register

    settings = settings_for(work, threads)
    engine = make_engine(settings)
    started = time.perf_counter()
    with transaction(make_session_factory(engine, settings)) as s:
        register.ensure_current(s, settings)
    engine.dispose()
    return time.perf_counter() - started


# ---------------------------------------------------------------- the sides (child processes)


def side_haihe(work: Path, info: dict[str, Any], chunk_rows: int, threads: int | None) -> dict:
    from haihe.audit import subject_sets
    from haihe.core.auth import Principal, Role
    from haihe.core.db import make_engine, make_session_factory, transaction
    from haihe.verification import jobs

    settings = settings_for(work, threads)
    engine = make_engine(settings)
    factory = make_session_factory(engine, settings)
    # What a running Haihe process (the server's job runner, `haihe jobs worker`) has imported
    # already: the engine, Arrow datasets and Splink libraries take a second or two to import
    # once per process, which is not the job's work. Timed and printed apart.
    started = time.perf_counter()
    import ibis.backends.duckdb  # noqa: F401
    import pyarrow.dataset  # noqa: F401  (pq.read_table's; it imports pandas)
    import splink  # noqa: F401
    import splink.comparison_library  # noqa: F401

    imported = time.perf_counter() - started
    actor = Principal(
        kind="system", id=0, name="benchmark:RS", org_id=info["rs_id"], org_code="RS",
        roles=frozenset({Role.OPERATOR}),
    )  # fmt: skip
    started = time.perf_counter()
    with transaction(factory) as s:
        job_id = jobs.create_job(
            s, actor=actor, settings=settings, name=SCENARIO, params={"on": AS_OF.isoformat()},
            input_path=work / "pensioners.parquet", chunk_rows=chunk_rows, today=AS_OF,
        ).id  # fmt: skip
    created = time.perf_counter() - started
    status = jobs.run_job(factory, settings, job_id)
    wall = time.perf_counter() - started
    # after the result: the job's persons move from their subject-set files into the index the
    # citizen's view reads (a periodic task; the view reads the files meanwhile)
    started = time.perf_counter()
    indexed = subject_sets.index_pending(factory, settings)
    index_s = time.perf_counter() - started
    with factory() as s:
        job = jobs.get_job(s, actor=actor, job_id=job_id)
        outcomes, error = job.summary.get("outcomes", {}), job.error
        phases = job.summary.get("seconds", {})
    engine.dispose()
    if status is not jobs.JobStatus.SUCCEEDED:
        raise SystemExit(f"the Haihe job {job_id} {status.value}: {error}")
    return {
        "wall_s": wall, "create_s": created, "phases": phases, "outcomes": outcomes, "job": job_id,
        "import_s": imported, "index_s": index_s, "indexed": indexed.members,
    }  # fmt: skip


def _sources_sql(work: Path, info: dict[str, Any]) -> dict[str, str]:
    """Each role's current version as a read_parquet over its files."""
    from haihe.engine import make_store

    store = make_store(settings_for(work, None))
    out = {}
    for role, code in info["codes"].items():
        paths = ", ".join(f"'{p}'" for p in store.paths(store.manifest(code)))
        out[role] = f"read_parquet([{paths}])"
    return out


def side_sql(work: Path, info: dict[str, Any], form: str, threads: int | None) -> dict:
    import duckdb

    on = AS_OF.isoformat()
    since = (AS_OF - dt.timedelta(days=365)).isoformat()
    files = _sources_sql(work, info)
    body = "CAST(substr(id_number, 1, 17) AS BIGINT)"
    subjects = (
        f"SELECT row_number() OVER () AS ref, pension_no, id_number, "
        f"CASE WHEN length(id_number) = 18 THEN TRY_CAST(substr(id_number, 1, 17) AS BIGINT) "
        f"END AS body FROM read_parquet('{work / 'pensioners.parquet'}')"
    )

    def qualifying(role: str, cond: str) -> str:
        where = cond.format(on=on, since=since)
        return f"SELECT {body} AS body FROM {files[role]} WHERE length(id_number) = 18 AND {where}"

    outcome = (
        "CASE WHEN body IS NULL THEN 'in_person' WHEN c0 OR c1 THEN 'ineligible' "
        f"WHEN {' OR '.join(f'c{i}' for i in range(2, len(CHECKS)))} THEN 'confirmed' "
        "ELSE 'in_person' END"
    )
    if form == "exists":
        flags = ", ".join(
            f"EXISTS (SELECT 1 FROM ({qualifying(role, cond)}) s WHERE s.body = p.body) AS c{i}"
            for i, (role, cond) in enumerate(CHECKS)
        )
        sql = f"SELECT *, {outcome} AS outcome FROM (SELECT p.*, {flags} FROM ({subjects}) p)"
    else:
        union = " UNION ALL ".join(
            f"SELECT body, {1 << i}::BIGINT AS bit FROM ({qualifying(role, cond)})"
            for i, (role, cond) in enumerate(CHECKS)
        )
        flags = ", ".join(
            f"coalesce(m.bits & {1 << i} <> 0, false) AS c{i}" for i in range(len(CHECKS))
        )
        sql = (
            f"SELECT *, {outcome} AS outcome FROM (SELECT p.*, {flags} FROM ({subjects}) p "
            f"LEFT JOIN (SELECT body, bit_or(bit) AS bits FROM ({union}) GROUP BY body) m "
            "USING (body))"
        )
    out = work / f"sql-{form}.parquet"
    started = time.perf_counter()
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    con.execute(f"COPY ({sql} ORDER BY ref) TO '{out}' (FORMAT parquet)")
    counted = dict(con.execute(f"SELECT outcome, count(*) FROM '{out}' GROUP BY 1").fetchall())
    wall = time.perf_counter() - started
    con.close()
    return {"wall_s": wall, "outcomes": counted}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: ru_maxrss would include the parent's, from
    before the exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    work = Path(args.keep)
    info = json.loads((work / "info.json").read_text())
    if args.side == "haihe":
        found = side_haihe(work, info, args.chunk_rows, args.threads)
    else:
        found = side_sql(work, info, args.side.removeprefix("sql-"), args.threads)
    found["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(found))


def run_side(work: Path, side: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--side", side, "--keep", str(work),
               "--chunk-rows", str(args.chunk_rows)]  # fmt: skip
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (all cores)")
    parser.add_argument("--keep", help="Work directory to keep (and reuse: set-up is skipped).")
    parser.add_argument("--side", choices=["haihe", "sql-exists", "sql-bitmask"],
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.side:
        child(args)
        return
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="verify-pension-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        info_path = work / "info.json"
        if info_path.is_file():
            info = json.loads(info_path.read_text())
            print(f"reusing {work}")
        else:
            info = set_up(work, args.persons, args.threads)
            info_path.write_text(json.dumps(info))
        print(
            f"{info['persons']:,} persons, {info['pensioners']:,} pensioners, "
            f"{info['source_rows']:,} source rows in {len(info['codes'])} datasets "
            f"(generated {info['generated_s']} s, loaded {info['loaded_s']} s)"
        )
        waited = background_work(work, args.threads)
        print(f"the periodic tasks' work after the loads (register blocking index): {waited:.1f} s")
        results: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.rounds):
            for side in ("sql-exists", "sql-bitmask", "haihe"):
                found = run_side(work, side, args)
                results.setdefault(side, []).append(found)
                print(f"  {side:12} {found['wall_s']:7.2f} s  {found['peak_rss_mb']:8.0f} MB")
        if results:  # --rounds 0: set-up only
            report(results, args.chunk_rows)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, list[dict[str, Any]]], chunk_rows: int) -> None:
    best = {side: min(runs, key=lambda r: r["wall_s"]) for side, runs in results.items()}
    baseline = min(("sql-exists", "sql-bitmask"), key=lambda s: best[s]["wall_s"])
    print("\n| side | wall s | peak RSS MB | confirmed | in person | ineligible |")
    print("| --- | --- | --- | --- | --- | --- |")
    for side, found in best.items():
        o = found["outcomes"]
        label = f"Haihe job (chunks of {chunk_rows:,})" if side == "haihe" else side
        print(
            f"| {label} | {found['wall_s']:.2f} | {found['peak_rss_mb']:,.0f} | "
            f"{o.get('confirmed', 0):,} | {o.get('in_person', 0):,} | {o.get('ineligible', 0):,} |"
        )
    haihe = best["haihe"]
    phases = {"create": haihe["create_s"], **haihe.get("phases", {})}
    print("\nHaihe's time by phase: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    print(f"(libraries imported before the job, as a running worker has them: "
          f"{haihe.get('import_s', 0.0):.2f} s; after the job, its {haihe.get('indexed', 0):,} "
          f"audited persons indexed for the citizen's view in "
          f"{haihe.get('index_s', 0.0):.2f} s; 0 when an earlier run over the same list "
          f"indexed its sets already: a set is kept once per group of persons)")  # fmt: skip
    ratio = haihe["wall_s"] / best[baseline]["wall_s"]
    print(f"ratio Haihe / {baseline}: {ratio:.2f}x (target 1.3x); "
          f"Haihe peak RSS {haihe['peak_rss_mb']:,.0f} MB (target < 4,096)")  # fmt: skip
    # the SQL leaves a failed ID unanswered; Haihe links it to a person by identity matching
    unmatched = (haihe["wall_s"] - phases.get("identity", 0.0)) / best[baseline]["wall_s"]
    print(f"without identity matching of the failed IDs (which the SQL does not do): "
          f"{unmatched:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
