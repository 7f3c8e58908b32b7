"""Encryption at rest for the files the product writes: sealed blobs and SQLCipher databases.

A sealed file is ``MAGIC``, the id of the key that sealed it, a 12-byte nonce and the
AES-256-GCM ciphertext with its tag (the header is authenticated too), so a changed byte or
the wrong key fails loudly instead of reading garbage. SQLite databases (memory, audit
log, alert state) go through SQLCipher (``sqlcipher3``), which encrypts every page, its WAL
and its journals, with a raw 256-bit key derived from the current key (no per-open KDF).
Without a key (`keys.ring` None) both are the plain files they always were.

`connect_sqlite` is the one way to open a product database: other parts (alert state)
use it too, with `sqlite_errors` for the exceptions its connections raise.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from pathlib import Path
from typing import Any

from aiser_jupyter.security.keys import EncryptionKeyError, Key, KeyRing, fsync_dir, ring

MAGIC = b"AISEAL1\0"
NONCE_BYTES = 12
KID_BYTES = 8
HEADER_BYTES = len(MAGIC) + KID_BYTES + NONCE_BYTES
SQLITE_HEADER = b"SQLite format 3\0"
BLOB_PURPOSE = "aiser-sealed-file"
SQLITE_PURPOSE = "aiser-sqlcipher"


def is_sealed(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def seal(data: bytes, key: Key) -> bytes:
    """`data` encrypted and authenticated with `key` (a fresh nonce each time)."""
    header = MAGIC + bytes.fromhex(key.kid) + os.urandom(NONCE_BYTES)
    return header + _aead(key).encrypt(header[-NONCE_BYTES:], data, header)


def unseal(data: bytes, keys: KeyRing | None, where: str) -> bytes:
    """The plaintext of a sealed file; EncryptionKeyError when no key in `keys` opens it."""
    from cryptography.exceptions import InvalidTag

    kid = data[len(MAGIC) : len(MAGIC) + KID_BYTES].hex()
    key = keys.by_kid(kid) if keys is not None else None
    if key is None:
        raise EncryptionKeyError(
            f"{where} is encrypted with key {kid}, which is not given: "
            + (
                "set the key it was sealed with"
                if keys
                else "set AISER_ENCRYPTION_KEY (or the key file)"
            )
        )
    header = data[:HEADER_BYTES]
    try:
        return _aead(key).decrypt(header[-NONCE_BYTES:], memoryview(data)[HEADER_BYTES:], header)
    except InvalidTag:
        raise EncryptionKeyError(
            f"{where} was altered or is damaged: it does not decrypt"
        ) from None


@functools.lru_cache(maxsize=8)
def _cipher(material: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(material)


def _aead(key: Key) -> Any:
    return _cipher(key.derive(BLOB_PURPOSE))


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A product file's plaintext: unsealed when sealed, as it is when plain (no key)."""
    data = Path(path).read_bytes()
    if is_sealed(data):
        return unseal(data, ring(), str(path))
    return data


def write_file(path: str | os.PathLike[str], data: bytes, *, durable: bool = False) -> None:
    """Write a product file atomically (a temporary file beside it, then a rename), sealed
    with the key new files get when there is a key. `durable`: fsync before the rename."""
    keys = ring()
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(partial, "wb") as out:
            out.write(seal(data, keys.writing) if keys is not None else data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


# -- SQLite ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def sqlite_errors() -> tuple[type[Exception], ...]:
    """The exceptions a connection from `connect_sqlite` may raise."""
    try:
        from sqlcipher3 import dbapi2
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, dbapi2.Error)


def connect_sqlite(path: str | os.PathLike[str], **options: Any) -> Any:
    """A DB-API connection to a product database (`options` as `sqlite3.connect` takes
    them): SQLCipher keyed with the key the file was made with when a key is set, plain
    `sqlite3` otherwise. A missing or wrong key is an EncryptionKeyError that says what to
    do; the file is only read, never written, until a key opens it."""
    where = os.fspath(path)
    if where == ":memory:":
        return sqlite3.connect(where, **options)
    keys = ring()
    header = _header(where)
    if keys is None:
        if header not in (b"", SQLITE_HEADER):
            raise EncryptionKeyError(
                f"{where} is encrypted: set AISER_ENCRYPTION_KEY (or the key file) to open it"
            )
        return sqlite3.connect(where, **options)
    if header == SQLITE_HEADER:
        raise EncryptionKeyError(
            f"{where} is not encrypted, but an encryption key is set: run `aiser keys init` to "
            "encrypt the existing data (or unset the key to keep it plain)"
        )
    candidates = [keys.writing] if header == b"" else keys.keys()
    for key in candidates:
        connection = open_keyed(where, key, **options)
        if connection is not None:
            return connection
    raise EncryptionKeyError(
        f"{where} does not open with the key given ({keys.current.source}): it was encrypted "
        "with another key; set the key it was made with"
    )


def open_keyed(path: str, key: Key | None, **options: Any) -> Any:
    """A SQLCipher connection opened with `key` (None: plain), or None when it is not the
    file's key."""
    try:
        from sqlcipher3 import dbapi2
    except ImportError:
        raise EncryptionKeyError(
            "An encryption key is set, but SQLCipher is not installed: "
            "pip install 'aiser-jupyter[protection]'"
        ) from None
    connection = dbapi2.connect(path, **options)
    connection.execute("PRAGMA cipher_log_level = NONE")
    if key is not None:
        connection.execute(f"PRAGMA key = \"x'{key.derive(SQLITE_PURPOSE).hex()}'\"")
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except dbapi2.DatabaseError:
        connection.close()
        return None
    return connection


def sqlcipher_key(key: Key) -> str:
    """The ``KEY`` clause value for ``ATTACH … KEY`` (the same raw key `open_keyed` uses)."""
    return f"x'{key.derive(SQLITE_PURPOSE).hex()}'"


def _header(path: str) -> bytes:
    """The first 16 bytes of a database file; empty when it does not exist yet."""
    if path == ":memory:" or path.startswith("file:"):
        return b""
    try:
        with open(path, "rb") as file:
            return file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return b""
