"""The site and country menus of a study's document list, rendered once per change.

A Phase III study has hundreds of sites: escaping one ``<option>`` per site and country on
every list page cost more than the page's queries. The markup is kept per study in the
application, under a key read from the database at every request: how many sites and
countries the study has, and their highest ids. Sites and countries are only ever added
(``site.added``, ``country.added``; a site's status is not on the menu), so a new one
changes the key and each worker renders the menus again at its next list page.

Nothing user-specific is kept: every user who may open the list sees every site of the
study in the menu, as before; the documents themselves are scoped per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etmf.studies.models import Country, Site

_CACHE = "etmf_filter_menus"


@dataclass(frozen=True)
class FilterMenus:
    """A study's site and country ``<option>`` lists, and its site numbers by id."""

    key: tuple[int, ...]
    site_options: str
    country_options: str
    site_numbers: dict[int, str]

    def sites(self, chosen: str) -> Markup:
        """The site options, the one whose id is ``chosen`` (as typed in the URL) selected."""
        return _select(self.site_options, chosen)

    def countries(self, chosen: str) -> Markup:
        return _select(self.country_options, chosen)


def _select(options: str, chosen: str) -> Markup:
    # The values are ids: only digits can name one, and each appears once.
    if chosen.isdigit():
        options = options.replace(f'<option value="{chosen}">',
                                  f'<option value="{chosen}" selected>', 1)
    return Markup(options)  # every value in it was escaped by _render


def filter_menus(session: Session, study_id: int) -> FilterMenus:
    """The study's menus, rendered again only when a site or country was added."""
    cache: dict[int, FilterMenus] = current_app.extensions.setdefault(_CACHE, {})
    # The key is read before the lists: menus read later can only be newer than their key,
    # which at worst renders them once more.
    key = _key(session, study_id)
    menus = cache.get(study_id)
    if menus is None or menus.key != key:
        menus = cache[study_id] = _render(session, study_id, key)
    return menus


def _key(session: Session, study_id: int) -> tuple[int, ...]:
    counts = [select(agg).where(model.study_id == study_id).scalar_subquery()
              for model in (Site, Country)
              for agg in (func.count(model.id), func.coalesce(func.max(model.id), 0))]
    return tuple(int(n) for n in session.execute(select(*counts)).one())


def _render(session: Session, study_id: int, key: tuple[int, ...]) -> FilterMenus:
    sites = session.execute(select(Site.id, Site.number).where(Site.study_id == study_id)
                            .order_by(Site.number)).all()
    countries = session.execute(select(Country.id, Country.code, Country.name)
                                .where(Country.study_id == study_id)
                                .order_by(Country.code)).all()
    return FilterMenus(
        key=key,
        site_options="".join(f'<option value="{id_}">{escape(number)}</option>'
                             for id_, number in sites),
        country_options="".join(f'<option value="{id_}">{escape(code)} {escape(name)}</option>'
                                for id_, code, name in countries),
        site_numbers={id_: number for id_, number in sites},
    )
