"""`etmf users …`: list accounts and unlock one from the server console.

Unlocking from the console is the way back in when every administrator is locked out; it is
recorded like any other unlock, with the operator's reason, as the system actor "etmf cli".
"""

from __future__ import annotations

import click

from etmf.cli import app_context, instance_option


def register(main: click.Group) -> None:
    @main.group()
    def users() -> None:
        """Accounts: list them, unlock a locked one."""

    @users.command("list")
    @instance_option
    @click.option("--locked", is_flag=True, help="Only accounts locked by failed sign-ins.")
    def list_users(instance: str | None, locked: bool) -> None:
        """List accounts with their status (never deleted, so deactivated ones too)."""
        from sqlalchemy import select

        from etmf.accounts.models import User
        from etmf.bootstrap import services

        with app_context(instance) as app, services(app).db.read_session() as s:
            q = select(User).order_by(User.email)
            if locked:
                q = q.where(User.locked_at.is_not(None))
            rows = s.scalars(q).all()
            for u in rows:
                state = ("deactivated" if not u.active else
                         f"locked {u.locked_at:%Y-%m-%d %H:%M} UTC" if u.locked_at else "active")
                admin = " admin" if u.is_admin else ""
                click.echo(f"{u.email:<40} {u.full_name:<30} {state}{admin}")
        click.echo(f"{len(rows)} account(s).")

    @users.command("unlock")
    @instance_option
    @click.argument("email")
    @click.option("--reason", required=True, help="Why the account is unlocked (audited).")
    def unlock(instance: str | None, email: str, reason: str) -> None:
        """Unlock the account with this e-mail address."""
        from sqlalchemy import func, select

        from etmf.accounts.models import User
        from etmf.accounts.services import normalise_email, unlock_user
        from etmf.audit.store import Actor, unit_of_work
        from etmf.bootstrap import services

        with app_context(instance) as app:
            svc = services(app)
            address = normalise_email(email)
            with svc.db.read_session() as s:
                user_id = s.scalar(select(User.id).where(func.lower(User.email) == address))
            if user_id is None:
                raise click.ClickException(f"There is no account {address}.")
            with unit_of_work(svc.db, svc.clock, Actor.system("etmf cli")) as uow:
                unlock_user(uow, user_id, reason=reason)
                uow.commit()
        click.echo(f"Unlocked {address}.")
