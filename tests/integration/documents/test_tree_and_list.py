"""The TMF tree and the document list: counts kept with every change of a document, the
user's scope inside every count, the list ordered by document date with undated records last
both ways, paging, and the country filter."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from etmf.documents import counts
from etmf.documents import services as docs
from etmf.documents.lifecycle import Action
from etmf.documents.models import Document
from tests.conftest import PASSWORD, csrf_from


@pytest.fixture
def people(world):  # type: ignore[no-untyped-def]
    return {"specialist": world.user("tmf_specialist", name="Sam Specialist"),
            "qc": world.user("qc_reviewer", name="Quinn Reviewer"),
            "manager": world.user("study_manager", name="Morgan Manager")}


def _from_documents(svc, study_id: int) -> list[tuple[str, str, str, str, int]]:  # type: ignore[no-untyped-def]
    cols = (Document.zone, Document.section, Document.artifact_id, Document.status)
    with svc.db.read_session() as s:
        rows = s.execute(select(*cols, func.count()).where(Document.study_id == study_id)
                         .group_by(*cols)).all()
    return sorted((z, sec, a, st, int(n)) for z, sec, a, st, n in rows)


def _kept(svc, study_id: int, **scope) -> list[tuple[str, str, str, str, int]]:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return sorted(counts.tree(s, study_id, **scope))


def _signed_in(world, user):  # type: ignore[no-untyped-def]
    """A client of its own for a second user in the same test."""
    client = world.app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert client.post("/login", data={"email": user.email, "password": PASSWORD,
                                       "csrf_token": csrf_from(page)}).status_code == 302
    return client


def _caption(html: str) -> int:
    match = re.search(r"<caption>(\d+) documents", html)
    assert match, "no count above the document list"
    return int(match.group(1))


def _titles(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/documents/\d+">([^<]+)</a>', html)


def test_tree_counts_follow_filing_qc_withdrawal_and_new_versions(world, people, svc, login):
    spec, qc = people["specialist"], people["qc"]
    world.document(spec, title="Protocol", state="approved", qc=qc)
    world.document(spec, title="Protocol synopsis", artifact="02.01.02")
    cv = world.document(spec, title="CV site 101", artifact="05.02.04", level="site",
                        site="101", state="in_qc")
    world.document(spec, title="CV site 201", artifact="05.02.04", level="site", site="201")
    assert _kept(svc, world.study_id) == _from_documents(svc, world.study_id)
    with world.uow(qc.name, qc.id) as uow:
        docs.transition(uow, world.access(qc), cv, Action.APPROVE, expected_version=2)
        uow.commit()
    with world.uow(people["manager"].name, people["manager"].id) as uow:
        docs.transition(uow, world.access(people["manager"]), cv, Action.WITHDRAW,
                        expected_version=3, reason="filed twice")
        uow.commit()
    kept = _kept(svc, world.study_id)
    assert kept == _from_documents(svc, world.study_id)
    assert [(st, n) for z, _s, _a, st, n in kept if z == "05"] == [
        ("draft", 1), ("obsolete", 1)]
    # Recounting from the documents gives exactly the rows kept along the way.
    with svc.db.write_session() as s:
        before = sorted(s.execute(select(*counts.DocumentCount.__table__.c)).all())
        counts.rebuild(s.connection(), world.study_id)
        after = sorted(s.execute(select(*counts.DocumentCount.__table__.c)).all())
        s.rollback()
    assert [r for r in before if r[-1]] == after
    # The page shows the kept counts: two documents in zone 02, the CV row one obsolete.
    tree = login(people["manager"]).get(f"/studies/{world.study_id}").get_data(as_text=True)
    assert re.search(r'class="znum">02</span>[^<]*<span class="count">2 documents', tree)
    assert re.search(r'class="znum">05</span>[^<]*<span class="count">2 documents', tree)


def test_site_staff_count_only_their_site_and_study_level_documents(world, people, login):
    spec = people["specialist"]
    world.document(spec, title="Protocol")
    world.document(spec, title="CV 101", artifact="05.02.04", level="site", site="101")
    for n in range(2):
        world.document(spec, title=f"CV 102 #{n}", artifact="05.02.04", level="site",
                       site="102")
    manager = login(people["manager"])
    assert _caption(manager.get(f"/studies/{world.study_id}/documents")
                    .get_data(as_text=True)) == 4
    staff = _signed_in(world, world.user("site_staff", site="101"))
    listing = staff.get(f"/studies/{world.study_id}/documents").get_data(as_text=True)
    assert _caption(listing) == 2 and set(_titles(listing)) == {"Protocol", "CV 101"}
    other = staff.get(f"/studies/{world.study_id}/documents?site={world.site_ids['102']}")
    assert _caption(other.get_data(as_text=True)) == 0
    tree = staff.get(f"/studies/{world.study_id}").get_data(as_text=True)
    assert re.search(r'class="znum">05</span>[^<]*<span class="count">1 documents', tree)


def test_monitor_counts_no_drafts(world, people, login):
    spec, qc = people["specialist"], people["qc"]
    world.document(spec, title="Approved CV", artifact="05.02.04", level="site", site="101",
                   state="approved", qc=qc)
    world.document(spec, title="Draft CV", artifact="05.02.04", level="site", site="101")
    monitor = login(world.user("monitor", site="101"))
    listing = monitor.get(f"/studies/{world.study_id}/documents?zone=05")
    assert _caption(listing.get_data(as_text=True)) == 1
    assert _titles(listing.get_data(as_text=True)) == ["Approved CV"]
    tree = monitor.get(f"/studies/{world.study_id}").get_data(as_text=True)
    assert re.search(r'class="znum">05</span>[^<]*<span class="count">1 documents', tree)


@pytest.mark.req("REC-5")
def test_list_pages_by_document_date_with_undated_records_last_both_ways(world, people,
                                                                         login):
    spec = people["specialist"]
    first = date(2026, 1, 1)
    for n in range(51):
        world.document(spec, title=f"Dated {n:02d}", document_date=first + timedelta(days=n))
    for n in range(2):
        world.document(spec, title=f"Undated {n}")
    client = login(people["manager"])
    url = f"/studies/{world.study_id}/documents"
    page1 = client.get(url).get_data(as_text=True)
    assert _caption(page1) == 53 and "Page 1 of 2" in page1
    assert _titles(page1)[:2] == ["Dated 50", "Dated 49"] and len(_titles(page1)) == 50
    page2 = client.get(url + "?page=2").get_data(as_text=True)
    assert _titles(page2) == ["Dated 00", "Undated 1", "Undated 0"]
    oldest = client.get(url + "?sort=-document_date").get_data(as_text=True)
    assert _titles(oldest)[:2] == ["Dated 00", "Dated 01"]
    oldest2 = client.get(url + "?sort=-document_date&page=2").get_data(as_text=True)
    assert _titles(oldest2) == ["Dated 50", "Undated 0", "Undated 1"]
    # A date range is counted from the documents themselves.
    ranged = client.get(url + "?from=2026-01-01&to=2026-01-10").get_data(as_text=True)
    assert _caption(ranged) == 10 and "Page 1 of" not in ranged


def test_country_filter_lists_and_counts_that_countrys_documents(world, people, login):
    spec = people["specialist"]
    world.document(spec, title="Protocol")
    world.document(spec, title="CV 101", artifact="05.02.04", level="site", site="101")
    world.document(spec, title="CV 102", artifact="05.02.04", level="site", site="102")
    world.document(spec, title="CV 201", artifact="05.02.04", level="site", site="201")
    client = login(people["manager"])
    page = client.get(f"/studies/{world.study_id}/documents").get_data(as_text=True)
    assert 'name="country"' in page and "DE Germany" in page
    de = client.get(f"/studies/{world.study_id}/documents?country={world.country_ids['DE']}"
                    ).get_data(as_text=True)
    assert _caption(de) == 2 and set(_titles(de)) == {"CV 101", "CV 102"}
    fr = client.get(f"/studies/{world.study_id}/documents?country={world.country_ids['FR']}"
                    "&status=draft").get_data(as_text=True)
    assert _caption(fr) == 1 and _titles(fr) == ["CV 201"]


def _menu(html: str, name: str) -> list[tuple[str, str]]:
    """(option text, " selected" or "") of a filter menu of the document list."""
    menu = re.search(rf'<select name="{name}">(.*?)</select>', html)
    assert menu, f"no {name} menu"
    return re.findall(r'<option value="\d+"( selected)?>([^<]*)</option>', menu.group(1))


def test_site_added_after_the_list_was_shown_appears_in_its_filter_menus(world, people, login):
    from etmf.studies.services import add_country, add_site

    client = login(people["manager"])
    url = f"/studies/{world.study_id}/documents"
    page = client.get(url).get_data(as_text=True)
    assert [text for _sel, text in _menu(page, "site")] == ["101", "102", "201"]
    with world.uow() as uow:
        country = add_country(uow, study_id=world.study_id, code="BA",
                              name="Bosnia & Herzegovina")
        site = add_site(uow, study_id=world.study_id, country_id=country, number="301",
                        institution="Hospital 301")
        uow.commit()
    world.site_ids["301"] = site
    world.document(people["specialist"], title="CV 301", artifact="05.02.04", level="site",
                   site="301")
    page = client.get(f"{url}?site={site}&country={country}").get_data(as_text=True)
    assert _menu(page, "site") == [("", "101"), ("", "102"), ("", "201"), (" selected", "301")]
    assert _menu(page, "country") == [(" selected", "BA Bosnia &amp; Herzegovina"),
                                      ("", "DE Germany"), ("", "FR France")]
    assert _titles(page) == ["CV 301"] and "<td>301</td>" in page
    # Another choice, from the menus kept since the last page: only that one is selected.
    page = client.get(f"{url}?site={world.site_ids['102']}").get_data(as_text=True)
    assert [sel for sel, _text in _menu(page, "site")] == ["", " selected", "", ""]
    assert " selected" not in "".join(sel for sel, _text in _menu(page, "country"))
