"""Signature request commands: request, sign (the ceremony), decline, cancel.

Signing is the one command with work outside the transaction: the signed PDF is computed and
its blob written first (content-addressed, write-once), then one unit of work adds the new
document version that points to the one signed and records ``signature.applied`` with the
same name, time and meaning as inside the PDF (SIG-2). A crash between the two leaves at
most an unreferenced blob. Every rule is checked again inside the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from io import BytesIO
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.accounts.access import Access, Grant
from etmf.accounts.models import Membership, User
from etmf.accounts.roles import Permission
from etmf.accounts.services import record_failed_login
from etmf.accounts.totp import consumed_step
from etmf.audit.store import Actor, Context, UnitOfWork, unit_of_work
from etmf.documents.lifecycle import State
from etmf.documents.models import Document, DocumentVersion
from etmf.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from etmf.mail import Mail
from etmf.signing import pki
from etmf.signing import rendition as rendering
from etmf.signing.manifestation import SignatureManifestation
from etmf.signing.service import ReauthenticationFailed, require_enrolled, verify_signer
from etmf.sso.provider import ExternalAuthentication
from etmf.studies.models import Study
from etmf.workflows import rules
from etmf.workflows.models import RequestedSigner, SignatureRequest

if TYPE_CHECKING:
    from etmf.bootstrap import Services


@dataclass(frozen=True)
class SignerSpec:
    user_id: int
    meaning: str


@dataclass(frozen=True)
class NewSignatureRequest:
    document_id: int
    signers: tuple[SignerSpec, ...]
    ordering: str = "sequential"
    due_date: date | None = None
    message: str | None = None


def access_of(session: Session, user: User) -> Access:
    """What another user may do (their current memberships), for checks made on their behalf
    when they are named as a signer."""
    grants = tuple(Grant(m.study_id, m.site_id, m.role) for m in session.scalars(
        select(Membership).where(Membership.user_id == user.id,
                                 Membership.revoked_at.is_(None))))
    return Access(user_id=user.id, name=user.full_name, is_admin=user.is_admin, grants=grants)


def roles_covering(access: Access, study_id: int, site_id: int | None) -> set[str]:
    return {g.role for g in access.grants if g.study_id == study_id
            and (g.site_id is None or site_id is None or g.site_id == site_id)}


def check_signing_authority(access: Access, doc: Document, meaning: str, who: str) -> None:
    """SIG-6: SIGN permission on the study (and the document's site), and a meaning the
    role allows."""
    if not access.can(Permission.SIGN, doc.study_id, doc.site_id):
        raise Forbidden(f"{who} has no signing rights for this document's study or site.")
    rules.check_meaning_allowed(meaning, roles_covering(access, doc.study_id, doc.site_id), who)


def _study_unlocked(session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound("There is no such study.")
    if study.locked_at is not None:
        raise InvalidTransition(f"Study {study.protocol_number} is locked (archived): "
                                "nothing can be signed in it.")
    return study


def _current_version(session: Session, doc: Document) -> DocumentVersion:
    version = session.get(DocumentVersion, doc.current_version_id)
    assert version is not None
    return version


def _check_pdf(version: DocumentVersion) -> None:
    if version.mime == "application/pdf":
        return
    if rendering.is_word(version.mime):
        raise ValidationError(rendering.NO_LIBREOFFICE if rendering.soffice_path() is None else
                              "This version is a Word document: it must be rendered to PDF "
                              "before signatures are requested. Send the request again.")
    raise ValidationError("Only PDF versions can be signed.")


@dataclass(frozen=True)
class Rendition:
    """A PDF rendering of a Word version, already in the blob store, not yet filed."""

    from_version_id: int
    sha256: str
    size: int
    converter: str


def render_for_signing(svc: Services, access: Access, document_id: int) -> Rendition | None:
    """If the document's current version is a Word document, render it to PDF with
    LibreOffice (outside any transaction: it takes seconds) and store the blob; the PDF is
    filed as a new version by :func:`request_signatures`, in the request's transaction.
    ``None`` for a PDF. Without LibreOffice, a clear request to upload a PDF rendition."""
    with svc.db.read_session() as session:
        doc = session.get(Document, document_id)
        if doc is None or doc.study_id not in access.study_ids():
            raise NotFound("There is no such document, or you have no access to it.")
        access.require(Permission.REQUEST_SIGNATURES, doc.study_id, doc.site_id)
        version = _current_version(session, doc)
        if not rendering.is_word(version.mime):
            return None
        rules.check_signable(version.status, State(version.status).label)
        if rendering.soffice_path() is None:
            raise ValidationError(rendering.NO_LIBREOFFICE)
        with svc.blobs.open(version.sha256) as fh:
            data = fh.read()
        suffix = ".doc" if version.mime == "application/msword" else ".docx"
        version_id = version.id
    pdf = pki.off_event_loop(lambda: rendering.word_to_pdf(data, suffix))
    ref = svc.blobs.put(BytesIO(pdf))
    return Rendition(version_id, ref.sha256, ref.size, rendering.converter_name())


def _file_rendition(uow: UnitOfWork, doc: Document, version: DocumentVersion,
                    made: Rendition) -> DocumentVersion:
    """File the PDF rendition as the document's new current version, pointing to the Word
    version it was rendered from (which it supersedes)."""
    number = 1 + max(v.number for v in doc.versions)
    version_id = uow.allocate_id(DocumentVersion)
    filename = version.filename.rsplit(".", 1)[0][:200] + ".pdf"
    uow.emit("document", doc.id, "document.version_added", {"version": {
        "id": version_id, "number": number, "label": version.label, "status": version.status,
        "sha256": made.sha256, "size": made.size, "mime": "application/pdf",
        "filename": filename, "page_count": None,
        "note": f"PDF rendition of version {version.number} ({version.filename}), "
                f"rendered by {made.converter} for signing.",
        "signed_from_version_id": None,
    }}, expected_version=doc.version, study_id=doc.study_id)
    uow.emit("document_rendition", version_id, "signature.rendition_filed", {
        "document_id": doc.id, "version_id": version_id, "sha256": made.sha256,
        "rendered_from_version_id": version.id, "rendered_from_sha256": version.sha256,
        "converter": made.converter,
    }, expected_version=0, study_id=doc.study_id)
    uow.session.expire(doc)
    filed = uow.session.get(DocumentVersion, version_id)
    assert filed is not None
    return filed


def request_signatures(uow: UnitOfWork, access: Access, cmd: NewSignatureRequest,
                       link: Callable[[int], str], notify: Callable[[Mail], None], *,
                       rendition: Rendition | None = None) -> int:
    """Ask people to sign the document's current version, each with a meaning. A Word
    version is signed as its PDF ``rendition`` (see :func:`render_for_signing`), filed here
    as a new version in the same transaction."""
    session = uow.session
    doc = session.get(Document, cmd.document_id)
    if doc is None or doc.study_id not in access.study_ids():
        raise NotFound("There is no such document, or you have no access to it.")
    access.require(Permission.REQUEST_SIGNATURES, doc.study_id, doc.site_id)
    _study_unlocked(session, doc.study_id)
    version = _current_version(session, doc)
    rules.check_signable(version.status, State(version.status).label)
    made = rendition
    if made is None or made.from_version_id != version.id or not rendering.is_word(
            version.mime):
        _check_pdf(version)
        made = None
    if cmd.ordering not in rules.ORDERINGS:
        raise ValidationError(f"{cmd.ordering!r} is not an order; use sequential or parallel.")
    if not cmd.signers:
        raise ValidationError("Name at least one signer.")
    if len(cmd.signers) > rules.MAX_SIGNERS:
        raise ValidationError(f"A request can have at most {rules.MAX_SIGNERS} signers.")
    if cmd.due_date is not None and cmd.due_date < uow.now.date():
        raise ValidationError(f"The due date {cmd.due_date.isoformat()} is in the past.")
    open_request = session.scalar(select(SignatureRequest.id).where(
        SignatureRequest.document_id == doc.id, SignatureRequest.status == rules.OPEN))
    if open_request is not None:
        raise Conflict("This document already has an open signature request; finish or "
                       "cancel it first.")
    seen: set[int] = set()
    signers = []
    for position, spec in enumerate(cmd.signers, start=1):
        rules.meaning_label(spec.meaning)
        user = session.get(User, spec.user_id)
        if user is None or not user.active:
            raise ValidationError(f"Signer {position} is not an active user.")
        if user.id in seen:
            raise ValidationError(f"{user.full_name} is named twice; each person signs once.")
        seen.add(user.id)
        theirs = access_of(session, user)
        check_signing_authority(theirs, doc, spec.meaning, user.full_name)
        need = (Permission.VIEW_APPROVED if version.status == State.APPROVED
                else Permission.VIEW_DRAFTS)
        if not theirs.can(need, doc.study_id, doc.site_id):
            raise Forbidden(f"{user.full_name} cannot see this document while it is "
                            f"{State(version.status).label}.")
        signers.append({"position": position, "user_id": user.id,
                        "printed_name": user.full_name, "meaning": spec.meaning,
                        "email": user.email})
    message = (cmd.message or "").strip() or None
    if message and len(message) > 2000:
        raise ValidationError("The message is longer than 2000 characters.")
    if made is not None:
        version = _file_rendition(uow, doc, version, made)
    request_id = uow.allocate_id(SignatureRequest)
    for s in signers:
        s["id"] = uow.allocate_id(RequestedSigner)
    uow.emit("signature_request", request_id, "signature_request.created", {
        "study_id": doc.study_id, "document_id": doc.id, "version_id": version.id,
        "ordering": cmd.ordering,
        "due_date": cmd.due_date.isoformat() if cmd.due_date else None, "message": message,
        "signers": [{k: s[k] for k in ("id", "position", "user_id", "printed_name",
                                       "meaning")} for s in signers],
    }, expected_version=0, study_id=doc.study_id)
    request = session.get(SignatureRequest, request_id)
    assert request is not None
    _notify_turn(uow, request, doc, link, notify, message)
    return request_id


def _notify_turn(uow: UnitOfWork, request: SignatureRequest, doc: Document,
                 link: Callable[[int], str], notify: Callable[[Mail], None],
                 message: str | None = None) -> None:
    turn = rules.whose_turn(request.signers, request.ordering)
    for s in request.signers:
        if s.position in turn.positions:
            user = uow.session.get(User, s.user_id)
            assert user is not None
            due = f" by {request.due_date.isoformat()}" if request.due_date else ""
            body = (f"Dear {s.printed_name},\n\n{request.created_by_name} asks you to sign "
                    f"“{doc.title}” electronically{due}, with the meaning "
                    f"“{rules.MEANINGS[s.meaning]}”.\n\n"
                    + (f"Message: {message}\n\n" if message else "")
                    + f"Open the document and sign:\n{link(request.id)}\n")
            mail = Mail(to=(user.email,), subject=f"Signature requested: {doc.title}",
                        body=body)
            uow.after_commit.append(lambda mail=mail: notify(mail))


def _load(session: Session, request_id: int) -> SignatureRequest:
    request = session.get(SignatureRequest, request_id)
    if request is None:
        raise NotFound("There is no such signature request.")
    return request


def visible_request(session: Session, access: Access, request_id: int) -> SignatureRequest:
    """A request the user may see: a signer of it, or someone who may request signatures
    on its study. Anything else is hidden (404)."""
    request = _load(session, request_id)
    is_signer = any(s.user_id == access.user_id for s in request.signers)
    doc = session.get(Document, request.document_id)
    assert doc is not None
    if not is_signer and not access.can(Permission.REQUEST_SIGNATURES, doc.study_id,
                                        doc.site_id):
        raise NotFound("There is no such signature request, or you have no access to it.")
    return request


def my_row(request: SignatureRequest, user_id: int | None) -> RequestedSigner:
    for s in request.signers:
        if s.user_id == user_id:
            return s
    raise Forbidden("You are not a signer of this request; only the people it names can sign.")


@dataclass(frozen=True)
class Signed:
    request_id: int
    document_id: int
    version_number: int
    signed_at: datetime
    meaning: str
    level: str


def _check_can_sign_now(session: Session, svc: Services, access: Access,
                        request: SignatureRequest, now: datetime
                        ) -> tuple[RequestedSigner, Document, DocumentVersion, User]:
    if request.status != rules.OPEN:
        raise InvalidTransition(f"This signature request is {request.status}; "
                                "nothing more can be signed on it.")
    me = my_row(request, access.user_id)
    rules.check_turn(request.signers, request.ordering, me)
    doc = session.get(Document, request.document_id)
    assert doc is not None
    _study_unlocked(session, doc.study_id)
    version = _current_version(session, doc)
    if version.id != request.current_version_id:
        raise InvalidTransition("The document has a newer version than the one this request "
                                "is for; ask for the request to be cancelled and made again.")
    rules.check_signable(doc.status, State(doc.status).label)
    check_signing_authority(access, doc, me.meaning, "You")
    user = session.get(User, access.user_id)
    assert user is not None
    if not user.active or user.locked_at is not None:
        raise Forbidden("Your account is locked or deactivated; ask an administrator.")
    require_enrolled(session, svc, user, now)
    return me, doc, version, user


def sign(svc: Services, access: Access, context: Context, request_id: int, *,
         password: str | None, totp: str | None,
         link: Callable[[int], str],
         external: ExternalAuthentication | None = None) -> Signed:
    """The signing ceremony's server side. The signer is ``access`` - the signed-in user -
    always (SIG-5); the password (and code) given with this request are checked (SIG-4).

    ``external``: a single sign-on user re-authenticated at their identity provider just
    now (checked by etmf.sso.services.check_reauthentication) instead of a password."""
    actor = access.actor
    with svc.db.read_session() as session:
        request = _load(session, request_id)
        me, doc, version, user = _check_can_sign_now(session, svc, access, request,
                                                     svc.clock.now())
        request_version = request.version
        key_id = require_enrolled(session, svc, user, svc.clock.now()).key_id
        study = session.get(Study, doc.study_id)
        assert study is not None
        if external is not None:
            auth_method = external.method
            # Never after the signing time, even with a provider clock slightly ahead.
            auth_time = min(external.auth_time, svc.clock.now()).replace(microsecond=0)
        else:
            try:
                auth_method = verify_signer(user, password, totp)
            except ReauthenticationFailed:
                _record_failed_reauth(svc, actor, context, user.id, request, doc, me.meaning)
                raise
            auth_time = svc.clock.now().replace(microsecond=0)
        totp_step = consumed_step(user.id) if external is None else None
        with svc.blobs.open(version.sha256) as fh:
            original = fh.read()
        base_label = version.label.split("-S")[0][:14]
        new_label = f"{base_label}-S{1 + _signatures_before(session, version)}"
        filename = version.filename.rsplit(".", 1)[0][:200] + "-signed.pdf"
        version_status = version.status

    signed_at = svc.clock.now().replace(microsecond=0)
    meaning = rules.MEANINGS[me.meaning]
    manifestation = SignatureManifestation(
        signer_name=user.full_name, signer_email=user.email, meaning=meaning,
        signed_at=signed_at, document_id=f"{study.protocol_number} DOC-{doc.id}",
        version_label=version.label, auth_method=auth_method, auth_time=auth_time)
    level = pki.signature_level(svc.settings)
    pades = pki.signer(svc, key_id)
    signed_pdf = pki.off_event_loop(lambda: pades.sign(
        BytesIO(original), manifestation, timestamper=pki.timestamper(svc.settings),
        level=level))
    ref = svc.blobs.put(BytesIO(signed_pdf))

    with unit_of_work(svc.db, svc.clock, actor, context) as uow:
        request = _load(uow.session, request_id)
        if request.version != request_version:
            raise Conflict("Someone else signed or changed this request at the same moment. "
                           "Reload the page and sign again.")
        me, doc, version, user = _check_can_sign_now(uow.session, svc, access, request,
                                                     signed_at)
        if totp_step is not None:
            if user.tf_totp_last_step is not None and totp_step <= user.tf_totp_last_step:
                raise ReauthenticationFailed(  # the same code, used at the same moment
                    "That authenticator code was used already; each code works once. Wait "
                    "for the next code and sign again. Nothing was signed.")
            uow.emit("user", user.id, "user.totp_used", {
                "step": totp_step, "purpose": "signature", "signature_request_id": request.id})
        number = 1 + max(v.number for v in doc.versions)
        version_id = uow.allocate_id(DocumentVersion)
        uow.emit("document", doc.id, "document.version_added", {"version": {
            "id": version_id, "number": number, "label": new_label, "status": version_status,
            "sha256": ref.sha256, "size": ref.size, "mime": "application/pdf",
            "filename": filename, "page_count": None,
            "note": f"Signed by {user.full_name} ({meaning}).",
            "signed_from_version_id": version.id,
        }}, expected_version=doc.version, study_id=doc.study_id)
        uow.emit("signature_request", request.id, "signature.applied", {
            "signer_id": me.id, "user_id": user.id, "printed_name": user.full_name,
            "meaning": me.meaning, "meaning_text": meaning,
            "signed_at": signed_at.isoformat(), "auth_method": auth_method,
            "auth_time": auth_time.isoformat(), "level": f"PAdES {level}",
            "certificate_serial": f"{pki.signer(svc, key_id).serial_number:x}",
            "signed_version_id": version.id, "signed_sha256": version.sha256,
            "result_version_id": version_id, "result_sha256": ref.sha256,
            **({"identity_provider": external.provider, "subject": external.subject,
                "provider_auth_time": external.auth_time.isoformat()} if external else {}),
        }, expected_version=request_version, study_id=doc.study_id)
        uow.session.expire(request, ["signers"])
        if request.status == rules.OPEN:
            if request.ordering == "sequential":  # parallel signers were all told at once
                _notify_turn(uow, request, doc, link, svc.mailer.send)
        else:
            _notify_requester(uow, request, doc, "completed", link, svc.mailer.send)
        uow.commit()
    return Signed(request_id, doc.id, number, signed_at, meaning, f"PAdES {level}")


def _signatures_before(session: Session, version: DocumentVersion) -> int:
    """How many signatures the version already carries from earlier requests."""
    count = 0
    current: DocumentVersion | None = version
    while current is not None and current.signed_from_version_id is not None:
        count += 1
        current = session.get(DocumentVersion, current.signed_from_version_id)
    return count


def _record_failed_reauth(svc: Services, actor: Actor, context: Context, user_id: int,
                          request: SignatureRequest, doc: Document, meaning: str) -> None:
    """A wrong password at signing counts toward lockout and is audited (its own
    transaction: the refusal must be recorded even though nothing is signed)."""
    with unit_of_work(svc.db, svc.clock, actor, context) as uow:
        user = uow.session.get(User, user_id)
        assert user is not None
        record_failed_login(uow, user, svc.settings.lockout_attempts)
        uow.emit("signature_auth", user_id, "signature.auth_failed", {
            "request_id": request.id, "document_id": doc.id, "meaning": meaning,
        }, study_id=doc.study_id)
        uow.commit()


def _notify_requester(uow: UnitOfWork, request: SignatureRequest, doc: Document, what: str,
                      link: Callable[[int], str], notify: Callable[[Mail], None],
                      detail: str = "") -> None:
    if request.created_by_id is None:
        return
    requester = uow.session.get(User, request.created_by_id)
    if requester is None:
        return
    mail = Mail(to=(requester.email,), subject=f"Signature request {what}: {doc.title}",
                body=f"The signature request for “{doc.title}” is {what}.{detail}\n\n"
                     f"{link(request.id)}\n")
    uow.after_commit.append(lambda: notify(mail))


def decline(uow: UnitOfWork, access: Access, request_id: int, *, reason: str | None,
            link: Callable[[int], str], notify: Callable[[Mail], None]) -> None:
    """A signer refuses to sign, with a reason; the request ends (declined)."""
    request = _load(uow.session, request_id)
    if request.status != rules.OPEN:
        raise InvalidTransition(f"This signature request is {request.status}.")
    me = my_row(request, access.user_id)
    if me.status != rules.PENDING:
        raise InvalidTransition("You have already acted on this request.")
    doc = uow.session.get(Document, request.document_id)
    assert doc is not None
    uow.emit("signature_request", request.id, "signature.declined",
             {"signer_id": me.id, "user_id": me.user_id, "meaning": me.meaning},
             expected_version=request.version, study_id=request.study_id, reason=reason,
             reason_required=True)
    _notify_requester(uow, request, doc, "declined", link, notify,
                      f" {me.printed_name} declined to sign: {(reason or '').strip()}")


def cancel(uow: UnitOfWork, access: Access, request_id: int, *, reason: str | None,
           expected_version: int) -> None:
    """Whoever may request signatures on the study can cancel an open request."""
    request = _load(uow.session, request_id)
    doc = uow.session.get(Document, request.document_id)
    assert doc is not None
    access.require(Permission.REQUEST_SIGNATURES, doc.study_id, doc.site_id)
    if request.status != rules.OPEN:
        raise InvalidTransition(f"This signature request is {request.status}; "
                                "only an open request can be cancelled.")
    uow.emit("signature_request", request.id, "signature_request.cancelled", {},
             expected_version=expected_version, study_id=request.study_id, reason=reason,
             reason_required=True)


def requests_for_document(session: Session, document_id: int) -> list[SignatureRequest]:
    return list(session.scalars(select(SignatureRequest).where(
        SignatureRequest.document_id == document_id).order_by(SignatureRequest.id.desc())))


def waiting_for(session: Session, user_id: int) -> list[tuple[SignatureRequest, RequestedSigner]]:
    """Open requests where it is this user's turn to sign."""
    rows = session.execute(select(SignatureRequest, RequestedSigner).join(
        RequestedSigner, RequestedSigner.request_id == SignatureRequest.id).where(
        RequestedSigner.user_id == user_id, RequestedSigner.status == rules.PENDING,
        SignatureRequest.status == rules.OPEN).order_by(SignatureRequest.id)).all()
    return [(r, s) for r, s in rows
            if s.position in rules.whose_turn(r.signers, r.ordering).positions]


def request_link(base_url: str, request_id: int) -> str:
    """The address of the signing page, for e-mails."""
    return f"{base_url.rstrip('/')}/signatures/requests/{request_id}/sign"
