"""EMS export (a streamed zip) and import (dry run report, then import) of a study's TMF."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_security import auth_required
from sqlalchemy import select

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.errors import ValidationError
from etmf.exchange import staging
from etmf.exchange.export import Selection, iter_package, require_export
from etmf.exchange.importer import dry_run, import_package
from etmf.exchange.models import ImportedAuditRecord, ImportedObject, ImportedPackage
from etmf.reference_model.model import load_reference_model
from etmf.studies.models import Site
from etmf.web import command, db_session
from etmf.web.studies import load_study

bp = Blueprint("exchange", __name__)

MODES = ("dry_run", "import", "import_good")


def _page(study, report=None, result=None, status=200, token=None,  # type: ignore[no-untyped-def]
          background=False):
    session = db_session()
    return render_template(
        "exchange/page.html", study=study, model=load_reference_model(),
        sites=session.scalars(select(Site).where(Site.study_id == study.id)
                              .order_by(Site.number)).all(),
        packages=session.scalars(select(ImportedPackage).where(
            ImportedPackage.study_id == study.id).order_by(ImportedPackage.id.desc())).all(),
        report=report, result=result, token=token, background=background,
        can_import=current_access().can(Permission.IMPORT_TMF, study.id)), status


@bp.get("/studies/<int:study_id>/exchange")
@auth_required("session")
def page(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    require_export(current_access(), study_id)
    return _page(study)


@bp.get("/studies/<int:study_id>/exchange/export.zip")
@auth_required("session")
def export(study_id: int):  # type: ignore[no-untyped-def]
    """The EMS package, streamed as it is written (memory stays flat)."""
    study = load_study(study_id)
    access = current_access()
    require_export(access, study_id)
    zones = frozenset(z for z in request.args.getlist("zone") if z) or None
    site_ids = frozenset(int(s) for s in request.args.getlist("site") if s.isdigit()) or None
    selection = Selection(zones=zones, site_ids=site_ids)
    svc = services()
    now = svc.clock.now()

    def generate():  # type: ignore[no-untyped-def]
        with svc.db.read_session() as session:
            yield from iter_package(session, svc.blobs, study_id, now=now,
                                    selection=selection, access=access)

    name = f"{study.protocol_number}-EMS-{now:%Y%m%dT%H%M%SZ}.zip"
    return Response(stream_with_context(generate()), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/studies/<int:study_id>/exchange/export-job")
@auth_required("session")
def export_job(study_id: int):  # type: ignore[no-untyped-def]
    """A large export as a background job: its page shows progress and the download link."""
    from flask import current_app

    from etmf.jobs import submit

    load_study(study_id)
    access = current_access()
    require_export(access, study_id)
    zones = sorted(z for z in request.form.getlist("zone") if z)
    site_ids = sorted(int(s) for s in request.form.getlist("site") if s.isdigit())
    job_id = submit(current_app._get_current_object(), "exchange.export",  # type: ignore[attr-defined]
                    {"study_id": study_id, "zones": zones or None,
                     "site_ids": site_ids or None},
                    actor=access.actor, study_id=study_id)
    return redirect(url_for("jobs.show", job_id=job_id))


@bp.post("/studies/<int:study_id>/exchange/import", endpoint="import_package")
@auth_required("session")
def import_package_view(study_id: int):  # type: ignore[no-untyped-def]
    """Upload a package: the dry run (the package is kept, and the report page imports it
    without a second upload), or an import straight away."""
    study = load_study(study_id)
    access = current_access()
    access.require(Permission.IMPORT_TMF, study_id)
    mode = request.form.get("mode", "dry_run")
    if mode not in MODES:
        raise ValidationError("Choose a dry run, an import, or an import of the good objects.")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("Choose the EMS package (a zip file) to upload.")
    svc = services()
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(upload.stream, spool, 1024 * 1024)
        if mode == "dry_run":
            report = dry_run(db_session(), spool, study_id)
            token = None
            if report.fatal is None and not report.schema_errors:
                sha256, size = staging.store_package(svc.blobs, spool)
                token = staging.package_token(svc.settings.secret_key, access.user_id,
                                              study_id, sha256, size)
            return _page(study, report=report, token=token,
                         background=spool.seek(0, 2) > staging.BACKGROUND_BYTES)
        with command() as uow:
            result = import_package(uow, access, svc.blobs, spool, study_id=study_id,
                                    only_good=mode == "import_good")
            uow.commit()
    return _imported(study, result)


@bp.post("/studies/<int:study_id>/exchange/import/checked", endpoint="import_checked")
@auth_required("session")
def import_checked(study_id: int):  # type: ignore[no-untyped-def]
    """Import the package of a dry run report (named by its signed token): at once, or as a
    background job with a progress bar when it is large or the user asks for it."""
    from flask import current_app

    from etmf.jobs import submit

    study = load_study(study_id)
    access = current_access()
    access.require(Permission.IMPORT_TMF, study_id)
    mode = request.form.get("mode", "import")
    if mode not in ("import", "import_good"):
        raise ValidationError("Choose an import, or an import of the good objects only.")
    svc = services()
    sha256, size = staging.read_package_token(
        svc.settings.secret_key, request.form.get("token", ""), access.user_id, study_id)
    if request.form.get("background") or size > staging.BACKGROUND_BYTES:
        job_id = submit(current_app._get_current_object(), "exchange.import",  # type: ignore[attr-defined]
                        {"study_id": study_id, "sha256": sha256,
                         "only_good": mode == "import_good"},
                        actor=access.actor, study_id=study_id,
                        dedupe_key=f"ems-import:{study_id}:{sha256}:{mode}")
        return redirect(url_for("jobs.show", job_id=job_id))
    with staging.open_package(svc.blobs, sha256) as package, command() as uow:
        result = import_package(uow, access, svc.blobs, package, study_id=study_id,
                                only_good=mode == "import_good")
        uow.commit()
    return _imported(study, result)


def _imported(study, result):  # type: ignore[no-untyped-def]
    flash(f"Imported {result.documents} document(s) with {result.versions} version(s); "
          f"{len(result.skipped)} object(s) left out.", "success")
    return _page(study, result=result)


# --- the document page: what the source system recorded -----------------------------------


DOCUMENT_PANELS = ["exchange/_imported_history.html"]


@dataclass
class ImportedHistory:
    source_id: str
    object_id: str
    package: ImportedPackage | None
    signatures: list[ImportedAuditRecord]
    audit: list[ImportedAuditRecord] | None  # None: the viewer may not read audit trails


@bp.app_context_processor
def _imported_history_helper() -> dict[str, object]:
    def imported_history(doc) -> ImportedHistory | None:  # type: ignore[no-untyped-def]
        session = db_session()
        obj = session.scalar(select(ImportedObject).where(
            ImportedObject.document_id == doc.id))
        if obj is None:
            return None
        rows = session.scalars(select(ImportedAuditRecord).where(
            ImportedAuditRecord.document_id == doc.id).order_by(ImportedAuditRecord.id)).all()
        may_audit = current_access().can(Permission.VIEW_AUDIT, doc.study_id, doc.site_id)
        return ImportedHistory(
            source_id=obj.source_id, object_id=obj.object_id,
            package=session.get(ImportedPackage, obj.package_id),
            signatures=[r for r in rows if r.kind == "signature"],
            audit=[r for r in rows if r.kind == "audit"] if may_audit else None)

    return {"exchange_imported_history": imported_history}
