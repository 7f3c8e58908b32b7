"""Crypto-shredding for the audit log: personal fields sealed with a key per subject and day.

The audit log is append-only and hash-chained, so a person's entries cannot be deleted
without breaking the chain. Instead their personal fields (who, groups, SQL, reason) are
stored encrypted (AES-256-GCM) with a key of their own, one per subject and UTC day, kept
in ``aiser_audit_subjects``; the chain hashes the ciphertext. Erasing a subject (GDPR) or
retiring a day (retention) deletes the keys: the entries stay, the chain verifies, and
their personal fields can never be read again (``ERASED``).
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass

PREFIX = "shred1:"
ERASED = "[erased]"
SUBJECTS_SQL = (
    "CREATE TABLE IF NOT EXISTS aiser_audit_subjects (subject TEXT PRIMARY KEY, who TEXT NOT"
    " NULL, day TEXT NOT NULL, key TEXT NOT NULL)"
)
PERSONAL = (1, 3, 7, 11)
"""Positions of who, groups, sql and reason in an entry's values (audit.FIELDS)."""


@dataclass(frozen=True)
class SubjectKey:
    subject: str
    """A random id: entries name it, not the person."""
    who: str
    day: str
    key: bytes


def new_subject_key(who: str, day: str) -> SubjectKey:
    return SubjectKey(secrets.token_hex(12), who, day, secrets.token_bytes(32))


def seal_field(key: bytes, text: str | None) -> str | None:
    if text is None:
        return None
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    sealed = nonce + AESGCM(key).encrypt(nonce, text.encode(), None)
    return PREFIX + base64.b64encode(sealed).decode()


def open_field(key: bytes | None, value: str | None) -> str | None:
    """The text of a sealed field; ERASED when its key is gone; other values as they are."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return value
    if key is None:
        return ERASED
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealed = base64.b64decode(value[len(PREFIX) :])
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], None).decode()
