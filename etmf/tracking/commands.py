"""`etmf reminders run [--dry-run]`: expiry and milestone reminders."""

from __future__ import annotations

import click

from etmf.cli import app_context, instance_option


def register(main: click.Group) -> None:
    @main.group()
    def reminders() -> None:
        """Reminders before documents expire and milestones fall due."""

    @reminders.command("run")
    @instance_option
    @click.option("--dry-run", is_flag=True,
                  help="List the reminders that are due without mailing or recording them.")
    def run(instance: str | None, dry_run: bool) -> None:
        """Mail every reminder due today, once per threshold."""
        from etmf.bootstrap import services
        from etmf.tracking.reminders import send_reminders

        with app_context(instance) as app:
            found = send_reminders(services(app), dry_run=dry_run)
        for r in found:
            click.echo(f"{'would remind' if dry_run else 'reminded'} "
                       f"{', '.join(r.recipients) or '(nobody responsible)'}: {r.what} "
                       f"{r.words} (threshold {r.threshold} days)")
        click.echo(f"{len(found)} reminder(s) "
                   f"{'due (dry run: none sent)' if dry_run else 'sent'}.")
