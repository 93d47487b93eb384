"""A CTMS world on top of ``world``: protocol v1 and ICF v1 approved and active at site 101
from 2026-01-10, protocol v2 (amendment 1) and ICF v2 approved there on 2026-06-01 and active
from 2026-06-15; site 101 active; a study manager and a coordinator (site staff, site 101)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from tests.conftest import User, World

NO_GAPS = lambda _session, _site_id, _today: []  # noqa: E731


@dataclass
class CtmsWorld:
    w: World
    manager: User
    coordinator: User
    qc: User
    protocol: dict[str, int]
    icf: dict[str, int]

    def run(self, fn, *args, by: User | None = None, **kwargs):  # type: ignore[no-untyped-def]
        """Call one service as a user in its own unit of work and commit."""
        by = by or self.manager
        with self.w.uow(by.name, by.id) as uow:
            result = fn(uow, self.w.access(by), *args, **kwargs)
            uow.commit()
        return result

    def activate(self, site: str) -> None:
        from ctms.sites.services import change_site_status
        from etmf.bootstrap import services
        from etmf.studies.models import Site

        for to in ("initiation", "active"):
            with services(self.w.app).db.read_session() as s:
                site_row = s.get(Site, self.w.site_ids[site])
                assert site_row is not None
                version = site_row.version
            self.run(change_site_status, self.w.site_ids[site], to,
                     expected_version=version, gap_finder=NO_GAPS)


@pytest.fixture
def ctms(world, clock) -> CtmsWorld:  # type: ignore[no-untyped-def]
    from ctms.randomization import concealment
    from ctms.studyplan import services as plan
    from etmf.bootstrap import services

    concealment.remember(services(world.app).settings)

    manager = world.user("study_manager", name="Mara Manager")
    coordinator = world.user("site_staff", site="101", name="Cora Coordinator")
    qc = world.user("qc_reviewer", name="Quinn QC")
    docs = {
        name: world.document(manager, title=name, artifact=artifact, level=level,
                             site="101" if level == "site" else None, state="approved", qc=qc)
        for name, artifact, level in (
            ("Protocol v1", "02.01.02", "trial"), ("Protocol v2", "02.01.02", "trial"),
            ("ICF v1", "02.02.03", "trial"), ("ICF v2", "02.02.03", "trial"),
            ("IRB approval v1", "04.01.02", "site"), ("IRB approval v2", "04.01.02", "site"))
    }
    cw = CtmsWorld(world, manager, coordinator, qc, {}, {})
    for kind, store in (("protocol", cw.protocol), ("icf", cw.icf)):
        for n in ("1", "2"):
            title = f"{'Protocol' if kind == 'protocol' else 'ICF'} v{n}"
            store[f"v{n}"] = cw.run(plan.register_version, world.study_id, kind=kind,
                                    label=f"v{n}.0", document_id=docs[title])
            cw.run(plan.approve_version_at_site, site_id=world.site_ids["101"],
                   version_id=store[f"v{n}"], approval_document_id=docs[f"IRB approval v{n}"],
                   approved_on=date(2026, 1, 5) if n == "1" else date(2026, 6, 1),
                   activated_on=date(2026, 1, 10) if n == "1" else date(2026, 6, 15))
    cw.activate("101")
    return cw
