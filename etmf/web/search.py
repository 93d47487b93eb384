"""Full-text search over the documents a user may see.

The permission scope goes INTO the query (etmf.search contract): studies the user belongs
to, limited to their sites where their role is site-limited (plus trial- and country-level
documents), and, for roles without draft visibility, approved, superseded, placeholder and
signpost records only. Hits, totals and facets therefore never count a hidden document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for
from flask_security import auth_required
from markupsafe import Markup, escape
from sqlalchemy import select

from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.documents.lifecycle import VISIBLE_WITHOUT_DRAFTS, status_label
from etmf.documents.models import Document
from etmf.reference_model.model import UnknownArtifact, load_reference_model
from etmf.search.base import Scope, SearchQuery, SearchResults, SearchUnavailable
from etmf.studies.models import Site, Study
from etmf.web import db_session

bp = Blueprint("search", __name__)

NAV = [("Search", "search.search", 20)]

PER_PAGE = 20
#: Values shown per facet, the largest counts first.
FACET_SHOWN = 15
#: The facets of the results, in the order the page lists them.
FACET_HEADINGS = (("zone", "Zone"), ("artifact", "Artifact"), ("site", "Site"),
                  ("status", "Status"), ("year", "Year"))
TIME_BUDGET_S = 2.0


def scope_for(access: Access, study_id: int | None = None
              ) -> tuple[Scope, frozenset[str] | None, bool]:
    """The user's search scope, the statuses they may see (None: all) and whether drafts
    were left out of a cross-study search because one study hides them from this user.

    A study whose grant is limited to some zones (inspectors) is searched only on its own
    (choose it): :func:`zones_for` then limits the zones inside the query.
    """
    studies: dict[int, frozenset[int] | None] = {}
    candidates = [sid for sid in sorted(access.study_ids())
                  if study_id is None or sid == study_id]
    for sid in candidates:
        if access.zone_scope(sid) is not None and len(candidates) > 1:
            continue
        if access.can(Permission.VIEW_STUDY, sid):
            studies[sid] = access.site_scope(sid)
    drafts = [access.can(Permission.VIEW_DRAFTS, sid) for sid in studies]
    if all(drafts):
        return Scope(studies), None, False
    # One query cannot vary the visible statuses per study: deny by default and say so.
    return Scope(studies), frozenset(VISIBLE_WITHOUT_DRAFTS), any(drafts)


def zones_for(access: Access, scope: Scope, wanted: frozenset[str] | None
              ) -> frozenset[str] | None:
    """The zone filter: what was asked for, within the zones a limited grant allows."""
    for sid in scope.studies:
        allowed = access.zone_scope(sid)
        if allowed is not None:
            return (wanted & allowed) if wanted else allowed
    return wanted


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _one(name: str) -> frozenset[str] | None:
    value = request.args.get(name, "").strip()
    return frozenset({value}) if value else None


@bp.get("/search")
@auth_required("session")
def search():  # type: ignore[no-untyped-def]
    access = current_access()
    args = request.args
    text = args.get("q", "")[:500]
    study_id = int(args["study"]) if args.get("study", "").isdigit() else None
    scope, allowed, drafts_hidden = scope_for(access, study_id)
    statuses = _one("status")
    if allowed is not None:  # an empty intersection must match nothing, never everything
        statuses = (statuses & allowed) if statuses is not None else allowed
    page = max(1, int(args["page"])) if args.get("page", "").isdigit() else 1
    site = args.get("site", "")
    query = SearchQuery(
        text=text, scope=scope, zones=zones_for(access, scope, _one("zone")),
        artifact_ids=_one("artifact"),
        site_ids=frozenset({int(site)}) if site.isdigit() else None,
        statuses=statuses, date_from=_date(args.get("from")),
        date_to=_date(args.get("to")), limit=PER_PAGE, offset=(page - 1) * PER_PAGE,
        time_budget_s=TIME_BUDGET_S, facet_values=FACET_SHOWN,
    )
    unavailable = None
    searched = bool(text.strip()) or any(args.get(k) for k in
                                         ("zone", "artifact", "site", "status", "from", "to",
                                          "study"))
    results = SearchResults.empty()
    if searched:
        try:
            results = services().search.search(query)
        except SearchUnavailable as exc:
            unavailable = str(exc)
    session = db_session()
    ids = [h.document_id for h in results.hits]
    docs = ({d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))}
            if ids else {})
    study_ids = sorted(scope.studies)
    studies = (session.scalars(select(Study).where(Study.id.in_(study_ids))
                               .order_by(Study.protocol_number)).all() if study_ids else [])
    facets = shown_facets(results.facets)
    # Only the sites this page names (hits and the site facet shown), by number.
    wanted = {d.site_id for d in docs.values() if d.site_id is not None}
    wanted |= {int(k) for k, _n in facets.get("site", []) if str(k).isdigit()}
    sites = ({row.id: row for row in session.execute(
        select(Site.id, Site.number).where(Site.id.in_(sorted(wanted))))} if wanted else {})
    href, label = search_href(args), _facet_label(sites)
    return render_template(
        "search.html", args=args, text=text, results=results, docs=docs, studies=studies,
        studies_by_id={s.id: s for s in studies}, sites=sites, page=page, per_page=PER_PAGE,
        searched=searched, unavailable=unavailable, drafts_hidden=drafts_hidden,
        facet_label=label, status_label=status_label, href=href,
        facet_lists=facet_lists(facets, label, href),
    )


def facet_lists(facets: dict[str, list[tuple[str, int]]], label: Callable[[str, str], str],
                href: Callable[..., str]) -> list[tuple[str, str, Markup]]:
    """Each shown facet's name, heading and list items (links that add the value to the
    search, and counts). Made here rather than in the template, as the filter menus are:
    up to 75 items a page, and a Jinja loop over them cost a fifth of the page."""
    lists = []
    for facet, heading in FACET_HEADINGS:
        items = []
        for key, n in facets.get(facet, []):
            if facet == "year":
                link = href(**{"from": f"{key}-01-01", "to": f"{key}-12-31", "page": 1})
                text = key
            else:
                link, text = href(**{facet: key, "page": 1}), label(facet, key)
            items.append(f'<li><a href="{escape(link)}">{escape(text)}</a> '
                         f'<span class="count">{int(n)}</span></li>')
        if items:
            lists.append((facet, heading, Markup("\n".join(items))))
    return lists


def search_href(args: Mapping[str, str]) -> Callable[..., str]:
    """Links to this search with some parameters changed (a value of None drops one).

    A results page has up to 80 of them (facet values, filters, pages): the path and each
    kept parameter are encoded once per page, not once per link as ``url_for`` would.
    """
    base = url_for("search.search")
    kept = {name: urlencode({name: value}) for name, value in args.items()}

    def href(**changes: object) -> str:
        parts = [pair for name, pair in kept.items() if name not in changes]
        parts += [urlencode({name: value}) for name, value in changes.items()
                  if value is not None]
        return f"{base}?{'&'.join(parts)}" if parts else base

    return href


def shown_facets(facets: dict[str, dict[str, int]], most: int = FACET_SHOWN
                 ) -> dict[str, list[tuple[str, int]]]:
    """The ``most`` largest values of each facet, largest first; ties keep the backend's
    order. Chosen here, not in the template: a Phase III study has 500 sites, and sorting
    and looping over every one there cost more than the query."""
    return {name: sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:most]
            for name, counts in facets.items()}


def _facet_label(sites: dict[int, Site]):  # type: ignore[no-untyped-def]
    model = load_reference_model()

    def label(facet: str, key: str) -> str:
        if facet == "zone":
            try:
                return f"{key} {model.zone(key).name}"
            except LookupError:
                return key
        if facet == "artifact":
            try:
                return model.artifact(key).label
            except UnknownArtifact:
                return key
        if facet == "site":
            site = sites.get(int(key)) if key.isdigit() else None
            return f"Site {site.number}" if site else key
        if facet == "status":
            return status_label(key)
        return key

    return label
