"""A Phase III-sized synthetic study in a normal instance folder, deterministic by seed.

    .venv/bin/python benchmarks/generate.py --instance /tmp/scale-250k \
        [--documents 250000] [--sites 500] [--countries 40] [--seed 301] \
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/etmf_scale_250k] \
        [--search-backend whoosh|postgres] [--signatures N] [--as-of 2026-11-27] [--replace]

The result is an instance folder that ``etmf serve --instance DIR`` serves and
``etmf audit verify --instance DIR`` verifies; the accounts to sign in with are printed
at the end. Without ``--database-url`` the database is ``etmf.db`` (SQLite) in the folder;
with a PostgreSQL URL that database is used (created when missing; it must be empty, or
``--replace`` drops and recreates it) and written into the folder's ``settings.toml``.

How it is built, and why it is genuine:

1. **Setup through the real services**, in one unit of work dated at the study start: the
   study, ``--countries`` countries, ``--sites`` sites, the accounts (administrator, study
   manager, TMF specialists, QC reviewers, one CRA per country with a membership per site of
   that country, investigators, auditor) and the expected-document list (``generate_edl``).
2. **Small real PDFs** (reportlab, 1-3 pages of artifact-specific text) written to the
   instance's blob store through ``svc.blobs.put`` (content-addressed, write-once, verified
   on read): ``--pool`` variants per artifact, shared by the documents of that artifact so
   the store stays small, made on first use; the text of each is extracted with the real
   extractor (``etmf.documents.indexing.text_of``) into the text cache. The text mixes
   common trial words with a Zipf-distributed long tail of rarer words.
3. **Documents**, filed over three years in time order and spread over the Reference
   Model's artifacts and levels (trial 10 %, country 15 %, site 75 %, mostly core artifacts
   with a long tail) and through the real lifecycle: filed, sent to QC, rejected with QC
   issues that are answered, approved, new versions that supersede approved ones, metadata
   edits with reasons, withdrawals, placeholders and signposts. Each step is an audit event
   whose payload is exactly what the service writes; the read tables (``documents``,
   ``document_versions``, ``qc_issues``) are what the projections make of those events. Both
   are bulk-inserted (executemany on SQLite, COPY on PostgreSQL); events are chained and
   hashed with the real canonical encoding (``etmf.audit.store.event_canonical``) after the
   setup events, so ``etmf audit verify`` (chain, and replaying the log into the tables)
   passes. Documents still in their workflow at ``--as-of`` stay in draft or QC.
4. **Signatures on a sample** (``--signatures``, default one per 1,000 documents): real
   signature requests and PAdES signatures through ``etmf.workflows.services`` by the study
   manager, with identity check, statement and certificate as the signing page needs.
5. **Search index** (Whoosh or PostgreSQL, as configured) written through the index's own
   batch ``index`` with the same ``SearchDoc`` the server builds
   (``etmf.documents.indexing``), from the cached text.

Deterministic: the same ``--seed`` and ``--as-of`` give the same study and the same audit
events up to step 4 (signatures carry the real signing time and fresh keys).
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import io
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

PASSWORD = "Scale-Trial-Master-2026"
DOMAIN = "etmf-scale.org"
PROTOCOL = "SCALE-301"

EVENT_COLUMNS = ("seq", "stream_type", "stream_id", "stream_version", "type", "payload",
                 "study_id", "actor_id", "actor_name", "reason", "occurred_at", "request_id",
                 "client_addr", "prev_hash", "hash")

COUNTRIES = [
    ("US", "United States", 60), ("DE", "Germany", 30), ("FR", "France", 25),
    ("ES", "Spain", 22), ("IT", "Italy", 22), ("GB", "United Kingdom", 20),
    ("PL", "Poland", 18), ("CA", "Canada", 16), ("JP", "Japan", 16), ("CN", "China", 16),
    ("BR", "Brazil", 14), ("AU", "Australia", 12), ("NL", "Netherlands", 12),
    ("BE", "Belgium", 10), ("CZ", "Czechia", 10), ("HU", "Hungary", 10),
    ("KR", "South Korea", 12), ("MX", "Mexico", 10), ("AR", "Argentina", 10),
    ("SE", "Sweden", 8), ("DK", "Denmark", 8), ("AT", "Austria", 8), ("CH", "Switzerland", 8),
    ("RO", "Romania", 8), ("BG", "Bulgaria", 6), ("GR", "Greece", 6), ("PT", "Portugal", 6),
    ("IL", "Israel", 6), ("TR", "Türkiye", 6), ("ZA", "South Africa", 6), ("IN", "India", 10),
    ("TW", "Taiwan", 6), ("FI", "Finland", 5), ("NO", "Norway", 5), ("IE", "Ireland", 4),
    ("SK", "Slovakia", 5), ("HR", "Croatia", 4), ("CL", "Chile", 5), ("CO", "Colombia", 5),
    ("NZ", "New Zealand", 4),
]
FIRST = ["Anna", "Bruno", "Zoë", "Chloé", "Inés", "Karl", "Maria", "Jan", "Sophie", "Luca",
         "Emily", "James", "Yuki", "Wei", "Ana", "Olav", "Ágnes", "Piotr", "Søren", "Noa"]
LAST = ["Schmidt", "Keller", "Ünal", "Martin", "García", "Weber", "Rossi", "Nowak",
        "Dubois", "Bianchi", "Carter", "Miller", "Tanaka", "Zhang", "Silva", "Hansen",
        "Kovács", "Wiśniewski", "Jørgensen", "Cohen"]
INSTITUTIONS = ["University Hospital", "Medical Centre", "Cancer Institute", "Clinic",
                "Research Hospital", "General Hospital"]
WORDS = [
    "patient", "dose", "safety", "adverse", "event", "protocol", "amendment",
    "investigator", "site", "visit", "monitoring", "report", "consent", "subject",
    "randomisation", "baseline", "efficacy", "endpoint", "tumour", "response",
    "assessment", "laboratory", "sample", "storage", "shipment", "temperature",
    "deviation", "training", "record", "signature", "approval", "committee", "ethics",
    "review", "insurance", "contract", "budget", "payment", "pharmacy", "accountability",
    "drug", "label", "blinding", "unblinding", "audit", "inspection", "finding",
    "corrective", "action", "oncology", "placebo", "infusion", "cycle", "week", "day",
    "screening", "enrolment", "withdrawal", "follow-up", "survival", "progression",
    "imaging", "scan", "radiology", "pathology", "biopsy", "specimen", "certificate",
    "licence", "curriculum", "vitae"
]
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zen", "dor", "fal", "gri",
              "hep", "mab", "tor", "lin", "cyt", "ox", "pra", "zol")
#: A long tail of rarer words (drug codes, gene names, places...), Zipf-distributed in text.
RARE = [_SYLLABLES[i % 20] + _SYLLABLES[(i // 20) % 20] + _SYLLABLES[(i // 400) % 20]
        for i in range(8000)]
QC_COMMENTS = {
    "Wrong classification": "Filed under the wrong artifact; this belongs with the site "
                            "training records.",
    "Metadata incorrect or missing": "Document date does not match the date on page 1.",
    "Illegible or incomplete": "Page 2 is cut off in the scan.",
    "Missing signature or date": "The investigator signature on the last page is missing.",
    "Wrong or superseded version": "This is version 2; version 3 was approved by the IRB.",
}
WITHDRAW_REASONS = ["Filed in error: duplicate of another document",
                    "Filed to the wrong site", "Replaced by the corrected document"]
EXPIRING = ("Curriculum Vitae", "CV", "Licen", "Training", "Insurance", "Certification",
            "Accreditation", "Normal Ranges")


# ---- the plan: what the generator makes ------------------------------------------------


@dataclass
class Place:
    level: str
    country_id: int | None = None
    site_id: int | None = None
    label: str = ""
    person: str | None = None
    opens_us: int = 0  # earliest filing time here (microseconds since the epoch)


@dataclass
class Person:
    id: int
    name: str
    addr: str


@dataclass
class Setup:
    study_id: int
    start: datetime
    end: datetime
    specialists: list[Person]
    qc: list[Person]
    manager: Person
    admin: Person
    cra_by_country: dict[int, Person]
    trial: Place
    countries: list[Place]
    sites: list[Place]


@dataclass
class Summary:
    instance: Path
    database_url: str
    documents: int = 0
    versions: int = 0
    events: int = 0
    blobs: int = 0
    signatures: int = 0
    indexed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)


def us_of(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000 + at.microsecond


def dt_of(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


DAY_US = 86_400 * 1_000_000
HOUR_US = 3_600 * 1_000_000


# ---- setup through the real services ---------------------------------------------------


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def build_setup(app: Any, rng: random.Random, start: datetime, end: datetime, sites: int,
                countries: int) -> Setup:
    from etmf.accounts.access import Access, Grant
    from etmf.accounts.services import NewUser, create_user, grant_membership
    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services
    from etmf.clock import FrozenClock
    from etmf.studies.services import NewStudy, add_country, add_site, create_study
    from etmf.tracking.services import generate_edl

    svc = services(app)
    clock = FrozenClock(start)
    chosen = COUNTRIES[:countries]
    weights = [w for _c, _n, w in chosen]
    # Every country gets a site, the rest by weight.
    per_country = [1] * len(chosen)
    for _ in range(max(sites - len(chosen), 0)):
        per_country[rng.choices(range(len(chosen)), weights)[0]] += 1
    per_country = per_country[:sites] if sites < len(chosen) else per_country

    def user(uow, local: str, name: str, admin: bool = False) -> Person:  # type: ignore[no-untyped-def]
        u = create_user(uow, NewUser(email=f"{local}@{DOMAIN}", full_name=name,
                                     password=PASSWORD,
                                     global_roles=("admin",) if admin else ()))
        return Person(u.id, name, f"10.1.{u.id // 250}.{u.id % 250 + 1}")

    with unit_of_work(svc.db, clock, Actor.system("etmf scale generator")) as uow:
        study_id = create_study(uow, NewStudy(
            protocol_number=PROTOCOL,
            title="A Phase III, Randomised, Double-blind Study of Tumorolimab versus "
                  "Placebo in 12,000 Adults with Advanced NSCLC",
            phase="III", sponsor="Northwind Oncology Ltd", therapeutic_area="Oncology"))
        admin = user(uow, "admin", "Alex Admin", admin=True)
        manager = user(uow, "manager", "Morgan Manager")
        grant_membership(uow, user_id=manager.id, study_id=study_id, role="study_manager")
        specialists, qc = [], []
        for i in range(4):
            specialists.append(user(uow, f"specialist{i + 1}", _name(rng)))
            grant_membership(uow, user_id=specialists[-1].id, study_id=study_id,
                             role="tmf_specialist")
            qc.append(user(uow, f"qc{i + 1}", _name(rng)))
            grant_membership(uow, user_id=qc[-1].id, study_id=study_id, role="qc_reviewer")
        auditor = user(uow, "auditor", "Audrey Auditor")
        grant_membership(uow, user_id=auditor.id, study_id=study_id, role="auditor")
        trial = Place("trial", label="", opens_us=us_of(start) + 7 * DAY_US)
        country_places: list[Place] = []
        site_places: list[Place] = []
        cra_by_country: dict[int, Person] = {}
        total_us = us_of(end) - us_of(start)
        site_no = 0
        for (code, name, _w), n_sites in zip(chosen, per_country, strict=False):
            country_id = add_country(uow, study_id=study_id, code=code, name=name)
            country_places.append(Place("country", country_id, None, code,
                                        opens_us=us_of(start) + 30 * DAY_US))
            cra = user(uow, f"cra.{code.lower()}", _name(rng))
            cra_by_country[country_id] = cra
            for _ in range(n_sites):
                site_no += 1
                number = f"{site_no:04d}"
                pi = f"Dr {_name(rng)}"
                site_id = add_site(uow, study_id=study_id, country_id=country_id,
                                   number=number,
                                   institution=f"{rng.choice(LAST)} {rng.choice(INSTITUTIONS)}"
                                               f", {name}",
                                   principal_investigator=pi, status="active")
                grant_membership(uow, user_id=cra.id, study_id=study_id, role="cra",
                                 site_id=site_id)
                # Sites open over the first 40 % of the study.
                opens = us_of(start) + 60 * DAY_US + int(
                    total_us * 0.4 * site_no / max(sites, 1))
                site_places.append(Place("site", country_id, site_id, f"site {number}",
                                         person=pi, opens_us=opens))
        for place in site_places[:5]:
            inv = user(uow, f"investigator{place.site_id}", place.person or _name(rng))
            grant_membership(uow, user_id=inv.id, study_id=study_id, role="investigator",
                             site_id=place.site_id)
        manager_access = Access(user_id=manager.id, name=manager.name,
                                grants=(Grant(study_id, None, "study_manager"),))
        generate_edl(uow, manager_access, study_id)
        uow.commit()
    return Setup(study_id, start, end, specialists, qc, manager, admin, cra_by_country,
                 trial, country_places, site_places)


# ---- the PDF pool ----------------------------------------------------------------------


@dataclass(frozen=True)
class PoolFile:
    sha256: str
    size: int
    pages: int


class PdfPool:
    """Small real PDFs (1-3 pages of text about the artifact), ``per_artifact`` variants per
    artifact, made on first use: stored through the blob store (content-addressed, write-once)
    and their text extracted by the real bounded extractor into the text cache, as filing
    would. Each variant's content depends only on the seed, the artifact and the variant."""

    def __init__(self, svc: Any, seed: int, per_artifact: int) -> None:
        self.svc = svc
        self.seed = seed
        self.per_artifact = per_artifact
        self.files: dict[tuple[str, int], PoolFile] = {}

    def pick(self, rng: random.Random, artifact: Any) -> PoolFile:
        key = (artifact.unique_id, rng.randrange(self.per_artifact))
        found = self.files.get(key)
        if found is None:
            found = self.files[key] = self._make(artifact, key[1])
        return found

    def _make(self, artifact: Any, variant: int) -> PoolFile:
        from etmf.demo import make_pdf
        from etmf.documents.indexing import text_of
        from etmf.documents.models import DocumentVersion

        rng = random.Random(f"{self.seed}/{artifact.unique_id}/{variant}")
        words = " ".join(rng.choice(WORDS) if rng.random() < 0.6 else
                         RARE[min(int(rng.paretovariate(1.1)) - 1, len(RARE) - 1)]
                         for _ in range(rng.randint(60, 240)))
        body = f"{artifact.name}. {artifact.definition} {words}"
        pages = rng.choice((1, 1, 1, 2, 3))
        content = make_pdf(f"{artifact.name} ({variant + 1})", body, pages=pages)
        ref = self.svc.blobs.put(io.BytesIO(content))
        text_of(self.svc, DocumentVersion(id=0, sha256=ref.sha256, mime="application/pdf"))
        return PoolFile(ref.sha256, ref.size, pages)


# ---- documents and their events ----------------------------------------------------------


class EventWriter:
    """Chains events onto the log after the current head and bulk-inserts them."""

    def __init__(self, db: Any, head_seq: int, head_hash: str, batch: int = 20_000) -> None:
        self.db = db
        self.seq = head_seq
        self.prev = head_hash
        self.batch = batch
        self.rows: list[tuple[Any, ...]] = []
        self.sqlite = db.dialect == "sqlite"

    def add(self, at_us: int, ev: tuple[Any, ...]) -> None:
        from etmf.audit.store import event_canonical

        (stream_type, stream_id, stream_version, type_, payload, study_id, actor_id,
         actor_name, reason, request_id, client_addr) = ev
        self.seq += 1
        at = dt_of(at_us)
        canonical = event_canonical(
            seq=self.seq, stream_type=stream_type, stream_id=stream_id,
            stream_version=stream_version, type=type_, payload=payload, study_id=study_id,
            actor_id=actor_id, actor_name=actor_name, reason=reason, occurred_at=at,
            request_id=request_id, client_addr=client_addr, prev_hash=self.prev)
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        self.rows.append((self.seq, stream_type, stream_id, stream_version, type_, payload,
                          study_id, actor_id, actor_name, reason,
                          _db_time(at, self.sqlite), request_id, client_addr, self.prev,
                          digest))
        self.prev = digest
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            bulk_insert(self.db, "audit_events", EVENT_COLUMNS, self.rows)
            self.rows = []


def _db_time(at: datetime | None, sqlite: bool) -> Any:
    if at is None or not sqlite:
        return at
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _db_date(d: date | None, sqlite: bool) -> Any:
    return d.isoformat() if (d is not None and sqlite) else d


def bulk_insert(db: Any, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
                ) -> None:
    """executemany on SQLite, COPY on PostgreSQL; one transaction per call."""
    raw = db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        if db.dialect == "sqlite":
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                             f"({', '.join('?' * len(columns))})", rows)
        else:
            with conn.cursor() as cur, \
                    cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.commit()
    finally:
        raw.close()


DOC_COLUMNS = ("id", "study_id", "artifact_id", "artifact_number", "zone", "section",
               "sub_artifact", "level", "country_id", "site_id", "title", "person",
               "language", "document_date", "expiry_date", "status", "current_version_id",
               "created_at", "created_by_id", "approved_at", "version", "signpost_system",
               "signpost_location")
VERSION_COLUMNS = ("id", "document_id", "number", "label", "status", "sha256", "size",
                   "mime", "filename", "page_count", "note", "created_at", "created_by_id",
                   "created_by_name", "signed_from_version_id")
ISSUE_COLUMNS = ("id", "document_id", "study_id", "version_id", "category", "comment",
                 "raised_at", "raised_by_id", "raised_by_name", "response", "answered_at",
                 "answered_by_id", "answered_by_name")


class DocumentPlan:
    """One document's life: emits events exactly as the services would and keeps the row
    state exactly as the projections would leave it (``etmf audit verify`` replays and
    compares, so a difference here is found at once)."""

    def __init__(self, gen: Generator, doc_id: int) -> None:
        self.gen = gen
        self.id = doc_id
        self.stream_version = 0
        self.events: list[tuple[int, tuple[Any, ...]]] = []
        self.doc: dict[str, Any] = {}
        self.versions: list[dict[str, Any]] = []
        self.issues: list[dict[str, Any]] = []

    def emit(self, at_us: int, actor: Person, type_: str, data: dict[str, Any],
             reason: str | None = None) -> None:
        from etmf.audit.store import canonical_json

        self.stream_version += 1
        self.doc["version"] = self.stream_version
        self.events.append((at_us, (
            "document", str(self.id), self.stream_version, type_, canonical_json(data),
            self.gen.setup.study_id, actor.id, actor.name, reason,
            f"{self.gen.rng.getrandbits(64):016x}", actor.addr)))

    def _new_doc(self, at_us: int, actor: Person, payload: dict[str, Any], status: str,
                 version_id: int | None) -> None:
        self.doc = {
            "id": self.id, "study_id": payload["study_id"],
            "artifact_id": payload["artifact_id"],
            "artifact_number": payload["artifact_number"], "zone": payload["zone"],
            "section": payload["section"], "sub_artifact": payload["sub_artifact"],
            "level": payload["level"], "country_id": payload["country_id"],
            "site_id": payload["site_id"], "title": payload["title"],
            "person": payload["person"], "language": payload["language"],
            "document_date": payload["document_date"], "expiry_date": payload["expiry_date"],
            "status": status, "current_version_id": version_id, "created_at": at_us,
            "created_by_id": actor.id, "approved_at": None, "version": 0,
            "signpost_system": payload.get("system"),
            "signpost_location": payload.get("location"),
        }

    def _version(self, at_us: int, actor: Person, number: int, label: str, f: PoolFile,
                 filename: str, note: str | None = None) -> dict[str, Any]:
        version_id = self.gen.next_id("version")
        payload = {"id": version_id, "number": number, "label": label, "status": "draft",
                   "sha256": f.sha256, "size": f.size, "mime": "application/pdf",
                   "filename": filename, "page_count": f.pages, "note": note,
                   "signed_from_version_id": None}
        self.versions.append({**payload, "document_id": self.id, "created_at": at_us,
                              "created_by_id": actor.id, "created_by_name": actor.name})
        return payload

    def file(self, at_us: int, actor: Person, filing: dict[str, Any], f: PoolFile,
             filename: str) -> None:
        version = self._version(at_us, actor, 1, "1.0", f, filename)
        self._new_doc(at_us, actor, filing, "draft", version["id"])
        self.emit(at_us, actor, "document.filed", {**filing, "version": version})

    def record(self, at_us: int, actor: Person, filing: dict[str, Any], kind: str) -> None:
        self._new_doc(at_us, actor, filing, kind, None)
        self.emit(at_us, actor, f"document.{kind}_created", filing)

    def current(self) -> dict[str, Any]:
        return next(v for v in self.versions if v["id"] == self.doc["current_version_id"])

    def transition(self, at_us: int, actor: Person, action: str, to: str,
                   reason: str | None = None, issues: list[dict[str, Any]] | None = None
                   ) -> None:
        if self.doc["current_version_id"] is None:  # a placeholder or signpost withdrawn
            data = {"version_id": None, "action": action, "from": self.doc["status"],
                    "to": to, "superseded_version_id": None}
            self.doc["status"] = to
            self.emit(at_us, actor, "document.transitioned", data, reason)
            return
        version = self.current()
        superseded = None
        if to == "approved":
            superseded = next((v["id"] for v in self.versions
                               if v["status"] == "approved" and v["id"] != version["id"]), None)
        data: dict[str, Any] = {"version_id": version["id"], "action": action,
                                "from": version["status"], "to": to,
                                "superseded_version_id": superseded}
        if issues is not None:
            data["qc_issues"] = issues
            reason = "; ".join(f"{i['category']}: {i['comment']}" for i in issues)[:1000]
            for issue in issues:
                self.issues.append({
                    "id": issue["id"], "document_id": self.id,
                    "study_id": self.gen.setup.study_id, "version_id": version["id"],
                    "category": issue["category"], "comment": issue["comment"],
                    "raised_at": at_us, "raised_by_id": actor.id,
                    "raised_by_name": actor.name, "response": None, "answered_at": None,
                    "answered_by_id": None, "answered_by_name": None})
        version["status"] = to
        if superseded:
            next(v for v in self.versions if v["id"] == superseded)["status"] = "superseded"
        self.doc["status"] = to
        if to == "approved":
            self.doc["approved_at"] = at_us
        self.emit(at_us, actor, "document.transitioned", data, reason)

    def answer(self, at_us: int, actor: Person, issue: dict[str, Any], response: str) -> None:
        issue.update(response=response, answered_at=at_us, answered_by_id=actor.id,
                     answered_by_name=actor.name)
        self.emit(at_us, actor, "document.qc_issue_answered",
                  {"issue_id": issue["id"], "response": response})

    def add_version(self, at_us: int, actor: Person, f: PoolFile, filename: str) -> None:
        number = 1 + max(v["number"] for v in self.versions)
        label = f"{number}.0"
        version = self._version(at_us, actor, number, label, f, filename,
                                note="Updated edition")
        self.doc["current_version_id"] = version["id"]
        self.doc["status"] = "draft"
        self.emit(at_us, actor, "document.version_added", {"version": version})

    def change(self, at_us: int, actor: Person, field_: str, new: Any, reason: str | None
               ) -> None:
        old = self.doc[field_]
        if old == new:
            return
        self.doc[field_] = new
        final = self.doc["status"] in ("approved", "superseded", "obsolete")
        self.emit(at_us, actor, "document.metadata_changed", {"changes": {field_: [old, new]}},
                  reason if final else None)

    def rows(self, sqlite: bool) -> tuple[tuple[Any, ...], list[tuple[Any, ...]],
                                          list[tuple[Any, ...]]]:
        d = dict(self.doc)
        for key in ("created_at", "approved_at"):
            d[key] = _db_time(dt_of(d[key]) if d[key] is not None else None, sqlite)
        for key in ("document_date", "expiry_date"):
            value = date.fromisoformat(d[key]) if d[key] else None
            d[key] = _db_date(value, sqlite)
        doc_row = tuple(d[c] for c in DOC_COLUMNS)
        versions = []
        for v in self.versions:
            v = dict(v, created_at=_db_time(dt_of(v["created_at"]), sqlite))
            versions.append(tuple(v[c] for c in VERSION_COLUMNS))
        issues = []
        for i in self.issues:
            i = dict(i, raised_at=_db_time(dt_of(i["raised_at"]), sqlite),
                     answered_at=_db_time(dt_of(i["answered_at"]), sqlite)
                     if i["answered_at"] is not None else None)
            issues.append(tuple(i[c] for c in ISSUE_COLUMNS))
        return doc_row, versions, issues


class Generator:
    def __init__(self, setup: Setup, rng: random.Random, pool: PdfPool, model: Any) -> None:
        self.setup = setup
        self.rng = rng
        self.pool = pool
        self.model = model
        self.ids = {"document": 0, "version": 0, "issue": 0}
        from etmf.reference_model.model import FilingLevel

        by_level: dict[str, list[Any]] = {"trial": [], "country": [], "site": []}
        for a in model.artifacts:
            for level in model.levels_of(a):
                by_level[FilingLevel(level).value].append(a)
        # A long tail: core artifacts weigh more, and a few (visit reports, CVs, training,
        # correspondence) far more, as in a real TMF.
        self.artifacts = by_level
        self.weights = {level: [self._weight(a, i) for i, a in enumerate(arts)]
                        for level, arts in by_level.items()}

    def _weight(self, artifact: Any, index: int) -> float:
        heavy = any(w in artifact.name for w in ("Visit Report", "Curriculum Vitae",
                                                  "Training", "Correspondence",
                                                  "Log", "Safety"))
        return (4.0 if artifact.core else 1.0) * (6.0 if heavy else 1.0) / (1 + index % 7)

    def next_id(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def filing_times(self, count: int) -> list[tuple[int, Place]]:
        s = self.setup
        end_us = us_of(s.end)
        out = []
        for _ in range(count):
            r = self.rng.random()
            if r < 0.10:
                place = s.trial
            elif r < 0.25:
                place = self.rng.choice(s.countries)
            else:
                place = self.rng.choice(s.sites)
            # Filing picks up over time (more documents in later months).
            span = end_us - place.opens_us
            at = place.opens_us + int(span * (self.rng.random() ** 0.8))
            out.append((at, place))
        out.sort(key=lambda item: item[0])
        return out

    def plan(self, doc_id: int, at_us: int, place: Place) -> DocumentPlan:
        s, rng = self.setup, self.rng
        end_us = us_of(s.end)
        artifact = rng.choices(self.artifacts[place.level], self.weights[place.level])[0]
        plan = DocumentPlan(self, doc_id)
        if place.level == "site":
            filer = s.cra_by_country[place.country_id]  # type: ignore[index]
        else:
            filer = rng.choice(s.specialists)
        qc = rng.choice(s.qc)
        doc_date = (dt_of(at_us) - timedelta(days=rng.randint(0, 20))).date()
        if doc_date < s.start.date():
            doc_date = s.start.date()
        expiring = any(w in artifact.name for w in EXPIRING)
        sub = (rng.choice(artifact.sub_artifacts) if artifact.sub_artifacts
               and rng.random() < 0.3 else None)
        suffix = f" – {place.label}" if place.label else ""
        title = f"{sub or artifact.name}{suffix}"
        if rng.random() < 0.4:
            title += f" ({doc_date.strftime('%b %Y')})"
        filing = {
            "study_id": s.study_id, "artifact_id": artifact.unique_id,
            "artifact_number": artifact.number, "zone": artifact.zone_number,
            "section": artifact.section_number, "sub_artifact": sub,
            "level": place.level, "country_id": place.country_id, "site_id": place.site_id,
            "title": title[:500],
            "person": place.person if ("Curriculum" in artifact.name or "CV" in title)
            else None,
            "language": rng.choices(("en", "de", "fr", "es"), (85, 5, 5, 5))[0],
            "document_date": doc_date.isoformat(),
            "expiry_date": (doc_date + timedelta(days=730)).isoformat() if expiring else None,
        }
        filename = f"{artifact.number}_{doc_id}.pdf"
        r = rng.random()
        if r < 0.03:
            plan.record(at_us, filer, filing, "placeholder")
            later = at_us + rng.randint(30, 400) * DAY_US
            if rng.random() < 0.3 and later < end_us:
                plan.transition(later, s.manager, "withdraw", "obsolete",
                                reason="No longer expected at this site")
            return plan
        if r < 0.035:
            plan.record(at_us, filer, dict(filing, system="Veeva Vault QMS",
                                           location=f"QMS-{rng.randint(10000, 99999)}"),
                        "signpost")
            return plan
        plan.file(at_us, filer, filing, self.pool.pick(rng, artifact), filename)
        t = at_us
        versions_left = 1 if rng.random() < 0.25 else 0
        edited = rng.random() < 0.3
        while True:
            t += rng.randint(1, 96) * HOUR_US
            if t >= end_us:
                return plan
            if edited and rng.random() < 0.5:
                edited = False
                plan.change(t, filer, "title", f"{plan.doc['title']} (corrected)"[:500],
                            "Corrected the title to match the document")
                t += rng.randint(1, 48) * HOUR_US
                if t >= end_us:
                    return plan
            plan.transition(t, filer, "submit_qc", "in_qc")
            t += rng.randint(4, 240) * HOUR_US
            if t >= end_us:
                return plan
            if rng.random() < 0.15:  # rejected, answered, sent again
                category = rng.choice(list(QC_COMMENTS))
                issue = {"id": self.next_id("issue"), "category": category,
                         "comment": QC_COMMENTS[category]}
                plan.transition(t, qc, "reject", "draft", issues=[issue])
                t += rng.randint(2, 120) * HOUR_US
                if t >= end_us:
                    return plan
                plan.answer(t, filer, plan.issues[-1], "Corrected and re-uploaded the scan.")
                continue
            plan.transition(t, qc, "approve", "approved")
            if edited:
                t += rng.randint(24, 2000) * HOUR_US
                if t >= end_us:
                    return plan
                plan.change(t, s.specialists[0], "title",
                            f"{plan.doc['title']} (corrected)"[:500],
                            "Corrected the title to match the document")
                edited = False
            if rng.random() < 0.03:
                t += rng.randint(24, 4000) * HOUR_US
                if t < end_us:
                    plan.transition(t, s.manager, "withdraw", "obsolete",
                                    reason=rng.choice(WITHDRAW_REASONS))
                return plan
            if not versions_left:
                return plan
            versions_left -= 1
            t += rng.randint(30, 300) * DAY_US
            if t >= end_us:
                return plan
            plan.add_version(t, filer, self.pool.pick(rng, artifact), filename)


def generate_documents(svc: Any, gen: Generator, count: int, progress: Callable[[int], None],
                       summary: Summary) -> None:
    from etmf.audit.models import Event

    with svc.db.read_session() as session:
        head = session.execute(select(Event.seq, Event.hash).order_by(Event.seq.desc())
                               .limit(1)).one()
    writer = EventWriter(svc.db, head[0], head[1])
    sqlite = svc.db.dialect == "sqlite"
    heap: list[tuple[int, int, tuple[Any, ...]]] = []
    tie = 0
    docs: list[tuple[Any, ...]] = []
    versions: list[tuple[Any, ...]] = []
    issues: list[tuple[Any, ...]] = []

    def flush_rows() -> None:
        nonlocal docs, versions, issues
        if docs:
            bulk_insert(svc.db, "documents", DOC_COLUMNS, docs)
        if versions:
            bulk_insert(svc.db, "document_versions", VERSION_COLUMNS, versions)
        if issues:
            bulk_insert(svc.db, "qc_issues", ISSUE_COLUMNS, issues)
        docs, versions, issues = [], [], []

    for n, (at_us, place) in enumerate(gen.filing_times(count), start=1):
        while heap and heap[0][0] <= at_us:
            when, _t, ev = heapq.heappop(heap)
            writer.add(when, ev)
        plan = gen.plan(gen.next_id("document"), at_us, place)
        for when, ev in plan.events:
            tie += 1
            heapq.heappush(heap, (when, tie, ev))
        doc_row, version_rows, issue_rows = plan.rows(sqlite)
        docs.append(doc_row)
        versions.extend(version_rows)
        issues.extend(issue_rows)
        summary.states[plan.doc["status"]] = summary.states.get(plan.doc["status"], 0) + 1
        summary.versions += len(version_rows)
        if len(docs) >= 10_000:
            writer.flush()  # events first: rows and events of a batch land together
            flush_rows()
        if n % 1000 == 0:
            progress(1000)
    while heap:
        when, _t, ev = heapq.heappop(heap)
        writer.add(when, ev)
    writer.flush()
    flush_rows()
    progress(count % 1000)
    summary.documents = count
    summary.events = writer.seq


# ---- signatures on a sample -------------------------------------------------------------


def sign_sample(app: Any, setup: Setup, count: int, progress: Callable[[int], None]) -> int:
    """Real signature requests and PAdES signatures by the study manager on approved PDF
    documents, spread over the study (every n-th approved trial/country document)."""
    from etmf.accounts.access import Access, Grant
    from etmf.audit.store import Context, unit_of_work
    from etmf.bootstrap import services
    from etmf.documents.models import Document
    from etmf.signing import service as signing
    from etmf.workflows import services as workflow

    if count <= 0:
        return 0
    svc = services(app)
    admin = Access(user_id=setup.admin.id, name=setup.admin.name, is_admin=True)
    manager = Access(user_id=setup.manager.id, name=setup.manager.name,
                     grants=(Grant(setup.study_id, None, "study_manager"),))
    with app.test_request_context():
        with unit_of_work(svc.db, svc.clock, admin.actor) as uow:
            signing.record_identity_check(uow, svc, admin, setup.manager.id,
                                          method="in_person", document_seen="Passport",
                                          notes="Enrolled by the scale generator")
            uow.commit()
        with unit_of_work(svc.db, svc.clock, manager.actor) as uow:
            signing.accept_statement(uow, svc, manager, accepted=True)
            uow.commit()
    with svc.db.read_session() as session:
        candidates = list(session.scalars(
            select(Document.id).where(Document.study_id == setup.study_id,
                                      Document.status == "approved",
                                      Document.level != "site").order_by(Document.id)))
    if not candidates:
        return 0
    step = max(len(candidates) // count, 1)
    chosen = candidates[::step][:count]
    link = lambda rid: workflow.request_link(svc.settings.server_name_for_mail, rid)  # noqa: E731
    done = 0
    for document_id in chosen:
        with unit_of_work(svc.db, svc.clock, manager.actor) as uow:
            rid = workflow.request_signatures(uow, manager, workflow.NewSignatureRequest(
                document_id=document_id,
                signers=(workflow.SignerSpec(setup.manager.id, "approval"),),
                message="Sponsor approval."), link, svc.mailer.send)
            uow.commit()
        with app.test_request_context():
            workflow.sign(svc, manager, Context(), rid, password=PASSWORD, totp=None,
                          link=link)
        done += 1
        progress(1)
    return done


# ---- search index ------------------------------------------------------------------------


def build_search_index(svc: Any, progress: Callable[[int], None], batch: int = 1000) -> int:
    """Every document into the configured index through its rebuild path (``index_new``,
    as ``etmf search reindex``), with the ``SearchDoc`` the server builds
    (``etmf.documents.indexing``) and the cached text."""
    from etmf.documents.models import Document, DocumentText
    from etmf.studies.models import Country

    index = svc.search
    index.clear()
    with svc.db.read_session() as session:
        texts = dict(session.execute(select(DocumentText.sha256, DocumentText.text)).all())
        codes = dict(session.execute(select(Country.id, Country.code)).all())
        ids = list(session.scalars(select(Document.id).order_by(Document.id)))
    return int(index.index_new(_search_batches(svc, ids, texts, codes, batch), progress))


def _search_batches(svc: Any, ids: list[int], texts: dict[str, str], codes: dict[int, str],
                    batch: int) -> Iterator[list[Any]]:
    from etmf.documents.indexing import _as_search_doc, text_of
    from etmf.documents.models import Document, DocumentVersion

    for start in range(0, len(ids), batch):
        lo, hi = ids[start], ids[min(start + batch, len(ids)) - 1]
        with svc.db.read_session() as session:
            docs = session.scalars(select(Document).where(Document.id.between(lo, hi))
                                   .order_by(Document.id)).all()
            versions = {v.id: v for v in session.scalars(
                select(DocumentVersion).join(Document, Document.current_version_id
                                             == DocumentVersion.id)
                .where(Document.id.between(lo, hi)))}
            session.expunge_all()
        out = []
        for doc in docs:
            version = versions.get(doc.current_version_id) if doc.current_version_id else None
            if version is not None:
                body = texts.get(version.sha256)
                if body is None:  # a signed rendition: extract it as the server would
                    body = texts[version.sha256] = text_of(svc, version).text
            else:
                body = " ".join(v for v in (doc.signpost_system, doc.signpost_location) if v)
            out.append(_as_search_doc(doc, version, codes.get(doc.country_id), body))
        yield out


# ---- the instance ------------------------------------------------------------------------


def prepare_database(database_url: str, replace: bool) -> None:
    """Create the PostgreSQL database when missing; refuse a non-empty one unless replace."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                 {"n": name})
            if exists and replace:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                exists = False
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                return
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                has = conn.scalar(text("SELECT to_regclass('audit_events') IS NOT NULL"))
                if has:  # migrated is fine (a test database), holding events is not
                    has = conn.scalar(text("SELECT EXISTS (SELECT 1 FROM audit_events)"))
        finally:
            engine.dispose()
        if has:
            raise SystemExit(f"database {name} is not empty; give --replace to recreate it")
    finally:
        admin.dispose()


def generate(instance: Path, *, documents: int = 250_000, sites: int = 500,
             countries: int = 40, seed: int = 301, database_url: str = "",
             search_backend: str = "", signatures: int | None = None,
             as_of: date | None = None, pool_per_artifact: int = 4, replace: bool = False,
             echo: Callable[[str], None] = print, bars: bool = True) -> Summary:
    """Build the study into ``instance`` (a new folder); see the module docstring."""
    from etmf import create_app
    from etmf.bootstrap import services, shutdown
    from etmf.documents import counts
    from etmf.keys import ensure_system_keys
    from etmf.migrate import upgrade
    from etmf.reference_model.model import load_reference_model
    from etmf.settings import load_settings

    instance = instance.resolve()
    if instance.exists() and any(instance.iterdir()):
        if not replace:
            raise SystemExit(f"{instance} exists and is not empty; give --replace to "
                             "start again")
        for root, dirs, files_ in os.walk(instance):
            for name in dirs + files_:
                os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(instance)
    instance.mkdir(parents=True, exist_ok=True)
    backend = search_backend or ("postgres" if database_url.startswith("postgresql")
                                 else "whoosh")
    lines = [f'search_backend = "{backend}"']
    if database_url:
        prepare_database(database_url, replace)
        lines.append(f"database_url = {json.dumps(database_url)}")
    (instance / "settings.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = Summary(instance, database_url or f"sqlite:///{instance / 'etmf.db'}")
    timings = summary.timings
    rng = random.Random(seed)
    as_of = as_of or datetime.now(UTC).date()
    end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) - timedelta(hours=1)
    start = end - timedelta(days=3 * 365)
    signatures = max(2, documents // 1000) if signatures is None else signatures

    def bar(length: int, label: str):  # type: ignore[no-untyped-def]
        if bars:
            return click.progressbar(length=length, label=label, file=sys.stderr)
        return _NoBar()

    import logging

    logging.getLogger("etmf.mail").setLevel(logging.WARNING)  # one mail per signature
    app = create_app(load_settings(overrides={"instance_path": str(instance)}))
    try:
        with app.app_context():
            svc = services(app)
            t0 = time.perf_counter()
            upgrade(svc.db.engine)
            ensure_system_keys(svc.settings)
            setup = build_setup(app, rng, start, end, sites, countries)
            timings["setup"] = time.perf_counter() - t0
            echo(f"setup: study {PROTOCOL}, {len(setup.countries)} countries, "
                 f"{len(setup.sites)} sites, accounts and EDL in {timings['setup']:.1f} s")

            model = load_reference_model()
            pool = PdfPool(svc, seed, pool_per_artifact)
            t0 = time.perf_counter()
            gen = Generator(setup, rng, pool, model)
            with bar(documents, "Documents and events") as b:
                generate_documents(svc, gen, documents, b.update, summary)
            # The documents went in by bulk Core writes, past the kept counts the TMF tree
            # and the document list read (etmf.documents.counts): count them once, as
            # migration 0020 does for an existing database. Without it the tree showed
            # almost every artifact empty and the pages cost less than they should.
            with svc.db.engine.begin() as conn:
                counts.rebuild(conn)
            timings["documents"] = time.perf_counter() - t0
            summary.blobs = len(pool.files)
            echo(f"documents: {summary.documents:,} documents, {summary.versions:,} versions, "
                 f"{summary.events:,} audit events, {summary.blobs} distinct PDFs (stored, "
                 f"text extracted) in {timings['documents']:.1f} s")

            t0 = time.perf_counter()
            with bar(signatures, "Signatures") as b:
                summary.signatures = sign_sample(app, setup, signatures, b.update)
            timings["signatures"] = time.perf_counter() - t0
            echo(f"signatures: {summary.signatures} PAdES signatures in "
                 f"{timings['signatures']:.1f} s")

            t0 = time.perf_counter()
            with bar(documents, f"Search index ({backend})") as b:
                summary.indexed = build_search_index(svc, b.update)
            timings["search"] = time.perf_counter() - t0
            echo(f"search: {summary.indexed:,} documents indexed ({backend}) in "
                 f"{timings['search']:.1f} s")

            # Last, so the search table has statistics too: analysed while still empty,
            # the planner took every word for a rare one and searched 250,000 documents
            # with plans meant for a few thousand (1-2 s a query instead of 0.1-0.2 s).
            t0 = time.perf_counter()
            _analyze(svc.db)
            timings["analyze"] = time.perf_counter() - t0
            from etmf.audit.service import event_count

            with svc.db.read_session() as session:
                summary.events = event_count(session)
    finally:
        with app.app_context():
            shutdown(app)
    timings["total"] = sum(v for k, v in timings.items() if k != "total")
    return summary


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, _n: int) -> None:
        return None


def _analyze(db: Any) -> None:
    """What a production database has some minutes after a bulk load: planner statistics
    and, on PostgreSQL, what autovacuum leaves (the visibility map and every row's hint
    bits). Autovacuum is off on the benchmark machines, and without this the first reads of
    each row write its page again: a first 60 s mixed load at 250,000 documents measured
    10.0 ms of PostgreSQL CPU a request, the next one (after a VACUUM, caches warm) 8.1 ms."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        return
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def accounts() -> list[tuple[str, str]]:
    return [(f"admin@{DOMAIN}", "Administrator"), (f"manager@{DOMAIN}", "Study manager"),
            (f"specialist1@{DOMAIN}", "TMF specialist"), (f"qc1@{DOMAIN}", "QC reviewer"),
            (f"auditor@{DOMAIN}", "Auditor")]


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", required=True, type=Path,
                        help="instance folder to create")
    parser.add_argument("--documents", type=int, default=250_000)
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--countries", type=int, default=40)
    parser.add_argument("--seed", type=int, default=301)
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL URL (default: SQLite in the instance folder)")
    parser.add_argument("--search-backend", default="", choices=("", "whoosh", "postgres"))
    parser.add_argument("--signatures", type=int, default=None,
                        help="signed documents (default: one per 1,000, at least 2)")
    parser.add_argument("--pool", type=int, default=4, help="distinct PDFs per artifact")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None,
                        help="last day of the study (default: today, UTC)")
    parser.add_argument("--replace", action="store_true",
                        help="remove an existing instance folder / database first")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    args = parser.parse_args(list(argv) if argv is not None else None)
    summary = generate(args.instance, documents=args.documents, sites=args.sites,
                       countries=args.countries, seed=args.seed,
                       database_url=args.database_url, search_backend=args.search_backend,
                       signatures=args.signatures, as_of=args.as_of,
                       pool_per_artifact=args.pool, replace=args.replace)
    load = os.getloadavg()
    print(f"\nInstance {summary.instance} ({summary.database_url.split('@')[-1]}): "
          f"{summary.documents:,} documents, {summary.versions:,} versions, "
          f"{summary.events:,} audit events, {summary.signatures} signatures, "
          f"{summary.blobs} PDFs; {summary.timings['total']:.0f} s "
          f"(load average {load[0]:.2f} {load[1]:.2f})")
    print("States: " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.states.items())))
    print(f"Serve:   .venv/bin/etmf serve --instance {summary.instance}")
    print(f"Verify:  .venv/bin/etmf audit verify --instance {summary.instance}")
    print(f"Every account's password: {PASSWORD}")
    for email, role in accounts():
        print(f"  {role:<16} {email}")
    if args.json:
        args.json.write_text(json.dumps({
            "instance": str(summary.instance), "database_url": summary.database_url,
            "documents": summary.documents, "versions": summary.versions,
            "events": summary.events, "signatures": summary.signatures,
            "blobs": summary.blobs, "indexed": summary.indexed, "timings": summary.timings,
            "states": summary.states, "load": load[:2]}, indent=2))


if __name__ == "__main__":
    main()
