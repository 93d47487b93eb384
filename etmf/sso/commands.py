"""`etmf sso check`: the configured identity providers, each checked by fetching its
discovery document and keys, so a wrong issuer or unreachable provider shows before users
try to sign in."""

from __future__ import annotations

import click

from etmf.cli import app_context, instance_option


def register(main: click.Group) -> None:
    @main.group()
    def sso() -> None:
        """Single sign-on identity providers."""

    @sso.command("check")
    @instance_option
    def check(instance: str | None) -> None:
        """List the identity providers and check each one's discovery document and keys."""
        from etmf.sso.provider import SsoRefused
        from etmf.web.sso import registry

        failed = 0
        with app_context(instance) as app:
            providers = registry(app)
            for name, provider in providers.items():
                c = provider.config
                try:
                    logout = bool(provider.metadata().get("end_session_endpoint"))  # type: ignore[attr-defined]
                    keys = len(provider.keys().keys)  # type: ignore[attr-defined]
                    state = f"ok ({keys} key(s), sign-out {'yes' if logout else 'no'})"
                except (SsoRefused, OSError, ValueError) as exc:
                    failed += 1
                    state = f"FAILED: {getattr(exc, 'message', exc)}"
                click.echo(f"{name:<16} {c.issuer:<40} domains {','.join(c.allowed_domains) or '*'}"
                           f" · {c.provisioning} · {state}")
        click.echo(f"{len(providers)} provider(s), {failed} failed.")
        if failed:
            raise SystemExit(1)
