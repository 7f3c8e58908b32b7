"""Cube's authentication: an HS256 JWT in ``Authorization`` whose claims are the security context.

`context_from_claims` is the one place a request's claims become the security context that
the model's access policies (row filters, member visibility, masking) apply to.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiser_jupyter.server.cube import ApiError
from aiser_jupyter.server.lru import Lru

if TYPE_CHECKING:
    from aiser_jupyter.security.context import SecurityContext

TIME_CLAIMS = frozenset({"exp", "iat", "nbf", "jti"})
"""Claims that change with every token of one user, and never change what they may see."""


@dataclass(frozen=True)
class Verified:
    """A token that passed the signature check: its claims, the context its queries run under
    and the result cache's part of a key for it, made once per token."""

    claims: dict[str, Any]
    context: SecurityContext | None
    key: str
    expires: float
    starts: float

    def check_time(self, now: float) -> None:
        """Refuse the token once it has expired (or before it is valid)."""
        if now >= self.expires:
            raise ApiError("Invalid token: it has expired", 403)
        if now < self.starts:
            raise ApiError("Invalid token: it is not valid yet", 403)


class Verifier:
    """Checks tokens against the secret. A token seen before skips the signature check and
    the claims' parsing (kept per ``Authorization`` header, LRU-bounded), never the time
    check: an expired token is refused however often it was accepted before, and a token
    that fails the check is never kept."""

    def __init__(
        self, secret: str | None, cache_size: int = 4096, clock: Callable[[], float] = time.time
    ):
        self.secret = secret
        self.clock = clock
        """Seconds since the epoch, as token times count them."""
        self._verified = Lru(cache_size)

    def claims(self, header: str | None) -> dict[str, Any]:
        """The verified claims of ``Authorization: <token>`` (or ``Bearer <token>``).

        With no secret the API is open and every request has empty claims. A refusal says
        why in words a client can show, never the token, the secret or a stack.
        """
        if self.secret is None:
            return {}
        return self.verify(header).claims

    def verify(self, header: str | None) -> Verified:
        """The verified token of an ``Authorization`` header (a secret is set)."""
        if not header or not header.strip():
            raise ApiError("Authorization header isn't set", 401)
        verified = self._verified.get(header)
        if verified is None:
            parts = header.split()
            verified = self._decode(parts[-1] if len(parts) <= 2 else "")
            self._verified.put(header, verified)
        verified.check_time(self.clock())
        return verified

    def known(self, header: str) -> Verified | None:
        """The header's token if it was verified before and is in its time now; None: ask
        `verify` (which refuses it, or checks it and keeps it)."""
        verified = self._verified.get(header)
        if verified is None:
            return None
        now = self.clock()
        return verified if verified.starts <= now < verified.expires else None

    def _decode(self, token: str) -> Verified:
        import jwt

        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            raise ApiError("Invalid token: it has expired", 403) from None
        except jwt.ImmatureSignatureError:
            raise ApiError("Invalid token: it is not valid yet", 403) from None
        except jwt.InvalidTokenError:
            raise ApiError("Invalid token", 403) from None
        if not isinstance(claims, dict):
            raise ApiError("Invalid token: its payload is not a JSON object", 403)
        return Verified(
            claims,
            context_from_claims(claims),
            context_key(claims),
            _number(claims.get("exp"), math.inf),
            _number(claims.get("nbf"), -math.inf),
        )


def _number(value: Any, default: float) -> float:
    """A time claim as seconds (PyJWT has checked it is a number when present)."""
    return float(value) if isinstance(value, int | float) else default


def context_from_claims(claims: Mapping[str, Any]) -> SecurityContext:
    """The security context a request's queries run under: who the token says is asking
    (``sub``/``user``, ``groups``/``roles``, ``tenant``; every claim readable by policies)."""
    from aiser_jupyter.security.context import SecurityContext

    return SecurityContext.from_claims(claims)


def context_key(claims: Mapping[str, Any]) -> str:
    """What of the claims tells apart who sees what: the result cache's part of a key, so that
    one tenant's cached answer never reaches another, while token renewals share entries."""
    return json.dumps(
        {k: v for k, v in claims.items() if k not in TIME_CLAIMS}, sort_keys=True, default=str
    )
