"""EMS import: a dry run that reports, then an import that creates documents and versions.

The dry run checks the manifest against the XSD, every file's checksum (hex or base64, with or
without a ``SHA256-`` prefix), maps each object's artifact by unique id (then number), and
lists countries, sites and people this study does not know. The import refuses a package whose
dry run found problems, unless the caller chooses to import only the good objects.

Each document becomes one ``document.imported`` event on its own stream carrying its metadata,
every version with its state, and the source system's audit records and signatures, which are
kept as *imported history* (never mixed into our own audit trail). Re-importing the same
package, or the same source objects, changes nothing.
"""

from __future__ import annotations

import hashlib
import posixpath
import urllib.parse
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import IO, Any

from sqlalchemy import select

from etmf.accounts.access import Access
from etmf.accounts.models import User
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.documents.lifecycle import State
from etmf.documents.models import Document, DocumentVersion
from etmf.errors import Conflict, InvalidTransition, NotFound, ValidationError
from etmf.exchange import ems
from etmf.exchange.models import ImportedAuditRecord, ImportedObject, ImportedPackage
from etmf.reference_model.model import UnknownArtifact, load_reference_model
from etmf.studies.models import Country, Site, Study
from storage.base import BlobRef

CHUNK = 1024 * 1024
#: Most entries and largest total inflated size a package may have.
MAX_ENTRIES = 500_000
MAX_TOTAL_BYTES = 2 * 1024**4

_STATE_TO_STATUS = {"Current": State.APPROVED.value, "Superseded": State.SUPERSEDED.value,
                    "Obsolete": State.OBSOLETE.value}


@dataclass
class FileCheck:
    object_id: str
    version: str
    path: str
    filename: str
    expected: str
    actual: str | None = None
    problem: str | None = None  # None: the bytes match

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class ObjectPlan:
    object_id: str
    version: str
    state: str
    artifact_id: str | None
    artifact_number: str
    level: str
    country_code: str | None
    site_number: str | None
    title: str
    meta: dict[str, str]
    element: Any
    files: list[FileCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class DryRunReport:
    study_id_text: str = ""
    source_id: str = ""
    transfer_id: str = ""
    package_sha256: str = ""
    schema_errors: list[str] = field(default_factory=list)
    objects: list[ObjectPlan] = field(default_factory=list)
    unknown_countries: list[str] = field(default_factory=list)
    unknown_sites: list[str] = field(default_factory=list)
    unknown_people: list[str] = field(default_factory=list)
    already_imported: bool = False
    known_objects: list[str] = field(default_factory=list)
    fatal: str | None = None

    @property
    def bad_files(self) -> list[FileCheck]:
        return [f for o in self.objects for f in o.files if not f.ok]

    @property
    def bad_objects(self) -> list[ObjectPlan]:
        return [o for o in self.objects if o.problems or any(not f.ok for f in o.files)]

    @property
    def ok(self) -> bool:
        return (self.fatal is None and not self.schema_errors and not self.bad_objects
                and not self.unknown_countries and not self.unknown_sites)

    def lines(self) -> list[str]:
        """The report in words, one line each, for the console and the web page."""
        out = [f"EMS package for study {self.study_id_text or '?'} from "
               f"{self.source_id or '?'} (transfer {self.transfer_id or '?'}), "
               f"SHA-256 {self.package_sha256 or '?'}"]
        if self.fatal:
            return [*out, f"REFUSED: {self.fatal}"]
        out.append("Manifest: valid against the EMS schema." if not self.schema_errors
                   else f"Manifest: {len(self.schema_errors)} schema error(s):")
        out += [f"  {e}" for e in self.schema_errors]
        files = [f for o in self.objects for f in o.files]
        out.append(f"Objects: {len(self.objects)} (versions), files: {len(files)}, "
                   f"checksums matching: {sum(f.ok for f in files)}")
        for f in self.bad_files:
            out.append(f"  FILE {f.path}: {f.problem}")
        for o in self.objects:
            for p in o.problems:
                out.append(f"  OBJECT {o.object_id} v{o.version}: {p}")
        if self.unknown_countries:
            out.append("Unknown countries: " + ", ".join(self.unknown_countries))
        if self.unknown_sites:
            out.append("Unknown sites: " + ", ".join(self.unknown_sites))
        if self.unknown_people:
            out.append("People without an account here (kept as names): "
                       + ", ".join(self.unknown_people))
        if self.already_imported:
            out.append("This exact package was imported before: importing it changes nothing.")
        elif self.known_objects:
            out.append(f"{len(self.known_objects)} object(s) were imported before and will be "
                       "left as they are.")
        out.append("Result: ready to import." if self.ok else
                   "Result: NOT ready; fix the problems above, or import only the good "
                   "objects.")
        return out


def _sha256_of(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _member_name(content_url: str) -> str | None:
    """The zip member a CONTENTURL names, or None for anything outside the package."""
    path = urllib.parse.unquote(content_url.strip()).replace("\\", "/")
    if "://" in path or path.startswith("/") or ":" in path.split("/")[0]:
        return None
    norm = posixpath.normpath(path)
    if norm.startswith("..") or norm == ".":
        return None
    return norm


def dry_run(session: Any, package: IO[bytes], study_id: int | None = None, *,
            progress: Callable[[int, int, str], None] | None = None) -> DryRunReport:
    """Check a package without changing anything; ``study_id``: the study to import into.

    ``progress(done, total, object id)`` is called as each object's files are checked."""
    report = DryRunReport()
    package.seek(0)
    report.package_sha256 = _sha256_of(package)
    package.seek(0)
    try:
        archive = zipfile.ZipFile(package)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        report.fatal = f"the package is not a readable zip file ({exc})."
        return report
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
            report.fatal = "the package has too many entries or is too large once unpacked."
            return report
        names = {i.filename: i for i in infos}
        manifest = names.get(ems.MANIFEST_NAME)
        if manifest is None:
            report.fatal = f"the package has no {ems.MANIFEST_NAME} at its top level."
            return report
        if manifest.file_size > ems.MAX_MANIFEST_BYTES:
            report.fatal = f"{ems.MANIFEST_NAME} is too large."
            return report
        try:
            root = ems.parse_manifest(archive.read(manifest))
        except ems.ManifestError as exc:
            report.fatal = str(exc)
            return report
        report.schema_errors = ems.schema_errors(root)
        report.study_id_text = root.get("STUDYID", "")
        report.source_id = root.get("TRANSFERSOURCEID", "")
        report.transfer_id = root.get("TRANSFERID", "")
        _plan_objects(root, report, archive, names, progress)
    _check_against_study(session, report, study_id)
    return report


def _plan_objects(root: Any, report: DryRunReport, archive: zipfile.ZipFile,
                  names: dict[str, zipfile.ZipInfo],
                  progress: Callable[[int, int, str], None] | None = None) -> None:
    model = load_reference_model()
    elements = root.findall(ems.Q + "OBJECT")
    for i, el in enumerate(elements, 1):
        meta = ems.metadata_of(el)
        unique = ems.text_of(el, "UNIQUEID") or ""
        number = ems.text_of(el, "ARTIFACTNUMBER") or ""
        plan = ObjectPlan(
            object_id=ems.text_of(el, "OBJECTID") or "?",
            version=ems.text_of(el, "OBJECTVERSION") or "1",
            state=ems.text_of(el, "OBJECTVERSIONSTATE") or "Current",
            artifact_id=None, artifact_number=number,
            level=(ems.text_of(el, "OBJECTLEVEL") or "Trial").lower(),
            country_code=meta.get("ETMF_COUNTRY") or ems.ALPHA2.get(
                ems.text_of(el, "COUNTRYID") or "", ems.text_of(el, "COUNTRYID")),
            site_number=ems.text_of(el, "SITEID"),
            title=ems.text_of(el, "OBJECTTITLE") or "", meta=meta, element=el)
        try:
            artifact = model.artifact(unique)
            if number and artifact.number != number:
                try:
                    by_number = model.artifact_by_number(number)
                    plan.problems.append(
                        f"unique id {unique} is artifact {artifact.number} but the number "
                        f"says {number} ({by_number.name}); the unique id was used")
                except UnknownArtifact:
                    pass
        except UnknownArtifact:
            try:
                artifact = model.artifact_by_number(number)
            except UnknownArtifact:
                artifact = None
                plan.problems.append(f"neither unique id {unique!r} nor number {number!r} "
                                     f"is an artifact of the TMF Reference Model "
                                     f"{model.version}")
        if artifact is not None:
            plan.artifact_id = artifact.unique_id
            plan.artifact_number = artifact.number
        for f in el.findall(ems.Q + "FILE"):
            url = ems.text_of(f, "CONTENTURL") or ""
            check = FileCheck(object_id=plan.object_id, version=plan.version, path=url,
                              filename=ems.text_of(f, "FILENAME") or posixpath.basename(url),
                              expected=ems.text_of(f, "INTEGRITY") or "")
            expected = ems.parse_integrity(check.expected)
            member = _member_name(url)
            if member is None:
                check.problem = "the content URL points outside the package; refused"
            elif member not in names:
                check.problem = "the file is missing from the package"
            else:
                with archive.open(names[member]) as stream:
                    check.actual = _sha256_of(stream)
                if expected is None:
                    check.problem = (f"the checksum {check.expected!r} is not a SHA-256 "
                                     "(neither 64 hex digits nor 32 bytes in base64)")
                elif expected != check.actual:
                    check.problem = (f"checksum mismatch: the manifest says {expected}, "
                                     f"the file has {check.actual} (damaged or altered)")
            plan.files.append(check)
        report.objects.append(plan)
        if progress:
            progress(i, len(elements), plan.object_id)


def _check_against_study(session: Any, report: DryRunReport, study_id: int | None) -> None:
    report.already_imported, report.known_objects = False, []
    study = session.get(Study, study_id) if study_id else None
    codes = set()
    site_numbers = set()
    if study is not None:
        codes = set(session.scalars(select(Country.code).where(Country.study_id == study.id)))
        site_numbers = set(session.scalars(select(Site.number).where(
            Site.study_id == study.id)))
        pkg = session.scalar(select(ImportedPackage.id).where(
            ImportedPackage.study_id == study.id,
            ImportedPackage.package_sha256 == report.package_sha256))
        report.already_imported = pkg is not None
        known = set(session.scalars(select(ImportedObject.object_id).where(
            ImportedObject.study_id == study.id,
            ImportedObject.source_id == report.source_id)))
        report.known_objects = sorted({o.object_id for o in report.objects} & known)
    countries = sorted({o.country_code for o in report.objects
                        if o.country_code and o.level in ("country", "site")} - codes)
    sites = sorted({o.site_number for o in report.objects
                    if o.site_number and o.level == "site"} - site_numbers)
    report.unknown_countries = countries
    report.unknown_sites = sites
    people = set()
    for o in report.objects:
        people |= set(ems.texts_of(o.element, "PERSONNAME"))
        for sig in o.element.iter(ems.Q + "SIGNATURENAME"):
            if sig.text:
                people.add(sig.text.strip())
    names = set(session.scalars(select(User.full_name).where(User.full_name.in_(
        sorted(people))))) if people else set()
    report.unknown_people = sorted(people - names)


# --- the import ---------------------------------------------------------------------------


@dataclass
class ImportResult:
    documents: int = 0
    versions: int = 0
    skipped: list[str] = field(default_factory=list)
    package_id: int | None = None
    study_id: int | None = None


def _date(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        d = ems.parse_ems_date(text)
        return d.isoformat() if d else None


def _instant(text: str | None) -> str | None:
    """An ISO 8601 instant as UTC text (for the event), or None if absent or unreadable."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _create_missing(uow: UnitOfWork, report: DryRunReport, study_id: int | None) -> int:
    from etmf.studies.services import NewStudy, add_country, add_site, create_study

    if study_id is None:
        existing = uow.session.scalar(select(Study.id).where(
            Study.protocol_number == report.study_id_text))
        if existing is not None:
            study_id = existing
        else:
            title = next((o.meta.get("ETMF_STUDY_TITLE") for o in report.objects
                          if o.meta.get("ETMF_STUDY_TITLE")), report.study_id_text)
            study_id = create_study(uow, NewStudy(
                protocol_number=report.study_id_text, title=title or report.study_id_text,
                phase="II", sponsor=report.source_id))
    countries = {c.code: c.id for c in uow.session.scalars(select(Country).where(
        Country.study_id == study_id))}
    sites = set(uow.session.scalars(select(Site.number).where(Site.study_id == study_id)))
    for o in report.objects:
        if o.level not in ("country", "site") or not o.country_code:
            continue
        if o.country_code not in countries and len(o.country_code) == 2:
            countries[o.country_code] = add_country(
                uow, study_id=study_id, code=o.country_code,
                name=o.meta.get("ETMF_COUNTRY_NAME") or o.country_code)
        if o.level == "site" and o.site_number and o.site_number not in sites \
                and o.country_code in countries:
            add_site(uow, study_id=study_id, country_id=countries[o.country_code],
                     number=o.site_number,
                     institution=o.meta.get("ETMF_SITE_INSTITUTION") or o.site_number)
            sites.add(o.site_number)
    return study_id


def import_package(uow: UnitOfWork, access: Access, blobs: Any, package: IO[bytes], *,
                   study_id: int | None, only_good: bool = False, create_missing: bool = False,
                   progress: Callable[[int, int, str], None] | None = None,
                   checked: DryRunReport | None = None) -> ImportResult:
    """Import a checked package into a study (or, with ``create_missing``, the study named in
    the manifest, created with its countries and sites if absent).

    ``checked``: the dry run of this very package (same SHA-256), done outside the write
    transaction so that a large import holds the write lock only to record it; what depends
    on the study (objects imported before, unknown countries and sites) is checked again."""
    if study_id is not None:
        access.require(Permission.IMPORT_TMF, study_id)
    elif not (create_missing and access.is_admin):
        raise ValidationError("Name the study to import into.")
    if create_missing:
        report = dry_run(uow.session, package, None)
        if report.fatal:
            raise ValidationError("The package cannot be imported: " + report.fatal)
        study_id = _create_missing(uow, report, study_id)
        uow.session.flush()
    if checked is not None and not create_missing:
        report = checked
        _check_against_study(uow.session, report, study_id)
    else:
        report = dry_run(uow.session, package, study_id)
    study = uow.session.get(Study, study_id)
    if study is None:
        raise NotFound("There is no such study.")
    if study.locked_at is not None:
        raise InvalidTransition(f"Study {study.protocol_number} is locked (archived): nothing "
                                "can be imported into it.")
    if report.fatal or report.schema_errors:
        raise ValidationError("The package cannot be imported: "
                              + (report.fatal or "; ".join(report.schema_errors[:5])))
    result = ImportResult(study_id=study_id)
    if report.already_imported:
        result.skipped.append("the same package was imported before")
        return result
    if not report.ok and not only_good:
        raise Conflict("The dry run found problems; nothing was imported. "
                       + " ".join(report.lines()[2:8]))
    bad = {o.object_id for o in report.bad_objects}
    countries = {c.code: c.id for c in uow.session.scalars(select(Country).where(
        Country.study_id == study_id))}
    sites = {s.number: s for s in uow.session.scalars(select(Site).where(
        Site.study_id == study_id))}
    groups: dict[str, list[ObjectPlan]] = {}
    for o in report.objects:
        groups.setdefault(o.object_id, []).append(o)
    package.seek(0)
    package_id = uow.allocate_id(ImportedPackage)
    total = len(groups)
    with zipfile.ZipFile(package) as archive:
        for i, (object_id, plans) in enumerate(groups.items(), 1):
            if progress:
                progress(i, total, object_id)
            if object_id in report.known_objects:
                result.skipped.append(f"{object_id}: imported before")
                continue
            why = _refusal(plans, countries, sites, object_id in bad)
            if why:
                result.skipped.append(f"{object_id}: {why}")
                continue
            _import_document(uow, archive, blobs, study_id, report.source_id, package_id,
                             plans, countries, sites)  # type: ignore[arg-type]
            result.documents += 1
            result.versions += len(plans)
    uow.emit("exchange_package", package_id, "exchange.package_imported", {
        "study_id": study_id, "package_sha256": report.package_sha256,
        "transfer_id": report.transfer_id[:200], "source_id": report.source_id[:200],
        "documents": result.documents, "versions": result.versions,
        "skipped": len(result.skipped)}, expected_version=0, study_id=study_id)
    result.package_id = package_id
    return result


def prestore(blobs: Any, package: IO[bytes], report: DryRunReport,
             progress: Callable[[int, int, str], None] | None = None) -> int:
    """Copy the good files of a checked package into blob storage before the import's
    transaction (content-addressed: harmless if the import never happens); returns how many
    files were copied."""
    good = [f for o in report.objects for f in o.files if f.ok and f.actual]
    copied = 0
    package.seek(0)
    with zipfile.ZipFile(package) as archive:
        for i, f in enumerate(good, 1):
            if not blobs.exists(f.actual):
                with archive.open(_member_name(f.path)) as stream:  # type: ignore[arg-type]
                    blobs.put(stream, expected_sha256=f.actual)
                copied += 1
            if progress:
                progress(i, len(good), f.path)
    return copied


def _refusal(plans: list[ObjectPlan], countries: dict[str, int], sites: dict[str, Site],
             bad: bool) -> str | None:
    if bad:
        return "refused by the dry run (" + "; ".join(
            [p for o in plans for p in o.problems]
            + [f"{f.path}: {f.problem}" for o in plans for f in o.files if not f.ok]) + ")"
    first = plans[0]
    if first.level == "site" and first.site_number not in sites:
        return f"unknown site {first.site_number}"
    if first.level == "country" and first.country_code not in countries:
        return f"unknown country {first.country_code}"
    return None


def _import_document(uow: UnitOfWork, archive: zipfile.ZipFile, blobs: Any, study_id: int,
                     source: str, package_id: int, plans: list[ObjectPlan],
                     countries: dict[str, int], sites: dict[str, Site]) -> int:
    plans = sorted(plans, key=lambda o: int(o.meta.get("ETMF_VERSION_NUMBER") or 0))
    last = plans[-1]
    current = next((o for o in plans if o.meta.get("ETMF_CURRENT") == "yes"), last)
    model = load_reference_model()
    artifact = model.artifact(last.artifact_id or "")
    level = last.level if last.level in ("trial", "country", "site") else "trial"
    site = sites.get(last.site_number or "") if level == "site" else None
    country_id = (site.country_id if site else countries.get(last.country_code or "")
                  if level == "country" else None)
    doc_id = uow.allocate_id(Document)
    versions = []
    history = []
    for n, o in enumerate(plans, 1):
        f = o.files[0]
        member = _member_name(f.path)
        info = archive.getinfo(member)  # type: ignore[arg-type]
        if f.actual and blobs.exists(f.actual):  # stored by prestore() or an earlier import
            ref = BlobRef(sha256=f.actual, size=info.file_size, version_id=None)
        else:
            with archive.open(info) as stream:
                ref = blobs.put(stream, expected_sha256=f.actual)
        version_id = uow.allocate_id(DocumentVersion)
        status = o.meta.get("ETMF_VERSION_STATUS") or _STATE_TO_STATUS.get(o.state, "approved")
        page_count = o.meta.get("ETMF_PAGE_COUNT")
        versions.append({
            "id": version_id, "number": n, "label": o.version[:20], "status": status,
            "sha256": ref.sha256, "size": ref.size,
            "mime": o.meta.get("ETMF_MIME") or _mime_of(f.filename),
            "filename": f.filename[:255], "page_count": int(page_count) if page_count
            and page_count.isdigit() else None,
            "note": ems.text_of(o.element.find(ems.Q + "FILE"), "FILEDESCRIPTION"),
            "signed_from_number": int(o.meta["ETMF_SIGNED_FROM_VERSION"])
            if o.meta.get("ETMF_SIGNED_FROM_VERSION", "").isdigit() else None,
            "source_uploaded_at": o.meta.get("ETMF_UPLOADED_AT"),
            "source_uploaded_by": o.meta.get("ETMF_UPLOADED_BY"),
        })
        file_el = o.element.find(ems.Q + "FILE")
        for rec in file_el.findall(ems.Q + "AUDITRECORD"):
            history.append({"id": uow.allocate_id(ImportedAuditRecord), "version": o.version,
                            "kind": "audit", "record_id": ems.text_of(rec, "AUDITID") or "",
                            "at": ems.text_of(rec, "DATETIMESTAMP") or "",
                            "user": ems.text_of(rec, "USERREF") or "",
                            "type": ems.text_of(rec, "AUDITENTRYTYPE") or "",
                            "text": ems.text_of(rec, "AUDITEVENT") or ""})
        for sig in file_el.findall(ems.Q + "SIGNATURE"):
            history.append({"id": uow.allocate_id(ImportedAuditRecord), "version": o.version,
                            "kind": "signature", "record_id": ems.text_of(sig, "USEROID") or "",
                            "at": ems.text_of(sig, "SIGNATUREDATETIME") or "",
                            "user": ems.text_of(sig, "SIGNATURENAME") or "",
                            "type": ems.text_of(sig, "SIGNATUREMETHODOLOGY") or "",
                            "text": ems.text_of(sig, "SIGNATUREREASON") or ""})
    by_number = {v["number"]: v["id"] for v in versions}
    for v in versions:
        v["signed_from_version_id"] = by_number.get(v.pop("signed_from_number"))
    current_id = versions[plans.index(current)]["id"]
    statuses = {v["status"] for v in versions}
    doc_status = last.meta.get("ETMF_DOCUMENT_STATUS") or (
        State.OBSOLETE.value if statuses == {State.OBSOLETE.value}
        else next(v["status"] for v in versions if v["id"] == current_id))
    meta = last.meta
    persons = ems.texts_of(last.element, "PERSONNAME")
    uow.emit("document", doc_id, "document.imported", {
        "study_id": study_id, "artifact_id": artifact.unique_id,
        "artifact_number": artifact.number, "zone": artifact.zone_number,
        "section": artifact.section_number,
        "sub_artifact": (ems.text_of(last.element, "SUBARTIFACT") or None),
        "level": level, "country_id": country_id, "site_id": site.id if site else None,
        "title": (last.title or versions[-1]["filename"])[:500],
        "person": persons[0][:200] if persons else None,
        "language": meta.get("ETMF_LANGUAGE") or ems.text_of(last.element, "OBJECTLANGUAGE"),
        "document_date": _date(meta.get("ETMF_DOCUMENT_DATE")
                               or ems.text_of(last.element, "ARTIFACTDATE")),
        "expiry_date": _date(meta.get("ETMF_EXPIRY_DATE")
                             or ems.text_of(last.element, "OBJECTEXPIRYDATE")),
        "status": doc_status, "current_version_id": current_id, "versions": versions,
        "approved_at": _instant(meta.get("ETMF_APPROVED_AT")),
        "source": {"source_id": source[:200], "object_id": last.object_id[:300],
                   "package_id": package_id, "object_row_id": uow.allocate_id(ImportedObject),
                   "metadata": {k: v for k, v in meta.items() if not k.startswith("ETMF_")}},
        "imported_history": history,
    }, expected_version=0, study_id=study_id)
    return doc_id


def _mime_of(filename: str) -> str:
    import mimetypes

    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
