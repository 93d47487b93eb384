"""A tracking world on top of ``world``: a study manager, a QC reviewer and a site-staff
filer; helpers to call services and read tracking figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from tests.conftest import User, World


@dataclass
class Tracker:
    w: World
    manager: User
    qc: User

    def run(self, fn, *args, by: User | None = None, **kwargs):  # type: ignore[no-untyped-def]
        by = by or self.manager
        with self.w.uow(by.name, by.id) as uow:
            result = fn(uow, self.w.access(by), *args, **kwargs)
            uow.commit()
        return result

    def read(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        from etmf.bootstrap import services

        with services(self.w.app).db.read_session() as s:
            return fn(s, *args, **kwargs)

    def file(self, artifact: str, *, site: str | None = None, level: str | None = None,
             document_date: date | None = None, expiry_date: date | None = None,
             title: str | None = None, person: str | None = None) -> int:
        return self.w.document(self.manager, title=title or f"{artifact} {site or 'trial'}",
                               artifact=artifact, level=level or ("site" if site else "trial"),
                               site=site, document_date=document_date,
                               expiry_date=expiry_date, person=person)

    def approve(self, doc_id: int) -> None:
        from etmf.documents import services as docs
        from etmf.documents.lifecycle import Action
        from etmf.documents.models import Document

        version = self.read(lambda s: s.get(Document, doc_id).version)
        if self.read(lambda s: s.get(Document, doc_id).status) == "draft":
            self.run(docs.transition, doc_id, Action.SUBMIT_QC, expected_version=version)
            version += 1
        self.run(docs.transition, doc_id, Action.APPROVE, expected_version=version, by=self.qc)

    def reject(self, doc_id: int) -> None:
        from etmf.documents import services as docs
        from etmf.documents.lifecycle import Action
        from etmf.documents.models import Document

        version = self.read(lambda s: s.get(Document, doc_id).version)
        self.run(docs.transition, doc_id, Action.SUBMIT_QC, expected_version=version)
        self.run(docs.transition, doc_id, Action.REJECT, expected_version=version + 1,
                 issues=[docs.NewQcIssue("Illegible or incomplete", "unreadable")], by=self.qc)


@pytest.fixture
def tracker(world: World) -> Tracker:
    return Tracker(world, world.user("study_manager", name="Maria Manager"),
                   world.user("qc_reviewer", name="Quentin Reviewer"))
