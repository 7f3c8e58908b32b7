"""Who is asking: the security context that policies read (``{securityContext.x}``).

Set per Session (``aiser.set_context``) or per API request (a JWT's claims). The context
that applies to a query is held in a context variable while it runs, so the audit log
records the requester even when one Session serves many requests on threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiser_jupyter.errors import AiserError


class AccessDenied(AiserError):
    """A policy refused a query: a member is not visible, or the context lacks a value."""


@dataclass(frozen=True)
class SecurityContext:
    """The requester: a user, the groups (Cube's roles) they belong to, a tenant, and any other
    attributes a policy may refer to."""

    user: str | None = None
    groups: tuple[str, ...] = ()
    tenant: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        groups = (self.groups,) if isinstance(self.groups, str) else tuple(self.groups or ())
        object.__setattr__(self, "groups", tuple(str(g) for g in groups))
        object.__setattr__(self, "attributes", dict(self.attributes or {}))

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> SecurityContext:
        """A context from a JWT's claims: ``sub``/``user``, ``groups``/``roles``, ``tenant``; every
        claim stays readable as an attribute (``{securityContext.claim}``)."""
        user = claims.get("user") or claims.get("sub") or claims.get("username")
        groups = claims.get("groups", claims.get("roles", ()))
        tenant = claims.get("tenant", claims.get("tenant_id"))
        return cls(
            user=None if user is None else str(user),
            groups=groups,
            tenant=None if tenant is None else str(tenant),
            attributes=dict(claims),
        )

    @classmethod
    def from_environment(cls) -> SecurityContext | None:
        """The JupyterHub user this server runs for (``JUPYTERHUB_USER``), if any; Voila
        served by a hub runs under the same variable."""
        user = os.environ.get("JUPYTERHUB_USER")
        return cls(user=user) if user else None

    def value(self, path: str) -> Any:
        """The value ``{securityContext.path}`` names (dots reach into nested attributes)."""
        head, *rest = path.split(".")
        if head in ("user", "tenant", "groups") and not rest:
            value: Any = getattr(self, head)
        elif head == "roles" and not rest:
            value = self.groups
        else:
            value = self.attributes
            for part in [head, *rest]:
                value = value.get(part) if isinstance(value, Mapping) else None
        if value is None or value == ():
            raise AccessDenied(
                f"the security context has no {path!r}, which an access policy needs"
            )
        return value

    def describe(self) -> str:
        parts = [f"user={self.user}" if self.user else "anonymous"]
        if self.tenant:
            parts.append(f"tenant={self.tenant}")
        if self.groups:
            parts.append(f"groups={','.join(self.groups)}")
        return " ".join(parts)


_current: ContextVar[SecurityContext | None] = ContextVar("aiser_security_context", default=None)


def subject_of(context: SecurityContext | None) -> str:
    """Whose data it is (GDPR's data subject): the context's user, else the OS user."""
    if context is not None and context.user:
        return context.user
    import getpass

    return getpass.getuser()


def current() -> SecurityContext | None:
    """The context of the query running on this thread (or task), if one was given."""
    return _current.get()


@contextmanager
def acting_as(context: SecurityContext | None) -> Iterator[None]:
    """Run the block as `context` (what the audit log records as who)."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


def as_context(value: SecurityContext | Mapping[str, Any] | None) -> SecurityContext | None:
    """A SecurityContext from one, from JWT-style claims, or None."""
    if value is None or isinstance(value, SecurityContext):
        return value
    if isinstance(value, Mapping):
        return SecurityContext.from_claims(value)
    raise AccessDenied(
        f"a security context must be a mapping of claims, got {type(value).__name__}"
    )
