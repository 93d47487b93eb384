"""Serving a stored file only once its SHA-256 has verified (REC-1).

Files up to ``VERIFY_FIRST_LIMIT`` are read through the verifying reader into a spooled
temporary file first, so a corrupt file is refused with a readable page before a single
byte is sent. Larger files are streamed: the reader withholds its last chunk when the hash
fails, the response is aborted (short of its Content-Length, so no client takes it for a
complete file), and the alert is recorded all the same.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from typing import IO

from flask import Response, g, request, stream_with_context

from etmf.audit.store import Actor, Context
from etmf.bootstrap import Services, services
from etmf.documents.models import Document, DocumentVersion
from etmf.errors import EtmfError
from etmf.records.integrity import (
    CORRUPT,
    MISSING,
    StoredFileCorrupt,
    VersionRef,
    notify_administrators,
    record_integrity_alert,
)
from storage.errors import BlobIntegrityError, BlobNotFound

log = logging.getLogger("etmf.records")

#: Files up to this size are verified completely before the response starts.
VERIFY_FIRST_LIMIT = 64 * 1024 * 1024
#: Verified bytes up to this size stay in memory; beyond, the spool moves to disk.
SPOOL_IN_MEMORY = 1024 * 1024
CHUNK = 256 * 1024


class StoredFileMissing(EtmfError):
    """A version's file is absent from storage; nothing was served."""

    status = 500
    code = "blob_missing"
    title = "The stored file is missing"


def _version_ref(doc: Document, version: DocumentVersion) -> VersionRef:
    return VersionRef(document_id=doc.id, title=doc.title, version_id=version.id,
                      number=version.number, label=version.label, sha256=version.sha256,
                      size=version.size, study_id=doc.study_id)


def _refusal(ref: VersionRef, problem: str) -> EtmfError:
    named = f"The stored file of document “{ref.title}” version {ref.label}"
    if problem == CORRUPT:
        return StoredFileCorrupt(
            f"{named} failed its integrity check; it was not served; "
            "your administrator has been alerted.",
            detail={"document_id": ref.document_id, "version": ref.label,
                    "sha256": ref.sha256})
    return StoredFileMissing(
        f"{named} is missing from storage; nothing was served; "
        "your administrator has been alerted.",
        detail={"document_id": ref.document_id, "version": ref.label, "sha256": ref.sha256})


def _alert(svc: Services, actor: Actor, context: Context, ref: VersionRef, problem: str,
           exc: Exception, actual: str | None) -> None:
    store = svc.blobs
    record_integrity_alert(svc.db, svc.clock, actor, context, sha256=ref.sha256,
                           problem=problem, detail=str(exc), where=store.describe(),
                           versions=[ref], actual_sha256=actual)
    notify_administrators(
        svc.db, svc.mailer, f"eTMF integrity alert: {ref.title} version {ref.label}",
        f"A download of {ref.describe()} was refused: {exc}\n"
        f"Requested by {actor.name} (request {context.request_id}).")


def verified_download(doc: Document, version: DocumentVersion, *, actor: Actor,
                      disposition: str, filename: str) -> Response:
    """A response carrying the version's bytes, which are never served unverified."""
    svc = services()
    ref = _version_ref(doc, version)
    context = Context(request_id=g.get("request_id"), client_addr=request.remote_addr)
    try:
        reader = svc.blobs.open(version.sha256)
    except BlobNotFound as exc:
        _alert(svc, actor, context, ref, MISSING, exc, None)
        raise _refusal(ref, MISSING) from None
    headers = {"Content-Disposition": f'{disposition}; filename="{filename}"',
               "Content-Length": str(version.size)}
    if version.size <= VERIFY_FIRST_LIMIT:
        body = _verified_first(svc, reader, ref, actor, context)
    else:
        body = stream_with_context(_verified_stream(svc, reader, ref, actor, context))
    return Response(body, mimetype=version.mime, headers=headers)


def _verified_first(svc: Services, reader, ref: VersionRef, actor: Actor,  # type: ignore[no-untyped-def]
                    context: Context) -> Iterator[bytes]:
    tmp_dir = svc.settings.instance_path / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by _drain
        max_size=SPOOL_IN_MEMORY, dir=tmp_dir)
    try:
        with reader:
            for chunk in reader:
                spool.write(chunk)
    except BlobIntegrityError as exc:
        spool.close()
        _alert(svc, actor, context, ref, CORRUPT, exc, exc.actual)
        raise _refusal(ref, CORRUPT) from None
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return _drain(spool)


def _drain(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()


def _verified_stream(svc: Services, reader, ref: VersionRef, actor: Actor,  # type: ignore[no-untyped-def]
                     context: Context) -> Iterator[bytes]:
    with reader:
        try:
            while chunk := reader.read(CHUNK):
                yield chunk
        except BlobIntegrityError as exc:
            # Headers are gone already: record the alert, then abort the response.
            _alert(svc, actor, context, ref, CORRUPT, exc, exc.actual)
            log.error("aborted the download of %s: %s", ref.describe(), exc)
            raise
