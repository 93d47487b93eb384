"""The server's signing service with users' keys on a PKCS#11 token (SoftHSM2): enrolment
generates the key on the token, the ceremony signs with it, and the result validates."""

from __future__ import annotations

import shutil
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from etmf.signing import pki
from etmf.signing.keystore import Pkcs11KeyStore
from etmf.signing.validation import validate_pdf
from tests.conftest import PASSWORD

from .conftest import blob_bytes, events_of, login_as, post_sign

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
# The same label and PIN as tests/integration/signing/test_signing_pkcs11.py: python-pkcs11
# loads the module once per process, so whichever token directory was seen first is used.
TOKEN, PIN = "etmf", "1234"


@pytest.fixture(scope="module")
def softhsm_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_MODULE).exists():
        pytest.skip("Debian's softhsm2 is not installed")
    folder = tmp_path_factory.mktemp("softhsm-app")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN,
                    "--so-pin", "5678"], check=True, capture_output=True, timeout=30,
                   env={"SOFTHSM2_CONF": str(conf), "PATH": "/usr/bin:/bin"})
    return conf


@pytest.fixture
def settings_overrides(softhsm_conf: Path, monkeypatch) -> dict[str, object]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SOFTHSM2_CONF", str(softhsm_conf))
    return {"signing_keystore": "pkcs11", "pkcs11_module": SOFTHSM_MODULE,
            "pkcs11_token": TOKEN, "pkcs11_pin": PIN}


@pytest.fixture(autouse=True)
def _close_the_token_session(svc):  # type: ignore[no-untyped-def]
    yield
    store = svc.extras.get("signing", {}).get("keystore")
    if isinstance(store, Pkcs11KeyStore):
        store.close()


@pytest.mark.req("SIG-1")
def test_the_ceremony_signs_with_a_key_on_the_token(app, svc, team, approved_doc,
                                                     sequential_request):
    store = pki.keystore(svc)
    assert isinstance(store, Pkcs11KeyStore)
    (issued, *_) = [e for e in events_of(svc, "signing.certificate_issued")
                    if f'"user_id":{team.investigator.id}' in e.payload]
    assert '"keystore":"pkcs11"' in issued.payload

    response = post_sign(login_as(app, team.investigator), sequential_request,
                         password=PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    with svc.db.read_session() as s:
        from etmf.documents.models import Document, DocumentVersion

        version = s.get(DocumentVersion, s.get(Document, approved_doc).current_version_id)
    data = blob_bytes(svc, version.sha256)
    (report,) = validate_pdf(data, [pki.authority(svc).certificate])
    assert (report.status, report.signer_name) == ("VALID", "Dr Irene Investigator")
    sig = PdfFileReader(BytesIO(data)).embedded_signatures[0]
    assert sig.signer_cert.serial_number == int(
        pki.signer(svc, _key_id(svc, team.investigator.id)).serial_number)


def _key_id(svc, user_id: int) -> str:  # type: ignore[no-untyped-def]
    from etmf.signing.service import active_certificate

    with svc.db.read_session() as s:
        return active_certificate(s, user_id).key_id
