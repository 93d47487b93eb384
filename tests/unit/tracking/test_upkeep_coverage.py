"""Every event that changes a document's row keeps the dashboard's caches (a new document
event type must be either followed or listed here as not changing the figures)."""

from __future__ import annotations

import etmf.projections  # noqa: F401 - registers every projection and follower
from etmf.audit.store import _FOLLOWERS, registered_event_types
from etmf.tracking.upkeep import DOCUMENT_EVENTS, document_changed

#: Document events that change no row the dashboard counts (reads, answers to QC issues).
NOT_COUNTED = {"document.viewed", "document.downloaded", "document.qc_issue_answered"}


def test_every_document_event_that_changes_a_document_is_followed():
    document_events = {t for t in registered_event_types() if t.startswith("document.")}
    assert document_events - NOT_COUNTED == set(DOCUMENT_EVENTS)
    for event_type in DOCUMENT_EVENTS:
        assert document_changed in _FOLLOWERS[event_type]
