"""Background jobs: a page per job with its progress bar, its result, and the admin list.

A job's page is the one the user lands on after starting long work (an export, a
validation run). It refreshes itself (static/js/jobs.js polls the JSON view) and offers the
result for download when the job is done. Only the user who started a job, and
administrators, see it; only the user who started it downloads its result.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    stream_with_context,
    url_for,
)
from flask_security import auth_required
from sqlalchemy import select

from etmf import jobs
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.errors import Forbidden, NotFound
from etmf.jobs.models import DONE, FAILED, Job
from etmf.web import db_session

bp = Blueprint("jobs", __name__, url_prefix="/jobs")

NAV = [("Background jobs", "jobs.admin_list", 93, "admin")]


def _visible_job(job_id: str) -> Job:
    job = db_session().get(Job, job_id)
    access = current_access()
    if job is None or not (access.is_admin or job.user_id == access.user_id):
        raise NotFound("There is no such job, or it is not yours.")
    return job


def job_json(job: Job) -> dict[str, object]:
    return {
        "id": job.id, "title": job.title, "status": job.status, "status_label": job.status_label,
        "done": job.done, "total": job.total, "percent": job.percent, "message": job.message,
        "error": job.error.split("\n", 1)[0] if job.error else None,
        "download_url": url_for("jobs.download", job_id=job.id)
        if job.status == DONE and job.result_sha256 else None,
    }


@bp.get("/<job_id>")
@auth_required("session")
def show(job_id: str):  # type: ignore[no-untyped-def]
    return render_template("jobs/job.html", job=_visible_job(job_id))


@bp.get("/<job_id>.json")
@auth_required("session")
def status(job_id: str):  # type: ignore[no-untyped-def]
    return jsonify(job_json(_visible_job(job_id)))


@bp.get("/<job_id>/download")
@auth_required("session")
def download(job_id: str):  # type: ignore[no-untyped-def]
    job = _visible_job(job_id)
    if job.user_id != current_access().user_id:
        raise Forbidden("Only the user who started a job may download its result.")
    if job.status != DONE or not job.result_sha256:
        raise NotFound("This job has no result to download (yet).")
    reader = services().blobs.open(job.result_sha256)

    def chunks():  # type: ignore[no-untyped-def]
        with reader:
            yield from reader

    filename = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_"
                       for c in job.result_filename or "result")
    return Response(stream_with_context(chunks()), mimetype=job.result_mime,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Content-Length": str(job.result_size)})


@bp.get("/")
@auth_required("session")
def admin_list():  # type: ignore[no-untyped-def]
    if not current_access().is_admin:
        raise Forbidden("Only administrators see every background job.")
    recent = db_session().scalars(select(Job).order_by(Job.created_at.desc()).limit(200)).all()
    return render_template("jobs/list.html", jobs=recent, FAILED=FAILED)


@bp.post("/<job_id>/retry")
@auth_required("session")
def retry(job_id: str):  # type: ignore[no-untyped-def]
    from flask import current_app

    if not current_access().is_admin:
        raise Forbidden("Only administrators can retry a failed job.")
    jobs.retry(current_app._get_current_object(), job_id)  # type: ignore[attr-defined]
    flash("The job is queued again.", "success")
    return redirect(url_for("jobs.admin_list"))
