"""Filing many files at once: receive a batch (files and ZIPs of files), stage each accepted
file with suggestions, then file each metadata row on its own.

Stages, and what each guarantees:

1. :func:`receive_batch` checks every file on its own (intake limits, type by content, the
   archive limits of a ZIP before anything is inflated) and writes each accepted file to
   blob storage. A refused file is reported with its reason and never spoils the others.
   Blobs are content-addressed and write-once: a batch that is never filed leaves
   unreferenced blobs that ``etmf storage reconcile`` reports, and no database row.
2. Each accepted file is described by a signed *staging token* (user, study, SHA-256, size,
   type, name), so the metadata form cannot be made to reference someone else's blob.
3. :func:`check_required` tells what a row still needs; the web layer files each complete
   row in its own transaction, so one bad row is refused alone and nothing is half-stored.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from etmf.documents.extract import TEXT_MIME, extract_text
from etmf.documents.intake import (
    ZIP_MIME,
    IntakeLimits,
    RejectedFile,
    check_zip_archive,
    sanitize_filename,
    sniff,
)
from etmf.documents.models import Document
from etmf.documents.services import StoredFile
from etmf.documents.upload import receive_file, spooled, store_checked
from etmf.errors import BadUpload, EtmfError, ValidationError
from etmf.reference_model.classify import Classifier, Suggestion
from etmf.reference_model.model import Artifact, FilingLevel, ReferenceModel

log = logging.getLogger(__name__)

#: Files in one ZIP beyond this are refused as a whole (ask for smaller archives).
MAX_FILES_PER_ZIP = 500
#: Staged uploads must be filed within this time; after it the form says to upload again.
STAGING_MAX_AGE_S = 24 * 3600
#: Text read for classification suggestions (the start is where titles are).
SUGGESTION_TEXT_CHARS = 20_000
SUGGESTION_TIMEOUT_S = 5.0
#: Installation's filed documents used as classifier examples (most recent first).
MAX_TRAINING_EXAMPLES = 5_000


@dataclass
class StagedFile:
    """An accepted upload waiting for its metadata."""

    stored: StoredFile
    token: str
    suggestions: list[Suggestion] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # (document id, title)
    from_archive: str | None = None


@dataclass(frozen=True)
class Refusal:
    filename: str
    message: str
    status: int = 400


@dataclass
class Batch:
    staged: list[StagedFile] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


# --- staging tokens ---------------------------------------------------------------------


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="etmf-staged-upload")


def staging_token(secret_key: str, user_id: int | None, study_id: int, f: StoredFile) -> str:
    return _serializer(secret_key).dumps(
        {"u": user_id, "s": study_id, "sha": f.sha256, "size": f.size, "mime": f.mime,
         "name": f.filename, "pages": f.page_count})


def read_staging_token(secret_key: str, token: str, user_id: int | None,
                       study_id: int) -> StoredFile:
    """The staged file a token stands for, or :class:`ValidationError`."""
    try:
        data = _serializer(secret_key).loads(token, max_age=STAGING_MAX_AGE_S)
    except BadSignature:
        raise ValidationError("This upload has expired or the form was altered; "
                              "upload the file again.") from None
    if data.get("u") != user_id or data.get("s") != study_id:
        raise ValidationError("This upload belongs to another filing; upload the file again.")
    return StoredFile(sha256=data["sha"], size=data["size"], mime=data["mime"],
                      filename=data["name"], page_count=data.get("pages"))


# --- receiving a batch ------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    filename: str
    stream: BinaryIO


def receive_batch(blobs, uploads: Iterable[Upload], *, tmp_dir: Path, max_bytes: int,  # type: ignore[no-untyped-def]
                  limits: IntakeLimits | None = None) -> tuple[list[tuple[StoredFile, str | None]],
                                                              list[Refusal]]:
    """Check and store every file (expanding ZIPs); (stored, archive name) and refusals."""
    limits = limits or IntakeLimits()
    stored: list[tuple[StoredFile, str | None]] = []
    refused: list[Refusal] = []
    for upload in uploads:
        name = sanitize_filename(upload.filename)
        try:
            with spooled(upload.stream, tmp_dir, max_bytes) as path:
                if path.stat().st_size and sniff(path).mime == ZIP_MIME:
                    _receive_zip(blobs, path, name, tmp_dir, max_bytes, limits, stored,
                                 refused)
                    continue
                stored.append((store_checked(blobs, path, upload.filename,
                                             max_bytes=max_bytes), None))
        except EtmfError as exc:
            refused.append(Refusal(name, exc.message, exc.status))
        except RejectedFile as exc:
            refused.append(Refusal(name, exc.message))
    return stored, refused


def _receive_zip(blobs, path: Path, name: str, tmp_dir: Path, max_bytes: int,  # type: ignore[no-untyped-def]
                 limits: IntakeLimits, stored: list[tuple[StoredFile, str | None]],
                 refused: list[Refusal]) -> None:
    """Each member of a ZIP is a file of the batch; the archive's directory is checked
    first (entry count, sizes, ratios, names) without inflating anything."""
    check_zip_archive(path, name, limits)
    with zipfile.ZipFile(path) as archive:
        members = [i for i in archive.infolist() if not i.is_dir()
                   and not i.filename.rsplit("/", 1)[-1].startswith(".")
                   and "__MACOSX/" not in i.filename]
        if len(members) > MAX_FILES_PER_ZIP:
            raise BadUpload(f"The archive '{name}' holds {len(members)} files; at most "
                            f"{MAX_FILES_PER_ZIP} can be filed from one archive.")
        if not members:
            raise BadUpload(f"The archive '{name}' holds no files.")
        for info in members:
            member_name = sanitize_filename(info.filename)
            if info.file_size > max_bytes:
                refused.append(Refusal(member_name, f"In '{name}': the file '{member_name}' "
                                       f"is larger than the limit of "
                                       f"{max_bytes // (1024 * 1024)} MB.", 413))
                continue
            try:
                with archive.open(info) as member:
                    stored.append((receive_file(blobs, member, info.filename, tmp_dir=tmp_dir,
                                                max_bytes=max_bytes), name))
            except EtmfError as exc:
                refused.append(Refusal(member_name, f"In '{name}': {exc.message}", exc.status))
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                refused.append(Refusal(member_name, f"In '{name}': the file '{member_name}' "
                                       f"could not be read from the archive ({exc})."))


# --- suggestions and duplicates ---------------------------------------------------------


def suggestion_text(blobs, f: StoredFile, tmp_dir: Path) -> str:  # type: ignore[no-untyped-def]
    """The opening text of a staged file, for the classifier (bounded; '' on any failure)."""
    if f.mime not in {"application/pdf", TEXT_MIME,
                      "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}:
        return ""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="suggest-", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out, blobs.open(f.sha256) as reader:
            while chunk := reader.read(1024 * 1024):
                out.write(chunk)
        result = extract_text(name, f.mime, timeout_s=SUGGESTION_TIMEOUT_S,
                              max_chars=SUGGESTION_TEXT_CHARS)
        return result.text
    except Exception:  # suggestions are a help, never a reason to refuse a file
        log.warning("no suggestion text for %s", f.filename, exc_info=True)
        return ""
    finally:
        Path(name).unlink(missing_ok=True)


_classifier_lock = threading.Lock()


def classifier(svc, model: ReferenceModel) -> Classifier:  # type: ignore[no-untyped-def]
    """The classifier trained on the model plus this installation's filed documents.

    Retrained (about 0.1 s) when documents were filed since, at most once a minute.
    """
    with svc.db.read_session() as session:
        newest = session.scalar(select(Document.id).order_by(Document.id.desc()).limit(1))
    with _classifier_lock:
        cached = svc.extras.get("document_classifier")
        if cached is not None:
            trained_on, trained_at, clf = cached
            if trained_on == newest or time.monotonic() - trained_at < 60:
                return clf  # type: ignore[no-any-return]
        with svc.db.read_session() as session:
            examples = session.execute(
                select(Document.title, Document.artifact_id).order_by(Document.id.desc())
                .limit(MAX_TRAINING_EXAMPLES)).all()
        known = {a.unique_id for a in model.artifacts}
        clf = Classifier.train(model, [(t, a) for t, a in examples if a in known])
        svc.extras["document_classifier"] = (newest, time.monotonic(), clf)
        return clf


def stage(svc, batch_files: list[tuple[StoredFile, str | None]], *, user_id: int | None,  # type: ignore[no-untyped-def]
          study_id: int, model: ReferenceModel) -> list[StagedFile]:
    """Tokens, top-3 suggestions and duplicates of the study for each accepted file."""
    from etmf.documents.services import duplicates_in_study

    clf = classifier(svc, model)
    tmp_dir = svc.settings.instance_path / "tmp"
    staged = []
    with svc.db.read_session() as session:
        for f, archive in batch_files:
            text = suggestion_text(svc.blobs, f, tmp_dir)
            staged.append(StagedFile(
                stored=f,
                token=staging_token(svc.settings.secret_key, user_id, study_id, f),
                suggestions=clf.suggest(f.filename, text, k=3),
                duplicates=[(d.id, d.title) for d in duplicates_in_study(session, study_id,
                                                                          f.sha256)],
                from_archive=archive,
            ))
    return staged


# --- required fields ------------------------------------------------------------------------


def requires_person(artifact: Artifact) -> bool:
    """CVs, training records and the like are about one person: say who."""
    text = f"{artifact.name} {' '.join(artifact.sub_artifacts)}".lower()
    return "curriculum vitae" in text or " cv" in f" {artifact.name.lower()}"


def check_required(model: ReferenceModel, artifact_key: str, row: dict[str, str]) -> list[str]:
    """What a metadata row still needs, in words (empty when it can be filed).

    Always: artifact, title, level, document date (labelled by the artifact's dating
    convention). A level the artifact is not filed at is refused; a site or country level
    needs the site or country; an artifact about a person needs the person.
    """
    problems: list[str] = []
    artifact = None
    if not artifact_key:
        problems.append("Choose an artifact.")
    else:
        try:
            artifact = model.artifact(artifact_key)
        except LookupError:
            try:
                artifact = model.artifact_by_number(artifact_key)
            except LookupError:
                problems.append(f"{artifact_key!r} is not an artifact of the TMF Reference "
                                f"Model {model.version}.")
    if not row.get("title", "").strip():
        problems.append("A title is required.")
    level = row.get("level", "")
    if artifact is not None:
        allowed = [lv.value for lv in model.levels_of(artifact)]
        if level not in allowed:
            problems.append(f"{artifact.label} is filed at {' or '.join(allowed)} level, "
                            f"not {level or 'no'} level.")
        if not row.get("document_date", "").strip():
            problems.append(f"The {artifact.dating_convention.lower()} (document date) "
                            "is required.")
        if requires_person(artifact) and not row.get("person", "").strip():
            problems.append(f"{artifact.name} needs the person it is about.")
    if level == FilingLevel.SITE and not row.get("site_id", "").strip():
        problems.append("Choose the site of a site-level document.")
    if level == FilingLevel.COUNTRY and not row.get("country_id", "").strip():
        problems.append("Choose the country of a country-level document.")
    return problems
