"""Key personnel of a site: the persons of etmf.tracking linked to the site with a role, and
the state of their CV, qualification (licence) and training documents.

A person's documents are theirs (filed once, counted at every site where they work); here we
read them to show, per person, whether each kind is approved and unexpired today.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.accounts.access import Access
from etmf.audit.store import UnitOfWork
from etmf.documents.models import Document
from etmf.tracking import services as tracking
from etmf.tracking.models import Person, PersonDocument, PersonSite

#: What we show per person → the TMF RM artifacts that hold it.
KINDS = {"CV": ("05.02.04", "05.02.05", "05.02.06"),
         "Licence / qualification": ("05.02.07",),
         "Training": ("05.03.03",)}
ROLES = ("Principal Investigator", "Sub-Investigator", "Study Coordinator", "Study Nurse",
         "Pharmacist")


@dataclass(frozen=True)
class DocumentState:
    label: str  # e.g. "approved, valid until 2027-01-31", "expired on …", "in QC", "missing"
    ok: bool
    document_id: int | None = None


@dataclass(frozen=True)
class KeyPerson:
    person_id: int
    name: str
    email: str | None
    site_id: int
    role: str
    documents: dict[str, DocumentState]

    @property
    def complete(self) -> bool:
        return all(s.ok for s in self.documents.values())


def _state(docs: list[Document], today: date) -> DocumentState:
    if not docs:
        return DocumentState("missing", False)
    approved = [d for d in docs if d.status == "approved"]
    valid = [d for d in approved if d.expiry_date is None or d.expiry_date >= today]
    if valid:
        best = max(valid, key=lambda d: (d.expiry_date or date.max, d.id))
        until = f", valid until {best.expiry_date.isoformat()}" if best.expiry_date else ""
        return DocumentState(f"approved{until}", True, best.id)
    if approved:
        last = max(approved, key=lambda d: (d.expiry_date or date.min, d.id))
        assert last.expiry_date is not None
        return DocumentState(f"expired on {last.expiry_date.isoformat()}", False, last.id)
    newest = max(docs, key=lambda d: d.id)
    return DocumentState(newest.status.replace("_", " ").replace("in qc", "in QC"), False,
                         newest.id)


def key_personnel(session: Session, site_ids: Iterable[int], today: date) -> list[KeyPerson]:
    """Everyone with a role at these sites, with their document states, by site and role."""
    ids = list(site_ids)
    if not ids:
        return []
    links = session.execute(select(PersonSite, Person).join(Person, Person.id ==
                                                            PersonSite.person_id)
                            .where(PersonSite.site_id.in_(ids))).all()
    person_ids = {p.id for _l, p in links}
    owned: dict[int, list[Document]] = {}
    if person_ids:
        for pd, doc in session.execute(
                select(PersonDocument, Document).join(Document, Document.id ==
                                                      PersonDocument.document_id)
                .where(PersonDocument.person_id.in_(person_ids))):
            owned.setdefault(pd.person_id, []).append(doc)
    out = []
    for link, person in links:
        docs = owned.get(person.id, [])
        out.append(KeyPerson(person.id, person.name, person.email, link.site_id, link.role, {
            kind: _state([d for d in docs if d.artifact_number in numbers], today)
            for kind, numbers in KINDS.items()}))
    order = {r: i for i, r in enumerate(ROLES)}
    return sorted(out, key=lambda k: (k.site_id, order.get(k.role, len(ROLES)), k.name))


def add_key_person(uow: UnitOfWork, access: Access, site_id: int, *, name: str,
                   role: str, email: str | None = None) -> int:
    """A new person with a role at the site (an etmf.tracking person: their documents then
    count at every site where they work)."""
    return tracking.create_person(uow, access, name=name, email=email, site_id=site_id,
                                  role=role)


def link_document(uow: UnitOfWork, access: Access, person_id: int, document_id: int) -> None:
    """Make a filed CV, licence or training record one of the person's."""
    tracking.link_person_document(uow, access, person_id, document_id)
