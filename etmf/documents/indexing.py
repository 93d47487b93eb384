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
from etmf.documents.extract import (
    TEXT_MIME,
    ExtractionResult,
    extract_plain_stream,
    extract_text,
)
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
        self._batch_size = batch_size
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
                # Everything waiting, up to a batch: one read and one write transaction for
                # all of them instead of three sessions and a commit per document (at one
                # document at a time, extraction fell behind uploads and the lag grew).
                ids = [self._queue.popleft()
                       for _ in range(min(len(self._queue), self._batch_size))]
                self._busy += len(ids)
            try:
                self._index_batch(ids)
            finally:
                with self._cond:
                    self._busy -= len(ids)
                    self._cond.notify_all()

    def _index_batch(self, ids: list[int]) -> None:
        try:
            docs = search_docs(self._svc, ids)
        except Exception:  # one bad document must not keep the others out: go one by one
            log.warning("indexing a batch of %d documents failed; retrying one by one",
                        len(ids), exc_info=True)
            docs = []
            for document_id in ids:
                try:
                    docs.extend(search_docs(self._svc, [document_id]))
                except Exception:  # never let one document stop the thread
                    log.exception("could not index document %s; `etmf search reindex` will "
                                  "retry it", document_id)
        for doc in docs:
            self.indexer.submit(doc)


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
    docs = search_docs(svc, [document_id for document_id, _at in waiting])
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
    return _texts_of(svc, [version])[version.sha256]


def _texts_of(svc, versions: Iterable[DocumentVersion]  # type: ignore[no-untyped-def]
              ) -> dict[str, DocumentText]:
    """Extracted texts by SHA-256: cached ones in one read, the others extracted (bounded)
    and cached in one write transaction."""
    wanted = {v.sha256: v for v in versions}
    if not wanted:
        return {}
    with svc.db.read_session() as session:
        found = {t.sha256: t for t in session.scalars(
            select(DocumentText).where(DocumentText.sha256.in_(sorted(wanted))))}
        session.expunge_all()
    fresh: list[DocumentText] = []
    for sha256, version in wanted.items():
        if sha256 not in found:
            row, cacheable = _extract(svc, version)
            found[sha256] = row
            if cacheable:
                fresh.append(row)
    if fresh:
        _cache_texts(svc, fresh)
    return found


def _extract(svc, version: DocumentVersion) -> tuple[DocumentText, bool]:  # type: ignore[no-untyped-def]
    """Extract one version's text; (row, whether to cache it)."""
    try:
        if version.mime == TEXT_MIME:
            # Plain text needs no parser: decoded here in bounded chunks, no worker process.
            with svc.blobs.open(version.sha256) as reader:
                result = extract_plain_stream(reader, MAX_INDEXED_TEXT_CHARS)
        else:
            result = _extract_in_worker(svc, version)
    except Exception as exc:  # storage down or damaged: record it, do not cache
        log.warning("text of version %s not extracted: %s", version.id, exc)
        return DocumentText(sha256=version.sha256, status="failed",
                            error=f"The stored file could not be read: {exc}",
                            pages=None, truncated=False, text="",
                            extracted_at=svc.clock.now()), False
    status = "failed" if result.error else ("ok" if result.text.strip() else "none")
    return DocumentText(sha256=version.sha256, status=status, error=result.error,
                        pages=result.pages, truncated=result.truncated,
                        text=result.text.replace("\x00", " "),
                        extracted_at=svc.clock.now()), True


def _extract_in_worker(svc, version: DocumentVersion) -> ExtractionResult:  # type: ignore[no-untyped-def]
    tmp_dir = svc.settings.instance_path / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="extract-") as tmp:
        with svc.blobs.open(version.sha256) as reader:
            while chunk := reader.read(1024 * 1024):
                tmp.write(chunk)
        tmp.flush()
        return extract_text(Path(tmp.name), version.mime, timeout_s=EXTRACT_TIMEOUT_S,
                            memory_mb=EXTRACT_MEMORY_MB, max_chars=MAX_INDEXED_TEXT_CHARS)


def _cache_texts(svc, rows: list[DocumentText]) -> None:  # type: ignore[no-untyped-def]
    """Store new texts in one transaction; rows another process stored meanwhile are kept."""
    try:
        with svc.db.write_session() as session:
            session.add_all(_copies(rows))
            session.commit()
        return
    except IntegrityError:  # some were extracted concurrently by another process
        pass
    for row in rows:
        try:
            with svc.db.write_session() as session:
                session.add(_copies([row])[0])
                session.commit()
        except IntegrityError:  # same bytes, same text
            pass


def _copies(rows: list[DocumentText]) -> list[DocumentText]:
    # Fresh instances: the callers keep using the originals after the session closes.
    return [DocumentText(sha256=r.sha256, status=r.status, error=r.error, pages=r.pages,
                         truncated=r.truncated, text=r.text, extracted_at=r.extracted_at)
            for r in rows]


def search_doc(svc, document_id: int) -> SearchDoc | None:  # type: ignore[no-untyped-def]
    """The search index's view of a document now (None if it no longer exists)."""
    docs = search_docs(svc, [document_id])
    return docs[0] if docs else None


def search_docs(svc, document_ids: Iterable[int]) -> list[SearchDoc]:  # type: ignore[no-untyped-def]
    """The search index's view of these documents now, in the order asked (ids that no
    longer exist are left out): one read for the rows, one for the cached texts."""
    ids = list(dict.fromkeys(document_ids))
    if not ids:
        return []
    with svc.db.read_session() as session:
        docs = {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))}
        version_ids = sorted({d.current_version_id for d in docs.values() if d.current_version_id})
        versions = {v.id: v for v in session.scalars(
            select(DocumentVersion).where(DocumentVersion.id.in_(version_ids)))} \
            if version_ids else {}
        country_ids = sorted({d.country_id for d in docs.values() if d.country_id})
        countries = dict(session.execute(
            select(Country.id, Country.code).where(Country.id.in_(country_ids))).all()) \
            if country_ids else {}
        session.expunge_all()
    texts = _texts_of(svc, versions.values())
    result = []
    for document_id in ids:
        doc = docs.get(document_id)
        if doc is None:
            continue
        version = versions.get(doc.current_version_id) if doc.current_version_id else None
        if version is not None:
            text = texts[version.sha256].text
        else:
            text = " ".join(v for v in (doc.signpost_system, doc.signpost_location) if v)
        result.append(_as_search_doc(doc, version, countries.get(doc.country_id), text))
    return result


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

    Reads the documents in batches of ``batch_size`` and hands them to the index's rebuild
    path (:meth:`~etmf.search.base.SearchIndex.index_new`, which chooses its commits),
    directly, not through the background indexer, so that it is done when this returns.
    """
    index = svc.search
    index.clear()
    with svc.db.write_session() as session:  # failed extractions get another chance
        session.execute(delete(DocumentText).where(DocumentText.status == "failed"))
        session.commit()
    ids = list(_all_ids(svc))
    batches = (search_docs(svc, ids[start:start + batch_size])
               for start in range(0, len(ids), batch_size))
    indexed = index.index_new(batches, progress)
    index.after_rebuild()
    with svc.db.read_session() as session:
        failures = int(session.scalar(
            select(func.count()).select_from(DocumentText)
            .where(DocumentText.status == "failed")) or 0)
    return indexed, failures


def _all_ids(svc) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as session:
        ids = list(session.scalars(select(Document.id).order_by(Document.id)))
    yield from ids
