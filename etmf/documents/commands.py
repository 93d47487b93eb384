"""`etmf search …`: rebuild the full-text index from the documents."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    @main.group("search")
    def search() -> None:
        """Full-text search index."""

    @search.command("reindex")
    @click.option("--instance", type=click.Path(file_okay=False), default=None,
                  help="Instance folder (default: $ETMF_INSTANCE_PATH or ./instance).")
    def reindex(instance: str | None) -> None:
        """Rebuild the search index from every document (current version text and
        metadata). Text already extracted is reused; failed extractions are retried."""
        from etmf.bootstrap import services
        from etmf.cli import app_context
        from etmf.documents.indexing import count_documents, reindex_all
        from etmf.search.base import SearchError

        with app_context(instance) as app:
            svc = services(app)
            with svc.db.read_session() as session:
                total = count_documents(session)
            try:
                with click.progressbar(length=total, label="Indexing documents",
                                       show_pos=True) as bar:
                    indexed, failures = reindex_all(svc, progress=bar.update)
            except SearchError as exc:
                raise click.ClickException(f"The search index could not be rebuilt: {exc}") \
                    from None
            note = (f"; text could not be extracted from {failures} file(s), "
                    "they are searchable by metadata only" if failures else "")
            click.echo(f"Indexed {indexed} documents into {svc.search.describe()}{note}.")
