"""Memory never keeps a secret: every text is scrubbed before it is written.

Two nets: the secrets registered with `aiser_jupyter.security.secrets` (connection
passwords and tokens), and patterns for what looks like a credential even when
nobody registered it (URLs with a password, ``password=…``, bearer tokens, API keys
of the well-known shapes, private keys). What matches is replaced by ``***``; the
entry is kept, and marked as redacted, so the user learns what happened.
"""

from __future__ import annotations

import re
from typing import Any

from aiser_jupyter.security.secrets import MASK, redact, redact_url

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")

# `name = value`, `name: value`, `"name": "value"` where the name says it holds a secret.
_ASSIGNED = re.compile(
    r"(?i)\b([\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey"
    r"|access[_-]?key|private[_-]?key|secret[_-]?key))"
    r"(['\"]?\s*(?<![:=])[=:](?![=:])\s*)"
    r"(\"[^\"\s]{4,}\"|'[^'\s]{4,}'|[^\s,;&'\"()]{4,})"
)
_AUTH_HEADER = re.compile(
    r"(?i)\b(authorization\s*:\s*(?:basic|bearer|token)|bearer)\s+[A-Za-z0-9._~+/-]{8,}=*"
)
_SHAPES = re.compile(
    "|".join(
        (
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}",  # OpenAI, Anthropic, Stripe style keys
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
            r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",  # GitHub tokens
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}",  # Slack tokens
            r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API keys
            r"\beyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]+",  # JSON Web Tokens
        )
    ),
    re.DOTALL,
)


def scrub(text: str) -> tuple[str, bool]:
    """`text` with registered secrets and credential-shaped strings masked; True if any was."""
    clean = redact(text)
    clean = _URL.sub(lambda m: redact_url(m.group()), clean)
    clean = _ASSIGNED.sub(lambda m: f"{m.group(1)}{m.group(2)}{_masked(m.group(3))}", clean)
    clean = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {MASK}", clean)
    clean = _SHAPES.sub(MASK, clean)
    return clean, clean != text


def scrub_json(value: Any) -> tuple[Any, bool]:
    """A JSON-like value with every string in it scrubbed; True if any string was."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        pairs = [(key, scrub_json(item)) for key, item in value.items()]
        return {k: v for k, (v, _) in pairs}, any(hit for _, (_, hit) in pairs)
    if isinstance(value, (list, tuple)):
        items = [scrub_json(item) for item in value]
        return [v for v, _ in items], any(hit for _, hit in items)
    return value, False


def _masked(value: str) -> str:
    """The value replaced by the mask, keeping the quotes around it."""
    quote = value[0] if value[0] in "'\"" else ""
    return f"{quote}{MASK}{quote}"
