"""Payment files of a batch: a CSV of every line, and an ISO 20022 credit-transfer file.

**CSV** (UTF-8, comma separated, header row): one row per line paid, then one ``holdback``
row per site (negative) so that each site's rows add up to its net; amounts as decimal text
in the site's currency.

**ISO 20022 pain.001.001.03** (Customer Credit Transfer Initiation, the XML that SEPA and
most banks' and accounts-payable systems import): one ``PmtInf`` (the sponsor's account,
requested execution date) with one ``CdtTrfTxInf`` per site: end-to-end id
``B<batch>-S<site>``, instructed amount (net) in the site's currency, the payee's BIC and
IBAN from the contract, and the remittance text. ``CtrlSum`` is the sum of the amounts.
Sites without an IBAN cannot be in this file: the export refuses and names them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from xml.etree import ElementTree as ET

from sqlalchemy import select

from ctms.payments import money, services
from ctms.payments.models import PaymentBatch, PaymentContract, PaymentItem, PaymentLine
from ctms.payments.services import check_bic, check_iban
from etmf.accounts.access import Access
from etmf.audit.store import UnitOfWork
from etmf.errors import ValidationError
from etmf.studies.models import Site, Study

FORMATS = {"csv": ("text/csv", "csv"), "pain001": ("application/xml", "xml")}
PAIN_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"


@dataclass(frozen=True)
class Debtor:
    """The sponsor's account the payments are made from."""

    name: str
    iban: str
    bic: str

    def checked(self) -> Debtor:
        name = " ".join(self.name.split())
        if not name or len(name) > 70:
            raise ValidationError("Give the name of the paying account holder (at most 70).")
        return Debtor(name, check_iban(self.iban), check_bic(self.bic))


def to_csv(study: Study, batch: PaymentBatch, items: list[PaymentItem],
           lines: dict[int, list[PaymentLine]], sites: dict[int, Site],
           contracts: dict[int, PaymentContract]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["study", "batch", "site", "institution", "payee", "iban", "currency", "kind",
                "activity", "activity_date", "amount"])
    for item in items:
        site, contract = sites[item.site_id], contracts.get(item.site_id)
        head = [study.protocol_number, batch.number, site.number, site.institution,
                contract.payee_name if contract else "", contract.payee_iban or ""
                if contract else "", item.currency]
        for line in lines.get(item.id, []):
            w.writerow([*head, line.kind, line.description, line.activity_on.isoformat(),
                        money.to_text(line.amount, item.currency)])
        if item.holdback:
            w.writerow([*head, "holdback", "Holdback withheld", batch.period_end.isoformat(),
                        "-" + money.to_text(item.holdback, item.currency)])
    return out.getvalue().encode("utf-8")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def to_pain001(study: Study, batch: PaymentBatch, items: list[PaymentItem],
               sites: dict[int, Site], contracts: dict[int, PaymentContract], debtor: Debtor,
               *, created: datetime, execution: date) -> bytes:
    debtor = debtor.checked()
    payable = [i for i in items if i.net > 0]
    missing = [sites[i.site_id].number for i in payable
               if not (contracts.get(i.site_id) and contracts[i.site_id].payee_iban)]
    if missing:
        raise ValidationError("The contract of site " + ", ".join(missing) + " has no IBAN: "
                              "add it, or export the CSV instead.")
    total = sum(money.to_minor(money.to_text(i.net, i.currency), "XXX") for i in payable)
    ctrl = money.to_text(total, "XXX")  # two decimals: the sum as the standard asks
    ET.register_namespace("", PAIN_NS)
    doc = ET.Element(f"{{{PAIN_NS}}}Document")
    root = _sub(doc, "CstmrCdtTrfInitn")
    msg_id = f"{study.protocol_number}-B{batch.number}"[:35]
    hdr = _sub(root, "GrpHdr")
    _sub(hdr, "MsgId", msg_id)
    _sub(hdr, "CreDtTm", created.strftime("%Y-%m-%dT%H:%M:%S"))
    _sub(hdr, "NbOfTxs", str(len(payable)))
    _sub(hdr, "CtrlSum", ctrl)
    _sub(_sub(hdr, "InitgPty"), "Nm", debtor.name)
    pmt = _sub(root, "PmtInf")
    _sub(pmt, "PmtInfId", msg_id)
    _sub(pmt, "PmtMtd", "TRF")
    _sub(pmt, "NbOfTxs", str(len(payable)))
    _sub(pmt, "CtrlSum", ctrl)
    _sub(pmt, "ReqdExctnDt", execution.isoformat())
    _sub(_sub(pmt, "Dbtr"), "Nm", debtor.name)
    _sub(_sub(_sub(pmt, "DbtrAcct"), "Id"), "IBAN", debtor.iban)
    _sub(_sub(_sub(pmt, "DbtrAgt"), "FinInstnId"), "BIC", debtor.bic)
    for item in payable:
        site, contract = sites[item.site_id], contracts[item.site_id]
        tx = _sub(pmt, "CdtTrfTxInf")
        _sub(_sub(tx, "PmtId"), "EndToEndId", f"B{batch.number}-S{site.number}"[:35])
        _sub(_sub(tx, "Amt"), "InstdAmt", money.to_text(item.net, item.currency),
             Ccy=item.currency)
        if contract.payee_bic:
            _sub(_sub(_sub(tx, "CdtrAgt"), "FinInstnId"), "BIC", contract.payee_bic)
        _sub(_sub(tx, "Cdtr"), "Nm", contract.payee_name[:70])
        _sub(_sub(_sub(tx, "CdtrAcct"), "Id"), "IBAN", contract.payee_iban or "")
        _sub(_sub(tx, "RmtInf"), "Ustrd",
             f"{study.protocol_number} site {site.number} payment batch {batch.number}"[:140])
    return ET.tostring(doc, encoding="utf-8", xml_declaration=True)


def export_batch(uow: UnitOfWork, access: Access, batch_id: int, file_format: str, *,
                 debtor: Debtor | None = None, execution: date | None = None
                 ) -> tuple[bytes, str, str]:
    """The batch's payment file (bytes, media type, file name); records the export."""
    if file_format not in FORMATS:
        raise ValidationError(f"The payment file format is one of {', '.join(FORMATS)}.")
    batch, items, lines = services.batch_detail(uow.session, access, batch_id)
    study = uow.session.get(Study, batch.study_id)
    assert study is not None
    sites = {s.id: s for s in uow.session.scalars(
        select(Site).where(Site.id.in_([i.site_id for i in items])))}
    contracts = {c.site_id: c for c in uow.session.scalars(
        select(PaymentContract).where(PaymentContract.site_id.in_(list(sites))))}
    services.mark_exported(uow, access, batch.id, file_format)
    if file_format == "csv":
        body = to_csv(study, batch, items, lines, sites, contracts)
    else:
        if debtor is None:
            raise ValidationError("The ISO 20022 file needs the paying account (name, IBAN, "
                                  "BIC).")
        execution = execution or uow.now.date()
        if execution < uow.now.date():
            raise ValidationError("The execution date is in the past.")
        body = to_pain001(study, batch, items, sites, contracts, debtor,
                          created=uow.now, execution=execution)
    mime, ext = FORMATS[file_format]
    return body, mime, f"{study.protocol_number}-payment-batch-{batch.number}.{ext}"
