"""The requirement catalogue that validation traces tests to.

Two kinds of requirement, each with a stable ID:

* **regulatory**: every ID of the project's ``REQUIREMENTS.md`` (what Part 11, Annex 11,
  ICH E6(R3) and the EMA TMF guideline ask of an eTMF), verbatim, with its regulatory source.
  A test (``tests/integration/validation/test_catalogue.py``) keeps the two identical.
* **functional**: the project's own functional requirements per capability (``FR-<AREA>-n``),
  short and testable, only for what the software does today.

A test demonstrates a requirement by carrying ``@pytest.mark.req("ID")``; the validation
pytest plugin refuses a marker whose ID is not here, so a typo cannot orphan evidence.
The catalogue is Python (not a data file) so that it ships with the package as code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    """One requirement: ID, group (capability), text, regulatory source and kind."""

    id: str
    group: str
    text: str
    source: str
    kind: str  # "regulatory" | "functional"


def _reg(id_: str, group: str, source: str, text: str) -> Requirement:
    return Requirement(id=id_, group=group, text=text, source=source, kind="regulatory")


def _fr(id_: str, group: str, source: str, text: str) -> Requirement:
    return Requirement(id=id_, group=group, text=text, source=source, kind="functional")


_SPEC = "eTMF functional specification"

REQUIREMENTS: tuple[Requirement, ...] = (
    # ---- Audit trail: Part 11 §11.10(e), Annex 11 §9, E6(R3) §4.2.2
    _reg('AUD-1', 'Audit trail', 'Part 11 §11.10(e), Annex 11 §9, E6(R3) §4.2.2',
         'Every create, change, delete-equivalent (withdraw, obsolete), state transition, signature, signature refusal, login, failed login, logout, role or permission change, account creation/deactivation and inspector access grant writes an audit record: actor user id and printed name, UTC timestamp from the server clock, action, object and version, old and new values, reason for change where one is required, client address.'),
    _reg('AUD-2', 'Audit trail', 'Part 11 §11.10(e), Annex 11 §9, E6(R3) §4.2.2',
         "Audit records are append-only: the application's own database role cannot UPDATE, DELETE or TRUNCATE them (permission error), and triggers refuse it for the table owner too, on PostgreSQL and on SQLite."),
    _reg('AUD-3', 'Audit trail', 'Part 11 §11.10(e), Annex 11 §9, E6(R3) §4.2.2',
         'Tamper evidence: each record carries the hash of its predecessor; a verifier recomputes the chain and names the first record that does not verify. An edit made by a superuser who bypasses the triggers is detected. Truncating the newest records is detected against a signed checkpoint kept outside the table.'),
    _reg('AUD-4', 'Audit trail', 'Part 11 §11.10(e), Annex 11 §9, E6(R3) §4.2.2',
         'A change never obscures the earlier value: every earlier value of every field stays retrievable, and the audit view shows old → new.'),
    _reg('AUD-5', 'Audit trail', 'Part 11 §11.10(e), Annex 11 §9, E6(R3) §4.2.2',
         'The audit trail of a record, of a study and of a user can be viewed by an inspector without edit rights, and exported (CSV and PDF).'),
    _reg('AUD-6', 'Audit trail', 'Part 11 §11.10(e), Annex 11 §9, E6(R3) §4.2.2',
         'Current state is derived from the events: rebuilding every projection from the event log gives exactly the live tables.'),
    _reg('AUD-7', 'Audit trail', 'Part 11 §11.10(e), Annex 11 §9, E6(R3) §4.2.2',
         'Timestamps are unambiguous: stored and shown in UTC (local time may be shown beside it, labelled).'),
    # ---- Electronic signatures: Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14
    _reg('SIG-1', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         "Manifestation: the signed PDF shows, inside the signed revision, the signer's printed full name (from the user record, not typed), date and time with time zone, and the meaning (from a configured list: author, review, approval, investigator attestation, …)."),
    _reg('SIG-2', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         'The same name, time and meaning are stored machine-readably in the signature dictionary (/Name, /M, /Reason), in the CMS, and in the audit record, and they agree.'),
    _reg('SIG-3', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         "Linking: a signature is bound to the exact bytes of one document version (its SHA-256). A new version never inherits earlier signatures. A signature moved into another document, a byte changed in the signed range, or content added in a later revision is reported INVALID by the server's validator and by pyHanko."),
    _reg('SIG-4', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         'Both components at every signing: the signing request itself carries user ID and password (and a second factor where enrolled); a fresh session alone is not enough. The signature dictionary records how the signer authenticated (/Prop_AuthType, /Prop_AuthTime).'),
    _reg('SIG-5', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         'Only the authenticated user can sign as themself: no request parameter, admin path or impersonation lets one user sign as another.'),
    _reg('SIG-6', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         'Authority: only users with signing rights on that study (and site) can sign, only with the meanings their role allows, and only documents in a signable state.'),
    _reg('SIG-7', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         'Sequence: a signature workflow enforces its order (e.g. author → reviewer → approver); out-of-order signing is refused with a clear error.'),
    _reg('SIG-8', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         "Before a user's first signature, the system records that their identity was verified and their acceptance that their electronic signature is the legally binding equivalent of a handwritten one."),
    _reg('SIG-9', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         'Long-term validity: with a time-stamping authority configured, signatures reach PAdES B-T, B-LT and B-LTA; validation results are stored with the record. Without one, the level is B-B and says so; there is never a silent downgrade.'),
    _reg('SIG-10', 'Electronic signatures', 'Part 11 §11.50, §11.70, §11.100, §11.200, §11.300; Annex 11 §14',
         'The printable rendition of a signed record shows every signature manifestation.'),
    # ---- Identity and access: Part 11 §11.10(d)(g), §11.300; Annex 11 §12; E6(R3) §4.2.2
    _reg('ACC-1', 'Identity and access', 'Part 11 §11.10(d)(g), §11.300; Annex 11 §12; E6(R3) §4.2.2',
         'Role-based, least privilege, deny by default: every endpoint is checked for every role; a test matrix proves it.'),
    _reg('ACC-2', 'Identity and access', 'Part 11 §11.10(d)(g), §11.300; Annex 11 §12; E6(R3) §4.2.2',
         'Access is scoped to studies (and sites): a user of study A sees nothing of study B, including in search results, counts and exports.'),
    _reg('ACC-3', 'Identity and access', 'Part 11 §11.10(d)(g), §11.300; Annex 11 §12; E6(R3) §4.2.2',
         'Inspectors get read-only, study-scoped access for a stated time window; every document an inspector opens is logged.'),
    _reg('ACC-4', 'Identity and access', 'Part 11 §11.10(d)(g), §11.300; Annex 11 §12; E6(R3) §4.2.2',
         'User ids are unique and never reused; accounts are deactivated, never deleted.'),
    _reg('ACC-5', 'Identity and access', 'Part 11 §11.10(d)(g), §11.300; Annex 11 §12; E6(R3) §4.2.2',
         'Account lockout after a configured number of consecutive failed logins; unlocking is an audited administrator action.'),
    _reg('ACC-6', 'Identity and access', 'Part 11 §11.10(d)(g), §11.300; Annex 11 §12; E6(R3) §4.2.2',
         'Password policy (minimum length, strength) and second factor (TOTP) required for roles that sign or approve.'),
    _reg('ACC-7', 'Identity and access', 'Part 11 §11.10(d)(g), §11.300; Annex 11 §12; E6(R3) §4.2.2',
         'Sessions end after a configured inactivity period (default 15 minutes); logout invalidates the session; login errors do not reveal whether an account exists.'),
    _reg('ACC-8', 'Identity and access', 'Part 11 §11.10(d)(g), §11.300; Annex 11 §12; E6(R3) §4.2.2',
         'CSRF protection on every state-changing form; API access by token.'),
    # ---- Records: Part 11 §11.10(a)(b)(c); Annex 11 §7, §17; EMA TMF guideline; E6(R3) App. C
    _reg('REC-1', 'Records', 'Part 11 §11.10(a)(b)(c); Annex 11 §7, §17; EMA TMF guideline; E6(R3) App. C',
         "Every stored file's SHA-256 is recorded and re-checked on read and by a scrub command; a mismatch is an alert, never silently served."),
    _reg('REC-2', 'Records', 'Part 11 §11.10(a)(b)(c); Annex 11 §7, §17; EMA TMF guideline; E6(R3) App. C',
         'Accurate and complete copies: any record can be exported with its metadata, versions, signatures and audit trail, in human-readable and electronic form.'),
    _reg('REC-3', 'Records', 'Part 11 §11.10(a)(b)(c); Annex 11 §7, §17; EMA TMF guideline; E6(R3) App. C',
         'Final records are write-once: in S3 with Object Lock where enabled; a locked (archived) study accepts no change.'),
    _reg('REC-4', 'Records', 'Part 11 §11.10(a)(b)(c); Annex 11 §7, §17; EMA TMF guideline; E6(R3) App. C',
         'Backup and restore round-trip: after restore every checksum matches and every signature still validates.'),
    _reg('REC-5', 'Records', 'Part 11 §11.10(a)(b)(c); Annex 11 §7, §17; EMA TMF guideline; E6(R3) App. C',
         'Document date, upload date and approval date are distinct fields; the TMF can be ordered by document date.'),
    _reg('REC-6', 'Records', 'Part 11 §11.10(a)(b)(c); Annex 11 §7, §17; EMA TMF guideline; E6(R3) App. C',
         'Version history: every version of every document stays retrievable, with the chain current → superseded.'),
    _reg('REC-7', 'Records', 'Part 11 §11.10(a)(b)(c); Annex 11 §7, §17; EMA TMF guideline; E6(R3) App. C',
         'A record of where essential records are located, including placeholders that point to records held in other systems.'),
    # ---- Operational checks: Part 11 §11.10(f)(h)
    _reg('OPS-1', 'Operational checks', 'Part 11 §11.10(f)(h)',
         'Document lifecycle steps are enforced in order (e.g. no approval before QC); a finalised version cannot be edited.'),
    _reg('OPS-2', 'Operational checks', 'Part 11 §11.10(f)(h)',
         'Uploaded files are checked: type by content not by name, size limits, malformed or encrypted PDFs and archive bombs rejected with a clear error; nothing partial is stored.'),
    # ---- Functional requirements: what each capability does (this project's specification)
    _fr("FR-FILE-1", "Filing", f"{_SPEC}; TMF Reference Model 3.3.1",
        "A TMF specialist files a document into a study by uploading a file and classifying it "
        "to a TMF Reference Model artifact with its metadata (level, country, site, person, "
        "title, document date, expiry date)."),
    _fr("FR-FILE-2", "Filing", _SPEC,
        "Several files can be filed at once; a refused file is named with its reason and never "
        "prevents the others from being filed."),
    _fr("FR-FILE-3", "Filing", _SPEC,
        "A file whose SHA-256 is already filed in the study is flagged as a duplicate with a "
        "link to the existing document."),
    _fr("FR-LIFE-1", "Lifecycle", f"{_SPEC}; Part 11 §11.10(f)",
        "A document moves draft → in QC → approved; approving a new version supersedes the "
        "earlier approved version."),
    _fr("FR-LIFE-2", "Lifecycle", _SPEC,
        "A QC reviewer can reject a document with QC issues, which must be answered before the "
        "document is submitted to QC again."),
    _fr("FR-LIFE-3", "Lifecycle", f"{_SPEC}; Part 11 §11.10(e)",
        "A document is withdrawn (made obsolete) only with a reason; it stays retrievable."),
    _fr("FR-SRCH-1", "Search", _SPEC,
        "Full-text search finds words inside filed documents and returns only documents the "
        "user may see."),
    _fr("FR-SIGN-1", "Signing", f"{_SPEC}; Part 11 §11.10(f)",
        "A signature request names its signers, each with a meaning, in sequential or parallel "
        "order; each signer is notified by mail when it is their turn."),
    _fr("FR-SIGN-2", "Signing", _SPEC,
        "A signer can decline a signature request with a reason; the requester can cancel it."),
    _fr("FR-SIGN-3", "Signing", f"{_SPEC}; Part 11 §11.70",
        "The document page shows each signature of the current version with its validation "
        "result in words."),
    _fr("FR-AUDIT-1", "Audit trail", f"{_SPEC}; Annex 11 §9",
        "`etmf audit verify` checks the hash chain, every signed checkpoint and the replay of "
        "the log, and exits non-zero naming the first problem."),
    _fr("FR-AUDIT-2", "Audit trail", _SPEC,
        "`etmf audit prove` gives an inclusion proof of one event against a signed checkpoint "
        "that can be checked offline."),
    _fr("FR-INSP-1", "Inspection", f"{_SPEC}; Part 11 §11.10(d)",
        "An administrator grants an inspector read-only access to one study for a time window; "
        "outside the window sign-in is refused with the window stated."),
    _fr("FR-INSP-2", "Inspection", _SPEC,
        "A document downloaded by an inspector carries an “Inspection copy” watermark with "
        "their name and the UTC time; the stored record is unchanged."),
    _fr("FR-INSP-3", "Inspection", f"{_SPEC}; EMA TMF guideline §6",
        "An inspector raises a request for a document or an explanation; the study team "
        "answers it; both are audit events and listed on the study's request page."),
    _fr("FR-EXCH-1", "Exchange", f"{_SPEC}; EMS 1.0",
        "An EMS export (whole study or selected zones and sites) is a zip with the zone/"
        "section/artifact folders and an exchange.xml valid against the EMS XSD, with every "
        "version's state, checksum, signatures and audit records."),
    _fr("FR-EXCH-2", "Exchange", f"{_SPEC}; EMS 1.0",
        "An EMS package imported into an empty instance gives the same documents, versions, "
        "states, metadata and checksums; importing it again changes nothing."),
    _fr("FR-EXCH-3", "Exchange", f"{_SPEC}; EMS 1.0",
        "The import dry run names every file whose checksum does not match and the import "
        "refuses the package (or imports only the good objects when asked)."),
    _fr("FR-EXCH-4", "Exchange", f"{_SPEC}; EMA TMF guideline §6.3",
        "`etmf archive create` locks the study and writes a certified package (EMS export, "
        "audit trail CSV and PDF, signature reports, SHA-256 manifest, signed checkpoint) "
        "that can be verified without the server."),
    _fr("FR-STOR-1", "Storage", f"{_SPEC}; Annex 11 §7",
        "`etmf storage verify` re-hashes every referenced file and names the document and "
        "version of any mismatch or missing file."),
    _fr("FR-STOR-2", "Storage", _SPEC,
        "`etmf storage reconcile` lists stored files that no version references and never "
        "removes a referenced file."),
    _fr("FR-STOR-3", "Storage", _SPEC,
        "When storage is unavailable during an upload, the user is told so (HTTP 503) and no "
        "document is stored."),
    _fr("FR-VAL-1", "Validation", f"{_SPEC}; Part 11 §11.10(a); Annex 11 §4; GAMP 5",
        "`etmf validate` produces an IQ/OQ report (HTML and PDF) with the traceability matrix "
        "and the deviations, and exits non-zero when a test fails or a requirement has no test."),
    _fr("FR-VAL-2", "Validation", f"{_SPEC}; Annex 11 §4",
        "A test marker naming a requirement ID that is not in the catalogue fails the run."),
    _fr("FR-VAL-3", "Validation", f"{_SPEC}; Annex 11 §4",
        "`etmf validate --pq-template` writes an editable DOCX performance qualification "
        "protocol with the scenarios table."),
    _fr("FR-VAL-4", "Validation", f"{_SPEC}; Part 11 §11.10(a); Annex 11 §4",
        "`etmf validate --file-into STUDY` files the report into the study's TMF (zone 10 or "
        "01 as configured, under the Reference Model artifact for validation documentation) "
        "and requests its signatures through the signature workflow."),
    _fr("FR-CTMS-1", "CTMS", f"{_SPEC}; ICH E6(R3) 2.8",
        "For each site the protocol and ICF versions approved (with the IRB/IEC approval "
        "document) and activated are recorded; the version in force at a site on a date has "
        "one answer, also across an amendment."),
    _fr("FR-CTMS-2", "CTMS", _SPEC,
        "A site moves feasibility → selection → initiation → active → enrolling → closed; "
        "activation is refused while essential documents are missing or expired, naming them."),
    _fr("FR-CTMS-3", "CTMS", f"{_SPEC}; ICH E6(R3) 2.8",
        "A consent on an ICF version not approved and in force at the subject's site on the "
        "consent date is refused with the reason; a new ICF flags subjects to re-consent."),
    _fr("FR-CTMS-4", "CTMS", _SPEC,
        "Randomization by permuted blocks, stratified and seeded, is reproducible and balanced "
        "in each block and stratum; the list is visible only to the randomization role and "
        "every allocation is an audit event."),
    _fr("FR-CTMS-5", "CTMS", _SPEC,
        "Visits are planned from the protocol schedule with windows; a visit completed outside "
        "its window is flagged."),
    _fr("FR-CTMS-6", "CTMS", _SPEC,
        "Enrollment per site and study is shown against target with a forecast date of reaching "
        "the target and an uncertainty band."),
    _fr("FR-CTMS-7", "CTMS", f"{_SPEC}; ICH E6(R3) 4.7",
        "The randomization seed is sealed (encrypted with the instance's randomization key) in "
        "the audit trail, so reading the trail does not reveal the list; replaying the log "
        "still rebuilds it."),
    _fr("FR-CTMS-8", "CTMS", _SPEC,
        "Site payments: per-site contracts (rates per subject, visit, procedure, screen "
        "failure, milestone; holdback; currency); accruals computed from completed activities; "
        "batches approved by a study manager and exported as CSV and ISO 20022 pain.001; "
        "discrepancies between paid, accrued and contracted flagged; invoices and receipts "
        "filed as TMF documents."),
    _fr("FR-CTMS-9", "CTMS", f"{_SPEC}; CDISC ODM 1.3",
        "EDC import of CDISC ODM 1.3: a dry run lists the changes (subject status, visit "
        "completion with dates) and what is unknown or malformed; the import is one "
        "transaction; importing twice changes nothing; XML entities are never resolved."),
    _fr("FR-CTMS-10", "CTMS", f"{_SPEC}; ICH E6(R3) 2.3",
        "Each site's key personnel (persons with a role, linked to their CV, licence and "
        "training documents) are shown with whether each document is approved and unexpired."),
    _fr("FR-TRACK-1", "Tracking", f"{_SPEC}; EMA TMF guideline §3.4",
        "A study's expected document list is generated from the Reference Model's core "
        "artifacts at trial, country and site level and edited per place (add, remove, required "
        "count, due milestone); a placeholder from it is filled when a matching document is "
        "filed."),
    _fr("FR-TRACK-2", "Tracking", _SPEC,
        "Completeness (expected vs approved), overdue (milestone passed, document missing), "
        "timeliness against the study's targets and QC quality are computed from the data per "
        "study, country, site, zone and milestone, with the documents behind each figure."),
    _fr("FR-TRACK-3", "Tracking", f"{_SPEC}; ICH E6(R3) 2.3",
        "Documents that expire (own expiry date, or document date plus the artifact's validity) "
        "are listed as expired or expiring within 30/60/90/120 days and flagged on the site."),
    _fr("FR-TRACK-4", "Tracking", _SPEC,
        "A person's CV, licence and training records count at every site where the person "
        "works; one renewed document clears the expired flag at all of them."),
    _fr("FR-TRACK-5", "Tracking", _SPEC,
        "Reminders before expiry and milestone dates are mailed once per threshold (an audit "
        "event records each), never again on a later run; a dry run sends nothing."),
    _fr("FR-TRACK-6", "Tracking", f"{_SPEC}; EMA TMF guideline §6",
        "The inspection-readiness view of a study or site lists missing, expired, pending QC, "
        "unsigned documents and open QC issues; site activation is refused while a start-up "
        "essential document is missing, not approved or expired."),
    _fr("FR-MON-1", "Monitoring", f"{_SPEC}; ICH E6(R3) 3.11.4",
        "Monitoring visits are planned per site and recorded with attendees, subjects and "
        "documents reviewed, findings and action items; the report is generated as a PDF, filed "
        "at the Monitoring Visit Report artifact and signed by the CRA then the manager."),
    _fr("FR-MON-2", "Monitoring", f"{_SPEC}; ICH E2A",
        "Serious adverse events carry their expedited reporting clock (7 days fatal or "
        "life-threatening unexpected, 15 other serious unexpected, configurable per study), "
        "due date, state and submission with the filed report; reminders once per threshold."),
    _fr("FR-MON-3", "Monitoring", f"{_SPEC}; ICH E6(R3) 3.10",
        "Protocol deviations are logged per site and subject, reviewed and closed (important "
        "ones with CAPA); the deviation rate per site is computed."),
    _fr("FR-MON-4", "Monitoring", f"{_SPEC}; ICH E6(R3) 3.10.1",
        "Key risk indicators per site are computed from the data against per-study "
        "thresholds and shown as a site × indicator heat map whose cells link to the records; "
        "a site turning red notifies the study manager once."),
    _fr("FR-SSO-1", "Single sign-on", f"{_SPEC}; Part 11 §11.10(d)",
        "A user signs in through an OpenID Connect provider (discovery, PKCE, state, nonce); "
        "an account is created just in time or an existing one linked, as configured; each "
        "SSO sign-in is an audit event naming the provider and subject."),
    _fr("FR-SSO-2", "Single sign-on", f"{_SPEC}; Part 11 §11.10(g)",
        "Groups in the provider's claims map to study roles (and sites) as configured."),
    _fr("FR-SSO-3", "Single sign-on", f"{_SPEC}; Part 11 §11.10(d)",
        "A person whose e-mail domain is not allowed for the provider gets no account."),
    _fr("FR-SSO-4", "Single sign-on", f"{_SPEC}; Part 11 §11.10(d)",
        "An ID token with a wrong signature, issuer, audience or nonce, or an expired one, is "
        "refused with a clear message and nobody is signed in."),
    _fr("FR-SSO-5", "Single sign-on", _SPEC,
        "Local passwords can be disabled for a provider's e-mail domains."),
    _fr("FR-SSO-6", "Single sign-on", f"{_SPEC}; Part 11 §11.10(d)",
        "Signing out ends the local session and, where the provider supports RP-initiated "
        "logout, the provider session."),
    _fr("FR-SSO-7", "Single sign-on", f"{_SPEC}; Part 11 §11.200(a)",
        "An SSO user signs only after re-entering their credentials at the provider "
        "(prompt=login, max_age=0) with a fresh auth_time and the same subject; the signature "
        "dictionary records the authentication type and the audit event the provider, "
        "subject and auth_time."),
    _fr("FR-SSO-8", "Single sign-on", f"{_SPEC}; Part 11 §11.200(a)",
        "A re-authentication with a stale auth_time (a provider that ignored prompt=login) or "
        "by another subject is refused with a clear message and nothing is signed."),
)

BY_ID: dict[str, Requirement] = {r.id: r for r in REQUIREMENTS}


def requirement_ids() -> frozenset[str]:
    """Every requirement ID of the catalogue."""
    return frozenset(BY_ID)
