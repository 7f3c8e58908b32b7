"""Data lake tables: Apache Iceberg through pyiceberg, Delta Lake through deltalake, Apache
Hudi through hudi-rs (the ``hudi`` package).

A `LakeTable` is pinned to one snapshot (Iceberg), version (Delta) or commit instant (Hudi),
so every engine that reads it sees the same rows, and `version` can key a result cache.
Rows leave as Arrow: DuckDB scans them in place, Spark receives them through its driver.

Schema evolution is the formats' own business and both libraries read it right: Iceberg
matches columns by field id, so a renamed column reads under its new name in new
snapshots and its old name in old ones, and an added column reads as NULL in files written
before it. `changes` tells what changed between two snapshots; `refresh` moves to the
newest one and says what changed, rather than failing on a schema it did not expect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from aiser_jupyter.errors import ConnectionFailed

if TYPE_CHECKING:
    import pyarrow as pa

LAKE_SCHEMES = ("iceberg", "delta", "hudi")


@dataclass(frozen=True)
class Snapshot:
    """One committed state of a lake table."""

    version: int
    at: datetime
    operation: str


class LakeTable(Protocol):
    """What engines and the Session need from a lake table, whatever its format."""

    format: str
    location: str

    @property
    def version(self) -> int:
        """The pinned snapshot id (Iceberg), table version (Delta) or commit instant (Hudi)."""
        ...

    def to_arrow(self, columns: list[str] | None = None, version: int | None = None) -> pa.Table:
        """The rows of the pinned snapshot (or of `version`), all columns or `columns`."""
        ...

    def snapshots(self) -> list[Snapshot]: ...

    def changes(self, old: int, new: int | None = None) -> list[str]:
        """Columns added, renamed or dropped from snapshot `old` to `new` (default pinned)."""
        ...

    def refresh(self) -> list[str]:
        """Pin the newest snapshot; what changed in the schema since the pinned one."""
        ...


class IcebergTable:
    """An Iceberg table from a catalog (any pyiceberg knows: SQL/SQLite, REST, Glue, Hive)."""

    format = "iceberg"

    def __init__(self, table: Any, snapshot: int | None = None):
        self.table = table
        self.location = str(table.metadata_location)
        current = table.current_snapshot()
        self._version = (
            snapshot if snapshot is not None else (current.snapshot_id if current else 0)
        )
        if snapshot is not None and table.snapshot_by_id(snapshot) is None:
            raise ConnectionFailed(f"Iceberg table {table.name()} has no snapshot {snapshot}")

    @property
    def version(self) -> int:
        return self._version

    def to_arrow(self, columns: list[str] | None = None, version: int | None = None) -> pa.Table:
        snapshot = version if version is not None else self._version
        scan = self.table.scan(
            snapshot_id=snapshot or None, selected_fields=tuple(columns) if columns else ("*",)
        )
        return scan.to_arrow()

    def snapshots(self) -> list[Snapshot]:
        return [
            Snapshot(
                s.snapshot_id,
                datetime.fromtimestamp(s.timestamp_ms / 1000, timezone.utc),
                str(s.summary.operation.value) if s.summary else "",
            )
            for s in self.table.snapshots()
        ]

    def _fields(self, version: int) -> dict[int, str]:
        """Column names by field id, as they were at snapshot `version`."""
        snapshot = self.table.snapshot_by_id(version)
        schema_id = snapshot.schema_id if snapshot is not None else None
        schema = self.table.schemas().get(schema_id, self.table.schema())
        return {field.field_id: field.name for field in schema.fields}

    def changes(self, old: int, new: int | None = None) -> list[str]:
        before, after = self._fields(old), self._fields(self._version if new is None else new)
        return column_changes(before, after)

    def refresh(self) -> list[str]:
        old = self._version
        self.table = self.table.refresh()
        current = self.table.current_snapshot()
        self._version = current.snapshot_id if current else 0
        self.location = str(self.table.metadata_location)
        return self.changes(old) if old else []


class DeltaLakeTable:
    """A Delta table in a folder or object store (deltalake, no Spark needed)."""

    format = "delta"

    def __init__(self, uri: str, version: int | None = None, **storage_options: str):
        try:
            from deltalake import DeltaTable
        except ImportError:
            raise ConnectionFailed("Delta tables need deltalake: pip install deltalake") from None
        self.location = uri
        self._options = storage_options
        try:
            self.table = DeltaTable(uri, version=version, storage_options=storage_options or None)
        except Exception as exc:
            raise ConnectionFailed(f"No Delta table at {uri}: {first_line(exc)}") from None

    @property
    def version(self) -> int:
        return int(self.table.version())

    def to_arrow(self, columns: list[str] | None = None, version: int | None = None) -> pa.Table:
        table = self.table if version is None else self._at(version)
        return table.to_pyarrow_table(columns=columns)

    def _at(self, version: int) -> Any:
        from deltalake import DeltaTable

        return DeltaTable(self.location, version=version, storage_options=self._options or None)

    def snapshots(self) -> list[Snapshot]:
        return [
            Snapshot(
                int(entry["version"]),
                datetime.fromtimestamp(entry["timestamp"] / 1000, timezone.utc),
                str(entry.get("operation", "")),
            )
            for entry in sorted(self.table.history(), key=lambda e: e["version"])
        ]

    def _fields(self, version: int) -> dict[Any, str]:
        """Column names keyed by Delta's column-mapping id where the table has one (renames
        are then told apart from drop + add), else by name."""
        table = self.table if version == self.version else self._at(version)
        keyed = {}
        for field in table.schema().fields:
            key = (field.metadata or {}).get("delta.columnMapping.id", field.name)
            keyed[key] = field.name
        return keyed

    def changes(self, old: int, new: int | None = None) -> list[str]:
        return column_changes(self._fields(old), self._fields(self.version if new is None else new))

    def refresh(self) -> list[str]:
        old = self.version
        self.table.update_incremental()
        return self.changes(old)


class HudiLakeTable:
    """A Hudi table in a folder or object store (hudi-rs: snapshot reads of copy-on-write and
    merge-on-read tables, no Spark needed), pinned to one completed commit.

    Its version is the commit's instant time as a number (``20240102093000123``). Hudi's
    ``_hoodie_*`` meta columns are left out; an older commit reads with the columns it had.
    Hudi (table version 6) keys columns by name, so a rename reads as a drop and an add.
    """

    format = "hudi"

    def __init__(self, uri: str, version: int | None = None, **options: str):
        try:
            import hudi  # noqa: F401
        except ImportError:
            raise ConnectionFailed("Hudi tables need hudi: pip install hudi") from None
        self.location = uri
        self._options = {key: str(value) for key, value in options.items()}
        try:
            self.table = self._open()
            instants = self._instants()
        except Exception as exc:
            raise ConnectionFailed(f"No Hudi table at {uri}: {first_line(exc)}") from None
        if version is not None and version not in {int(i.timestamp) for i in instants}:
            raise ConnectionFailed(f"Hudi table {uri} has no commit {version}")
        latest = int(instants[-1].timestamp) if instants else 0
        self._version = latest if version is None else version

    def _open(self) -> Any:
        from hudi import HudiTable

        return HudiTable(self.location, self._options or None)

    def _instants(self) -> list[Any]:
        """Completed commits of every kind (delta commits of merge-on-read, replace commits
        of overwrites and clustering), oldest first."""
        timeline = self.table.get_timeline()
        instants = [
            *timeline.get_completed_commits(),
            *timeline.get_completed_deltacommits(),
            *timeline.get_completed_replacecommits(),
        ]
        return sorted(instants, key=lambda i: i.timestamp)

    @property
    def version(self) -> int:
        return self._version

    def to_arrow(self, columns: list[str] | None = None, version: int | None = None) -> pa.Table:
        import pyarrow as pa
        from hudi import HudiReadOptions

        at = self._version if version is None else version
        options = HudiReadOptions()
        if at:
            options = options.with_as_of_timestamp(str(at))
        wanted = columns or list(self._fields(at).values())
        if wanted:
            options = options.with_projection(wanted)
        batches = self.table.read(options)
        if batches:
            return pa.Table.from_batches(batches)
        schema = self.table.get_schema()
        return schema.empty_table().select([n for n in wanted if n in schema.names] or [])

    def snapshots(self) -> list[Snapshot]:
        return [
            Snapshot(
                int(instant.timestamp),
                datetime.fromtimestamp(instant.epoch_mills / 1000, timezone.utc),
                str(self._metadata(instant).get("operationType") or instant.action).lower(),
            )
            for instant in self._instants()
        ]

    def _metadata(self, instant: Any) -> dict[str, Any]:
        import json

        try:
            return json.loads(self.table.get_timeline().get_instant_metadata_in_json(instant))
        except (ValueError, RuntimeError):
            return {}

    def _fields(self, version: int) -> dict[str, str]:
        """Column names at commit `version` (its Avro schema), else the table's newest."""
        import json

        for instant in self._instants():
            if int(instant.timestamp) == version:
                schema = self._metadata(instant).get("extraMetadata", {}).get("schema")
                if schema:
                    return {f["name"]: f["name"] for f in json.loads(schema)["fields"]}
        try:
            return {name: name for name in self.table.get_schema().names}
        except Exception:  # a table with no commit has no schema yet
            return {}

    def changes(self, old: int, new: int | None = None) -> list[str]:
        return column_changes(
            self._fields(old), self._fields(self._version if new is None else new)
        )

    def refresh(self) -> list[str]:
        old = self._version
        self.table = self._open()
        instants = self._instants()
        self._version = int(instants[-1].timestamp) if instants else 0
        return self.changes(old) if old else []


def column_changes(before: dict[Any, str], after: dict[Any, str]) -> list[str]:
    """Added, renamed and dropped columns between two {field key: name} schemas."""
    notes = [f"column {after[k]} added" for k in after if k not in before]
    notes += [
        f"column {before[k]} renamed to {after[k]}"
        for k in after
        if before.get(k, after[k]) != after[k]
    ]
    notes += [f"column {before[k]} dropped" for k in before if k not in after]
    return notes


def open_lake(target: str, **options: Any) -> LakeTable:
    """A lake table from a URL or path.

    - ``iceberg://CATALOG/namespace.table``: a catalog as pyiceberg loads it (its config
      file or ``PYICEBERG_CATALOG__…`` variables), or given by `options` (``uri=…``,
      ``warehouse=…``; ``uri="sqlite:///catalog.db"`` is a local catalog, no server);
    - ``iceberg:///path/…/vN.metadata.json``: one table's metadata file, no catalog;
    - ``delta:///path/to/table`` (or ``delta://relative/path``), or a folder holding
      ``_delta_log``: a Delta table; ``storage_options`` go to deltalake;
    - ``hudi:///path/to/table`` (or ``hudi://relative/path``), or a folder holding
      ``.hoodie``: a Hudi table; ``storage_options`` and ``hudi_options`` go to hudi-rs.
    ``snapshot=`` (Iceberg), ``version=`` (Delta) or ``version=`` a commit instant (Hudi)
    pins an older state; query-string options (``?version=3``) work as well.
    """
    scheme, _, rest = target.partition("://")
    if not rest:
        return _open_path(target, options)
    options = {**dict(parse_qsl(urlsplit(target).query)), **options}
    rest = rest.split("?", 1)[0]
    if scheme == "delta":
        path = rest if not rest.startswith("/") else "/" + rest.lstrip("/")
        return _open_delta(os.path.expanduser(path), options)
    if scheme == "iceberg":
        return _open_iceberg(rest, options)
    if scheme == "hudi":
        path = rest if not rest.startswith("/") else "/" + rest.lstrip("/")
        return _open_hudi(os.path.expanduser(path), options)
    raise ConnectionFailed(f"Not a lake URL: {target!r} (expected iceberg://, delta:// or hudi://)")


def _open_path(path: str, options: dict[str, Any]) -> LakeTable:
    folder = Path(os.path.expanduser(path))
    if (folder / "_delta_log").is_dir():
        return _open_delta(str(folder), options)
    if (folder / ".hoodie").is_dir():
        return _open_hudi(str(folder), options)
    if path.endswith(".metadata.json"):
        return _open_iceberg("/" + path.lstrip("/"), options)
    raise ConnectionFailed(
        f"{path!r} is not a Delta table (no _delta_log), a Hudi table (no .hoodie) "
        "or an Iceberg metadata file"
    )


def _open_delta(path: str, options: dict[str, Any]) -> LakeTable:
    version = options.pop("version", None)
    storage = dict(options.pop("storage_options", None) or {})
    _unknown(options, "Delta")
    return DeltaLakeTable(path, None if version is None else int(version), **storage)


def _open_hudi(path: str, options: dict[str, Any]) -> LakeTable:
    version = options.pop("version", None)
    settings = {
        **dict(options.pop("storage_options", None) or {}),
        **dict(options.pop("hudi_options", None) or {}),
    }
    _unknown(options, "Hudi")
    return HudiLakeTable(path, None if version is None else int(version), **settings)


def _open_iceberg(rest: str, options: dict[str, Any]) -> LakeTable:
    try:
        import pyiceberg  # noqa: F401
    except ImportError:
        raise ConnectionFailed(
            "Iceberg tables need pyiceberg: pip install 'pyiceberg[sql-sqlite,pyarrow]'"
        ) from None
    snapshot = options.pop("snapshot", None)
    snapshot = None if snapshot is None else int(snapshot)
    try:
        if rest.endswith(".metadata.json"):
            from pyiceberg.table import StaticTable

            _unknown(options, "an Iceberg metadata file")
            return IcebergTable(StaticTable.from_metadata("/" + rest.lstrip("/")), snapshot)
        catalog_name, _, identifier = rest.strip("/").partition("/")
        if not catalog_name or "." not in identifier:
            raise ConnectionFailed(f"iceberg://{rest}: expected iceberg://CATALOG/namespace.table")
        from pyiceberg.catalog import load_catalog

        catalog = load_catalog(catalog_name, **{k: str(v) for k, v in options.items()})
        return IcebergTable(catalog.load_table(identifier), snapshot)
    except ConnectionFailed:
        raise
    except Exception as exc:
        raise ConnectionFailed(f"Cannot open Iceberg table {rest}: {first_line(exc)}") from None


def _unknown(options: dict[str, Any], what: str) -> None:
    if options:
        raise ConnectionFailed(f"Unknown option(s) for {what}: {', '.join(sorted(options))}")


def local_catalog(folder: str | os.PathLike[str], name: str = "local") -> Any:
    """A pyiceberg SQL catalog kept in `folder` (``catalog.db`` in SQLite, data under
    ``warehouse/``): Iceberg on a laptop with no server. Reach its tables with
    ``iceberg://{name}/ns.table`` and this function's `catalog_options`."""
    from pyiceberg.catalog import load_catalog

    return load_catalog(name, **catalog_options(folder))


def catalog_options(folder: str | os.PathLike[str]) -> dict[str, str]:
    root = Path(folder).expanduser().absolute()
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    return {"uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": (root / "warehouse").as_uri()}


def first_line(exc: BaseException) -> str:
    from aiser_jupyter.security.secrets import redact

    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)
