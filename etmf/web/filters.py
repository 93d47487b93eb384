"""Jinja filters and globals shared by every page."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Flask

from etmf.documents.lifecycle import State


def utc(value: datetime | None) -> str:
    """Timestamps are shown in UTC and say so (AUD-7)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def isodate(value: date | None) -> str:
    return value.isoformat() if value else ""


def state_label(value: str) -> str:
    try:
        return State(value).label
    except ValueError:
        return value


def filesize(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def register(app: Flask) -> None:
    app.add_template_filter(utc, "utc")
    app.add_template_filter(isodate, "isodate")
    app.add_template_filter(state_label, "state_label")
    app.add_template_filter(filesize, "filesize")

    @app.context_processor
    def _globals() -> dict[str, object]:
        from etmf import __version__
        from etmf.accounts.security import current_access

        return {"etmf_version": __version__, "access": current_access()}
