"""The validation report, in HTML and PDF: summary, IQ, traceability matrix, deviations,
OQ execution record and a signature block.

The PDF is built with reportlab from the same :class:`ValidationReport` as the HTML, in the
base-14 Helvetica font (text is extractable with ``pdftotext``); characters outside its
encoding are written in ASCII (``→`` as ``->``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from etmf.validation.iq import IqReport
from etmf.validation.matrix import FAILING, Matrix

SIGNATORIES = (
    ("Prepared by", "System owner / validation lead"),
    ("Reviewed by", "Quality assurance"),
    ("Approved by", "Process owner"),
)


@dataclass
class ValidationReport:
    """Everything the report shows; built by `etmf validate`."""

    report_id: str
    generated_at: datetime
    system: str  # "etmf 0.1.0"
    instance: str
    iq: IqReport
    matrix: Matrix
    oq_command: list[str] = field(default_factory=list)
    oq_evidence: dict[str, Any] = field(default_factory=dict)
    oq_problem: str = ""  # why the OQ run broke off (pytest usage or internal error)
    partial: str = ""  # how the selection was restricted, if it was
    backends: dict[str, str] = field(default_factory=dict)

    @property
    def failing_deviations(self) -> list[Any]:
        return [d for d in self.matrix.deviations if d.kind != "test skipped"]

    @property
    def verdict_ok(self) -> bool:
        return not self.failing_deviations and not self.iq.failures and not self.oq_problem

    @property
    def verdict(self) -> str:
        return "PASS" if self.verdict_ok else "FAIL"


# ---- HTML -----------------------------------------------------------------------------------


def write_html(report: ValidationReport, path: Path) -> None:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("etmf.validation", "templates"),
                      autoescape=select_autoescape(default=True))
    html = env.get_template("report.html").render(r=report, signatories=SIGNATORIES)
    path.write_text(html, encoding="utf-8")


# ---- PDF ------------------------------------------------------------------------------------

_ASCII = {"→": "->", "←": "<-", "≥": ">=", "≤": "<=", "✓": "ok", "✗": "x", "…": "...",
          "“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-"}


def _pdf_text(value: object) -> str:
    """Text safe for a Helvetica paragraph: XML-escaped, characters outside cp1252 replaced."""
    out = []
    for ch in str(value):
        ch = _ASCII.get(ch, ch)
        try:
            ch.encode("cp1252")
        except UnicodeEncodeError:
            ch = "?"
        out.append(ch)
    return escape("".join(out))


def write_pdf(report: ValidationReport, path: Path) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    styles = getSampleStyleSheet()
    body = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=7.5, leading=9.5)
    small = ParagraphStyle("small", parent=body, fontSize=6.5, leading=8)
    bold = ParagraphStyle("bold", parent=body, fontName="Helvetica-Bold")
    h1, h2 = styles["Title"], styles["Heading2"]
    red, green, amber = colors.HexColor("#f8d7da"), colors.HexColor("#d1e7dd"), \
        colors.HexColor("#fff3cd")

    def p(text: object, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(_pdf_text(text), style)

    def table(data: list[list[Any]], widths: list[float], extra: list[Any] | None = None,
              header: bool = True, heights: list[float | None] | None = None) -> Table:
        t = Table(data, colWidths=widths, rowHeights=heights, repeatRows=1 if header else 0)
        style = [("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                 ("VALIGN", (0, 0), (-1, -1), "TOP")]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9ecef")))
        t.setStyle(TableStyle(style + (extra or [])))
        return t

    story: list[Any] = [
        p(f"Computer system validation report (IQ/OQ): {report.system}", h1),
        p(f"Report {report.report_id} - generated {report.generated_at.isoformat()} (UTC) - "
          f"instance {report.instance}"),
        Spacer(1, 4 * mm),
        p("Summary", h2),
    ]
    m = report.matrix
    verdict_colour = green if report.verdict_ok else red
    summary = [
        [p("Verdict", bold), p(report.verdict, bold)],
        [p("Requirements"), p(f"{len(m.rows)} in scope: {m.count('pass')} passed, "
                              f"{m.count('fail')} failed, {m.count('no test')} without a "
                              "passing test")],
        [p("Tests run"), p(f"{m.tests_run}: " + (", ".join(
            f"{n} {k}" for k, n in sorted(m.outcome_counts.items())) or "none"))],
        [p("IQ checks"), p(f"{sum(1 for r in report.iq.rows if r.ok)} passed, "
                           f"{len(report.iq.failures)} failed")],
        [p("Deviations"), p(str(len(report.failing_deviations)))],
    ]
    if report.partial:
        summary.append([p("Selection"), p(f"PARTIAL run: {report.partial}")])
    if report.oq_problem:
        summary.append([p("OQ"), p(f"BROKE OFF: {report.oq_problem}")])
    story.append(table(summary, [45 * mm, 220 * mm],
                       [("BACKGROUND", (1, 0), (1, 0), verdict_colour)], header=False))

    story += [Spacer(1, 4 * mm), p("Deviations", h2)]
    if report.matrix.deviations:
        rows = [[p("Kind", bold), p("Subject", bold), p("Detail", bold)]]
        extra = []
        for i, d in enumerate(report.matrix.deviations, start=1):
            rows.append([p(d.kind), p(d.subject, small), p(d.detail, small)])
            extra.append(("BACKGROUND", (0, i), (-1, i),
                          amber if d.kind == "test skipped" else red))
        story.append(table(rows, [40 * mm, 95 * mm, 130 * mm], extra))
    else:
        story.append(p("None."))

    story += [Spacer(1, 4 * mm), p("Traceability matrix (requirement -> tests -> result)", h2)]
    rows = [[p(h, bold) for h in ("ID", "Requirement", "Source", "Tests: result, start - "
                                  "stop (UTC)", "Status")]]
    extra = []
    # One table row per traced test (a requirement with dozens of tests must not make one
    # row taller than a page); the requirement's text and status sit on its first row.
    for row in m.rows:
        colour = {"pass": green, "fail": red}.get(row.status, amber)
        tests = row.tests or [None]
        for n, t in enumerate(tests):
            i = len(rows)
            test_cell = Paragraph(
                f"{_pdf_text(t.nodeid)}: <b>{_pdf_text(t.outcome)}</b>, "
                f"{_pdf_text(t.start or '-')} - {_pdf_text((t.stop or '-')[11:])}"
                if t is not None else "none", small)
            if n == 0:
                rows.append([p(row.requirement.id, bold), p(row.requirement.text, small),
                             p(row.requirement.source, small), test_cell,
                             p(row.status.upper(), bold)])
                extra.append(("BACKGROUND", (4, i), (4, i), colour))
                if row.status != "pass":
                    extra.append(("BACKGROUND", (0, i), (0, i), colour))
            else:
                rows.append([p(row.requirement.id, small), "", "", test_cell, ""])
            if t is not None and t.outcome in FAILING:
                extra.append(("BACKGROUND", (3, i), (3, i), red))
    story.append(table(rows, [18 * mm, 80 * mm, 35 * mm, 112 * mm, 20 * mm], extra))

    story += [Spacer(1, 4 * mm), p("Installation qualification", h2)]
    rows = [[p(h, bold) for h in ("Section", "Item", "Value", "Result")]]
    extra = []
    for i, r in enumerate(report.iq.rows, start=1):
        result = "" if r.ok is None else ("PASS" if r.ok else "FAIL")
        rows.append([p(r.section, small), p(r.item, small), p(r.value, small), p(result)])
        if r.ok is False:
            extra.append(("BACKGROUND", (0, i), (-1, i), red))
    story.append(table(rows, [45 * mm, 55 * mm, 145 * mm, 20 * mm], extra))

    story += [Spacer(1, 4 * mm), p("Operational qualification: execution record", h2)]
    ev = report.oq_evidence
    rows = [[p("Command"), p(" ".join(report.oq_command) or "-", small)],
            [p("Started / finished (UTC)"), p(f"{ev.get('started_at', '-')} / "
                                              f"{ev.get('finished_at', '-')}")],
            [p("pytest exit status"), p(str(ev.get("exitstatus", "-")))],
            [p("pytest summary"), p(ev.get("summary", "-"), small)]]
    rows += [[p(k), p(v, small)] for k, v in report.backends.items()]
    story.append(table(rows, [45 * mm, 220 * mm], header=False))

    sign = [[p(h, bold) for h in ("", "Name", "Role", "Signature", "Date (UTC)")]]
    sign += [[p(label, bold), "", p(role), "", ""] for label, role in SIGNATORIES]
    sign_table = table(sign, [30 * mm, 60 * mm, 55 * mm, 75 * mm, 45 * mm],
                       heights=[None] + [14 * mm] * len(SIGNATORIES))
    story.append(KeepTogether([
        Spacer(1, 6 * mm), p("Approval", h2),
        p("By signing, each signatory confirms that this report is complete and that every "
          "deviation listed above has been assessed. The report may also be filed into the "
          "study's TMF and signed electronically through the signature workflow."),
        Spacer(1, 2 * mm), sign_table]))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 8 * mm, _pdf_text(
            f"{report.system} - validation report {report.report_id} - verdict "
            f"{report.verdict}").replace("&amp;", "&"))
        canvas.drawRightString(doc.pagesize[0] - 15 * mm, 8 * mm, f"Page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(str(path), pagesize=landscape(A4), leftMargin=15 * mm,
                            rightMargin=15 * mm, topMargin=12 * mm, bottomMargin=14 * mm,
                            title=f"Validation report {report.report_id}",
                            author=report.system, subject="IQ/OQ and traceability matrix")
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
