"""p50 latency of a PAdES B-B signature with a visible stamp: the server's signing service vs
a default pyHanko sign of the same file, in the same run.

"Service" is ``etmf.workflows.services.sign`` - the function the web page and the API call:
re-authentication (argon2 password check), every rule re-checked, the PDF signed, the blob
stored and the new version and ``signature.applied`` event committed (SQLite, local blobs).
"Signer" is the PDF part alone: our PadesSigner, which keeps the parsed key and certificate
and passes ``bytes_reserved``. "Default" is the way pyHanko is usually called:
``SimpleSigner.load(...)`` (read and decrypt the key file) and ``signers.sign_pdf`` without
``bytes_reserved`` (which signs a dummy document first to measure the signature size).

Run:  .venv/bin/python benchmarks/sign_latency.py [--rounds 15]
Target: service <= 0.5 x default.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

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
PASSWORD = "Benchmark-Signer-2026"


def make_pdf(pages: int) -> bytes:
    out = BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    for number in range(1, pages + 1):
        for line in range(40):
            page.drawString(50, 800 - 18 * line, f"Page {number}, line {line}: protocol text.")
        page.showPage()
    page.save()
    return out.getvalue()


def p50_ms(run: Callable[[], Any], rounds: int) -> float:
    run()  # warm-up: imports, font metrics, first-call caches
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


@dataclass
class Server:
    """A throw-away instance with a study, an enrolled study manager and a QC reviewer."""

    app: Any
    svc: Any
    study_id: int
    manager: Any  # Access
    qc: Any  # Access

    def signature_requests(self, pdf: bytes, count: int) -> Iterator[int]:
        """``count`` approved documents with this content, each with a request for the
        manager's signature (made up front: only the signing is timed)."""
        from etmf.audit.store import unit_of_work
        from etmf.documents import services as docs
        from etmf.documents.lifecycle import Action
        from etmf.workflows import services as workflow

        svc = self.svc
        for n in range(count):
            ref = svc.blobs.put(BytesIO(pdf + f"\n%bench {n} {time.time_ns()}\n".encode()))
            stored = docs.StoredFile(sha256=ref.sha256, size=ref.size, mime="application/pdf",
                                     filename=f"bench-{n}.pdf")
            with unit_of_work(svc.db, svc.clock, self.manager.actor) as uow:
                doc_id = docs.file_document(uow, self.manager, docs.FileDocument(
                    study_id=self.study_id, artifact="02.01.02", title=f"Bench {n}",
                    file=stored))
                docs.transition(uow, self.manager, doc_id, Action.SUBMIT_QC,
                                expected_version=1)
                uow.commit()
            with unit_of_work(svc.db, svc.clock, self.qc.actor) as uow:
                docs.transition(uow, self.qc, doc_id, Action.APPROVE, expected_version=2)
                uow.commit()
            with unit_of_work(svc.db, svc.clock, self.manager.actor) as uow:
                rid = workflow.request_signatures(uow, self.manager, workflow.NewSignatureRequest(
                    document_id=doc_id, signers=(workflow.SignerSpec(
                        self.manager.user_id, "approval"),)), self.link, lambda _m: None)
                uow.commit()
            yield rid

    def link(self, request_id: int) -> str:
        return f"http://bench.invalid/signatures/requests/{request_id}/sign"

    def sign(self, request_id: int) -> None:
        from etmf.audit.store import Context
        from etmf.workflows import services as workflow

        with self.app.test_request_context():
            workflow.sign(self.svc, self.manager, Context(), request_id, password=PASSWORD,
                          totp=None, link=self.link)


def make_server(folder: Path) -> Server:
    from etmf import create_app, migrate
    from etmf.accounts.access import Access, Grant
    from etmf.accounts.services import NewUser, create_user, grant_membership
    from etmf.audit.store import Actor, unit_of_work
    from etmf.bootstrap import services
    from etmf.keys import ensure_system_keys
    from etmf.settings import load_settings
    from etmf.signing import service as signing
    from etmf.studies.services import NewStudy, create_study

    settings = load_settings(overrides={"instance_path": str(folder), "log_level": "WARNING"},
                             environ={})
    app = create_app(settings)
    svc = services(app)
    migrate.upgrade(svc.db.engine)
    ensure_system_keys(svc.settings)
    logging.getLogger("etmf").setLevel(logging.WARNING)
    ids = {}
    with app.app_context(), unit_of_work(svc.db, svc.clock, Actor.system("bench")) as uow:
        study_id = create_study(uow, NewStudy(protocol_number="BENCH-1", title="Benchmark",
                                              phase="II", sponsor="Bench"))
        for key, name, role in (("admin", "Ada Admin", None),
                                ("manager", "Dr Jane Smith", "study_manager"),
                                ("qc", "Quentin QC", "qc_reviewer")):
            user = create_user(uow, NewUser(email=f"{key}@bench.example.org", full_name=name,
                                            password=PASSWORD,
                                            global_roles=("admin",) if role is None else ()))
            if role is not None:
                grant_membership(uow, user_id=user.id, study_id=study_id, role=role)
            ids[key] = (user.id, name, role)
        uow.commit()

    def access(key: str) -> Access:
        uid, name, role = ids[key]
        return Access(user_id=uid, name=name, is_admin=role is None,
                      grants=() if role is None else (Grant(study_id, None, role),))

    admin, manager = access("admin"), access("manager")
    with unit_of_work(svc.db, svc.clock, admin.actor) as uow:
        signing.record_identity_check(uow, svc, admin, manager.user_id, method="in_person",
                                      document_seen="Passport (benchmark)")
        uow.commit()
    with unit_of_work(svc.db, svc.clock, manager.actor) as uow:
        signing.accept_statement(uow, svc, manager, accepted=True)
        uow.commit()
    return Server(app, svc, study_id, manager, access("qc"))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = make_server(folder / "instance")
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

        def reauth() -> None:
            from flask_security.utils import verify_password

            from etmf.accounts.models import User

            with server.app.app_context(), server.svc.db.read_session() as s:
                user = s.get(User, server.manager.user_id)
                assert verify_password(PASSWORD, user.password)

        auth_ms = p50_ms(reauth, args.rounds)
        rows = []
        for pages in (1, 100):
            pdf = make_pdf(pages)
            requests = iter(list(server.signature_requests(pdf, args.rounds + 1)))
            service = p50_ms(lambda requests=requests: server.sign(next(requests)),
                             args.rounds)
            signer = p50_ms(lambda pdf=pdf: ours.sign(BytesIO(pdf), manifestation),
                            args.rounds)
            default = p50_ms(lambda pdf=pdf: default_call(pdf), args.rounds)
            rows.append((pages, len(pdf), service, signer, default))
        server.svc.db.dispose()

    print(f"PAdES B-B with visible stamp, p50 of {args.rounds} rounds (RSA-2048), one process")
    print(f"re-authentication alone (argon2 password check): {auth_ms:.1f} ms")
    print(f"{'pages':>5} {'bytes':>9} {'service ms':>11} {'signer ms':>10} {'default ms':>11} "
          f"{'svc/def':>8} {'sgn/def':>8} {'service sig/s':>14} {'default sig/s':>14}")
    for pages, size, service, signer, default in rows:
        print(f"{pages:>5} {size:>9} {service:>11.1f} {signer:>10.1f} {default:>11.1f} "
              f"{service / default:>8.2f} {signer / default:>8.2f} {1000 / service:>14.1f} "
              f"{1000 / default:>14.1f}")
    worst = max(row[2] / row[4] for row in rows)
    print(f"PDF signing alone (signer) vs default: worst ratio "
          f"{max(row[3] / row[4] for row in rows):.2f}")
    verdict = "met" if worst <= 0.5 else "NOT met"
    print(f"target service <= 0.5 x default: {verdict} (worst ratio {worst:.2f}); "
          "sig/s is per process - writes are serialised, the PDF work is not")


if __name__ == "__main__":
    main()
