"""A complete copy of one record (REC-2): metadata, versions, signatures and audit trail, as
a ZIP holding a readable PDF, the JSON form and every version's exact bytes."""

from __future__ import annotations

from flask import Blueprint, Response, g, request
from flask_security import auth_required

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.audit.store import Context
from etmf.bootstrap import services
from etmf.documents.models import Document
from etmf.records.download import _alert, _refusal, _version_ref
from etmf.records.export import StoredFileFailed, build_record_copy
from etmf.web import db_session
from etmf.web.documents import load_document

bp = Blueprint("records", __name__)

DOCUMENT_PANELS = ["records/_copy_panel.html"]


@bp.get("/documents/<int:document_id>/copy")
@auth_required("session")
def record_copy(document_id: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    access = current_access()
    access.require(Permission.VIEW_AUDIT, doc.study_id, doc.site_id)
    svc = services()
    try:
        copy = build_record_copy(db_session(), svc, doc, exported_by=access.name,
                                 now=svc.clock.now())
    except StoredFileFailed as failed:  # never copy a file that fails its check (REC-1)
        ref = _version_ref(doc, failed.version)
        context = Context(request_id=g.get("request_id"), client_addr=request.remote_addr)
        _alert(svc, access.actor, context, ref, failed.problem, failed.cause, None)
        raise _refusal(ref, failed.problem) from None
    return Response(copy.data, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{copy.filename}"'})


@bp.app_context_processor
def _copy_helpers() -> dict[str, object]:
    def may_copy_record(doc: Document) -> bool:
        return current_access().can(Permission.VIEW_AUDIT, doc.study_id, doc.site_id)

    return {"may_copy_record": may_copy_record}
