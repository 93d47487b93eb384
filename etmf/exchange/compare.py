"""A study's documents as comparable facts, for checking a round trip (export → import)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from etmf.documents.lifecycle import PLACEHOLDER, SIGNPOST
from etmf.documents.models import Document, DocumentVersion
from etmf.studies.models import Country, Site, Study


def study_facts(session: Any, protocol_number: str) -> list[tuple[Any, ...]]:
    """Every document with a file: metadata, state (and when it was approved) and each
    version's state and checksum."""
    study = session.scalar(select(Study).where(Study.protocol_number == protocol_number))
    if study is None:
        return []
    countries = {c.id: c.code for c in session.scalars(select(Country).where(
        Country.study_id == study.id))}
    sites = {s.id: s.number for s in session.scalars(select(Site).where(
        Site.study_id == study.id))}
    facts = []
    for doc in session.scalars(select(Document).where(
            Document.study_id == study.id, Document.status.not_in((PLACEHOLDER, SIGNPOST)))):
        versions = session.scalars(select(DocumentVersion).where(
            DocumentVersion.document_id == doc.id).order_by(DocumentVersion.number)).all()
        by_id = {v.id: v.number for v in versions}
        facts.append((
            doc.artifact_id, doc.level, countries.get(doc.country_id),
            sites.get(doc.site_id), doc.title, doc.sub_artifact, doc.person, doc.language,
            doc.document_date, doc.expiry_date, doc.status, doc.approved_at,
            by_id.get(doc.current_version_id),
            tuple((v.number, v.label, v.status, v.sha256, v.size, v.mime, v.filename,
                   by_id.get(v.signed_from_version_id)) for v in versions)))
    return sorted(facts, key=repr)


def diff(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]]) -> list[str]:
    """Lines naming what one side has and the other lacks; empty when they agree."""
    ls, rs = set(left), set(right)
    return ([f"only in the source: {f!r}" for f in sorted(ls - rs, key=repr)]
            + [f"only in the target: {f!r}" for f in sorted(rs - ls, key=repr)])
