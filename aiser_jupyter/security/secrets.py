"""Secrets never reach an output: every text a user sees passes through `redact`.

Passwords and tokens are registered when a connection is made (from its URL, its
options or the environment), and every message, repr and history entry is
scrubbed of them. URLs are shown with their password replaced by ``***``.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlencode, urlsplit

MASK = "***"
SECRET_KEYS = frozenset(
    {"password", "passwd", "pwd", "token", "access_token", "secret", "api_key", "apikey", "key"}
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register(value: str | None) -> None:
    """Remember a secret so that `redact` hides it wherever it shows up."""
    if value and len(value) >= 3:
        with _lock:
            _secrets.add(value)


def is_secret_key(key: str) -> bool:
    return key.lower() in SECRET_KEYS or key.lower().endswith(("password", "token", "secret"))


def redact(text: str) -> str:
    """Replace every registered secret in `text` with ``***``."""
    if not _secrets or not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def register_url(url: str) -> None:
    """Register the password and secret query parameters of a URL."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    register(password)
    for key, value in parse_qsl(parts.query):
        if is_secret_key(key):
            register(value)


def redact_url(url: str) -> str:
    """The URL with its password and secret query parameters shown as ``***`` (and remembered)."""
    register_url(url)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return redact(url)
    shown = url
    if password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        shown = shown.replace(parts.netloc, f"{user}:{MASK}@{hostport}", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_secret_key(k) else v) for k, v in pairs], safe="*")
        shown = shown.replace(f"?{parts.query}", f"?{query}", 1)
    return redact(shown)
