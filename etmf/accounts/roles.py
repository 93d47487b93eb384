"""Roles and what each may do. Deny by default: a permission not listed is not held.

Administrators are a global role (accounts and configuration, no document content unless
also a member of a study). Every other role is held per study, optionally per site, through
a :class:`~etmf.accounts.models.Membership`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Permission(StrEnum):
    VIEW_STUDY = "study.view"
    VIEW_DRAFTS = "documents.view_drafts"
    VIEW_APPROVED = "documents.view_approved"
    FILE = "documents.file"
    EDIT_METADATA = "documents.edit"
    QC = "documents.qc"
    APPROVE = "documents.approve"
    SIGN = "documents.sign"
    REQUEST_SIGNATURES = "signatures.request"
    VIEW_AUDIT = "audit.view"
    MANAGE_STUDY = "study.manage"
    MANAGE_ACCOUNTS = "accounts.manage"
    EXPORT_TMF = "tmf.export"
    IMPORT_TMF = "tmf.import"
    RAISE_INSPECTION_REQUEST = "inspection.raise_request"
    ANSWER_INSPECTION_REQUEST = "inspection.answer_request"
    MANAGE_SUBJECTS = "subjects.manage"
    VIEW_RANDOMIZATION_LIST = "randomization.list"
    RECORD_MONITORING = "monitoring.record"
    RECORD_DEVIATIONS = "deviations.record"
    REPORT_SAFETY = "safety.report"
    VIEW_RISK = "risk.view"
    MANAGE_PAYMENTS = "payments.manage"


@dataclass(frozen=True)
class Role:
    code: str
    label: str
    description: str
    permissions: frozenset[Permission]
    study_scoped: bool = True
    signs: bool = False


_P = Permission

ROLES: dict[str, Role] = {
    r.code: r
    for r in (
        Role("admin", "Administrator", "Accounts, roles, inspector grants and configuration.",
             frozenset({_P.MANAGE_ACCOUNTS}), study_scoped=False),
        Role("study_manager", "Study manager", "Runs the study: sites, milestones, approvals.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_DRAFTS, _P.VIEW_APPROVED, _P.FILE,
                        _P.EDIT_METADATA, _P.APPROVE, _P.REQUEST_SIGNATURES, _P.VIEW_AUDIT,
                        _P.MANAGE_STUDY, _P.SIGN, _P.MANAGE_SUBJECTS, _P.EXPORT_TMF,
                        _P.MANAGE_PAYMENTS,
                        _P.IMPORT_TMF, _P.ANSWER_INSPECTION_REQUEST, _P.RECORD_MONITORING,
                        _P.RECORD_DEVIATIONS, _P.REPORT_SAFETY, _P.VIEW_RISK}), signs=True),
        Role("tmf_specialist", "TMF specialist", "Regulatory affairs: files and classifies.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_DRAFTS, _P.VIEW_APPROVED, _P.FILE,
                        _P.EDIT_METADATA, _P.REQUEST_SIGNATURES,
                        _P.ANSWER_INSPECTION_REQUEST})),
        Role("qc_reviewer", "QC reviewer", "Checks filed documents and approves or rejects.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_DRAFTS, _P.VIEW_APPROVED, _P.QC, _P.APPROVE}),
             signs=True),
        Role("investigator", "Investigator", "Signs documents for their site.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_APPROVED, _P.SIGN}), signs=True),
        Role("site_staff", "Site staff", "Files site documents for their site.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_DRAFTS, _P.VIEW_APPROVED, _P.FILE,
                        _P.MANAGE_SUBJECTS, _P.RECORD_DEVIATIONS, _P.REPORT_SAFETY})),
        Role("monitor", "Monitor / CRA", "Reads approved documents of assigned sites.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_APPROVED, _P.RECORD_MONITORING,
                        _P.RECORD_DEVIATIONS, _P.VIEW_RISK})),
        Role("cra", "Clinical research associate",
             "Monitors assigned sites: records visits, files and signs the visit reports.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_DRAFTS, _P.VIEW_APPROVED, _P.FILE,
                        _P.REQUEST_SIGNATURES, _P.SIGN, _P.RECORD_MONITORING,
                        _P.RECORD_DEVIATIONS, _P.VIEW_RISK}), signs=True),
        Role("auditor", "Auditor", "Reads everything of a study, including the audit trail.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_DRAFTS, _P.VIEW_APPROVED, _P.VIEW_AUDIT})),
        Role("randomizer", "Randomization manager",
             "Generates and alone sees the concealed randomization list.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_RANDOMIZATION_LIST})),
        Role("inspector", "Inspector", "Read-only, time-limited access to one study.",
             frozenset({_P.VIEW_STUDY, _P.VIEW_APPROVED, _P.VIEW_AUDIT,
                        _P.RAISE_INSPECTION_REQUEST})),
    )
}


def role(code: str) -> Role:
    try:
        return ROLES[code]
    except KeyError:
        raise ValueError(
            f"{code!r} is not a role; roles are {', '.join(sorted(ROLES))}"
        ) from None
