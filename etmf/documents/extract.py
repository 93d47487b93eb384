"""Bounded text extraction from uploaded files, and the bounded runner it rests on.

Parsers fail in unexpected ways: pypdf raises bare ``TypeError``s on fuzzed input and a
DOCX zip bomb can cost python-docx seconds and gigabytes. So every parser call runs in a
separate worker process with a wall-clock timeout and an address-space limit
(``RLIMIT_AS``). A timeout, a crash, a ``MemoryError`` or any exception in the parser
comes back as a value (``ExtractionResult.error``) and never propagates to the caller.

Workers are reused: they are forked from a "zygote" process that has already imported
pypdf and python-docx, so a call costs a pipe round trip, and replacing a worker that was
killed after a timeout costs a fork, not a Python start-up. Linux/POSIX only (fork,
RLIMIT_AS).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import pickle
import resource
import select
import signal
import socket
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any, BinaryIO, Final, Self, TypeVar

T = TypeVar("T")

MIB: Final = 1024 * 1024

PDF_MIME: Final = "application/pdf"
DOCX_MIME: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_MIME: Final = "text/plain"
#: Types that carry no extractable text (no OCR here): empty text, and not an error.
_NO_TEXT_MIMES: Final = frozenset({"image/png", "image/jpeg", "image/tiff"})



# --------------------------------------------------------------------------------------
# Errors of the bounded runner
# --------------------------------------------------------------------------------------


class BoundedRunError(Exception):
    """A bounded call did not return a value; ``str()`` is a sentence a person understands."""


class BoundedRunTimeout(BoundedRunError):
    """The call ran longer than its time bound and its worker was killed."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(f"it was stopped after {_format_seconds(timeout_s)}")


class BoundedRunOutOfMemory(BoundedRunError):
    """The call needed more memory than its bound allows."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        super().__init__(f"it needed more than the {memory_mb} MB of memory it is allowed")


class BoundedRunCrashed(BoundedRunError):
    """The worker process died (a crash in C code, an abort, being killed) mid-call."""

    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode
        super().__init__(f"the worker process stopped unexpectedly (exit code {exitcode})")


class BoundedRunFailed(BoundedRunError):
    """The called function raised an exception; its type and message are kept as text."""

    def __init__(self, exc_type: str, detail: str) -> None:
        self.exc_type = exc_type
        self.detail = detail
        super().__init__(f"{exc_type}: {detail}" if detail else exc_type)


# --------------------------------------------------------------------------------------
# The worker process
# --------------------------------------------------------------------------------------

_REPLY_OK: Final = "ok"
_REPLY_ERROR: Final = "error"
_REPLY_MEMORY: Final = "memory"
_MAX_DETAIL_CHARS: Final = 300


def _worker_main(conn: Connection) -> None:
    """Serve calls from the parent until the pipe closes.

    Runs in the child process. Each request is ``(func, args, memory_bytes)``; the soft
    address-space limit is lowered for the call and restored afterwards, so the same worker
    can serve calls with different bounds.
    """
    # Ctrl-C in a terminal reaches the whole process group; the parent decides our fate.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Parser warnings are noise here: failures come back as values.
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        reply = _serve_one(payload, soft, hard)
        try:
            conn.send(reply)
        except MemoryError:
            conn.send((_REPLY_MEMORY,))
        except Exception as exc:  # an unpicklable result is a failure of the call
            conn.send((_REPLY_ERROR, *_describe(exc)))


def _serve_one(payload: bytes, soft: int, hard: int) -> tuple[Any, ...]:
    """Run one pickled request under its memory bound and describe the outcome."""
    try:
        func, args, memory_bytes = pickle.loads(payload)
    except Exception as exc:
        return (_REPLY_ERROR, *_describe(exc))
    limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        try:
            return (_REPLY_OK, func(*args))
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except MemoryError:
        return (_REPLY_MEMORY,)
    except BaseException as exc:  # parsers raise anything, SystemExit included
        return (_REPLY_ERROR, *_describe(exc))


def _describe(exc: BaseException) -> tuple[str, str]:
    """Type name and a short message; an exception whose ``str()`` fails still describes."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    if len(text) > _MAX_DETAIL_CHARS:
        text = text[: _MAX_DETAIL_CHARS - 1] + "…"
    return type(exc).__name__, text


# --------------------------------------------------------------------------------------
# The zygote: a single-threaded process with the parsers imported, forking workers
# --------------------------------------------------------------------------------------
# Why not multiprocessing's forkserver: on Python 3.11 it never receives the main script's
# path, so every worker it forks re-runs the main script (pytest, gunicorn ...) on start,
# costing 0.2-0.5 s per worker. The zygote pays that once; a worker then costs one fork.

_ZYGOTE_FORK: Final = "fork"
_ZYGOTE_EXITCODE: Final = "exitcode"
_MAX_REMEMBERED_EXITS: Final = 256
_KILL_WAIT_S: Final = 5.0  # SIGKILL takes milliseconds; a process stuck in the kernel, longer


def _zygote_main(conn: Connection) -> None:
    """Import the parsers once, then fork a worker for every request until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("ignore")
    import docx  # noqa: F401  (preloaded so that forked workers start warm)
    import pypdf  # noqa: F401

    exits: dict[int, int] = {}
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        _reap_workers(exits)
        if request[0] == _ZYGOTE_FORK:
            pid, parent_end = _fork_worker(conn)
            reduction.send_handle(conn, parent_end.fileno(), os.getppid())
            parent_end.close()
            conn.send(pid)
        elif request[0] == _ZYGOTE_EXITCODE:
            conn.send(_wait_for_exit(request[1], exits))


def _fork_worker(zygote_conn: Connection) -> tuple[int, socket.socket]:
    parent_end, worker_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the worker: it keeps only its own end of its own pipe
        code = 0
        try:
            zygote_conn.close()
            parent_end.close()
            _worker_main(Connection(worker_end.detach()))
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    worker_end.close()
    return pid, parent_end


def _reap_workers(exits: dict[int, int]) -> None:
    # Workers killed by the parent after a timeout become zombies until reaped here.
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        exits[pid] = os.waitstatus_to_exitcode(status)
        while len(exits) > _MAX_REMEMBERED_EXITS:
            del exits[next(iter(exits))]


def _wait_for_exit(pid: int, exits: dict[int, int]) -> int | None:
    if pid in exits:
        return exits.pop(pid)
    try:
        # Asked only after the worker's pipe reached end-of-file, so it has exited.
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ChildProcessError:
        return None


class _Zygote:
    """The parent's handle on the zygote process; not thread-safe (the runner locks)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe(duplex=True)
        self._process = ctx.Process(
            target=_zygote_main, args=(child_conn,), name="etmf-parser-zygote", daemon=True
        )
        try:
            self._process.start()
        finally:
            child_conn.close()

    def fork_worker(self) -> _Worker:
        self._conn.send((_ZYGOTE_FORK,))
        fd = reduction.recv_handle(self._conn)
        pid: int = self._conn.recv()
        return _Worker(pid=pid, conn=Connection(fd))

    def exitcode(self, pid: int) -> int | None:
        try:
            self._conn.send((_ZYGOTE_EXITCODE, pid))
            code: int | None = self._conn.recv()
        except (EOFError, OSError):
            return None
        return code

    def close(self) -> None:
        # The zygote holds nothing worth a graceful exit, and an interpreter's tear-down
        # with Flask, pypdf and lxml loaded takes half a second.
        self._conn.close()
        self._process.kill()
        self._process.join()
        self._process.close()


# --------------------------------------------------------------------------------------
# The parent side: a small pool of reusable workers
# --------------------------------------------------------------------------------------


@dataclass
class _Worker:
    pid: int
    conn: Connection
    calls: int = 0

    def kill(self) -> None:
        """Kill the worker and wait (boundedly) until it has exited.

        SIGKILL is delivered asynchronously: without the wait a caller told "stopped" could
        still find the process running, holding its memory, for a few scheduler ticks.
        """
        self.conn.close()
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return  # already exited and reaped by the zygote
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            # A pidfd turns readable once its process has exited (a zombie counts).
            select.select([pidfd], [], [], _KILL_WAIT_S)
        except ProcessLookupError:
            pass
        finally:
            os.close(pidfd)

    def looks_alive(self) -> bool:
        # An idle worker never writes; anything readable means its end closed (it died).
        try:
            return not self.conn.poll(0)
        except OSError:
            return False


class BoundedRunner:
    """Runs picklable top-level functions in worker processes with time and memory bounds.

    Thread-safe; at most ``max_workers`` calls run at once, others wait for a free worker.
    A worker that timed out, crashed or ran out of memory is killed and replaced on the next
    call; a healthy one is recycled after ``max_calls_per_worker`` calls so that memory
    fragmentation in a long-lived worker cannot accumulate. Workers are forked from one
    "zygote" process that has imported pypdf and python-docx, started on first use.
    """

    def __init__(self, *, max_workers: int = 2, max_calls_per_worker: int = 200) -> None:
        if max_workers < 1:
            raise ValueError("A bounded runner needs at least one worker.")
        self._max_workers = max_workers
        self._max_calls = max_calls_per_worker
        self._cond = threading.Condition()
        self._zygote_lock = threading.Lock()
        self._zygote: _Zygote | None = None
        self._idle: list[_Worker] = []
        self._count = 0
        self._closed = False
        self._owner_pid = os.getpid()

    def run(self, func: Callable[..., T], /, *args: Any, timeout_s: float, memory_mb: int) -> T:
        """Call ``func(*args)`` in a worker and return its result.

        ``func`` and ``args`` must be picklable (a module-level function and plain data).
        Raises ``BoundedRunTimeout``, ``BoundedRunOutOfMemory``, ``BoundedRunCrashed`` or
        ``BoundedRunFailed`` (the function raised); a pickling error in the arguments is a
        programming error and propagates as is.
        """
        worker = self._acquire()
        healthy = False
        try:
            worker.conn.send((func, args, memory_mb * MIB))
            if not worker.conn.poll(timeout_s):
                raise BoundedRunTimeout(timeout_s)
            try:
                reply = worker.conn.recv()
            except (EOFError, OSError) as exc:
                raise BoundedRunCrashed(self._exitcode(worker)) from exc
            worker.calls += 1
            kind = reply[0]
            if kind == _REPLY_MEMORY:
                # A MemoryError can leave a process half-initialised: do not reuse it.
                raise BoundedRunOutOfMemory(memory_mb)
            healthy = True
            if kind == _REPLY_ERROR:
                raise BoundedRunFailed(reply[1], reply[2])
            result: T = reply[1]
            return result
        finally:
            self._release(worker, reuse=healthy and worker.calls < self._max_calls)

    def close(self) -> None:
        """Stop all idle workers and the zygote now, busy workers as they finish."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            self._retire(worker)
        with self._zygote_lock:
            zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _acquire(self) -> _Worker:
        with self._cond:
            self._forget_processes_of_parent_after_fork()
            while True:
                if self._closed:
                    raise RuntimeError("This bounded runner has been closed.")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.looks_alive():
                        return worker
                    self._retire(worker)
                if self._count < self._max_workers:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return self._fork_worker()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _fork_worker(self) -> _Worker:
        with self._zygote_lock:
            for attempt in range(2):
                if self._zygote is None:
                    self._zygote = _Zygote()
                try:
                    return self._zygote.fork_worker()
                except (EOFError, OSError):
                    # The zygote died (killed by an operator, the OOM killer): start anew once.
                    self._zygote.close()
                    self._zygote = None
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    def _exitcode(self, worker: _Worker) -> int | None:
        with self._zygote_lock:
            return self._zygote.exitcode(worker.pid) if self._zygote is not None else None

    def _release(self, worker: _Worker, *, reuse: bool) -> None:
        with self._cond:
            if reuse and not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._cond:
            self._count -= 1
            self._cond.notify()

    def _forget_processes_of_parent_after_fork(self) -> None:
        # After os.fork() (e.g. a pre-forking web server) the pipes belong to the parent.
        if os.getpid() != self._owner_pid:
            self._owner_pid = os.getpid()
            self._idle = []
            self._count = 0
            self._zygote = None


_default_runner: BoundedRunner | None = None
_default_lock = threading.Lock()


def default_runner() -> BoundedRunner:
    """The process-wide runner, started on first use (never at import) and closed at exit."""
    global _default_runner
    with _default_lock:
        if _default_runner is None:
            _default_runner = BoundedRunner()
            atexit.register(_default_runner.close)
        return _default_runner


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


# --------------------------------------------------------------------------------------
# Text extraction
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractionResult:
    """Text of one file. ``error`` says, for a person, why text is missing or partial."""

    text: str
    pages: int | None
    error: str | None
    truncated: bool


def extract_text(
    path: str | os.PathLike[str],
    detected_mime: str,
    *,
    timeout_s: float = 20,
    memory_mb: int = 512,
    max_chars: int = 2_000_000,
    runner: BoundedRunner | None = None,
) -> ExtractionResult:
    """Extract the text of a PDF, DOCX or plain-text file for indexing; never raises.

    ``detected_mime`` is the type found by content at intake (not the file name). The
    parser runs in a worker bounded by ``timeout_s`` and ``memory_mb``; text beyond
    ``max_chars`` is dropped and ``truncated`` is set. Any failure is returned in
    ``error`` so that it can be recorded on the document.
    """
    if detected_mime in _NO_TEXT_MIMES:
        return ExtractionResult(text="", pages=None, error=None, truncated=False)
    extractor = _EXTRACTORS.get(detected_mime)
    if extractor is None:
        return _failed(f"Text extraction is not available for files of type {detected_mime}.")
    bounded = runner if runner is not None else default_runner()
    try:
        text, pages, truncated = bounded.run(
            extractor, os.fspath(path), max_chars, timeout_s=timeout_s, memory_mb=memory_mb
        )
    except BoundedRunTimeout:
        return _failed(f"Text extraction stopped after {_format_seconds(timeout_s)}.")
    except BoundedRunOutOfMemory:
        return _failed(f"Text extraction stopped: it needed more than {memory_mb} MB of memory.")
    except BoundedRunCrashed as exc:
        return _failed(f"Text extraction failed: {exc}.")
    except BoundedRunFailed as exc:
        return _failed(f"Text extraction failed: the file could not be read ({exc}).")
    except Exception as exc:  # e.g. no worker could be started; still not fatal to the caller
        return _failed(f"Text extraction could not run: {type(exc).__name__}: {exc}")
    return ExtractionResult(text=text, pages=pages, error=None, truncated=truncated)


def _failed(message: str) -> ExtractionResult:
    return ExtractionResult(text="", pages=None, error=message, truncated=False)


class _TextBuffer:
    """Collects text up to a character budget and remembers whether anything was dropped."""

    def __init__(self, max_chars: int) -> None:
        self._parts: list[str] = []
        self._left = max_chars
        self.truncated = False

    @property
    def full(self) -> bool:
        return self._left <= 0

    def add(self, text: str) -> None:
        if not text:
            return
        if len(text) > self._left:
            text = text[: max(self._left, 0)]
            self.truncated = True
        self._parts.append(text)
        self._left -= len(text)

    def text(self) -> str:
        return "".join(self._parts)


def _extract_pdf(path: str, max_chars: int) -> tuple[str, int, bool]:
    """Worker side: text of every page, pages separated by form feeds."""
    from pypdf import PdfReader

    with open(path, "rb") as stream:  # an open file: pypdf seeks instead of loading it all
        reader = PdfReader(stream)
        if reader.is_encrypted:
            raise ValueError("the PDF is encrypted")
        page_count = len(reader.pages)
        buffer = _TextBuffer(max_chars)
        for index, page in enumerate(reader.pages):
            if buffer.full:
                buffer.truncated = True  # pages remain that were not read
                break
            if index:
                buffer.add("\f")
            buffer.add(page.extract_text())
        return buffer.text(), page_count, buffer.truncated


def _extract_docx(path: str, max_chars: int) -> tuple[str, None, bool]:
    """Worker side: paragraphs and table cells in body order, one block per line."""
    import docx

    buffer = _TextBuffer(max_chars)
    _add_block_items(docx.Document(path), buffer)
    return buffer.text(), None, buffer.truncated


def _add_block_items(container: Any, buffer: _TextBuffer) -> None:
    from docx.table import Table

    for item in container.iter_inner_content():
        if buffer.full:
            buffer.truncated = True
            return
        if isinstance(item, Table):
            _add_table(item, buffer)
        else:
            buffer.add(item.text + "\n")


def _add_table(table: Any, buffer: _TextBuffer) -> None:
    for row in table.rows:
        seen: set[int] = set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            _add_block_items(cell, buffer)


_TEXT_CHUNK: Final = 1024 * 1024


def _extract_plain(path: str, max_chars: int) -> tuple[str, None, bool]:
    """Worker side: UTF-8 text (a BOM dropped, undecodable bytes replaced), read in chunks."""
    with open(path, "rb") as stream:
        result = extract_plain_stream(stream, max_chars)
    return result.text, None, result.truncated


def extract_plain_stream(stream: BinaryIO, max_chars: int) -> ExtractionResult:
    """Plain UTF-8 text from a binary stream (a BOM dropped, undecodable bytes replaced).

    Safe to run in-process, no worker needed: there is no parser to go wrong, memory is
    bounded by ``max_chars`` plus one chunk, and reading stops once the budget is spent.
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    buffer = _TextBuffer(max_chars)
    while chunk := stream.read(_TEXT_CHUNK):
        buffer.add(decoder.decode(chunk))
        if buffer.full:
            buffer.truncated = buffer.truncated or bool(stream.read(1))
            return ExtractionResult(buffer.text(), None, None, buffer.truncated)
    buffer.add(decoder.decode(b"", final=True))
    return ExtractionResult(buffer.text(), None, None, buffer.truncated)


_EXTRACTORS: Final[dict[str, Callable[[str, int], tuple[str, int | None, bool]]]] = {
    PDF_MIME: _extract_pdf,
    DOCX_MIME: _extract_docx,
    TEXT_MIME: _extract_plain,
}
