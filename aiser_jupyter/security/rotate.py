"""``aiser keys init|rotate|status``: make a key, encrypt what is plain, re-encrypt with a new key.

Nothing is lost if the process dies at any point: the new key is stored (as the pending
key) before any file uses it; each file is re-encrypted into a temporary file beside it,
fsynced, and renamed over the old one (atomic), then the journal (``keys/journal.json``)
records which key the file now has. Until the last step makes the pending key the current
one, both keys open files, so an interrupted rotation leaves every file readable with the
old key or the new one, and running the command again finishes it. Run it with no kernel
or server using the data (SQLite files are copied whole).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from aiser_jupyter.config import Settings, home
from aiser_jupyter.security import keys as keymod
from aiser_jupyter.security.atrest import (
    MAGIC,
    SQLITE_HEADER,
    open_keyed,
    seal,
    sqlcipher_key,
    unseal,
)
from aiser_jupyter.security.keys import EncryptionKeyError, Key, KeyRing, fsync_dir

HOLD_ENV = "AISER_ROTATE_HOLD_AFTER"
"""For the interruption test: after this many files, stop (forever) with the next file's
new copy written but not yet renamed, and say ``holding`` on stdout."""
TEMP_SUFFIX = ".rekey.tmp"
SKIPPED = {"config.toml", "connections.toml", "mask.salt"}
DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SIDECARS = ("-wal", "-shm", "-journal")


def journal_path() -> Path:
    return keymod.keys_dir() / "journal.json"


def journal() -> dict[str, str]:
    """Which key (by id) each data file has, as the last init or rotation left it."""
    path = journal_path()
    return json.loads(path.read_text()) if path.is_file() else {}


def data_files(settings: Settings | None = None) -> list[Path]:
    """Every file the product keeps data in: under ``$AISER_HOME`` (not its keys and
    settings) and the memory, audit and rollup files the settings place elsewhere."""
    settings = settings or Settings.load()
    root = home()
    found = {
        p
        for p in root.rglob("*")
        if p.is_file()
        and keymod.keys_dir() not in p.parents
        and p.name not in SKIPPED
        and not p.name.endswith(SIDECARS)
        and not p.name.startswith(".")
        and not p.name.endswith(TEMP_SUFFIX)
    }
    for location in (settings.memory, settings.audit, settings.preaggregation_cache):
        path = Path(location.removeprefix("sqlite:///")).expanduser()
        if "://" not in location and location not in ("", "off", ":memory:") and path.is_file():
            found.add(path)
    return sorted(p for p in found if _kind(p) is not None)


def _kind(path: Path) -> str | None:
    """``sealed``, ``sqlite`` (plain), ``sqlcipher``, ``arrow`` (a plain cache file) or None."""
    with open(path, "rb") as file:
        head = file.read(len(SQLITE_HEADER))
    if head.startswith(MAGIC):
        return "sealed"
    if head == SQLITE_HEADER:
        return "sqlite"
    if head.startswith(b"ARROW1"):
        return "arrow"
    if path.suffix in DATABASE_SUFFIXES and head:
        return "sqlcipher"
    return None


def init_keys(*, keyring_backend: bool = False, say: Any = print) -> Key:
    """Make the key (unless a passphrase gives it) and encrypt every plain data file."""
    given = keymod.ring()
    if given is None:
        keymod.store_pending(keymod.new_key("new key"), keyring_backend)
        given = keymod.required()
    elif given.pending is None and not any(_kind(p) in ("sqlite", "arrow") for p in data_files()):
        say(
            f"Data at rest is encrypted already, with key {given.current.kid} "
            f"({given.current.source}): `aiser keys rotate` replaces the key."
        )
        return given.current
    key = given.writing
    _reencrypt(KeyRing(key), key, say)
    keymod.promote_pending(keyring_backend)
    say(f"Data at rest is encrypted with key {key.kid} ({keymod.required().current.source}).")
    return key


def rotate_keys(*, say: Any = print) -> Key:
    """Re-encrypt every data file with a new key, then make it the current key."""
    old = keymod.required()
    keyring_backend = "keyring" in old.current.source
    if old.pending is None:
        if old.current.source.startswith(keymod.PASSPHRASE_ENV):
            raise EncryptionKeyError(
                f"The key comes from a passphrase: set {keymod.NEW_PASSPHRASE_ENV} to the new "
                "passphrase and run `aiser keys rotate` again"
            )
        keymod.store_pending(keymod.new_key("new key"), keyring_backend)
        old = keymod.required()
    assert old.pending is not None
    _reencrypt(old, old.pending, say)
    new = old.pending
    keymod.promote_pending(keyring_backend)
    if new.source.startswith(keymod.NEW_PASSPHRASE_ENV):
        say(
            f"Re-encrypted with key {new.kid}: now set {keymod.PASSPHRASE_ENV} to the new "
            f"passphrase and unset {keymod.NEW_PASSPHRASE_ENV}."
        )
    else:
        say(f"Re-encrypted with key {new.kid}; the old key is gone.")
    return new


def status() -> list[dict[str, Any]]:
    """Each data file, its kind, and the key the journal says it has."""
    recorded = journal()
    return [{"file": str(p), "kind": _kind(p), "key": recorded.get(str(p))} for p in data_files()]


def _reencrypt(old: KeyRing, new: Key, say: Any) -> None:
    recorded = journal()
    hold = int(os.environ.get(HOLD_ENV, "-1"))
    files = data_files()
    for stale in _temporaries(files):
        stale.unlink()
    for done, path in enumerate(files):
        fresh = path.with_name(path.name + TEMP_SUFFIX)
        if not _write_new(path, fresh, old, new):
            recorded[str(path)] = new.kid
            continue
        if done == hold:
            say("holding", flush=True)
            while True:
                time.sleep(60)
        _replace(fresh, path)
        recorded[str(path)] = new.kid
        keymod.write_private(journal_path(), json.dumps(recorded, indent=1).encode())
        say(f"  {path}: key {new.kid}")
    keymod.write_private(journal_path(), json.dumps(recorded, indent=1).encode())


def _temporaries(files: Iterable[Path]) -> Iterator[Path]:
    """Copies a killed rotation left half-done (the files themselves were never touched)."""
    for path in files:
        fresh = path.with_name(path.name + TEMP_SUFFIX)
        if fresh.exists():
            yield fresh


def _write_new(path: Path, fresh: Path, old: KeyRing, new: Key) -> bool:
    """Write `path` encrypted with `new` to `fresh`, fsynced; False when it already is."""
    kind = _kind(path)
    if kind == "sealed":
        data = path.read_bytes()
        if data[len(MAGIC) : len(MAGIC) + 8].hex() == new.kid:
            return False
        _write_synced(fresh, seal(unseal(data, old, str(path)), new))
        return True
    if kind == "arrow":
        _write_synced(fresh, seal(path.read_bytes(), new))
        return True
    if kind == "sqlcipher" and _opens(path, new):
        return False
    source = _open_database(path, old if kind == "sqlcipher" else None)
    try:
        source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        source.execute(f'ATTACH DATABASE ? AS rekeyed KEY "{sqlcipher_key(new)}"', (str(fresh),))
        source.execute("SELECT sqlcipher_export('rekeyed')")
        source.execute("DETACH DATABASE rekeyed")
    finally:
        source.close()
    with open(fresh, "rb+") as file:
        os.fsync(file.fileno())
    return True


def _opens(path: Path, key: Key) -> bool:
    connection = open_keyed(str(path), key)
    if connection is None:
        return False
    connection.close()
    return True


def _open_database(path: Path, keys: KeyRing | None) -> Any:
    """A connection to a database with the key it has (None: it is plain)."""
    for key in keys.keys() if keys is not None else [None]:
        connection = open_keyed(str(path), key)
        if connection is not None:
            return connection
    raise EncryptionKeyError(f"{path} opens with none of the keys given: set the key it has")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _replace(fresh: Path, path: Path) -> None:
    """The new copy takes the file's place; the old one's emptied WAL and index go."""
    for suffix in SIDECARS:
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    os.replace(fresh, path)
    fsync_dir(path.parent)
