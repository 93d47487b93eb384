"""Reminders go out over SMTP (aiosmtpd on loopback as the mail server)."""

from __future__ import annotations

from datetime import date

import pytest

from etmf.tracking.reminders import send_reminders
from tests.fixtures.smtp import smtp_server


@pytest.fixture
def smtp_sink():  # type: ignore[no-untyped-def]
    """A real SMTP server on loopback (aiosmtpd) that keeps every message."""
    with smtp_server() as sink:
        yield sink


@pytest.fixture
def settings_overrides(smtp_sink):  # type: ignore[no-untyped-def]
    controller, _handler = smtp_sink
    return {"mail_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": controller.port}


@pytest.mark.req("FR-TRACK-5")
def test_reminders_go_out_over_smtp(tracker, svc, clock, smtp_sink):
    _controller, handler = smtp_sink
    tracker.w.user("study_manager", email="lead@example.org")
    cv = tracker.file("05.02.04", site="101", document_date=date(2026, 11, 1),
                      expiry_date=date(2027, 1, 20), title="CV Dr Cy")
    tracker.approve(cv)
    assert [r.threshold for r in send_reminders(svc)] == [60]
    assert len(handler.messages) == 1
    assert b"lead@example.org" in handler.messages[0]
    assert b"CV Dr Cy" in handler.messages[0]
