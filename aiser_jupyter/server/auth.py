"""Cube's authentication: an HS256 JWT in ``Authorization`` whose claims are the security context.

`context_from_claims` is the one place a request's claims become the security context that
the model's access policies (row filters, member visibility, masking) apply to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiser_jupyter.server.cube import ApiError

if TYPE_CHECKING:
    from aiser_jupyter.security.context import SecurityContext

TIME_CLAIMS = frozenset({"exp", "iat", "nbf", "jti"})
"""Claims that change with every token of one user, and never change what they may see."""


class Verifier:
    """Checks tokens against the secret; a token seen before skips the signature check (the
    verified claims are kept, size-bounded), never the expiry check."""

    def __init__(self, secret: str | None, cache_size: int = 4096):
        from cachetools import LRUCache

        self.secret = secret
        self._verified: LRUCache = LRUCache(cache_size)

    def claims(self, header: str | None) -> dict[str, Any]:
        """The verified claims of ``Authorization: <token>`` (or ``Bearer <token>``).

        With no secret the API is open and every request has empty claims. A refusal says
        why in words a client can show, never the token, the secret or a stack.
        """
        if self.secret is None:
            return {}
        if not header or not header.strip():
            raise ApiError("Authorization header isn't set", 401)
        parts = header.split()
        token = parts[-1] if len(parts) <= 2 else ""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            self._verified[token] = claims
        now = time.time()
        if "exp" in claims and now >= claims["exp"]:
            raise ApiError("Invalid token: it has expired", 403)
        if "nbf" in claims and now < claims["nbf"]:
            raise ApiError("Invalid token: it is not valid yet", 403)
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
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
        return claims


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
