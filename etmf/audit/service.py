"""Audit trail operations: signed checkpoints, full verification, inclusion proofs, replay.

Checkpoints are written twice: a row in ``audit_checkpoints`` and a write-once file
``checkpoints/sth-<size>.json`` in the instance folder (outside the database), so deleting
the newest events *and* the newest checkpoint rows is still detected against the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, func, select
from sqlalchemy.orm import Session

from etmf.audit import timestamps
from etmf.audit.checkpoint import (
    LogDoesNotMatchCheckpoint,
    SignedTreeHead,
    check_log_against_tree_head,
    load_private_key,
    public_key_pem,
    sign_tree_head,
    verify_tree_head,
)
from etmf.audit.merkle import tree_head
from etmf.audit.models import Checkpoint, Event
from etmf.audit.proofs import build_proof_bundle
from etmf.audit.store import Actor, Context, PendingEvent, apply_event, canonical_of
from etmf.audit.verify import ChainReport, iter_events, verify_chain
from etmf.db import Base
from etmf.errors import NotFound
from etmf.settings import Settings

#: Tables that are not projections of the log (the log itself, bookkeeping).
NOT_PROJECTED = frozenset({"audit_events", "audit_checkpoints", "alembic_version"})


def checkpoint_dir(settings: Settings) -> Path:
    return settings.instance_path / "checkpoints"


def _checkpoint_key(settings: Settings):  # type: ignore[no-untyped-def]
    return load_private_key(settings.keys_path / "audit-checkpoint.pem",
                            settings.secret_key.encode("utf-8"))


def public_key(settings: Settings) -> str:
    return public_key_pem(_checkpoint_key(settings))


def iter_leaves(session: Session, limit: int | None = None) -> Iterator[bytes]:
    q = select(Event.hash).order_by(Event.seq)
    if limit is not None:
        q = q.limit(limit)
    for (digest,) in session.execute(q.execution_options(yield_per=10_000)):
        yield bytes.fromhex(digest)


def create_checkpoint(session: Session, settings: Settings, now: datetime) -> SignedTreeHead:
    """Sign a tree head over the whole log; store it in the database and in a file."""
    size, root = tree_head(iter_leaves(session))
    sth = timestamps.stamp(settings, sign_tree_head(_checkpoint_key(settings), size, root, now))
    folder = checkpoint_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sth-{size:012d}.json"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(fd, "w") as fh:
            fh.write(sth.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    # End the read transaction the tree was computed in before writing: on SQLite, a read
    # transaction that later writes fails at once ("database is locked") if anyone wrote
    # meanwhile; a transaction that starts with the write waits for the lock instead.
    session.commit()
    session.add(Checkpoint(tree_size=size, root_hash=sth.root_hash, issued_at=now,
                           signed_json=sth.to_json(), location=str(path)))
    session.commit()
    return sth


def stored_checkpoints(session: Session, settings: Settings) -> list[SignedTreeHead]:
    """Every checkpoint known, from the files outside the database and from the table."""
    found: dict[str, SignedTreeHead] = {}
    folder = checkpoint_dir(settings)
    if folder.is_dir():
        for path in sorted(folder.glob("sth-*.json")):
            sth = SignedTreeHead.from_json(path.read_text())
            found[sth.to_json()] = sth
    for (text,) in session.execute(select(Checkpoint.signed_json)):
        sth = SignedTreeHead.from_json(text)
        found[sth.to_json()] = sth
    return sorted(found.values(), key=lambda s: (s.tree_size, s.issued_at))


@dataclass
class VerifyReport:
    chain: ChainReport
    checkpoints_checked: int = 0
    checkpoint_problems: list[str] = field(default_factory=list)
    replay_differences: list[str] = field(default_factory=list)
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.checkpoint_problems and not self.replay_differences


def verify_checkpoints(session: Session, settings: Settings) -> tuple[int, list[str]]:
    problems: list[str] = []
    checkpoints = stored_checkpoints(session, settings)
    if not checkpoints:
        return 0, problems
    pem = public_key(settings)
    leaves = list(iter_leaves(session))
    for sth in checkpoints:
        if not verify_tree_head(sth, pem):
            problems.append(f"checkpoint of {sth.tree_size} events issued {sth.issued_at} "
                            "has an invalid signature")
            continue
        try:
            check_log_against_tree_head(leaves, sth)
        except LogDoesNotMatchCheckpoint as exc:
            problems.append(f"checkpoint of {sth.tree_size} events issued {sth.issued_at}: "
                            f"{exc}")
        wrong = timestamps.check(settings, sth)
        if wrong is not None:
            problems.append(f"checkpoint of {sth.tree_size} events issued {sth.issued_at}: "
                            f"{wrong}")
    return len(checkpoints), problems


def verify_all(session: Session, settings: Settings, *, replay: bool = True,
               progress: Callable[[int], None] | None = None) -> VerifyReport:
    report = VerifyReport(chain=verify_chain(session, progress))
    report.checkpoints_checked, report.checkpoint_problems = verify_checkpoints(session,
                                                                                settings)
    if replay and report.chain.ok:
        report.replay_differences = replay_and_compare(session)
        report.replayed = True
    return report


def prove(session: Session, settings: Settings, seq: int) -> dict[str, Any]:
    """An inclusion proof of event ``seq`` against the latest checkpoint that covers it."""
    event = session.get(Event, seq)
    if event is None:
        raise NotFound(f"There is no audit event {seq}.")
    covering = [s for s in stored_checkpoints(session, settings) if s.tree_size >= seq]
    if not covering:
        raise NotFound(f"No checkpoint covers event {seq} yet; run `etmf audit checkpoint`.")
    sth = covering[-1]
    leaves = list(iter_leaves(session, limit=sth.tree_size))
    return build_proof_bundle(canonical_of(event), event.hash, seq - 1, leaves, sth,
                              public_key(settings))


# ---- replay (AUD-6) -----------------------------------------------------------------------


def _as_pending(event: Event) -> PendingEvent:
    return PendingEvent(
        stream_type=event.stream_type, stream_id=event.stream_id,
        stream_version=event.stream_version, type=event.type, payload=event.payload,
        study_id=event.study_id, actor=Actor(event.actor_id, event.actor_name),
        reason=event.reason, occurred_at=event.occurred_at,
        context=Context(event.request_id, event.client_addr), data=json.loads(event.payload),
    )


def projected_tables() -> list[Table]:
    from etmf.accounts.models import CREDENTIAL_COLUMNS  # noqa: F401 - documents the exclusion

    # A table marked ``info={"not_projected": True}`` is a cache derived from something
    # other than the log (e.g. text extracted from file bytes) and is not compared.
    return [t for t in Base.metadata.sorted_tables
            if t.name not in NOT_PROJECTED and not t.info.get("not_projected")]


def _normalise(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _snapshot(session: Session, table: Table) -> list[tuple[Any, ...]]:
    from etmf.accounts.models import CREDENTIAL_COLUMNS

    cols = [c for c in table.columns if c.name not in CREDENTIAL_COLUMNS]
    order = list(table.primary_key.columns) or cols
    rows = session.execute(select(*cols).order_by(*order)).all()
    return [tuple(_normalise(v) for v in row) for row in rows]


def replay_and_compare(live: Session) -> list[str]:
    """Replay the whole log into a scratch database; list every table that differs.

    Credential columns (password hashes, TOTP secrets, session uniquifiers) are never in
    the log and are left out of the comparison; everything else must match exactly.
    """
    from etmf import migrate

    with tempfile.TemporaryDirectory(prefix="etmf-replay-") as tmp:
        engine = create_engine(f"sqlite:///{tmp}/replay.db")
        migrate.upgrade(engine)
        with Session(engine) as scratch:
            for event in iter_events(live):
                apply_event(scratch, _as_pending(event))
            scratch.flush()
            differences = []
            for table in projected_tables():
                live_rows = _snapshot(live, table)
                replay_rows = _snapshot(scratch, table)
                if live_rows != replay_rows:
                    differences.append(_describe_difference(table.name, live_rows,
                                                            replay_rows))
            scratch.rollback()
        engine.dispose()
    return differences


def _describe_difference(name: str, live: list[tuple[Any, ...]],
                         replay: list[tuple[Any, ...]]) -> str:
    if len(live) != len(replay):
        return f"table {name}: {len(live)} live rows, {len(replay)} rebuilt from the log"
    for a, b in zip(live, replay, strict=True):
        if a != b:
            return f"table {name}: live row {a!r} differs from rebuilt row {b!r}"
    return f"table {name} differs"


def event_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Event)) or 0)
