"""Performance qualification template: an editable DOCX for the customer's own scenarios.

PQ shows that the system does what *this customer* needs, in their process, with their
people; so the protocol is theirs to write. We give the frame: purpose, prerequisites, a
scenario table (ID, scenario, expected result, actual result, pass/fail, performed by, date)
seeded with a few typical eTMF scenarios they can keep, change or delete, and a signature
block.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

PQ_COLUMNS = ("ID", "Scenario", "Expected result", "Actual result", "Pass/fail",
              "Performed by", "Date")

#: Typical scenarios, as a starting point (ID, scenario, expected result).
EXAMPLE_SCENARIOS = (
    ("PQ-01", "A TMF specialist files a site's signed FDA 1572 and classifies it.",
     "The document is filed under 05.02.08 at the site, with the metadata entered."),
    ("PQ-02", "The QC reviewer rejects the document with an issue; the specialist "
     "answers it and resubmits; QC approves.",
     "The issue and its answer are in the audit trail; the document is approved."),
    ("PQ-03", "The investigator signs the approved protocol signature page.",
     "The signed PDF shows name, UTC time and meaning; the signature validates."),
    ("PQ-04", "An inspector with a time-limited grant opens and downloads a document.",
     "The inspector cannot change anything; the access is in the audit trail; the copy "
     "is watermarked."),
    ("PQ-05", "The study's TMF completeness is reviewed before an inspection.",
     "Missing and expired documents are listed as the customer's process expects."),
)
BLANK_ROWS = 10


def write_pq_template(path: Path, *, system: str, generated_at: datetime) -> None:
    """Write the PQ protocol template to ``path`` (a .docx file)."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Pt

    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = section.page_height, section.page_width
    doc.styles["Normal"].font.size = Pt(10)

    doc.add_heading("Performance qualification (PQ) protocol", level=0)
    doc.add_paragraph(f"System: {system}. Template generated {generated_at.isoformat()} (UTC) "
                      "by `etmf validate --pq-template`.")
    doc.add_heading("Purpose and scope", level=1)
    doc.add_paragraph(
        "Demonstrate that the system, installed and qualified (IQ/OQ report), supports "
        "[organisation]'s trial master file process as described in [SOP references]. "
        "Replace the bracketed text and the example scenarios with your own.")
    doc.add_heading("Prerequisites", level=1)
    for item in ("The IQ/OQ validation report for this installation is approved.",
                 "Users are trained on the SOPs named above and have their accounts.",
                 "Test data: [study, sites and documents used for the scenarios]."):
        doc.add_paragraph(item, style="List Bullet")

    doc.add_heading("Scenarios", level=1)
    doc.add_paragraph("Record the actual result as observed; a result that differs from the "
                      "expected one is a deviation to be assessed before approval.")
    table = doc.add_table(rows=1, cols=len(PQ_COLUMNS))
    table.style = "Table Grid"
    for cell, title in zip(table.rows[0].cells, PQ_COLUMNS, strict=True):
        cell.text = ""
        cell.paragraphs[0].add_run(title).bold = True
    for scenario_id, scenario, expected in EXAMPLE_SCENARIOS:
        cells = table.add_row().cells
        cells[0].text, cells[1].text, cells[2].text = scenario_id, scenario, expected
    for n in range(len(EXAMPLE_SCENARIOS) + 1, len(EXAMPLE_SCENARIOS) + 1 + BLANK_ROWS):
        table.add_row().cells[0].text = f"PQ-{n:02d}"

    doc.add_heading("Deviations", level=1)
    doc.add_paragraph("[Number, scenario, description, impact assessment, resolution.]")
    doc.add_heading("Approval", level=1)
    sign = doc.add_table(rows=1, cols=4)
    sign.style = "Table Grid"
    for cell, title in zip(sign.rows[0].cells, ("Step", "Name and role", "Signature",
                                                "Date"), strict=True):
        cell.text = ""
        cell.paragraphs[0].add_run(title).bold = True
    for step in ("Prepared by", "Reviewed by (QA)", "Approved by"):
        sign.add_row().cells[0].text = step
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))
