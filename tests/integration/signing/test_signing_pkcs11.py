"""Signing with a key that lives on a PKCS#11 token (SoftHSM2), as production HSMs do."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest

from etmf.signing.ca import UserIdentity
from etmf.signing.errors import KeyStoreError
from etmf.signing.keystore import Pkcs11KeyStore
from etmf.signing.pades import PadesSigner
from etmf.signing.validation import validate_pdf

from .helpers import CHECK_AT, PKI_BIRTH, Pki, manifestation

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN, PIN = "etmf", "1234"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11KeyStore]:
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).exists():
        pytest.skip("Debian's softhsm2 is not installed")
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN,
                        "--pin", PIN, "--so-pin", "5678"], check=True, capture_output=True,
                       timeout=30)
        with Pkcs11KeyStore(SOFTHSM_MODULE, TOKEN, PIN) as store:
            yield store


@pytest.fixture(scope="module")
def token_signer(token: Pkcs11KeyStore, pki: Pki) -> PadesSigner:
    public = token.generate_key("erin")
    cert = pki.ca.issue_user_certificate(
        UserIdentity("erin", "Dr Erin Token", "erin@example.org"), public, now=PKI_BIRTH,
        valid_for=timedelta(days=40 * 365))
    token.store_certificate("erin", cert)
    return PadesSigner(token.signer("erin", [pki.ca.certificate]), is_revoked=pki.ca.is_revoked)


def test_token_key_signs_a_pdf_that_validates(token_signer: PadesSigner, one_page_pdf: bytes,
                                              pki: Pki) -> None:
    signed = token_signer.sign(BytesIO(one_page_pdf), manifestation(signer_name="Dr Erin Token"))
    report = validate_pdf(signed, [pki.ca.certificate], now=CHECK_AT)[0]
    assert report.status == "VALID"
    assert report.certificate_serial == token_signer.serial_number


def test_token_key_cannot_be_extracted(token: Pkcs11KeyStore, token_signer: PadesSigner) -> None:
    from pkcs11 import Attribute, ObjectClass

    key = next(token._session.get_objects({Attribute.LABEL: "erin",
                                           Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
    assert key[Attribute.SENSITIVE] is True
    assert key[Attribute.EXTRACTABLE] is False


def test_wrong_pin_is_a_clear_error(token: Pkcs11KeyStore) -> None:
    with pytest.raises(KeyStoreError, match="Cannot open PKCS#11 token"):
        Pkcs11KeyStore(SOFTHSM_MODULE, TOKEN, "0000")
