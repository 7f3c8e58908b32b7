"""The key that encrypts data at rest: where it comes from, and which key sealed a file.

The key is 32 bytes, taken from the first of:

- ``AISER_ENCRYPTION_KEY``: a passphrase, stretched by scrypt with a random salt kept in
  ``$AISER_HOME/keys/salt`` (so the same passphrase gives another key on another machine);
- a key file, ``AISER_ENCRYPTION_KEY_FILE`` or ``$AISER_HOME/keys/key`` (``aiser keys init``
  writes it), refused when its group or others may read it;
- the OS keyring (``AISER_ENCRYPTION_KEYRING=on``, through the optional ``keyring`` package).

No key: data at rest stays plain, as before. While ``aiser keys rotate`` runs (or after it
was interrupted) a pending key exists beside the current one (``keys/key.new``, the
keyring's ``encryption-key.new`` or ``AISER_NEW_ENCRYPTION_KEY``); a file sealed with either
opens, and new files are sealed with the pending one. Each key has an id (`Key.kid`) that
files and the rotation journal name it by; the key itself is never written into a file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from aiser_jupyter.config import home
from aiser_jupyter.errors import AiserError

PASSPHRASE_ENV = "AISER_ENCRYPTION_KEY"
NEW_PASSPHRASE_ENV = "AISER_NEW_ENCRYPTION_KEY"
KEY_FILE_ENV = "AISER_ENCRYPTION_KEY_FILE"
KEYRING_ENV = "AISER_ENCRYPTION_KEYRING"
KEYRING_SERVICE = "aiser-jupyter"
KEYRING_NAME = "encryption-key"
KEY_BYTES = 32
SALT_BYTES = 16
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
"""scrypt's cost: about 32 MiB and a tenth of a second, once per passphrase and process."""
FIX = (
    "set AISER_ENCRYPTION_KEY to the passphrase, point AISER_ENCRYPTION_KEY_FILE at the key "
    "file, or set AISER_ENCRYPTION_KEYRING=on where the key is in the OS keyring"
)


class EncryptionKeyError(AiserError):
    """Data at rest cannot be opened: the key is missing, wrong, or not kept safely."""


@dataclass(frozen=True)
class Key:
    """32 bytes of key and where they came from (said by `%aiser status`, never the key)."""

    material: bytes
    source: str

    @property
    def kid(self) -> str:
        """The key's id: 16 hex digits of a hash that does not reveal the key."""
        return hashlib.sha256(b"aiser-key-id\0" + self.material).hexdigest()[:16]

    def derive(self, purpose: str) -> bytes:
        """A key of its own for each use (SQLCipher, sealed files, subject keys)."""
        return hmac.new(self.material, purpose.encode(), hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"Key({self.kid}, from {self.source})"


@dataclass(frozen=True)
class KeyRing:
    """The current key and, during a rotation, the pending one that new files get."""

    current: Key
    pending: Key | None = None

    @property
    def writing(self) -> Key:
        """The key new files are sealed with."""
        return self.pending or self.current

    def keys(self) -> list[Key]:
        """The keys a file may be sealed with, the one new files get first."""
        return [self.pending, self.current] if self.pending else [self.current]

    def by_kid(self, kid: str) -> Key | None:
        return next((k for k in self.keys() if k.kid == kid), None)


def keys_dir() -> Path:
    return home() / "keys"


def key_file() -> Path:
    return Path(os.environ.get(KEY_FILE_ENV) or keys_dir() / "key").expanduser()


def ring() -> KeyRing | None:
    """The keys in force now, or None when data at rest is not encrypted."""
    current = _passphrase_key(PASSPHRASE_ENV) or _file_key(key_file()) or _keyring_key("")
    pending = (
        _passphrase_key(NEW_PASSPHRASE_ENV)
        or _file_key(key_file().with_name(key_file().name + ".new"))
        or _keyring_key(".new")
    )
    if current is None:
        if pending is not None:
            return KeyRing(pending)  # `aiser keys init` was interrupted: the new key is the key
        return None
    return KeyRing(current, pending if pending and pending.kid != current.kid else None)


def required() -> KeyRing:
    """The keys in force, or the error that says how to give one."""
    keys = ring()
    if keys is None:
        raise EncryptionKeyError(f"No encryption key: {FIX}")
    return keys


def describe() -> str:
    """One line for `%aiser status`: whether data at rest is encrypted, and with what key."""
    try:
        keys = ring()
    except EncryptionKeyError as exc:
        return f"data at rest: cannot read the key ({exc})"
    if keys is None:
        return (
            "data at rest: not encrypted (set AISER_ENCRYPTION_KEY or run `aiser keys init` "
            "to encrypt memory, audit log, cache and rollups)"
        )
    line = f"data at rest: encrypted (AES-256), key {keys.current.kid} from {keys.current.source}"
    if keys.pending is not None:
        line += f"; rotation to key {keys.pending.kid} unfinished: run `aiser keys rotate`"
    return line


# -- where keys come from -----------------------------------------------------------------


def salt() -> bytes:
    """The passphrase's salt, made on first use, readable by its owner only."""
    path = keys_dir() / "salt"
    if not path.exists():
        write_private(path, secrets.token_bytes(SALT_BYTES).hex().encode(), exclusive=True)
    return bytes.fromhex(path.read_text().strip())


@functools.lru_cache(maxsize=8)
def _stretch(passphrase: str, salt_value: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt_value, length=KEY_BYTES, **SCRYPT).derive(passphrase.encode())


def _passphrase_key(variable: str) -> Key | None:
    passphrase = os.environ.get(variable, "")
    if not passphrase:
        return None
    return Key(_stretch(passphrase, salt()), f"{variable} (passphrase, scrypt)")


def _file_key(path: Path) -> Key | None:
    """The key in a key file; a file others may read is refused, not used."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EncryptionKeyError(
            f"The key file {path} may be read by others (mode {stat.S_IMODE(info.st_mode):o}): "
            f"run `chmod 600 {path}`"
        )
    return Key(_parse(path.read_text().strip(), str(path)), f"key file {path}")


def _keyring_key(suffix: str) -> Key | None:
    if os.environ.get(KEYRING_ENV, "").lower() not in ("1", "on", "true", "yes"):
        return None
    backend = _keyring()
    value = backend.get_password(KEYRING_SERVICE, KEYRING_NAME + suffix)
    if value is None:
        return None
    return Key(_parse(value, "the OS keyring"), f"OS keyring ({KEYRING_NAME}{suffix})")


def _keyring() -> object:
    try:
        import keyring
    except ImportError:
        raise EncryptionKeyError(
            "AISER_ENCRYPTION_KEYRING is on but the keyring package is not installed: "
            "pip install 'aiser-jupyter[protection]'"
        ) from None
    return keyring


def _parse(text: str, where: str) -> bytes:
    try:
        material = bytes.fromhex(text)
    except ValueError:
        material = b""
    if len(material) != KEY_BYTES:
        raise EncryptionKeyError(f"{where} does not hold a key (64 hex digits)")
    return material


def new_key(source: str) -> Key:
    return Key(secrets.token_bytes(KEY_BYTES), source)


def store_pending(key: Key, keyring_backend: bool) -> None:
    """Keep a new key as the pending one (the key file's ``.new`` or the keyring)."""
    if keyring_backend:
        _keyring().set_password(KEYRING_SERVICE, KEYRING_NAME + ".new", key.material.hex())  # type: ignore[attr-defined]
        return
    write_private(key_file().with_name(key_file().name + ".new"), key.material.hex().encode())


def promote_pending(keyring_backend: bool) -> None:
    """The pending key becomes the current one (the last step of a rotation)."""
    if keyring_backend:
        backend = _keyring()
        value = backend.get_password(KEYRING_SERVICE, KEYRING_NAME + ".new")  # type: ignore[attr-defined]
        if value is not None:
            backend.set_password(KEYRING_SERVICE, KEYRING_NAME, value)  # type: ignore[attr-defined]
            backend.delete_password(KEYRING_SERVICE, KEYRING_NAME + ".new")  # type: ignore[attr-defined]
        return
    pending = key_file().with_name(key_file().name + ".new")
    if pending.exists():
        os.replace(pending, key_file())
        fsync_dir(key_file().parent)


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write `data` readable by its owner only, durably (fsync), atomically (or not at all
    when `exclusive` and the file exists)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    if exclusive:
        with contextlib.suppress(FileExistsError):
            os.link(partial, path)
        os.unlink(partial)
    else:
        os.replace(partial, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
