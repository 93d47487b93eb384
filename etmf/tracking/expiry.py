"""When documents expire: their own expiry date, else their date plus the artifact's validity.

Default validity periods (days) ship here and can be overridden per artifact by an
administrator (``expiry.rule_set`` events, table ``expiry_rules``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from etmf.documents.models import Document
from etmf.tracking.models import ExpiryRule, PersonDocument

#: Shipped defaults by artifact unique id: CVs, licences, GCP training, IRB/IEC approvals,
#: laboratory certification and normal ranges, insurance and indemnity.
DEFAULT_VALIDITY_DAYS: Mapping[str, int] = {
    "087": 730, "088": 730, "089": 730, "166": 730,  # curricula vitae
    "090": 730,  # site staff qualification (medical licence)
    "104": 1095, "253": 1095,  # evidence of (GCP) training
    "066": 365, "071": 365,  # IRB/IEC decision, other approvals
    "160": 730, "163": 365,  # laboratory certification, normal ranges
    "036": 365, "096": 365,  # insurance, indemnity
}
WINDOWS = (30, 60, 90, 120)
#: Documents that count as valid evidence (a signpost points to the record held elsewhere).
APPROVED_STATUSES = ("approved", "signpost")


def validity_days(session: Session) -> dict[str, int]:
    """Artifact → validity in days (0 or absent: does not expire), defaults then rules."""
    days = dict(DEFAULT_VALIDITY_DAYS)
    for artifact_id, n in session.execute(select(ExpiryRule.artifact_id,
                                                 ExpiryRule.validity_days)):
        days[artifact_id] = n
    return {a: n for a, n in days.items() if n > 0}


def effective_expiry(expiry_date: date | None, document_date: date | None, artifact_id: str,
                     validity: Mapping[str, int]) -> date | None:
    if expiry_date is not None:
        return expiry_date
    n = validity.get(artifact_id)
    if n and document_date is not None:
        return document_date + timedelta(days=n)
    return None


class Expiring(NamedTuple):  # a tuple: a large study lists some 20,000 of them
    document_id: int
    title: str
    artifact_id: str
    artifact_number: str
    site_id: int | None
    person: str | None
    expires_on: date
    days_left: int  # negative: expired that many days ago


def is_valid_evidence(doc: Document) -> bool:
    return doc.approved_at is not None and doc.status != "obsolete" or doc.status == "signpost"


def expiring_documents(session: Session, study_id: int, today: date, *,
                       within_days: int | None = None, expired: bool = False,
                       site_ids: set[int] | None = None) -> list[Expiring]:
    """Approved documents of the study that expired (``expired=True``) or expire within
    ``within_days`` from today, soonest first."""
    return [e for e in every_expiry(session, study_id, today, site_ids=site_ids)
            if (e.days_left < 0 if expired else 0 <= e.days_left <= (within_days or 0))]


def every_expiry(session: Session, study_id: int, today: date, *,
                 site_ids: set[int] | None = None) -> list[Expiring]:
    """Every approved document of the study that runs out (expired or not), but those a
    renewal replaced, soonest first."""
    validity = validity_days(session)
    # Columns, not ORM objects: a Phase III study has some 30,000 documents that can expire.
    q = select(Document.id, Document.title, Document.artifact_id, Document.artifact_number,
               Document.site_id, Document.person, Document.document_date,
               Document.expiry_date).where(
        Document.study_id == study_id, Document.approved_at.is_not(None),
        Document.status.not_in(("obsolete",)),
        or_(Document.expiry_date.is_not(None), Document.artifact_id.in_(list(validity))))
    if site_ids is not None:
        q = q.where(or_(Document.site_id.is_(None), Document.site_id.in_(site_ids)))
    docs = list(session.execute(q))
    # The same documents as a subquery, not as a list of their ids: some 20,000 bound
    # parameters at 500 sites took 0.8 s to send for a table that may be empty.
    owners = dict(session.execute(select(PersonDocument.document_id, PersonDocument.person_id)
                                  .where(PersonDocument.document_id.in_(
                                      q.with_only_columns(Document.id)))).all()) if docs else {}
    # A renewal (a newer document of the same artifact for the same person) replaces the old
    # one: only the latest-ending document of each person and artifact is listed. Each row is
    # unpacked once (attribute access on 30,000 rows, twice, was most of the time here).
    latest: dict[tuple[str, object], date] = {}
    running_out = []
    for doc_id, title, artifact_id, number, site_id, person, document_date, expiry_date in docs:
        ends = effective_expiry(expiry_date, document_date, artifact_id, validity)
        if ends is None:
            continue
        owner = _owner(doc_id, site_id, person, owners)
        if owner is not None:
            key = (artifact_id, owner)
            latest[key] = max(latest.get(key, ends), ends)
        running_out.append((doc_id, title, artifact_id, number, site_id, person, ends, owner))
    found = [Expiring(doc_id, title, artifact_id, number, site_id, person, ends,
                      (ends - today).days)
             for doc_id, title, artifact_id, number, site_id, person, ends, owner in running_out
             if owner is None or latest[(artifact_id, owner)] <= ends]
    return sorted(found, key=lambda e: (e.expires_on, e.document_id))


def _owner(doc_id: int, site_id: int | None, person: str | None,
           owners: Mapping[int, int]) -> object:
    """Whose document it is: the linked person, else the name written on it at its site."""
    if doc_id in owners:
        return ("person", owners[doc_id])
    if person:
        return ("name", site_id, person.casefold())
    return None
