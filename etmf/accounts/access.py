"""What the signed-in user may do, computed once per request from their memberships."""

from __future__ import annotations

from dataclasses import dataclass, field

from etmf.accounts.roles import ROLES, Permission
from etmf.audit.store import Actor
from etmf.errors import Forbidden, NotFound


@dataclass(frozen=True)
class Grant:
    study_id: int
    site_id: int | None
    role: str
    #: Zones of the TMF this grant is limited to (inspector grants); None means all.
    zones: frozenset[str] | None = None


@dataclass(frozen=True)
class Access:
    user_id: int | None
    name: str
    is_admin: bool = False
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    #: An inspector: every write is refused, whatever the route (ACC-3).
    read_only: bool = False

    @property
    def actor(self) -> Actor:
        return Actor(id=self.user_id, name=self.name)

    def study_ids(self) -> set[int]:
        return {g.study_id for g in self.grants}

    @property
    def roles(self) -> tuple[str, ...]:
        """Every role the user holds, each once, in the order of the grants."""
        return tuple(dict.fromkeys(g.role for g in self.grants))

    def roles_in(self, study_id: int) -> set[str]:
        return {g.role for g in self.grants if g.study_id == study_id}

    def can(self, permission: Permission, study_id: int, site_id: int | None = None,
            *, zone: str | None = None) -> bool:
        """True if a grant on this study (and, for a site-limited grant, this site) allows it.

        A site-limited grant covers that site's documents and the study's trial- and
        country-level documents, not other sites'. A zone-limited grant (inspectors) covers
        only documents of its zones; pass ``zone`` to check it.
        """
        for g in self.grants:
            if g.study_id != study_id or permission not in ROLES[g.role].permissions:
                continue
            if zone is not None and g.zones is not None and zone not in g.zones:
                continue
            if g.site_id is None or site_id is None or g.site_id == site_id:
                return True
        return False

    def zone_scope(self, study_id: int) -> frozenset[str] | None:
        """None if the user sees every zone of the study, else the zones they are limited to."""
        zones: set[str] = set()
        for g in self.grants:
            if g.study_id == study_id:
                if g.zones is None:
                    return None
                zones |= g.zones
        return frozenset(zones)

    def can_see_zone(self, study_id: int, zone: str) -> bool:
        scope = self.zone_scope(study_id)
        return scope is None or zone in scope

    def require_study(self, study_id: int) -> None:
        """Hide a study the user has no part in: 404, not 403, so its existence leaks not."""
        if study_id not in self.study_ids():
            raise NotFound("There is no such study, or you have no access to it.")

    def require(self, permission: Permission, study_id: int, site_id: int | None = None) -> None:
        self.require_study(study_id)
        if not self.can(permission, study_id, site_id):
            raise Forbidden(
                "Your role in this study does not allow this. "
                "Ask the study manager if you need it."
            )

    def site_scope(self, study_id: int) -> frozenset[int] | None:
        """None if the user sees the whole study, else the sites they are limited to."""
        sites: set[int] = set()
        for g in self.grants:
            if g.study_id == study_id:
                if g.site_id is None:
                    return None
                sites.add(g.site_id)
        return frozenset(sites)


ANONYMOUS = Access(user_id=None, name="anonymous")
