"""Which subjects a principal's request counts against, with their effective limits."""

from __future__ import annotations

from collections.abc import Callable

from opsgate.gateway.quota.reservation import Subject
from opsgate.gateway.quota.settings import SUBJECT_KINDS, Limits, QuotaSettings, SubjectKind
from opsgate.identity.principal import Principal

# Limits stored on an API key's own record (an identity feature to come): consulted for
# the "key" subject between the configured override and the defaults.
KeyLimitLookup = Callable[[Principal], Limits | None]


class LimitResolver:
    """Resolves subjects in O(1): overrides are laid over the defaults once, up front."""

    def __init__(self, settings: QuotaSettings, key_limits: KeyLimitLookup | None = None) -> None:
        d = settings.defaults
        self._defaults: dict[SubjectKind, Limits] = {
            "key": d.key,
            "user": d.user,
            "team": d.team,
            "tenant": d.tenant,
        }
        raw: dict[SubjectKind, dict[str, Limits]] = {
            "key": settings.keys,
            "user": settings.users,
            "team": settings.teams,
            "tenant": settings.tenants,
        }
        self._overrides: dict[SubjectKind, dict[str, Limits]] = {
            kind: {name: lim.over(self._defaults[kind]) for name, lim in raw[kind].items()}
            for kind in SUBJECT_KINDS
        }
        self._key_limits = key_limits

    def limits(self, kind: SubjectKind, name: str) -> Limits | None:
        """Effective limits, or None when the subject is not limited (teams not listed)."""
        found = self._overrides[kind].get(name)
        if found is not None:
            return found
        if kind == "team":
            return None
        return self._defaults[kind]

    def _key(self, principal: Principal) -> Limits | None:
        name = principal.credential_id or ""
        found = self._overrides["key"].get(name)
        if found is not None:
            return found
        if self._key_limits is not None:
            own = self._key_limits(principal)
            if own is not None:
                return own.over(self._defaults["key"])
        return self._defaults["key"]

    def subjects(self, principal: Principal) -> list[Subject]:
        """Every limited subject of this principal: key, user, listed teams, tenant."""
        out: list[Subject] = []
        if principal.auth == "api_key" and principal.credential_id:
            lim = self._key(principal)
            if lim is not None and not lim.empty:
                out.append(Subject("key", principal.credential_id, lim))
        self._add(out, "user", principal.id)
        teams = self._overrides["team"]
        for group in sorted(g for g in principal.groups if g in teams):
            self._add(out, "team", group)
        self._add(out, "tenant", principal.tenant)
        return out

    def _add(self, out: list[Subject], kind: SubjectKind, name: str) -> None:
        lim = self.limits(kind, name)
        if lim is not None and not lim.empty:
            out.append(Subject(kind, name, lim))
