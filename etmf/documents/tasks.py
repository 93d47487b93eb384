"""Background work of the documents area, run by `etmf worker`."""

from __future__ import annotations

from flask import Flask

from etmf.jobs import pump


@pump("search.outbox")
def index_waiting_documents(app: Flask) -> int:
    """Index what the search outbox holds (deployments with workers)."""
    from etmf.bootstrap import services
    from etmf.documents.indexing import drain_outbox

    svc = services(app)
    total = 0
    while n := drain_outbox(svc):
        total += n
    return total
