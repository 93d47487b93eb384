"""`etmf ems export|import` and `etmf archive create`."""

from __future__ import annotations

from pathlib import Path

import click


def _study_id(session, key: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from etmf.studies.models import Study

    found = session.scalar(select(Study.id).where(Study.protocol_number == key))
    if found is None and key.isdigit() and session.get(Study, int(key)) is not None:
        found = int(key)
    if found is None:
        raise click.ClickException(f"There is no study {key!r} (give its protocol number).")
    return int(found)


def register(main: click.Group) -> None:
    from etmf.cli import instance_option

    @main.group("ems")
    def ems_group() -> None:
        """TMF exchange in the eTMF Exchange Mechanism Standard (EMS)."""

    @ems_group.command("export")
    @instance_option
    @click.argument("study")
    @click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--zone", "zones", multiple=True, help="Only this zone (repeatable), e.g. 05.")
    @click.option("--site", "sites", multiple=True, help="Only this site number (repeatable).")
    def ems_export(instance: str | None, study: str, target: Path, zones: tuple[str, ...],
                   sites: tuple[str, ...]) -> None:
        """Write the EMS package of STUDY (protocol number) to TARGET (a .zip)."""
        from sqlalchemy import select

        from etmf.bootstrap import services
        from etmf.cli import app_context
        from etmf.exchange.export import Selection, count_documents, write_package
        from etmf.studies.models import Site

        with app_context(instance) as app:
            svc = services(app)
            with svc.db.read_session() as session:
                study_id = _study_id(session, study)
                site_ids = frozenset(session.scalars(select(Site.id).where(
                    Site.study_id == study_id, Site.number.in_(sites)))) if sites else None
                if sites and len(site_ids or ()) != len(set(sites)):
                    raise click.ClickException("Some of the sites named are not in the study.")
                selection = Selection(zones=frozenset(zones) or None, site_ids=site_ids)
                total = count_documents(session, study_id, selection)
                with click.progressbar(length=total, label="Exporting documents",
                                       show_pos=True) as bar, target.open("wb") as out:
                    summary = write_package(
                        session, svc.blobs, study_id, out, now=svc.clock.now(),
                        selection=selection,
                        progress=lambda done, _t, _m: bar.update(done - bar.pos))
            click.echo(f"Exported {summary.documents} documents ({summary.versions} versions, "
                       f"{summary.bytes} bytes) of {study} ({selection.describe()}) to "
                       f"{target}; exchange.xml is valid against the EMS schema.")

    @ems_group.command("import")
    @instance_option
    @click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--study", default=None,
                  help="Protocol number of the study to import into (default: the STUDYID "
                       "of the package; created with its countries and sites if absent).")
    @click.option("--dry-run", is_flag=True, help="Check and report; change nothing.")
    @click.option("--only-good", is_flag=True,
                  help="Import the objects without problems, leave out the others.")
    def ems_import(instance: str | None, package: Path, study: str | None, dry_run: bool,
                   only_good: bool) -> None:
        """Check (--dry-run) or import an EMS PACKAGE (.zip)."""
        from etmf.accounts.access import Access
        from etmf.audit.store import Actor, unit_of_work
        from etmf.bootstrap import services
        from etmf.cli import app_context
        from etmf.exchange import importer

        with app_context(instance) as app:
            svc = services(app)
            with svc.db.read_session() as session:
                study_id = _study_id(session, study) if study else None
                with package.open("rb") as fh:
                    report = importer.dry_run(session, fh, study_id)
            for line in report.lines():
                click.echo(line)
            if dry_run:
                if not report.ok and not (study_id is None and report.fatal is None
                                          and not report.bad_objects
                                          and not report.schema_errors):
                    raise SystemExit(1)
                return
            admin = Access(user_id=None, name="etmf ems import (console)", is_admin=True)
            with package.open("rb") as fh, unit_of_work(
                    svc.db, svc.clock, Actor(None, admin.name)) as uow:
                result = importer.import_package(
                    uow, admin, svc.blobs, fh, study_id=None, create_missing=True,
                    only_good=only_good) if study_id is None else importer.import_package(
                    uow, _console_access(session_factory=svc.db, study_id=study_id),
                    svc.blobs, fh, study_id=study_id, only_good=only_good)
                uow.commit()
            for skipped in result.skipped:
                click.echo(f"Left out: {skipped}")
            click.echo(f"Imported {result.documents} documents ({result.versions} versions).")

    @main.group("archive")
    def archive_group() -> None:
        """Closing a study: lock it and write a certified archive."""

    @archive_group.command("create")
    @instance_option
    @click.argument("study")
    @click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--reason", required=True, help="Why the study is closed (audited).")
    def archive_create(instance: str | None, study: str, target: Path, reason: str) -> None:
        """Lock STUDY and write its certified archive (EMS export, audit trail CSV and PDF,
        signature reports, SHA-256 manifest, signed checkpoint) to TARGET."""
        from etmf.bootstrap import services
        from etmf.cli import app_context
        from etmf.exchange.archive import create_archive

        with app_context(instance) as app:
            svc = services(app)
            with svc.db.read_session() as session:
                study_id = _study_id(session, study)
            summary = create_archive(svc, study_id, target, reason=reason,
                                     actor_name="etmf archive create (console)")
            click.echo(f"Study {study} is locked. Archive {target}: "
                       f"{summary.export.documents} documents, {summary.files} files, "
                       "verify with archive/README.txt.")


def _console_access(*, session_factory, study_id: int):  # type: ignore[no-untyped-def]
    """The console acts as a study manager of the target study (it is the operator's shell)."""
    from etmf.accounts.access import Access, Grant

    return Access(user_id=None, name="etmf ems import (console)", is_admin=True,
                  grants=(Grant(study_id, None, "study_manager"),))
