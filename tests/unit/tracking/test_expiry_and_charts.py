"""Pure rules: effective expiry dates and the inline SVG bar chart."""

from __future__ import annotations

from datetime import date

import pytest

from etmf.tracking.charts import Bar, bar_chart
from etmf.tracking.expiry import DEFAULT_VALIDITY_DAYS, effective_expiry


@pytest.mark.req("FR-TRACK-3")
def test_own_expiry_date_wins_over_the_artifacts_validity():
    validity = {"087": 730}
    assert effective_expiry(date(2027, 1, 1), date(2026, 1, 1), "087", validity) == \
        date(2027, 1, 1)
    assert effective_expiry(None, date(2026, 1, 1), "087", validity) == date(2028, 1, 1)
    assert effective_expiry(None, None, "087", validity) is None
    assert effective_expiry(None, date(2026, 1, 1), "002", validity) is None
    assert DEFAULT_VALIDITY_DAYS["104"] == 1095  # GCP training: three years


def test_bar_chart_is_accessible_svg_with_links_and_escaped_labels():
    svg = str(bar_chart("Completeness <by site>", [
        Bar("Site <102>", 0, "0 %", "/tracking/studies/1/entries?site=2&problem=open"),
        Bar("Site 101", 50, "50 %")]))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<title id=" in svg and "Completeness &lt;by site&gt;" in svg
    assert 'href="/tracking/studies/1/entries?site=2&amp;problem=open"' in svg
    assert "Site &lt;102&gt;" in svg and svg.count("<a ") == 1
