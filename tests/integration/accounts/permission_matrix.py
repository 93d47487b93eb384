"""Who may call which route: the expected table of the permission matrix test (ACC-1).

EVERY endpoint of the app must have an entry here; a new route without one fails
``test_permission_matrix.py`` with the list of the missing endpoints. To add yours, pick one
policy and write one line::

    "area.endpoint": Study(P.VIEW_STUDY),          # members whose role holds the permission
    "area.endpoint": Admin(),                      # administrators only
    "area.endpoint": SignedIn(),                   # anyone signed in (their own things)
    "area.endpoint": Public(),                     # no sign-in needed
    "area.endpoint": Flow("why"),                  # a sign-in flow, not checked by role

``data`` is the form sent with POST (a JSON body if it has ``JSON: True``) (and the query for GET): give what the route needs to get
past input validation to its permission check, so that a refusal really is the permission.
If your route takes a URL argument this file does not know, add it to ``ARGS`` in
``test_permission_matrix.py``.

What the test expects, per role:
* anonymous: Public allowed; everything else 302 to /login (401 JSON under /api/);
* an inspector outside the window cannot sign in, so is anonymous; inside it, every non-GET
  is 403 (read-only), GET follows the policy with the inspector role's permissions;
* Study(P): members whose role has P are let through (not 401/403, and for GET with real
  ids not 4xx); other members get 403 or 404; users of another study, and administrators
  without a membership, get 404 (a study's existence is not revealed);
* Admin: administrators through, everyone else 403 or 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etmf.accounts.roles import Permission as P

#: In ``data``: replaced by a small PDF upload in each request.
UPLOAD = "<a PDF file>"
#: A key of ``data``: send the rest as a JSON body (CSRF token in the X-CSRFToken header).
JSON = "__json__"


@dataclass(frozen=True)
class Policy:
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Public(Policy):
    pass


@dataclass(frozen=True)
class SignedIn(Policy):
    pass


@dataclass(frozen=True)
class Admin(Policy):
    pass


@dataclass(frozen=True)
class Study(Policy):
    permission: P = P.VIEW_STUDY

    def __init__(self, permission: P, data: dict[str, object] | None = None) -> None:
        object.__setattr__(self, "permission", permission)
        object.__setattr__(self, "data", data or {})


@dataclass(frozen=True)
class Flow(Policy):
    why: str = ""

    def __init__(self, why: str) -> None:
        object.__setattr__(self, "why", why)
        object.__setattr__(self, "data", {})


EXPECTED: dict[str, Policy] = {
    # -- platform -------------------------------------------------------------------------
    "static": Public(),
    "main.healthz": Public(),
    "main.readyz": Public(),
    "main.home": SignedIn(),
    "search.search": SignedIn(),  # results are scoped inside (ACC-2 tests in search/)
    # -- Flask-Security-Too ----------------------------------------------------------------
    "security.static": Public(),
    "security.login": Flow("the sign-in form itself"),
    "security.logout": Flow("signs out; tested in test_app_basics"),
    "security.change_password": SignedIn(),
    "security.verify": Flow("re-authentication form"),
    "security.tf_select": Flow("second-factor state machine (test_totp.py)"),
    "security.two_factor_rescue": Flow("second-factor state machine"),
    "security.two_factor_setup": Flow("second-factor enrolment (test_totp.py)"),
    "security.two_factor_setup_validate": Flow("second-factor enrolment"),
    "security.two_factor_token_validation": Flow("second-factor state machine"),
    # -- accounts, profile, administration --------------------------------------------------
    "account.profile": SignedIn(),
    "account.keepalive": SignedIn(),
    "account.create_token": SignedIn({"name": "matrix", "days": 1}),
    "account.revoke_token": SignedIn(),
    "admin.users": Admin(),
    # A job is seen by whoever started it (and administrators); the id is not guessable.
    "jobs.show": SignedIn(),
    "jobs.status": SignedIn(),
    "jobs.download": SignedIn(),
    "jobs.admin_list": Admin(),
    "jobs.retry": Admin(),
    "admin.create_user": Admin(),
    "admin.user": Admin(),
    "admin.deactivate": Admin(),
    "admin.reactivate": Admin(),
    "admin.unlock": Admin(),
    "admin.global_roles": Admin(),
    "admin.grant_membership": Admin(),
    "admin.revoke_membership": Admin(),
    "admin.locked": Admin(),
    "admin.inspections": Admin(),
    "admin.grant_inspection": Admin(),
    "admin.revoke_inspection": Admin(),
    # -- API --------------------------------------------------------------------------------
    "api.openapi_json": Public(),
    "api.me": SignedIn(),
    "api.studies": SignedIn(),
    "api.study": Study(P.VIEW_STUDY),
    "api_documents.list_documents": Study(P.VIEW_STUDY),
    "api_documents.tree": Study(P.VIEW_STUDY),
    "api_documents.get_document": Study(P.VIEW_APPROVED),
    "api_documents.download": Study(P.VIEW_APPROVED),
    "api_documents.search": SignedIn(),
    "api_documents.file_document": Study(P.FILE),
    "api_documents.add_version": Study(P.FILE, {"file": UPLOAD, "expected_version": "3"}),
    "api_documents.transition": Study(P.APPROVE, {JSON: True, "action": "withdraw",
                                                  "expected_version": 3, "reason": "matrix"}),
    # -- studies and documents ----------------------------------------------------------------
    "studies.overview": Study(P.VIEW_STUDY),
    "studies.documents": Study(P.VIEW_STUDY),
    "studies.archive": Admin(),
    "studies.lock": Admin({"version": "1"}),
    "studies.unlock": Admin({"version": "1"}),
    "documents.artifacts_json": SignedIn(),
    "documents.detail": Study(P.VIEW_APPROVED),
    "documents.download": Study(P.VIEW_APPROVED),
    "documents.file_new": Study(P.FILE),
    "documents.file_upload": Study(P.FILE),
    "documents.file_commit": Study(P.FILE),
    "documents.record_new": Study(P.FILE),
    "documents.edit": Study(P.EDIT_METADATA),
    "documents.add_version": Study(P.FILE, {"file": UPLOAD, "version": "3"}),
    "documents.transition": Study(P.APPROVE, {"action": "withdraw", "version": "3",
                                              "reason": "matrix"}),
    "documents.qc_issues": Study(P.VIEW_STUDY),
    "documents.answer_issue": Study(P.FILE),
    # -- tracking: EDL, completeness, expiry, readiness, people ------------------------------
    "tracking.dashboard": Study(P.VIEW_STUDY),
    "tracking.entries": Study(P.VIEW_STUDY),
    "tracking.file_expected": Study(P.FILE, {"entry_id": "999999", "file": UPLOAD}),
    "tracking.expiry": Study(P.VIEW_STUDY),
    "tracking.readiness": Study(P.VIEW_STUDY),
    "tracking.edl": Study(P.VIEW_STUDY),
    "tracking.generate": Study(P.MANAGE_STUDY),
    "tracking.add_entry": Study(P.MANAGE_STUDY, {"artifact": "05.02.04", "level": "trial"}),
    "tracking.change_entry": Study(P.MANAGE_STUDY, {"entry_id": "999999"}),
    "tracking.placeholders": Study(P.MANAGE_STUDY),
    "tracking.set_milestone": Study(P.MANAGE_STUDY, {"code": "03", "level": "trial",
                                                     "planned": "2027-01-01"}),
    "tracking.set_targets": Study(P.MANAGE_STUDY, {"filing_days": "30", "approval_days": "14",
                                                   "expiry_reminders": "30",
                                                   "milestone_reminders": "7"}),
    "tracking.persons": Study(P.VIEW_STUDY),
    "tracking.add_person": Study(P.MANAGE_STUDY, {"site_id": "999999", "role": "PI"}),
    "tracking.link_document": Study(P.FILE, {"document_id": "999999", "person_id": "1"}),
    "tracking.tasks": SignedIn(),
    "api_tracking.completeness": Study(P.VIEW_STUDY),
    "api_tracking.expiring": Study(P.VIEW_STUDY),
    "api_tracking.readiness": Study(P.VIEW_STUDY),
    # -- audit trail ---------------------------------------------------------------------------
    "audit.study_trail": Study(P.VIEW_AUDIT),
    "audit.object_trail": Study(P.VIEW_AUDIT),
    "audit.user_trail": Admin(),
    "records.record_copy": Study(P.VIEW_AUDIT),  # a complete copy of one record (REC-2)
    # -- signing ---------------------------------------------------------------------------------
    "pki.ca_certificate": Public(),
    "pki.crl": Public(),
    "signing.profile": SignedIn(),
    "signing.accept": SignedIn(),
    "signing.certificate_pem": SignedIn(),  # own certificates only (404 for others')
    "signing.admin_signers": Admin(),
    "signing.record_identity": Admin(),
    "signing.issue": Admin(),
    "signing.revoke": Admin(),
    "signing.new_request": Study(P.REQUEST_SIGNATURES),
    "signing.request_detail": Study(P.VIEW_STUDY),
    "signing.ceremony": Study(P.SIGN),
    "signing.sign": Study(P.SIGN),
    "signing.decline": Study(P.SIGN),
    "signing.cancel": Study(P.REQUEST_SIGNATURES, {"version": "1", "reason": "matrix"}),
    "signing.recheck": Study(P.VIEW_APPROVED),
    "signing.api_signatures": Study(P.VIEW_APPROVED),
    "api_signing.sign": Study(P.SIGN, {JSON: True, "confirm": True}),
    "sso.login": Flow("sends the browser to the identity provider (tests/integration/sso)"),
    "sso.callback": Flow("the identity provider's answer (tests/integration/sso)"),
    "sso.sign": Study(P.SIGN, {"confirm": "yes"}),
    # -- inspection and exchange ------------------------------------------------------------
    "inspection.landing": Study(P.VIEW_STUDY),
    "inspection.requests": Study(P.VIEW_STUDY),
    "inspection.raise_request": Study(P.RAISE_INSPECTION_REQUEST,
                                      {"kind": "explanation", "subject": "matrix",
                                       "text": "matrix"}),
    "inspection.answer": Study(P.ANSWER_INSPECTION_REQUEST, {"version": "1",
                                                             "answer": "matrix"}),
    "exchange.page": Study(P.EXPORT_TMF),
    "exchange.export": Study(P.EXPORT_TMF),
    "exchange.export_job": Study(P.EXPORT_TMF),
    "exchange.import_package": Study(P.IMPORT_TMF, {"file": UPLOAD, "mode": "dry_run"}),
    "exchange.import_checked": Study(P.IMPORT_TMF, {"token": "x", "mode": "import"}),
    "api_exchange.start_export_job": Study(P.EXPORT_TMF, {JSON: True}),
    "api_exchange.export_job_status": Study(P.EXPORT_TMF),
    "api_exchange.dry_run_package": Study(P.IMPORT_TMF, {"file": UPLOAD}),
    "api_exchange.list_requests": Study(P.VIEW_STUDY),
    "api_exchange.raise_request": Study(P.RAISE_INSPECTION_REQUEST, {
        JSON: True, "kind": "explanation", "subject": "matrix", "text": "matrix"}),
    "api_exchange.answer_request": Study(P.ANSWER_INSPECTION_REQUEST, {
        JSON: True, "expected_version": 1, "answer": "matrix"}),
    # -- CTMS (ctms/web) ---------------------------------------------------------------------
    "ctms.index": SignedIn(),
    "ctms.study": Study(P.VIEW_STUDY),
    "ctms.subjects": Study(P.VIEW_STUDY),
    "ctms.randomization": Study(P.VIEW_RANDOMIZATION_LIST),
    "ctms.save_plan": Study(P.MANAGE_STUDY),
    "ctms.register_version": Study(P.MANAGE_STUDY),
    "ctms.approve_version": Study(P.MANAGE_STUDY),
    "ctms.site_status": Study(P.MANAGE_STUDY),
    "ctms.site_target": Study(P.MANAGE_STUDY),
    "ctms.define_visit": Study(P.MANAGE_STUDY),
    "ctms.screen": Study(P.MANAGE_SUBJECTS),
    "ctms.consent": Study(P.MANAGE_SUBJECTS),
    "ctms.subject_status": Study(P.MANAGE_SUBJECTS),
    "ctms.randomize": Study(P.MANAGE_SUBJECTS),
    "ctms.complete_visit": Study(P.MANAGE_SUBJECTS),
    "ctms.generate": Study(P.VIEW_RANDOMIZATION_LIST),
    "ctms.activate_version": Study(P.MANAGE_STUDY),
    "ctms.add_person": Study(P.MANAGE_STUDY),
    "ctms.link_person_document": Study(P.MANAGE_STUDY),
    "api_ctms.sites": Study(P.VIEW_STUDY),
    "api_ctms.subjects": Study(P.VIEW_STUDY),
    "api_ctms.enrollment": Study(P.VIEW_STUDY),
    "api_ctms.record_consent": Study(P.MANAGE_SUBJECTS, {JSON: True}),
    "ctms_payments.payments": Study(P.MANAGE_PAYMENTS),
    "ctms_payments.save_contract": Study(P.MANAGE_PAYMENTS),
    "ctms_payments.create_batch": Study(P.MANAGE_PAYMENTS),
    "ctms_payments.approve_batch": Study(P.MANAGE_PAYMENTS),
    "ctms_payments.cancel_batch": Study(P.MANAGE_PAYMENTS),
    "ctms_payments.record_payment": Study(P.MANAGE_PAYMENTS),
    "ctms_payments.file_document": Study(P.MANAGE_PAYMENTS),
    "ctms_payments.export_batch": Study(P.MANAGE_PAYMENTS),
    "ctms_edc.edc": Study(P.MANAGE_SUBJECTS),
    "ctms_edc.dry_run": Study(P.MANAGE_SUBJECTS),
    "ctms_edc.confirm": Study(P.MANAGE_SUBJECTS),
    "api_ctms_payments.payments": Study(P.MANAGE_PAYMENTS),
    "api_ctms_payments.create_batch": Study(P.MANAGE_PAYMENTS, {JSON: True}),
    "api_ctms_payments.approve_batch": Study(P.MANAGE_PAYMENTS, {JSON: True}),
    "api_ctms_payments.export_batch": Study(P.MANAGE_PAYMENTS, {JSON: True}),
    "api_ctms_payments.edc_import": Study(P.MANAGE_SUBJECTS),
    # -- monitoring, deviations, safety, risk (ctms/web/monitoring.py, risk.py) ---------------
    "monitoring.visits": Study(P.VIEW_STUDY),
    "monitoring.visit": Study(P.VIEW_STUDY),
    "monitoring.set_rule": Study(P.MANAGE_STUDY),
    "monitoring.plan": Study(P.RECORD_MONITORING),
    "monitoring.record": Study(P.RECORD_MONITORING),
    "monitoring.report": Study(P.RECORD_MONITORING),
    "monitoring.close_item": Study(P.RECORD_MONITORING),
    "monitoring.letter": Study(P.RECORD_MONITORING),
    "monitoring.site_page": Study(P.VIEW_STUDY),
    "monitoring.deviations": Study(P.VIEW_STUDY),
    "monitoring.log_deviation": Study(P.RECORD_DEVIATIONS),
    "monitoring.review_deviation": Study(P.RECORD_DEVIATIONS),
    "monitoring.close_deviation": Study(P.RECORD_DEVIATIONS),
    "monitoring.safety_page": Study(P.VIEW_STUDY),
    "monitoring.report_sae": Study(P.REPORT_SAFETY),
    "monitoring.submit_sae": Study(P.REPORT_SAFETY),
    "monitoring.set_clock": Study(P.MANAGE_STUDY),
    "risk.dashboard": Study(P.VIEW_RISK),
    "risk.thresholds": Study(P.MANAGE_STUDY),
    "api_monitoring.visits": Study(P.VIEW_STUDY),
    "api_monitoring.deviations": Study(P.VIEW_STUDY),
    "api_monitoring.saes": Study(P.VIEW_STUDY),
    "api_monitoring.risk": Study(P.VIEW_RISK),
    "api_monitoring.risk_trend": Study(P.VIEW_RISK),
    "api_monitoring.overdue": Study(P.VIEW_STUDY),
    "api_monitoring.log_deviation": Study(P.RECORD_DEVIATIONS, {JSON: True}),
}
