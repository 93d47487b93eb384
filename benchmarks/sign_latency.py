"""p50 latency of a PAdES B-B signature with a visible stamp: our PadesSigner vs pyHanko's default.

"Ours" keeps the parsed key and certificate in a PadesSigner and passes ``bytes_reserved``.
"Default" is the way pyHanko is usually called: ``SimpleSigner.load(...)`` (read and decrypt
the key file) and ``signers.sign_pdf`` without ``bytes_reserved`` (which signs a dummy
document first to measure the signature size), on the same files, in the same run.

Run:  .venv/bin/python benchmarks/sign_latency.py [--rounds 15]
Target: ours <= 0.5 x default.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from etmf.signing.ca import CertificateAuthority, UserIdentity
from etmf.signing.keystore import FileKeyStore, derive_passphrase
from etmf.signing.manifestation import SignatureManifestation
from etmf.signing.pades import PadesSigner

SECRET = b"benchmark-server-secret-0123456789"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def make_pdf(pages: int) -> bytes:
    out = BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    for number in range(1, pages + 1):
        for line in range(40):
            page.drawString(50, 800 - 18 * line, f"Page {number}, line {line}: protocol text.")
        page.showPage()
    page.save()
    return out.getvalue()


def p50_ms(run: Callable[[], bytes], rounds: int) -> float:
    run()  # warm-up: imports, font metrics, first-call caches
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ca = CertificateAuthority.create(folder / "ca", server_secret=SECRET, name="Bench CA",
                                         crl_url="http://127.0.0.1/pki/crl.der",
                                         now=NOW - timedelta(days=1))
        keys = FileKeyStore(folder / "keys", SECRET)
        cert = ca.issue_user_certificate(UserIdentity("u1", "Dr Jane Smith", "j@example.org"),
                                         keys.generate_key("u1"), now=NOW - timedelta(days=1))
        keys.store_certificate("u1", cert)
        ours = PadesSigner(keys.signer("u1", [ca.certificate]))
        manifestation = SignatureManifestation(
            "Dr Jane Smith", "j@example.org", "Approval", NOW, "DOC-1", "1.0",
            "password+totp", NOW)
        key_file = str(keys.key_path("u1"))
        cert_file = str(folder / "keys" / "u1.cert.pem")
        ca_file = str(folder / "ca" / "ca.cert.pem")
        passphrase = derive_passphrase(SECRET, "user-key:u1")

        def default_call(pdf: bytes) -> bytes:
            signer = signers.SimpleSigner.load(key_file, cert_file, ca_chain_files=(ca_file,),
                                               key_passphrase=passphrase)
            assert signer is not None
            meta = signers.PdfSignatureMetadata(field_name="Sig1", reason="Approval",
                                                subfilter=SigSeedSubFilter.PADES)
            out = BytesIO()
            signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), meta, signer=signer,
                             new_field_spec=fields.SigFieldSpec("Sig1", on_page=-1,
                                                                box=(50, 50, 545, 112)),
                             output=out)
            return out.getvalue()

        rows = []
        for pages in (1, 100):
            pdf = make_pdf(pages)
            mine = p50_ms(lambda pdf=pdf: ours.sign(BytesIO(pdf), manifestation), args.rounds)
            theirs = p50_ms(lambda pdf=pdf: default_call(pdf), args.rounds)
            rows.append((pages, len(pdf), mine, theirs))

    print(f"PAdES B-B with visible stamp, p50 of {args.rounds} rounds (RSA-2048)")
    print(f"{'pages':>5} {'bytes':>9} {'ours ms':>9} {'default ms':>11} {'ratio':>6} "
          f"{'ours sig/s':>11} {'default sig/s':>14}")
    for pages, size, mine, theirs in rows:
        print(f"{pages:>5} {size:>9} {mine:>9.1f} {theirs:>11.1f} {mine / theirs:>6.2f} "
              f"{1000 / mine:>11.1f} {1000 / theirs:>14.1f}")
    worst = max(mine / theirs for _, _, mine, theirs in rows)
    verdict = "met" if worst <= 0.5 else "NOT met"
    print(f"target ours <= 0.5 x default: {verdict} (worst ratio {worst:.2f})")


if __name__ == "__main__":
    main()
