"""Full-text search: indexed in the background after a commit, scoped to what the user may
see (ACC-2), with snippets, facets, a time bound and `etmf search reindex`."""

from __future__ import annotations

import html
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from etmf.documents import indexing
from etmf.documents.models import DocumentText
from tests.integration.documents.conftest import file_rows, pdf, upload


def _index(svc, *doc_ids: int) -> None:
    indexing.indexing_for(svc).schedule(doc_ids)
    assert indexing.flush(svc)


@pytest.fixture
def corpus(world, svc):
    """Documents at trial level and at two sites, approved and draft."""
    spec = world.user("tmf_specialist")
    qc = world.user("qc_reviewer")
    ids = {
        "trial": world.document(spec, title="Protocol v3", state="approved", qc=qc,
                                content=pdf("Protocol", "randomisation with quokka strata")),
        "site101": world.document(spec, title="CV site 101", level="site", site="101",
                                  artifact="05.02.04", state="approved", qc=qc,
                                  content=pdf("CV", "quokka research experience")),
        "site102": world.document(spec, title="CV site 102", level="site", site="102",
                                  artifact="05.02.04", state="approved", qc=qc,
                                  content=pdf("CV", "quokka handling certificate")),
        "draft": world.document(spec, title="Draft plan", content=pdf("Plan", "quokka draft")),
    }
    _index(svc, *ids.values())
    return ids


def _titles(client, query: str) -> str:
    return client.get(f"/search?q={query}").get_data(as_text=True)


@pytest.mark.req("FR-SRCH-1")
def test_a_word_inside_a_filed_pdf_is_found_with_a_highlighted_snippet(world, login, svc):
    client = login(world.user("tmf_specialist"))
    html = upload(client, world.study_id, [
        (pdf("Monitoring plan", "The axolotl sampling schedule is described here."),
         "Monitoring_plan.pdf"),
        (pdf("Other", "nothing special"), "Other.pdf"),
    ]).get_data(as_text=True)
    row = {"artifact": "01.01.02", "level": "trial", "document_date": "2026-02-01"}
    assert file_rows(client, world.study_id, html, [dict(row, title="Monitoring plan"),
                                                    dict(row, title="Other")]
                     ).status_code == 302
    assert indexing.flush(svc)  # extraction and indexing ran in the background
    page = client.get("/search?q=axolotl").get_data(as_text=True)
    assert "1 result for" in page
    assert "Monitoring plan" in page
    assert "<mark>axolotl</mark> sampling schedule" in page


@pytest.mark.req("FR-SRCH-1")
@pytest.mark.req("ACC-2")
def test_site_limited_users_see_their_site_and_trial_level_only(world, login, corpus):
    client = login(world.user("site_staff", site="101"))
    page = _titles(client, "quokka")
    assert "Protocol v3" in page and "CV site 101" in page
    assert "CV site 102" not in page
    assert "3 results" in page  # the total counts only what may be seen


@pytest.mark.req("FR-SRCH-1")
@pytest.mark.req("ACC-2")
def test_readers_without_draft_rights_never_find_drafts(world, login, corpus):
    client = login(world.user("monitor"))
    page = _titles(client, "quokka")
    assert "Draft plan" not in page
    assert "3 results" in page
    assert "Draft</a>" not in page  # nor as a status facet
    asked = client.get("/search?q=quokka&status=draft").get_data(as_text=True)
    assert "0 results" in asked and "Draft plan" not in asked


@pytest.mark.req("ACC-2")
def test_members_of_another_study_find_nothing(world, login, corpus):
    from etmf.studies.services import NewStudy, create_study

    with world.uow() as uow:
        other = create_study(uow, NewStudy(protocol_number="OTH-9", title="Other",
                                           phase="I", sponsor="X"))
        uow.commit()
    client = login(world.user("study_manager", study_id=other))
    page = _titles(client, "quokka")
    assert "0 results" in page and "Protocol v3" not in page


def test_facets_filter_and_a_status_change_reindexes(world, login, svc, corpus):
    manager = world.user("study_manager")
    client = login(manager)
    page = client.get("/search?q=quokka").get_data(as_text=True)
    assert 'data-testid="facet-site"' in page and "Site 101" in page
    filtered = client.get(f"/search?q=quokka&site={world.site_ids['102']}").get_data(
        as_text=True)
    assert "1 result" in filtered and "CV site 102" in filtered
    from etmf.audit.store import Actor, unit_of_work
    from etmf.documents import services as docs
    from etmf.documents.lifecycle import Action

    with unit_of_work(svc.db, svc.clock, Actor(manager.id, manager.name)) as uow:
        docs.transition(uow, world.access(manager), corpus["draft"], Action.WITHDRAW,
                        expected_version=1, reason="Not needed")
        indexing.index_after_commit(uow, svc, corpus["draft"])
        uow.commit()
    assert indexing.flush(svc)
    obsolete = client.get("/search?q=quokka&status=obsolete").get_data(as_text=True)
    assert "1 result" in obsolete and "Draft plan" in obsolete


def test_the_pages_own_facet_and_remove_links_filter_and_unfilter(world, login, corpus):
    client = login(world.user("study_manager"))
    page = client.get("/search?q=quokka&page=1").get_data(as_text=True)
    site = world.site_ids["102"]
    link = re.search(rf'href="([^"]*site={site}[^"]*)">Site 102', page)
    assert link, "no facet link to site 102"

    filtered = client.get(html.unescape(link.group(1))).get_data(as_text=True)

    assert "1 result" in filtered and "CV site 102" in filtered
    assert "Filtered by: site Site 102" in filtered
    remove = re.search(r'href="([^"]*)">remove</a>', filtered)
    assert remove
    unfiltered = client.get(html.unescape(remove.group(1))).get_data(as_text=True)
    assert "Filtered by" not in unfiltered
    assert "CV site 101" in unfiltered and "CV site 102" in unfiltered


def test_search_links_keep_the_other_parameters_encoded(app):
    from werkzeug.datastructures import MultiDict

    from etmf.web.search import search_href

    with app.test_request_context("/"):
        href = search_href(MultiDict([("q", '"site visit" & more'), ("site", "7"),
                                      ("page", "3")]))

        assert href(site="9", page=1) == "/search?q=%22site+visit%22+%26+more&site=9&page=1"
        assert href(site=None, page=None) == "/search?q=%22site+visit%22+%26+more"
        assert search_href(MultiDict())(page=None) == "/search"


def test_a_slow_search_says_its_results_may_be_incomplete(world, login, corpus,
                                                          monkeypatch):
    import etmf.web.search

    monkeypatch.setattr(etmf.web.search, "TIME_BUDGET_S", 0.0)
    page = login(world.user("study_manager")).get("/search?q=quokka").get_data(as_text=True)
    assert "results may be incomplete" in page


def test_a_failed_extraction_is_recorded_and_never_fatal(world, login, svc):
    # A damaged PDF (deterministic, unlike a tiny time bound that a fast machine may beat).
    spec = world.user("tmf_specialist")
    damaged = pdf("Scan", "zebu text")[:400]
    doc_id = world.document(spec, title="Unreadable scan", content=damaged)
    _index(svc, doc_id)
    with svc.db.read_session() as s:
        text = s.scalar(select(DocumentText))
    assert text.status == "failed" and text.error
    client = login(spec)
    page = client.get(f"/documents/{doc_id}").get_data(as_text=True)
    assert "Not extracted:" in page
    assert "<mark>Unreadable</mark> scan" in _titles(client, "unreadable")  # by metadata


def test_reindex_rebuilds_the_index_with_a_progress_bar(world, svc, corpus):
    from etmf.cli import main

    svc.search.clear()
    result = CliRunner().invoke(main, ["search", "reindex", "--instance",
                                       str(svc.settings.instance_path)],
                                env={"ETMF_DATABASE_URL": svc.settings.database_url})
    assert result.exit_code == 0, result.output
    assert "Indexing documents" in result.output
    assert "Indexed 4 documents" in result.output
    assert svc.search.count() == 4


def test_each_facet_shows_its_fifteen_largest_values_largest_first():
    from etmf.web.search import shown_facets

    sites = {str(n): n % 20 for n in range(1, 501)}  # 500 sites, counts 0-19
    shown = shown_facets({"site": sites, "status": {"draft": 2, "approved": 7}})

    assert [n for _key, n in shown["site"]] == [19] * 15  # 25 sites hold 19: the first 15
    assert [key for key, _n in shown["site"]] == [str(n) for n in range(19, 300, 20)]
    assert shown["status"] == [("approved", 7), ("draft", 2)]
