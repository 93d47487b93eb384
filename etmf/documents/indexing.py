"""Keeping the search index in step with the documents, off the request path.

After a command that changes documents commits, :func:`index_after_commit` hands their ids
to the app's :class:`DocumentIndexing`: one background thread extracts the current
version's text (bounded in time and memory by :func:`etmf.documents.extract.extract_text`,
cached by SHA-256 in ``document_texts``) and submits the document to a
:class:`~etmf.search.indexer.BatchingIndexer`, which writes batches (never one Whoosh commit
per upload). A failed extraction is recorded in the cache with its reason, shown on the
document page, and the document is still indexed by its metadata.

In the embedded default pending work lives in memory; what a crash loses comes back with
``etmf search reindex``. Where ``etmf worker`` processes run the background work
(``ETMF_JOBS_RUNNER=worker``), the change instead writes a row to the search outbox in its
own transaction, and a worker indexes it (:func:`drain_outbox`): nothing is lost when an app
server dies between the commit and the indexing, and every app server sees the same index.
"""

from __future__ import annotations

import atexit
import logging
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from etmf.audit.store import UnitOfWork
from etmf.documents.extract import extract_text
from etmf.documents.models import Document, DocumentText, DocumentVersion, SearchOutbox
from etmf.reference_model.model import UnknownArtifact, load_reference_model
from etmf.search.base import MAX_INDEXED_TEXT_CHARS, SearchDoc
from etmf.search.indexer import BatchingIndexer
from etmf.studies.models import Country

log = logging.getLogger(__name__)

#: Bounds of one background extraction (the intake checks already ran at upload).
EXTRACT_TIMEOUT_S = 30.0
EXTRACT_MEMORY_MB = 512

_EXTRA_KEY = "document_indexing"
_create_lock = threading.Lock()


class DocumentIndexing:
    """The app's background indexing: an extraction thread feeding a batching indexer."""

    def __init__(self, svc, *, batch_size: int = 200, max_delay_s: float = 1.0) -> None:  # type: ignore[no-untyped-def]
        self._svc = svc
        self.indexer = BatchingIndexer(svc.search, batch_size=batch_size,
                                       max_delay_s=max_delay_s)
        self._queue: deque[int] = deque()
        self._cond = threading.Condition()
        self._busy = 0
        self._closing = False
        self._thread: threading.Thread | None = None

    # --- producer side ------------------------------------------------------------

    def schedule(self, document_ids: Iterable[int]) -> None:
        """Queue documents for (re-)indexing; returns at once."""
        with self._cond:
            if self._closing:
                log.warning("indexing is closed; run `etmf search reindex` for %s",
                            list(document_ids))
                return
            self._queue.extend(document_ids)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="text-extraction",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Extract and index everything scheduled so far; True when done in time."""
        with self._cond:
            done = self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)
        return done and self.indexer.flush(timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Finish what is queued, then stop. True if nothing was left unwritten."""
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        return self.indexer.close(timeout) and flushed

    # --- worker side --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    if self._closing:
                        return
                    self._cond.wait()
                document_id = self._queue.popleft()
                self._busy += 1
            try:
                doc = search_doc(self._svc, document_id)
                if doc is not None:
                    self.indexer.submit(doc)
            except Exception:  # never let one document stop the thread
                log.exception("could not index document %s; `etmf search reindex` will "
                              "retry it", document_id)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()


def indexing_for(svc) -> DocumentIndexing:  # type: ignore[no-untyped-def]
    """The app's indexing, created on first use (never at import) and flushed at exit."""
    with _create_lock:
        indexing = svc.extras.get(_EXTRA_KEY)
        if indexing is None:
            indexing = svc.extras[_EXTRA_KEY] = DocumentIndexing(svc)
            atexit.register(indexing.close)
        return indexing  # type: ignore[no-any-return]


def index_after_commit(uow: UnitOfWork, svc, *document_ids: int) -> None:  # type: ignore[no-untyped-def]
    """Re-index these documents once (and only if) the unit of work commits."""
    ids = [i for i in document_ids if i]
    if svc.settings.jobs_runner == "worker":
        from etmf.jobs.wake import notify_workers

        for document_id in ids:
            uow.session.merge(SearchOutbox(document_id=document_id, queued_at=uow.now))
        uow.after_commit.append(lambda: notify_workers(svc))
        return
    uow.after_commit.append(lambda: indexing_for(svc).schedule(ids))


def drain_outbox(svc, limit: int = 200) -> int:  # type: ignore[no-untyped-def]
    """Index up to ``limit`` documents waiting in the search outbox; returns how many.

    Idempotent and safe with several workers: a document indexed twice gets the same entry,
    and a row is removed only if nobody queued the document again meanwhile.
    """
    with svc.db.read_session() as session:
        waiting = session.execute(
            select(SearchOutbox.document_id, SearchOutbox.queued_at)
            .order_by(SearchOutbox.queued_at, SearchOutbox.document_id).limit(limit)
        ).all()
    if not waiting:
        return 0
    docs = [d for d in (search_doc(svc, document_id) for document_id, _at in waiting) if d]
    svc.search.index(docs)
    with svc.db.write_session() as session:
        for document_id, queued_at in waiting:
            session.execute(delete(SearchOutbox).where(SearchOutbox.document_id == document_id,
                                                       SearchOutbox.queued_at <= queued_at))
        session.commit()
    return len(waiting)


def outbox_size(svc) -> int:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(SearchOutbox)) or 0)


def flush(svc, timeout: float | None = 60.0) -> bool:  # type: ignore[no-untyped-def]
    """Wait until everything scheduled is searchable (tests, the demo, shutdown)."""
    indexing = svc.extras.get(_EXTRA_KEY)
    return True if indexing is None else indexing.flush(timeout)


def shutdown(svc) -> None:  # type: ignore[no-untyped-def]
    indexing = svc.extras.pop(_EXTRA_KEY, None)
    if indexing is not None:
        indexing.close()
        atexit.unregister(indexing.close)


# --- text --------------------------------------------------------------------------------


def text_of(svc, version: DocumentVersion) -> DocumentText:  # type: ignore[no-untyped-def]
    """The extracted text of a version, from the cache or extracted now (bounded)."""
    with svc.db.read_session() as session:
        cached = session.get(DocumentText, version.sha256)
        if cached is not None:
            session.expunge(cached)
            return cached  # type: ignore[no-any-return]
    tmp_dir = svc.settings.instance_path / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="extract-") as tmp:
        try:
            with svc.blobs.open(version.sha256) as reader:
                while chunk := reader.read(1024 * 1024):
                    tmp.write(chunk)
            tmp.flush()
            result = extract_text(Path(tmp.name), version.mime, timeout_s=EXTRACT_TIMEOUT_S,
                                  memory_mb=EXTRACT_MEMORY_MB,
                                  max_chars=MAX_INDEXED_TEXT_CHARS)
            status = "failed" if result.error else ("ok" if result.text.strip() else "none")
            row = DocumentText(sha256=version.sha256, status=status, error=result.error,
                               pages=result.pages, truncated=result.truncated,
                               text=result.text.replace("\x00", " "),
                               extracted_at=svc.clock.now())
        except Exception as exc:  # storage down or damaged: record it, do not cache
            log.warning("text of version %s not extracted: %s", version.id, exc)
            return DocumentText(sha256=version.sha256, status="failed",
                                error=f"The stored file could not be read: {exc}",
                                pages=None, truncated=False, text="",
                                extracted_at=svc.clock.now())
    try:
        with svc.db.write_session() as session:
            session.add(row)
            session.commit()
    except IntegrityError:  # extracted concurrently by another process: same text
        pass
    return row


def search_doc(svc, document_id: int) -> SearchDoc | None:  # type: ignore[no-untyped-def]
    """The search index's view of a document now (None if it no longer exists)."""
    with svc.db.read_session() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            return None
        version = (session.get(DocumentVersion, doc.current_version_id)
                   if doc.current_version_id else None)
        country = session.get(Country, doc.country_id) if doc.country_id else None
        session.expunge_all()
    if version is not None:
        text = text_of(svc, version).text
    else:
        text = " ".join(v for v in (doc.signpost_system, doc.signpost_location) if v)
    return _as_search_doc(doc, version, country.code if country else None, text)


def _as_search_doc(doc: Document, version: DocumentVersion | None, country: str | None,
                   text: str) -> SearchDoc:
    try:
        artifact_name = load_reference_model().artifact(doc.artifact_id).name
    except UnknownArtifact:
        artifact_name = doc.artifact_number
    return SearchDoc(
        document_id=doc.id, study_id=doc.study_id, country=country, site_id=doc.site_id,
        zone=doc.zone, section=doc.section, artifact_id=doc.artifact_id,
        artifact_name=artifact_name, title=doc.title, status=doc.status,
        document_date=doc.document_date, person=doc.person, language=doc.language,
        version_label=version.label if version else "", text=text,
    )


# --- reindex -------------------------------------------------------------------------------


def count_documents(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Document)) or 0)


def reindex_all(svc, progress: Callable[[int], None] = lambda _n: None,  # type: ignore[no-untyped-def]
                batch_size: int = 200) -> tuple[int, int]:
    """Rebuild the index from the documents table; returns (indexed, extraction failures).

    Writes in batches of ``batch_size`` (one commit each) directly, not through the
    background indexer, so that it is done when this returns.
    """
    index = svc.search
    index.clear()
    with svc.db.write_session() as session:  # failed extractions get another chance
        session.execute(delete(DocumentText).where(DocumentText.status == "failed"))
        session.commit()
    indexed = failures = 0
    batch: list[SearchDoc] = []
    for document_id in _all_ids(svc):
        doc = search_doc(svc, document_id)
        if doc is None:
            continue
        batch.append(doc)
        if len(batch) >= batch_size:
            indexed += index.index(batch)
            progress(len(batch))
            batch = []
    if batch:
        indexed += index.index(batch)
        progress(len(batch))
    with svc.db.read_session() as session:
        failures = int(session.scalar(
            select(func.count()).select_from(DocumentText)
            .where(DocumentText.status == "failed")) or 0)
    return indexed, failures


def _all_ids(svc) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as session:
        ids = list(session.scalars(select(Document.id).order_by(Document.id)))
    yield from ids
