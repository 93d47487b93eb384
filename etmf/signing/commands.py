"""`etmf signing …`: the signing CA's revocation list and the certificates it issued."""

from __future__ import annotations

from pathlib import Path

import click

from etmf.cli import app_context, instance_option


def register(main: click.Group) -> None:
    @main.group()
    def signing() -> None:
        """Electronic signatures: the system CA and users' certificates."""

    @signing.command("crl")
    @instance_option
    @click.option("--out", type=click.Path(dir_okay=False), required=True,
                  help="Where to write the CRL (DER), e.g. for a web server to publish.")
    def crl(instance: str | None, out: str) -> None:
        """Sign a fresh certificate revocation list and write it to a file."""
        from etmf.bootstrap import services
        from etmf.signing import pki

        with app_context(instance) as app:
            svc = services(app)
            ca = pki.authority(svc)
            Path(out).write_bytes(ca.build_crl(svc.clock.now()))
            count = len(ca.revocations())
        click.echo(f"CRL with {count} revoked certificate(s) written to {out}.")

    @signing.command("certificates")
    @instance_option
    def certificates(instance: str | None) -> None:
        """List every signing certificate issued, newest first."""
        from sqlalchemy import select

        from etmf.accounts.models import User
        from etmf.bootstrap import services
        from etmf.signing.models import SigningCertificate

        with app_context(instance) as app, services(app).db.read_session() as s:
            rows = s.execute(select(SigningCertificate, User.full_name).join(
                User, User.id == SigningCertificate.user_id)
                .order_by(SigningCertificate.id.desc())).all()
            for cert, name in rows:
                state = f"revoked {cert.revoked_at:%Y-%m-%d}" if cert.revoked_at else "active"
                click.echo(f"{cert.serial[:16]}…  {name:<30}  until "
                           f"{cert.not_after:%Y-%m-%d}  {state}")
        click.echo(f"{len(rows)} certificate(s).")
