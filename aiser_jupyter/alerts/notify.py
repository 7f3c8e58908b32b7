"""Where a firing goes: ``webhook:URL`` (a JSON POST), ``email:ADDRESS`` (SMTP, from the
``smtp_*`` settings) and ``notebook`` (a note in the notebook that made the alert).

A target's URL and the SMTP password are registered as secrets as soon as they are read,
and every message here names a target by its shown form (``webhook:https://host/…``), so a
token in a webhook's path or query never reaches an output, an error or the state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiser_jupyter.errors import AiserError
from aiser_jupyter.security.secrets import redact, register

if TYPE_CHECKING:
    from aiser_jupyter.config import Settings

KINDS = ("webhook", "email", "notebook")
TIMEOUT_S = 10.0


class NotifyError(AiserError):
    """A notification target that cannot be read, or a delivery that failed (retried)."""


@dataclass(frozen=True)
class Target:
    kind: str
    address: str = ""

    @property
    def shown(self) -> str:
        """The target as outputs show it: a webhook by its origin only."""
        if self.kind == "webhook":
            parts = urlsplit(self.address)
            return f"webhook:{parts.scheme}://{parts.hostname}{_port(parts)}/…"
        return f"{self.kind}:{self.address}" if self.address else self.kind


def _port(parts: Any) -> str:
    try:
        return f":{parts.port}" if parts.port else ""
    except ValueError:
        return ""


def target(text: str) -> Target:
    """``webhook:URL``, ``email:ADDRESS`` or ``notebook`` as a Target; anything else is a
    NotifyError that says what is accepted."""
    kind, _, address = text.strip().partition(":")
    kind = kind.lower()
    if kind == "notebook" and not address:
        return Target("notebook")
    if kind == "webhook":
        register(address)
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotifyError(f"webhook: expected an http(s) URL, got {redact(address)[:60]!r}")
        for secret in (parts.path, parts.query, parts.password):
            if secret and len(secret) >= 8:  # a token in the path or query
                register(secret)
        return Target("webhook", address)
    if kind == "email":
        if "@" not in address or " " in address.strip():
            raise NotifyError(f"email: expected an address, got {address!r}")
        return Target("email", address.strip())
    raise NotifyError(
        f"unknown notification target {redact(text)[:60]!r}: say 'webhook:URL', "
        "'email:ADDRESS' or 'notebook'"
    )


def subject(firing: dict[str, Any]) -> str:
    return f"[aiser alert] {firing['alert']}: {firing['condition']} (value {firing['value']})"


def send(where: Target, firing: dict[str, Any], settings: Settings, tell: Callable[[str], Any]):
    """Deliver one firing to one target; a NotifyError (its text safe to show) if it fails."""
    try:
        if where.kind == "webhook":
            _webhook(where.address, firing)
        elif where.kind == "email":
            _email(where.address, firing, settings)
        else:
            tell(f"🔔 {subject(firing)}")
    except NotifyError:
        raise
    except Exception as exc:  # the library's text may carry the URL: never shown
        raise NotifyError(f"{where.shown}: {type(exc).__name__}: {redact(str(exc))}") from None


def _webhook(url: str, firing: dict[str, Any]) -> None:
    import httpx

    try:
        reply = httpx.post(url, json=firing, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        shown = Target("webhook", url).shown
        raise NotifyError(f"{shown}: {type(exc).__name__} (unreachable)") from None
    if reply.status_code >= 300:
        shown = Target("webhook", url).shown
        raise NotifyError(f"{shown}: answered HTTP {reply.status_code}")


def _email(address: str, firing: dict[str, Any], settings: Settings) -> None:
    import smtplib
    from email.message import EmailMessage

    host = getattr(settings, "smtp_host", "")
    if not host:
        raise NotifyError("email: no SMTP server: set AISER_SMTP_HOST (and AISER_SMTP_PORT)")
    password = getattr(settings, "smtp_password", "")
    register(password)
    message = EmailMessage()
    message["From"] = getattr(settings, "smtp_from", "") or "aiser@localhost"
    message["To"] = address
    message["Subject"] = subject(firing)
    message.set_content(json.dumps(firing, indent=2, default=str))
    try:
        with smtplib.SMTP(host, int(settings.smtp_port), timeout=TIMEOUT_S) as smtp:
            if str(getattr(settings, "smtp_starttls", "")).lower() in ("1", "true", "yes", "on"):
                smtp.starttls()
            user = getattr(settings, "smtp_user", "")
            if user:
                smtp.login(user, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotifyError(
            f"email:{address}: {type(exc).__name__} from {host}: {redact(str(exc))[:200]}"
        ) from None
