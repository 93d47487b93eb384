"""Installation qualification: what is installed, how it is configured, and that it works.

Everything `etmf check` verifies, plus the exact software inventory with hashes, the masked
configuration, the schema revision, the backends, the clock and the system keys' identities.
Each row is a fact with a pass/fail where something is checked; nothing here changes state.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from etmf.checks import installation_checks

if TYPE_CHECKING:
    from etmf.bootstrap import Services

#: The packages of this distribution (``etmf.ui`` is the templates folder in a checkout).
OWN_PACKAGES = ("etmf", "etmf.ui", "ctms", "storage")


@dataclass(frozen=True)
class IqRow:
    """One line of the IQ table. ``ok`` is None for a recorded fact that is not a check."""

    section: str
    item: str
    value: str
    ok: bool | None = None


@dataclass
class Distribution:
    """One installed distribution, its version and the hash evidence for its files."""

    name: str
    version: str
    fingerprint: str  # SHA-256 of its RECORD, or of its source tree for an editable install
    basis: str  # "RECORD" or "source tree"
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class IqReport:
    rows: list[IqRow]
    distributions: list[Distribution]

    @property
    def failures(self) -> list[IqRow]:
        return [r for r in self.rows if r.ok is False]


# ---- software inventory -------------------------------------------------------------------


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def dependency_closure(root: str = "etmf", extras: Iterable[str] = ("test",)) -> list[str]:
    """``root`` and every distribution it requires, transitively (with the given extras of
    the root, and the extras each requirement names), sorted by name."""
    from packaging.requirements import Requirement

    seen: dict[str, None] = {}
    done: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        if (_canonical(name), wanted) in done:
            continue
        done.add((_canonical(name), wanted))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed
        seen[_canonical(dist.metadata["Name"])] = None
        for spec in dist.requires or []:
            req = Requirement(spec)
            envs = [{"extra": e} for e in (wanted or {""})]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return sorted(seen)


def _record_hash(value: str) -> tuple[str, str] | None:
    algo, _, digest = value.partition("=")
    return (algo, digest) if algo and digest else None


#: Digests already computed in this process, keyed by (path, size, mtime_ns, algorithm):
#: a second report in the same process (tests, an admin shell) does not re-read every file.
_DIGESTS: dict[tuple[str, int, int, str], str] = {}


def _file_digest(path: Path, algo: str) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, algo)
    if key not in _DIGESTS:
        _DIGESTS[key] = _hash_file(path, algo)
    return _DIGESTS[key]


def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode("ascii")


def _source_tree_hash(dist: metadata.Distribution) -> tuple[str, int] | None:
    """For an editable install of this project: SHA-256 over every source file of its
    packages (relative path and content hash, sorted); None when it is not ours."""
    import importlib.util

    if _canonical(dist.metadata["Name"]) != "etmf":
        return None
    entries: list[str] = []
    roots: list[tuple[str, Path]] = []
    for package in OWN_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        roots.append((package, Path(next(iter(spec.submodule_search_locations)))))
    for package, root in roots:
        nested = [r for p, r in roots if p != package and r != root and r.is_relative_to(root)]
        for path in sorted(root.rglob("*")):
            if (not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc"
                    or any(path.is_relative_to(n) for n in nested)):
                continue
            rel = f"{package}/{path.relative_to(root).as_posix()}"
            entries.append(f"{rel} {hashlib.sha256(path.read_bytes()).hexdigest()}")
    digest = hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest()
    return digest, len(entries)


def _find_distribution(name: str) -> metadata.Distribution:
    """The installed distribution: a source checkout's ``*.egg-info`` (found first when the
    current folder is the checkout) is not an installation, so an installed one wins."""
    candidates = list(metadata.distributions(name=name))
    for dist in candidates:
        if dist.read_text("RECORD") is not None:
            return dist
    if candidates:
        return candidates[0]
    return metadata.distribution(name)  # raises PackageNotFoundError


def _is_editable(dist: metadata.Distribution) -> bool:
    import json

    try:
        info = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        return False
    return bool(info.get("dir_info", {}).get("editable"))


def inspect_distribution(name: str) -> Distribution:
    """Version and hash evidence of one installed distribution (see
    :func:`verify_distribution`); an editable install of this project is fingerprinted by
    its source tree instead, since its RECORD lists no sources."""
    dist = _find_distribution(name)
    own = _source_tree_hash(dist) if _is_editable(dist) else None
    if own is not None:
        return Distribution(dist.metadata["Name"], dist.version, own[0], "source tree", own[1])
    return verify_distribution(dist)


def verify_distribution(dist: metadata.Distribution) -> Distribution:
    """Check every file of an installed distribution against its RECORD (the hashes the
    installer wrote): a changed or missing file is a problem. The fingerprint is the
    SHA-256 of the RECORD itself."""
    record = dist.read_text("RECORD") or ""
    result = Distribution(dist.metadata["Name"], dist.version,
                          hashlib.sha256(record.encode("utf-8")).hexdigest(), "RECORD")
    for file in dist.files or []:
        if file.hash is None:
            continue
        path = Path(str(dist.locate_file(file)))
        if not path.is_file():
            result.problems.append(f"{file} is missing")
            continue
        if _file_digest(path, file.hash.mode) != file.hash.value:
            result.problems.append(f"{file} differs from its RECORD hash")
        result.files_checked += 1
    if not record:
        result.problems.append("no RECORD: the installed files cannot be verified")
    return result


# ---- the report ---------------------------------------------------------------------------


def _key_rows(svc: Services) -> list[IqRow]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from etmf.audit.checkpoint import key_id
    from etmf.audit.service import public_key

    rows: list[IqRow] = []
    try:
        public = load_pem_public_key(public_key(svc.settings).encode("ascii"))
        assert isinstance(public, Ed25519PublicKey)
        rows.append(IqRow("Keys", "Audit checkpoint key id (Ed25519)", key_id(public), True))
    except Exception as exc:  # reported as a failed row, never a traceback
        rows.append(IqRow("Keys", "Audit checkpoint key", f"unreadable: {exc}", False))
    ca_path = svc.settings.signing_ca_path / "ca.cert.pem"
    if ca_path.is_file():
        try:
            cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
            rows += [
                IqRow("Keys", "Signing CA subject", cert.subject.rfc4514_string()),
                IqRow("Keys", "Signing CA SHA-256 fingerprint",
                      cert.fingerprint(hashes.SHA256()).hex(":").upper(), True),
                IqRow("Keys", "Signing CA validity (UTC)",
                      f"{cert.not_valid_before_utc.isoformat()} to "
                      f"{cert.not_valid_after_utc.isoformat()}"),
                IqRow("Keys", "Signing CA chain", "self-signed root (the chain is this one "
                      "certificate; user certificates are issued by it)"),
            ]
        except ValueError as exc:
            rows.append(IqRow("Keys", "Signing CA certificate", f"unreadable: {exc}", False))
    else:
        rows.append(IqRow("Keys", "Signing CA certificate", f"not present at {ca_path}",
                          None if svc.settings.testing else False))
    return rows


def _database_rows(svc: Services) -> list[IqRow]:
    from etmf.migrate import current_revision, head_revision, pending_revisions

    engine = svc.db.engine
    rows = [IqRow("Database", "URL", engine.url.render_as_string(hide_password=True)),
            IqRow("Database", "Dialect", svc.db.dialect)]
    try:
        current, head = current_revision(engine), head_revision(engine)
        rows.append(IqRow("Database", "Schema revision (applied)", str(current),
                          current is not None and not pending_revisions(engine)))
        rows.append(IqRow("Database", "Schema revision (expected by the code)", str(head)))
    except Exception as exc:  # reported as a failed row
        rows.append(IqRow("Database", "Schema revision", f"unreadable: {exc}", False))
    return rows


def installation_qualification(
    svc: Services, progress: Callable[[str], None] | None = None,
) -> IqReport:
    """Collect the IQ facts of the running instance (read-only)."""
    note = progress or (lambda _msg: None)
    rows: list[IqRow] = []
    note("installation checks")
    for check in installation_checks(svc):
        rows.append(IqRow("Installation checks (etmf check)", check.name, check.detail,
                          check.ok))
    rows += [
        IqRow("Platform", "Python", f"{sys.version.split()[0]} ({sys.executable})"),
        IqRow("Platform", "Operating system", platform.platform()),
    ]
    rows += _database_rows(svc)
    settings = svc.settings
    rows.append(IqRow("Backends", "Storage", f"{settings.storage_backend}: "
                      + _safe(lambda: str(svc.blobs.describe()))))
    rows.append(IqRow("Backends", "Search", f"{settings.search_backend}: "
                      + _safe(lambda: str(svc.search.describe()))))
    rows.append(IqRow("Backends", "Clock", f"{type(svc.clock).__name__}, UTC now "
                      f"{svc.clock.now().isoformat(timespec='seconds')}"))
    rows += _key_rows(svc)
    for name, value in settings.masked().items():
        rows.append(IqRow("Configuration (secrets masked)", name, value))
    note("software inventory")
    distributions = []
    for name in dependency_closure():
        dist = inspect_distribution(name)
        distributions.append(dist)
        rows.append(IqRow(
            "Software", f"{dist.name} {dist.version}",
            f"{dist.basis} SHA-256 {dist.fingerprint}; {dist.files_checked} files "
            + ("verified" if dist.basis == "RECORD" else "hashed")
            + (f"; {len(dist.problems)} problem(s): " + "; ".join(dist.problems[:3])
               if dist.problems else ""),
            not dist.problems))
    return IqReport(rows=rows, distributions=distributions)


def _safe(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except Exception as exc:  # the installation check row already fails; describe the error
        return f"unavailable ({exc})"
