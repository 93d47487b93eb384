"""`etmf signing crl` and `etmf signing certificates` on a demo instance."""

from __future__ import annotations

import os

from click.testing import CliRunner
from cryptography import x509

from etmf.cli import main


def test_demo_signers_have_certificates_and_the_crl_can_be_published(tmp_path):
    runner = CliRunner()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETMF_")}
    instance = str(tmp_path / "demo")
    demo = runner.invoke(main, ["demo", "--instance", instance, "--no-serve"], env=env)
    assert demo.exit_code == 0, demo.output
    assert "1 request waiting for the investigator, 1 document signed" in demo.output
    listing = runner.invoke(main, ["signing", "certificates", "--instance", instance], env=env)
    assert listing.exit_code == 0, listing.output
    assert "Dr Irene Investigator" in listing.output and "Morgan Manager" in listing.output
    assert "2 certificate(s)." in listing.output
    out = tmp_path / "crl.der"
    crl = runner.invoke(main, ["signing", "crl", "--instance", instance, "--out", str(out)],
                        env=env)
    assert crl.exit_code == 0, crl.output
    assert "CRL with 0 revoked certificate(s)" in crl.output
    assert x509.load_der_x509_crl(out.read_bytes()).issuer.rfc4514_string().startswith(
        "O=eTMF Signing CA")
