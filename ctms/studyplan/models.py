"""The study plan and the protocol / ICF versions approved and activated per site."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base

#: Kinds of versioned study documents whose approval is tracked per site.
KINDS = ("protocol", "icf")


class StudyPlan(Base):
    """CTMS fields of a study, kept beside ``studies`` (keyed by its id)."""

    __tablename__ = "ctms_study_plans"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), primary_key=True)
    indication: Mapped[str | None] = mapped_column(String(300))
    planned_enrollment: Mapped[int | None] = mapped_column(Integer)
    planned_start: Mapped[date | None] = mapped_column(Date)
    planned_end: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=0)


class StudyDocumentVersion(Base):
    """A protocol version (an amendment is a new one) or an ICF version, filed in the TMF."""

    __tablename__ = "ctms_document_versions"
    __table_args__ = (UniqueConstraint("study_id", "kind", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    kind: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(60))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    summary: Mapped[str | None] = mapped_column(Text)


class SiteVersionApproval(Base):
    """A version approved for a site by its IRB/IEC (with the approval document) and, from
    ``activated_on``, in force there until a later version is activated."""

    __tablename__ = "ctms_site_version_approvals"
    __table_args__ = (UniqueConstraint("site_id", "version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("ctms_document_versions.id"))
    kind: Mapped[str] = mapped_column(String(20))
    approval_document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    approved_on: Mapped[date] = mapped_column(Date)
    activated_on: Mapped[date | None] = mapped_column(Date)
