"""Signing pages: the signer's profile and enrolment, administrators' enrolment and
revocation, signature requests, the signing ceremony, and signature validation (page panel
and API)."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_security import auth_required
from sqlalchemy import select

from etmf.accounts.models import Membership, User
from etmf.accounts.roles import ROLES, Permission
from etmf.accounts.security import current_access
from etmf.audit.store import Context
from etmf.bootstrap import services
from etmf.documents.models import Document, DocumentVersion
from etmf.errors import EtmfError, NotFound, ValidationError
from etmf.signing import rendition as rendering
from etmf.signing import service as signing
from etmf.signing.models import SigningProfile
from etmf.web import command, db_session
from etmf.web.documents import load_document
from etmf.workflows import rules
from etmf.workflows import services as workflow

bp = Blueprint("signing", __name__)

NAV = [("My signatures", "signing.profile", 50),
       ("Signers", "signing.admin_signers", 60, "admin")]
DOCUMENT_PANELS = ["signing/_panel.html"]

#: Form fields that would name a signer. The ceremony takes none: the signer is always the
#: signed-in user (SIG-5); a request that tries is refused rather than silently ignored.
SIGNER_NAMING_FIELDS = frozenset({"user", "user_id", "userid", "signer", "signer_id",
                                  "signer_email", "email", "as_user", "on_behalf_of",
                                  "actor", "actor_id"})


def _link(request_id: int) -> str:
    return workflow.request_link(services().settings.server_name_for_mail, request_id)


def _context() -> Context:
    from flask import g

    return Context(request_id=g.get("request_id"), client_addr=request.remote_addr)


# ---- profile and enrolment -----------------------------------------------------------------


@bp.get("/signing/profile")
@auth_required("session")
def profile():  # type: ignore[no-untyped-def]
    access = current_access()
    session = db_session()
    user = session.get(User, access.user_id)
    return render_template(
        "signing/profile.html", user=user, profile=signing.profile(session, user.id),
        certificates=signing.certificates(session, user.id),
        statement=signing.statement_for(user.full_name),
        waiting=workflow.waiting_for(session, user.id),
        identity_methods=signing.IDENTITY_METHODS)


@bp.post("/signing/profile/accept")
@auth_required("session")
def accept():  # type: ignore[no-untyped-def]
    with command() as uow:
        cert = signing.accept_statement(uow, services(), current_access(),
                                        accepted=request.form.get("accept") == "yes")
        uow.commit()
    flash("You accepted the signature statement." + (
        " Your signing certificate was issued." if cert else ""), "success")
    return redirect(url_for("signing.profile"))


@bp.get("/signing/profile/certificate/<int:cert_id>.pem")
@auth_required("session")
def certificate_pem(cert_id: int):  # type: ignore[no-untyped-def]
    access = current_access()
    from etmf.signing.models import SigningCertificate

    cert = db_session().get(SigningCertificate, cert_id)
    if cert is None or (cert.user_id != access.user_id and not access.is_admin):
        raise NotFound("There is no such certificate.")
    return Response(signing.certificate_pem(services(), cert), mimetype="application/x-pem-file",
                    headers={"Content-Disposition": f'attachment; filename="{cert.serial}.pem"'})


def _require_admin() -> None:
    if not current_access().is_admin:
        raise NotFound("There is nothing at this address.")


@bp.get("/signing/signers")
@auth_required("session")
def admin_signers():  # type: ignore[no-untyped-def]
    _require_admin()
    session = db_session()
    users = session.scalars(select(User).order_by(User.full_name)).all()
    profiles = {p.user_id: p for p in session.scalars(select(SigningProfile))}
    certs = {u.id: signing.active_certificate(session, u.id) for u in users}
    return render_template("signing/signers.html", users=users, profiles=profiles,
                           certs=certs, identity_methods=signing.IDENTITY_METHODS,
                           reasons=signing.REVOCATION_REASONS)


@bp.post("/signing/signers/<int:user_id>/identity")
@auth_required("session")
def record_identity(user_id: int):  # type: ignore[no-untyped-def]
    _require_admin()
    with command() as uow:
        cert = signing.record_identity_check(
            uow, services(), current_access(), user_id,
            method=request.form.get("method", ""),
            document_seen=request.form.get("document_seen", ""),
            notes=request.form.get("notes"))
        uow.commit()
    flash("Identity check recorded." + (" A signing certificate was issued." if cert else ""),
          "success")
    return redirect(url_for("signing.admin_signers"))


@bp.post("/signing/signers/<int:user_id>/issue")
@auth_required("session")
def issue(user_id: int):  # type: ignore[no-untyped-def]
    _require_admin()
    with command() as uow:
        signing.issue_new_certificate(uow, services(), current_access(), user_id)
        uow.commit()
    flash("A new signing certificate was issued.", "success")
    return redirect(url_for("signing.admin_signers"))


@bp.post("/signing/certificates/<int:cert_id>/revoke")
@auth_required("session")
def revoke(cert_id: int):  # type: ignore[no-untyped-def]
    _require_admin()
    with command() as uow:
        signing.revoke_certificate(uow, services(), current_access(), cert_id,
                                   reason_code=request.form.get("reason_code", ""),
                                   reason=request.form.get("reason"))
        uow.commit()
    flash("The certificate was revoked; the published CRL lists it.", "success")
    return redirect(url_for("signing.admin_signers"))


# ---- signature requests -------------------------------------------------------------------


def _candidates(doc: Document) -> list[tuple[User, set[str]]]:
    """Active members of the study who may sign this document, with the meanings allowed."""
    session = db_session()
    rows = session.execute(select(User, Membership).join(
        Membership, Membership.user_id == User.id).where(
        Membership.study_id == doc.study_id, Membership.revoked_at.is_(None),
        User.active.is_(True)).order_by(User.full_name)).all()
    found: dict[int, tuple[User, set[str]]] = {}
    for user, m in rows:
        if doc.site_id is not None and m.site_id not in (None, doc.site_id):
            continue
        if Permission.SIGN not in ROLES[m.role].permissions:
            continue
        meanings = set(rules.ROLE_MEANINGS.get(m.role, ()))
        if meanings:
            found.setdefault(user.id, (user, set()))[1].update(meanings)
    return list(found.values())


def _parse_request_form(document_id: int) -> workflow.NewSignatureRequest:
    signers = []
    for n in range(1, rules.MAX_SIGNERS + 1):
        raw = request.form.get(f"signer_{n}", "").strip()
        if not raw:
            continue
        if not raw.isdigit():
            raise ValidationError(f"Signer {n} is not a user of this server.")
        signers.append(workflow.SignerSpec(int(raw), request.form.get(f"meaning_{n}", "")))
    due = request.form.get("due_date", "").strip()
    try:
        due_date = date.fromisoformat(due) if due else None
    except ValueError:
        raise ValidationError(f"The due date {due!r} is not a date (use YYYY-MM-DD).") from None
    return workflow.NewSignatureRequest(
        document_id=document_id, signers=tuple(signers),
        ordering=request.form.get("ordering", "sequential"), due_date=due_date,
        message=request.form.get("message"))


@bp.route("/documents/<int:document_id>/signature-requests/new", methods=["GET", "POST"])
@auth_required("session")
def new_request(document_id: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    access = current_access()
    access.require(Permission.REQUEST_SIGNATURES, doc.study_id, doc.site_id)
    if request.method == "POST":
        cmd = _parse_request_form(document_id)
        made = workflow.render_for_signing(services(), access, document_id)
        with command() as uow:
            request_id = workflow.request_signatures(uow, access, cmd, _link,
                                                     services().mailer.send, rendition=made)
            uow.commit()
        flash(("The Word document was rendered to PDF (a new version) for signing. "
               if made else "") + "Signatures requested; the first signer was notified by "
              "e-mail.", "success")
        return redirect(url_for("signing.request_detail", request_id=request_id))
    current = (db_session().get(DocumentVersion, doc.current_version_id)
               if doc.current_version_id is not None else None)
    word_note = None
    if current is not None and rendering.is_word(current.mime):
        word_note = (rendering.NO_LIBREOFFICE if rendering.soffice_path() is None else
                     "This version is a Word document: when you send the request it is "
                     "rendered to PDF with LibreOffice and filed as a new version, which is "
                     "the one signed.")
    return render_template("signing/new_request.html", doc=doc, candidates=_candidates(doc),
                           meanings=rules.MEANINGS, orderings=rules.ORDERINGS,
                           slots=range(1, 5), word_note=word_note)


@bp.get("/signatures/requests/<int:request_id>")
@auth_required("session")
def request_detail(request_id: int):  # type: ignore[no-untyped-def]
    access = current_access()
    req = workflow.visible_request(db_session(), access, request_id)
    doc = db_session().get(Document, req.document_id)
    turn = rules.whose_turn(req.signers, req.ordering)
    mine = next((s for s in req.signers if s.user_id == access.user_id), None)
    return render_template(
        "signing/request.html", req=req, doc=doc, turn=turn, mine=mine,
        meanings=rules.MEANINGS,
        can_cancel=req.status == rules.OPEN and access.can(
            Permission.REQUEST_SIGNATURES, doc.study_id, doc.site_id))


def _ceremony(request_id: int, error: EtmfError | None = None):  # type: ignore[no-untyped-def]
    access = current_access()
    session = db_session()
    req = workflow.visible_request(session, access, request_id)
    me = workflow.my_row(req, access.user_id)
    doc = session.get(Document, req.document_id)
    version = session.get(DocumentVersion, req.current_version_id)
    user = session.get(User, access.user_id)
    meaning = rules.MEANINGS[me.meaning]
    problem = error.message if error else None
    if problem is None and req.status == rules.OPEN:
        try:
            rules.check_turn(req.signers, req.ordering, me)
        except EtmfError as exc:
            problem = exc.message
    needs_totp = bool(user.tf_primary_method == "authenticator" and user.tf_totp_secret)
    html = render_template(
        "signing/ceremony.html", req=req, me=me, doc=doc, version=version, user=user,
        meaning=meaning, attestation=rules.ATTESTATION.format(meaning=meaning),
        problem=problem, needs_totp=needs_totp, can_sign=req.status == rules.OPEN
        and me.status == rules.PENDING)
    return html, (error.status if error else 200)


@bp.get("/signatures/requests/<int:request_id>/sign")
@auth_required("session")
def ceremony(request_id: int):  # type: ignore[no-untyped-def]
    return _ceremony(request_id)


@bp.post("/signatures/requests/<int:request_id>/sign")
@auth_required("session")
def sign(request_id: int):  # type: ignore[no-untyped-def]
    access = current_access()
    try:
        named = SIGNER_NAMING_FIELDS & {k.lower() for k in request.form} | (
            SIGNER_NAMING_FIELDS & {k.lower() for k in request.args})
        if named:
            raise ValidationError(
                "This form takes no signer: you always sign as yourself, the signed-in user. "
                f"Remove {', '.join(sorted(named))} from the request. Nothing was signed.")
        if request.form.get("confirm") != "yes":
            raise ValidationError("Tick the box to confirm the meaning of your signature.")
        result = workflow.sign(services(), access, _context(), request_id,
                               password=request.form.get("password"),
                               totp=request.form.get("totp"), link=_link)
    except EtmfError as exc:
        if request.path.startswith("/api/"):
            raise
        return _ceremony(request_id, exc)
    flash(f"You signed this document ({result.meaning}) at "
          f"{result.signed_at:%Y-%m-%d %H:%M:%S} UTC, {result.level}. It is now version "
          f"{result.version_number}.", "success")
    return redirect(url_for("documents.detail", document_id=result.document_id))


@bp.post("/signatures/requests/<int:request_id>/decline")
@auth_required("session")
def decline(request_id: int):  # type: ignore[no-untyped-def]
    with command() as uow:
        workflow.decline(uow, current_access(), request_id,
                         reason=request.form.get("reason"), link=_link,
                         notify=services().mailer.send)
        uow.commit()
    flash("You declined to sign; the requester was told.", "success")
    return redirect(url_for("signing.request_detail", request_id=request_id))


@bp.post("/signatures/requests/<int:request_id>/cancel")
@auth_required("session")
def cancel(request_id: int):  # type: ignore[no-untyped-def]
    expected = request.form.get("version", "")
    if not expected.isdigit():
        raise ValidationError("The form is missing the record version; reload the page.")
    with command() as uow:
        workflow.cancel(uow, current_access(), request_id,
                        reason=request.form.get("reason"), expected_version=int(expected))
        uow.commit()
    flash("The signature request was cancelled.", "success")
    return redirect(url_for("signing.request_detail", request_id=request_id))


# ---- validation ----------------------------------------------------------------------------


def _version(doc: Document, number: int) -> DocumentVersion:
    version = db_session().scalar(select(DocumentVersion).where(
        DocumentVersion.document_id == doc.id, DocumentVersion.number == number))
    if version is None:
        raise NotFound("There is no such version of this document.")
    return version


def _validation_of(version: DocumentVersion, *, fresh: bool = False):  # type: ignore[no-untyped-def]
    """The stored validation of a version; a signed rendition is validated when first shown."""
    stored = signing.latest_validation(db_session(), version.id)
    if fresh or (stored is None and version.signed_from_version_id is not None):
        with command() as uow:
            row = signing.validate_version(uow, services(),
                                           uow.session.get(DocumentVersion, version.id))
            result = signing.stored(row)
            uow.commit()
        return result
    return signing.stored(stored) if stored is not None else None


@bp.app_context_processor
def _panel_helpers() -> dict[str, object]:
    def signature_panel(doc: Document) -> dict[str, object]:
        session = db_session()
        version = (session.get(DocumentVersion, doc.current_version_id)
                   if doc.current_version_id is not None else None)
        access = current_access()
        return {
            "version": version,
            "validation": _validation_of(version) if version is not None else None,
            "requests": workflow.requests_for_document(session, doc.id),
            "can_request": access.can(Permission.REQUEST_SIGNATURES, doc.study_id,
                                      doc.site_id),
            "meanings": rules.MEANINGS,
        }

    return {"signature_panel": signature_panel}


@bp.post("/documents/<int:document_id>/versions/<int:number>/signatures/check")
@auth_required("session")
def recheck(document_id: int, number: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    _validation_of(_version(doc, number), fresh=True)
    flash("The signatures were checked again.", "success")
    return redirect(url_for("documents.detail", document_id=document_id) + "#signatures")


@bp.get("/api/v1/documents/<int:document_id>/versions/<int:number>/signatures")
@auth_required("session")
def api_signatures(document_id: int, number: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    version = _version(doc, number)
    if version.mime != "application/pdf":
        abort(404)
    result = _validation_of(version, fresh=request.args.get("recheck") == "1")
    if result is None:  # an unsigned PDF, never checked: check it now
        result = _validation_of(version, fresh=True)
    return jsonify({
        "document_id": doc.id, "version": version.number, "version_label": version.label,
        "sha256": version.sha256, "signed_from_version_id": version.signed_from_version_id,
        "checked_at": result.checked_at.isoformat(), "checked_by": result.checked_by,
        "overall": result.overall, "signatures": result.signatures,
    })
