"""The public face of the signing CA: its certificate and its current CRL (the URL named in
every certificate's CRL distribution point). No sign-in: relying parties fetch these."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response

from etmf.bootstrap import services
from etmf.signing import pki

bp = Blueprint("pki", __name__, url_prefix="/pki")


@bp.get("/ca.pem")
def ca_certificate():  # type: ignore[no-untyped-def]
    cert = pki.authority(services()).certificate
    return Response(cert.public_bytes(serialization.Encoding.PEM),
                    mimetype="application/x-pem-file",
                    headers={"Content-Disposition": 'inline; filename="etmf-signing-ca.pem"'})


@bp.get("/crl.der")
def crl():  # type: ignore[no-untyped-def]
    svc = services()
    return Response(pki.authority(svc).build_crl(svc.clock.now()),
                    mimetype="application/pkix-crl",
                    headers={"Cache-Control": "no-cache"})
