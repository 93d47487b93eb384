"""`etmf signatures …`: signature request housekeeping (reminders)."""

from __future__ import annotations

import click

from etmf.cli import app_context, instance_option


def register(main: click.Group) -> None:
    @main.group()
    def signatures() -> None:
        """Signature requests: reminders to pending signers."""

    @signatures.command("remind")
    @instance_option
    @click.option("--dry-run", is_flag=True,
                  help="List the reminders that are due without mailing or recording them.")
    def remind(instance: str | None, dry_run: bool) -> None:
        """Mail pending signers whose request is due soon or overdue (once per threshold of
        the signature_reminder_days setting)."""
        from etmf.bootstrap import services
        from etmf.workflows.reminders import send_reminders

        with app_context(instance) as app:
            found = send_reminders(services(app), dry_run=dry_run)
        for r in found:
            click.echo(f"{'would remind' if dry_run else 'reminded'} {r.printed_name} "
                       f"<{r.email}>: “{r.document_title}” {r.words} "
                       f"(request {r.request_id}, due {r.due_date.isoformat()})")
        click.echo(f"{len(found)} reminder(s) {'due (dry run: none sent)' if dry_run else 'sent'}.")
