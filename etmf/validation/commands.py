"""`etmf validate`: the IQ/OQ report with its traceability matrix, and the PQ template.

A thin command over etmf.validation: IQ reads the configured instance (nothing changes),
OQ runs the requirement-marked tests in a child pytest process, and the report is written
as HTML, PDF and the raw JSON evidence, next to an editable PQ template.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from etmf.cli import app_context, instance_option

if TYPE_CHECKING:
    from etmf.validation.report import ValidationReport


def register(main: click.Group) -> None:
    main.add_command(validate)


def _system() -> str:
    return f"etmf {metadata.version('etmf')}"


@dataclass
class _Bar:
    """A progress bar that appears once the number of tests is known."""

    bar: Any = None
    shown: int = 0

    def __call__(self, total: int | None, done: int) -> None:
        if total is None:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="Running OQ tests",
                                         file=sys.stderr)
            self.bar.__enter__()
        step = min(done, total) - self.shown
        if step > 0:
            self.bar.update(step)
            self.shown += step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@click.command()
@instance_option
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Folder for the report (default: ./validation-<UTC date and time>).")
@click.option("--only-marked/--all-tests", default=True, show_default=True,
              help="Run only the tests that carry a requirement marker.")
@click.option("--tests", "selection", multiple=True, type=click.Path(exists=True),
              help="Run only these test files or folders (repeatable): a partial run.")
@click.option("-k", "keyword", default=None, help="pytest -k expression: a partial run.")
@click.option("--requirement", "-r", "requirements", multiple=True, metavar="ID",
              help="Validate only this requirement (repeatable): a partial re-validation.")
@click.option("--workers", "-n", default=2, show_default=True, type=click.IntRange(min=0),
              help="Parallel test processes (pytest-xdist); 0 runs in one process.")
@click.option("--suite", type=click.Path(file_okay=False), default=None,
              help="The tests/ folder (default: the one beside the installed package).")
@click.option("--pq-template", type=click.Path(dir_okay=False), default=None,
              help="Only write the PQ template (DOCX) to this file, then stop.")
@click.option("--file-into", "file_into", metavar="STUDY", default=None,
              help="File the report PDF into this study's TMF (protocol number), in the zone "
                   "of ETMF_VALIDATION_ZONE (10 or 01).")
@click.option("--filed-by", metavar="EMAIL", default=None,
              help="The member of that study who files it (needs the right to file).")
@click.option("--signer", "signers", multiple=True, metavar="EMAIL=MEANING",
              help="Request this signature on the filed report, in order (repeatable), "
                   "e.g. --signer lead@example.org=author --signer qa@example.org=approval.")
def validate(instance: str | None, output: str | None, only_marked: bool,
             selection: tuple[str, ...], keyword: str | None, requirements: tuple[str, ...],
             workers: int, suite: str | None, pq_template: str | None,
             file_into: str | None, filed_by: str | None,
             signers: tuple[str, ...]) -> None:
    """Computer system validation: installation qualification (IQ) of this instance,
    operational qualification (OQ) by running the requirement-marked tests, and a report
    (HTML and PDF) with the traceability matrix requirement -> tests -> result and every
    deviation. Non-zero exit when any test fails or any requirement has no passing test."""
    from etmf.validation.pq import write_pq_template
    from etmf.validation.requirements import BY_ID

    now = datetime.now(UTC).replace(microsecond=0)
    if pq_template:
        write_pq_template(Path(pq_template), system=_system(), generated_at=now)
        click.echo(f"PQ template written to {pq_template}.")
        return
    if (file_into is None) != (filed_by is None) or (signers and file_into is None):
        raise click.UsageError("--file-into and --filed-by go together (and --signer needs "
                               "them).")
    unknown = [r for r in requirements if r not in BY_ID]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} not in the requirement catalogue.",
                                 param_hint="--requirement")

    from etmf.validation.oq import SuiteNotFound, locate_suite

    try:  # before anything else: without its tests, an installation cannot be validated
        tests_dir = locate_suite(suite)
    except SuiteNotFound as exc:
        raise click.ClickException(exc.message) from None
    out = Path(output or f"validation-{now.strftime('%Y%m%d-%H%M%S')}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    report = _run(instance, out, now, tests_dir, only_marked=only_marked, selection=selection,
                  keyword=keyword, requirements=requirements, workers=workers)

    from etmf.validation.report import write_html, write_pdf

    write_html(report, out / "validation-report.html")
    write_pdf(report, out / "validation-report.pdf")
    write_pq_template(out / "pq-template.docx", system=report.system, generated_at=now)

    if file_into is not None and filed_by is not None:
        _file_report(instance, out / "validation-report.pdf", report, file_into, filed_by,
                     signers)
    for row in report.iq.failures:
        click.echo(f"IQ FAIL  {row.section}: {row.item}: {row.value}")
    if report.oq_problem:
        click.echo(f"OQ FAILED  {report.oq_problem}")
    for d in report.failing_deviations:
        if d.kind != "requirement without test":
            click.echo(f"FAIL  {d.subject}  {d.detail}")
    untested = [r.requirement.id for r in report.matrix.rows if r.status == "no test"]
    if untested:
        click.echo(f"NO TEST  {', '.join(untested)}")
    m = report.matrix
    click.echo(f"Report: {out / 'validation-report.pdf'} (and .html, oq-evidence.json, "
               "pq-template.docx).")
    summary = (f"{len(m.rows)} requirements: {m.count('pass')} passed, {m.count('fail')} "
               f"failed, {m.count('no test')} without a passing test; {m.tests_run} tests run; "
               f"{len(report.iq.failures)} IQ check(s) failed")
    if report.partial:
        summary += f"; partial run ({report.partial})"
    if not report.verdict_ok:
        click.echo(f"Validation FAILED: {summary}.")
        sys.exit(1)
    click.echo(f"Validation passed: {summary}.")


def _file_report(instance: str | None, pdf: Path, report: ValidationReport, study: str,
                 filed_by: str, signers: tuple[str, ...]) -> None:
    """File the report into the study's TMF and request its signatures (FR-VAL-4)."""
    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services
    from etmf.errors import EtmfError
    from etmf.validation.filing import (
        file_validation_report,
        parse_signer,
        study_by_protocol,
        user_by_email,
    )
    from etmf.workflows.services import access_of, request_link

    with app_context(instance) as app:
        svc = services(app)
        try:
            with unit_of_work(svc.db, svc.clock, Actor(None, "etmf validate")) as lookup:
                filer = user_by_email(lookup, filed_by)
                access = access_of(lookup.session, filer)
                study_id = study_by_protocol(lookup, study).id
                wanted = [parse_signer(s) for s in signers]
                signer_ids = [(user_by_email(lookup, email).id, meaning)
                              for email, meaning in wanted]
            with unit_of_work(svc.db, svc.clock, Actor(filer.id, filer.full_name)) as uow:
                filed = file_validation_report(
                    uow, svc, access, study_id=study_id, pdf=pdf.read_bytes(),
                    report_id=report.report_id, verdict=report.verdict,
                    generated_at=report.generated_at, zone=svc.settings.validation_zone,
                    signers=signer_ids,
                    link=lambda rid: request_link(svc.settings.server_name_for_mail, rid))
                uow.commit()
        except EtmfError as exc:
            raise click.ClickException(
                f"The report was written but not filed: {getattr(exc, 'message', exc)}"
            ) from None
    click.echo(f"Filed into {filed.study} as document {filed.document_id} (artifact "
               f"{filed.artifact}, In QC)"
               + (f"; signature request {filed.request_id} sent." if filed.request_id
                  else "."))


def _run(instance: str | None, out: Path, now: datetime, tests_dir: Path, *,
         only_marked: bool, selection: tuple[str, ...], keyword: str | None,
         requirements: tuple[str, ...], workers: int) -> ValidationReport:
    from etmf.bootstrap import services
    from etmf.validation.iq import installation_qualification
    from etmf.validation.matrix import build_matrix
    from etmf.validation.oq import OqPlan, run_oq
    from etmf.validation.report import ValidationReport

    with app_context(instance) as app:
        svc = services(app)
        click.echo("Installation qualification…", err=True)
        iq = installation_qualification(svc, progress=lambda msg: click.echo(f"  {msg}",
                                                                            err=True))
        settings = svc.settings
        instance_path = str(settings.instance_path)
        pg_url = None if settings.is_sqlite else svc.db.engine.url.render_as_string(
            hide_password=False)
        backends = {
            "Database for the OQ tests": (
                "PostgreSQL (scratch databases created from "
                f"{svc.db.engine.url.render_as_string(hide_password=True)})"
                if pg_url else "SQLite (scratch files)"),
            "Storage for the OQ tests": "local folders; S3 tests against moto's S3 server"
            + (f" (configured: {settings.storage_backend})"
               if settings.storage_backend != "local" else ""),
            "Search for the OQ tests": "Whoosh" + (
                " and PostgreSQL full-text search" if pg_url else ""),
        }

    partial = "; ".join(filter(None, [
        "tests " + ", ".join(selection) if selection else "",
        f"-k {keyword}" if keyword else "",
        "requirements " + ", ".join(requirements) if requirements else "",
        "" if only_marked else "all tests, marked or not",
    ]))
    partial = partial if (selection or keyword or requirements) else ""
    report = ValidationReport(
        report_id=f"VAL-{now.strftime('%Y%m%d-%H%M%S')}", generated_at=now, system=_system(),
        instance=instance_path, iq=iq, matrix=build_matrix([], scope=requirements),
        partial=partial, backends=backends)
    plan = OqPlan(suite=tests_dir, project_root=tests_dir.parent,
                  selection=tuple(str(Path(s).resolve()) for s in selection),
                  keyword=keyword, requirements=requirements, only_marked=only_marked,
                  workers=workers, database_url=pg_url)
    click.echo(f"Operational qualification: running the tests in {tests_dir}…", err=True)
    bar = _Bar()
    try:
        result = run_oq(plan, out, progress=bar)
    finally:
        bar.close()
    report.oq_command = result.command
    report.oq_evidence = result.evidence
    report.matrix = build_matrix(result.tests,
                                 collection_errors=result.evidence.get("collection_errors", []),
                                 scope=requirements)
    if result.returncode not in (0, 1, 5):  # interrupted, internal or usage error
        report.oq_problem = (f"pytest stopped with exit status {result.returncode} "
                             f"({result.evidence.get('summary', '')}); see {result.log_path}")
    return report
