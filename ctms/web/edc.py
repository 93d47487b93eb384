"""EDC import page: upload an ODM export, read the dry run, confirm the import.

The uploaded file waits for confirmation in the instance's tmp folder under its SHA-256
(the confirmation names the hash, so what is imported is exactly what was reviewed); it is
removed once imported. On several app servers without a shared instance folder the confirm
may land elsewhere: the page then asks to upload the file again.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_security import auth_required

from ctms.edc import services as edc_svc
from ctms.edc.odm import MAX_BYTES
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.documents.intake import sanitize_filename
from etmf.errors import ValidationError
from etmf.web import command, db_session
from etmf.web.studies import load_study

bp = Blueprint("ctms_edc", __name__, url_prefix="/ctms")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def _waiting(sha256: str) -> Path:
    folder = services().settings.instance_path / "tmp" / "edc"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{sha256}.xml"


def _page(study_id: int, report: edc_svc.ImportReport | None = None):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    return render_template("ctms/edc.html", study=study, report=report,
                           history=edc_svc.imports(db_session(), study_id),
                           max_mb=MAX_BYTES // (1024 * 1024))


@bp.get("/studies/<int:study_id>/edc")
@auth_required("session")
def edc(study_id: int):  # type: ignore[no-untyped-def]
    current_access().require(Permission.MANAGE_SUBJECTS, study_id)
    return _page(study_id)


@bp.post("/studies/<int:study_id>/edc")
@auth_required("session")
def dry_run(study_id: int):  # type: ignore[no-untyped-def]
    """Read the upload and show what an import would change; nothing is stored."""
    current_access().require(Permission.MANAGE_SUBJECTS, study_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose the ODM file exported from the EDC.", "error")
        return redirect(url_for("ctms_edc.edc", study_id=study_id))
    data = upload.stream.read(MAX_BYTES + 1)
    try:
        with command() as uow:  # never committed: a dry run changes nothing
            report = edc_svc.import_odm(uow, current_access(), study_id, data,
                                    filename=sanitize_filename(upload.filename), dry_run=True)
    except ValidationError as refused:
        flash(refused.message, "error")
        return redirect(url_for("ctms_edc.edc", study_id=study_id))
    _waiting(report.sha256).write_bytes(data)
    return _page(study_id, report)


@bp.post("/studies/<int:study_id>/edc/confirm")
@auth_required("session")
def confirm(study_id: int):  # type: ignore[no-untyped-def]
    """Import the reviewed file in one transaction."""
    current_access().require(Permission.MANAGE_SUBJECTS, study_id)
    sha = request.form.get("sha256", "")
    path = _waiting(sha) if _SHA.match(sha) else None
    if path is None or not path.exists():
        flash("The reviewed file is no longer here; upload it again for a new dry run.",
              "error")
        return redirect(url_for("ctms_edc.edc", study_id=study_id))
    try:
        with command() as uow:
            report = edc_svc.import_odm(uow, current_access(), study_id, path.read_bytes(),
                                    filename=request.form.get("filename", "odm.xml")[:255],
                                    dry_run=False)
            if report.imported:
                uow.commit()
    except ValidationError as refused:
        flash(refused.message, "error")
        return redirect(url_for("ctms_edc.edc", study_id=study_id))
    path.unlink(missing_ok=True)
    flash(f"Imported: {len(report.changes)} changes, {report.unchanged} already up to date, "
          f"{len(report.problems)} problems not imported." if report.imported else
          "Nothing to import: the CTMS already has everything this file says.", "success")
    return redirect(url_for("ctms_edc.edc", study_id=study_id))
