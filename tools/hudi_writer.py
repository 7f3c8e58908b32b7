"""A small writer of Apache Hudi copy-on-write tables, for tests.

hudi-rs (the ``hudi`` package) only reads, and Hudi's own writer is a Spark bundle jar
fetched from Maven, which tests cannot reach. So this writes the table layout itself, the
way Hudi 0.x (table version 6, timeline layout 1) does on disk, modelled on tables that
Hudi's Spark writer made (hudi-rs's test tables):

- ``.hoodie/hoodie.properties``: name, type, version, record key and partition fields;
- one instant per commit on the timeline: ``<instant>.commit.requested``, ``.inflight``,
  and ``<instant>.commit`` with ``partitionToWriteStats`` and the Avro schema;
- per partition one file group; a commit writes a new base file (a file slice) of each file
  group it touches, ``<fileId>_<writeToken>_<instant>.parquet``, holding the group's rows
  merged by record key (an upsert), with Hudi's five ``_hoodie_*`` meta columns in front;
- ``.hoodie_partition_metadata`` in each partition folder (hive-style ``field=value``).

Only what a copy-on-write upsert needs; no merge-on-read logs, deletes or metadata table.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

META = [
    "_hoodie_commit_time",
    "_hoodie_commit_seqno",
    "_hoodie_record_key",
    "_hoodie_partition_path",
    "_hoodie_file_name",
]

AVRO = {
    pa.bool_(): "boolean",
    pa.int8(): "int",
    pa.int16(): "int",
    pa.int32(): "int",
    pa.int64(): "long",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.string(): "string",
    pa.large_string(): "string",
    pa.binary(): "bytes",
    pa.date32(): {"type": "int", "logicalType": "date"},
}


def write_commit(
    path: str | Path,
    rows: pa.Table,
    instant: str,
    *,
    name: str,
    record_key: str,
    partition: str | None = None,
) -> None:
    """Upsert `rows` into the Hudi table at `path` as one commit at `instant`
    (``yyyyMMddHHmmssSSS``), creating the table on its first commit."""
    root = Path(path)
    timeline = root / ".hoodie"
    if not (timeline / "hoodie.properties").exists():
        timeline.mkdir(parents=True)
        _properties(timeline, name, record_key, partition, rows.schema)
    (timeline / f"{instant}.commit.requested").touch()
    (timeline / f"{instant}.inflight").write_text("{}")
    groups = [rows] if partition is None else _by_value(rows, partition)
    stats: dict[str, list[dict[str, Any]]] = {}
    for task, group in enumerate(groups):
        where = "" if partition is None else f"{partition}={group.column(partition)[0].as_py()}"
        stats[where] = [_write_slice(root, where, group, instant, task, record_key)]
    commit = {
        "partitionToWriteStats": stats,
        "compacted": False,
        "extraMetadata": {"schema": json.dumps(avro_schema(name, rows.schema))},
        "operationType": "UPSERT",
    }
    (timeline / f"{instant}.commit").write_text(json.dumps(commit, indent=2))


def avro_schema(name: str, schema: pa.Schema) -> dict[str, Any]:
    """The record schema Hudi keeps for the table (every field nullable, as Spark writes)."""
    fields = [
        {"name": field.name, "type": ["null", _avro_type(field.type)], "default": None}
        for field in schema
    ]
    return {
        "type": "record",
        "name": f"{name}_record",
        "namespace": f"hoodie.{name}",
        "fields": fields,
    }


def _avro_type(kind: pa.DataType) -> Any:
    if pa.types.is_timestamp(kind):
        return {"type": "long", "logicalType": "timestamp-micros"}
    if kind not in AVRO:
        raise TypeError(f"no Avro type for {kind} in this writer")
    return AVRO[kind]


def _properties(
    timeline: Path, name: str, record_key: str, partition: str | None, schema: pa.Schema
) -> None:
    lines = {
        "hoodie.table.name": name,
        "hoodie.table.type": "COPY_ON_WRITE",
        "hoodie.table.version": "6",
        "hoodie.timeline.layout.version": "1",
        "hoodie.table.timeline.timezone": "UTC",
        "hoodie.table.recordkey.fields": record_key,
        "hoodie.table.partition.fields": partition or "",
        "hoodie.datasource.write.hive_style_partitioning": "true",
        "hoodie.datasource.write.drop.partition.columns": "false",
        "hoodie.table.keygenerator.class": (
            "org.apache.hudi.keygen.SimpleKeyGenerator"
            if partition
            else "org.apache.hudi.keygen.NonpartitionedKeyGenerator"
        ),
        "hoodie.table.create.schema": json.dumps(avro_schema(name, schema)),
        "hoodie.archivelog.folder": "archived",
    }
    text = "".join(f"{key}={value.replace(':', chr(92) + ':')}\n" for key, value in lines.items())
    (timeline / "hoodie.properties").write_text(text)


def _by_value(rows: pa.Table, column: str) -> list[pa.Table]:
    values = pc.unique(rows.column(column)).to_pylist()
    return [rows.filter(pc.equal(rows.column(column), value)) for value in values]


def _write_slice(
    root: Path, where: str, rows: pa.Table, instant: str, task: int, key: str
) -> dict[str, Any]:
    """A new base file of the partition's file group: its latest rows with `rows` upserted."""
    folder = root / where if where else root
    folder.mkdir(parents=True, exist_ok=True)
    latest = sorted(folder.glob("*.parquet"), key=lambda p: p.stem.rsplit("_", 1)[1])
    fresh = {
        "_hoodie_commit_time": [instant] * rows.num_rows,
        "_hoodie_commit_seqno": [f"{instant}_{task}_{i}" for i in range(rows.num_rows)],
    }
    if latest:
        file_id = latest[-1].name.split("_", 1)[0]
        previous = latest[-1].stem.rsplit("_", 1)[1]
        before = pq.read_table(latest[-1])
        replaced = pc.is_in(before.column(key), rows.column(key))
        kept = before.filter(pc.invert(replaced))  # unchanged rows keep their commit time
        updates = pc.sum(replaced.cast(pa.int64())).as_py() or 0
        merged = pa.concat_tables([kept.drop_columns(META), rows], promote_options="default")
        commit = {m: kept.column(m).to_pylist() + fresh[m] for m in fresh}
    else:
        file_id, merged, previous, updates, commit = f"{uuid.uuid4()}-0", rows, "null", 0, fresh
        (folder / ".hoodie_partition_metadata").write_text(
            f"#partition metadata\ncommitTime={instant}\npartitionDepth={1 if where else 0}\n"
        )
    file_name = f"{file_id}_{task}-1-{task}_{instant}.parquet"
    count = merged.num_rows
    meta = {
        **commit,
        "_hoodie_record_key": [str(v) for v in merged.column(key).to_pylist()],
        "_hoodie_partition_path": [where] * count,
        "_hoodie_file_name": [file_name] * count,
    }
    table = pa.table({**{m: meta[m] for m in META}, **{n: merged[n] for n in merged.column_names}})
    pq.write_table(table, folder / file_name)
    size = (folder / file_name).stat().st_size
    relative = f"{where}/{file_name}" if where else file_name
    return {
        "fileId": file_id,
        "path": relative,
        "prevCommit": previous,
        "numWrites": count,
        "numDeletes": 0,
        "numUpdateWrites": updates,
        "numInserts": rows.num_rows - updates,
        "totalWriteBytes": size,
        "totalWriteErrors": 0,
        "partitionPath": where,
        "fileSizeInBytes": size,
    }
