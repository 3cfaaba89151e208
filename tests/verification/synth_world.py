"""The synthetic city for the scenario tests: generated once per module, its datasets registered,
published and loaded, the source roles bound and the consumers granted as the demo does (no
tests of its own)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from factories import ROOT, make_org, make_user
from haihe.catalogue import service as catalogue
from haihe.catalogue.loading import LoadSource, load_resource
from haihe.core.auth import Principal, Role
from haihe.core.settings import Settings
from haihe.demo.catalogue import resource_for
from haihe.demo.verification import CONSUMERS, ROLE_DATASETS, bind_and_grant
from haihe.orgs.auth import principal_of_user
from haihe.synth import CityManifest, generate_city

PERSONS = 3000
SEED = 7
AS_OF = dt.date(2026, 11, 1)


def make_city(out: Path) -> CityManifest:
    return generate_city(out, persons=PERSONS, seed=SEED, as_of=AS_OF)


@dataclass
class SynthWorld:
    manifest: CityManifest
    synth_dir: Path
    consumers: dict[str, Principal]


def build_synth_world(
    session: Session, settings: Settings, manifest: CityManifest, synth_dir: Path
) -> SynthWorld:
    """Members, the source datasets as published entries with one version each, bindings,
    grants and an operator per consumer."""
    providers = {manifest.dataset(d).provider for d in ROLE_DATASETS.values()} | set(CONSUMERS)
    orgs = {code: make_org(session, code=code) for code in sorted(providers)}
    for dataset_id in ROLE_DATASETS.values():
        dataset = manifest.dataset(dataset_id)
        entry = catalogue.create_resource(
            session, actor=ROOT, data=resource_for(dataset, synth_dir)
        )
        catalogue.publish(session, actor=ROOT, code=entry.code)
        load_resource(
            session,
            actor=ROOT,
            settings=settings,
            code=entry.code,
            source=LoadSource.for_file(synth_dir / dataset.path),
        )
    bind_and_grant(session, actor=ROOT, manifest=manifest)
    consumers = {}
    for code in CONSUMERS:
        user = make_user(session, Role.OPERATOR, org=orgs[code], username=f"{code.lower()}_op")
        found = principal_of_user(user)
        assert found is not None
        consumers[code] = found
    session.commit()
    return SynthWorld(manifest, synth_dir, consumers)
