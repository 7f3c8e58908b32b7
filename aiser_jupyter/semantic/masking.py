"""Personal data shown masked: in SQL (a semantic query's columns, masked by the database) and
in Python (any result, before it is sent to a language model).

Both sides mask alike, so a value hashed by the database equals the same value hashed here:
``hash`` is the MD5 hex digest of a salt and the text (stable, so equal values can still be
counted and
joined on), ``partial`` keeps the first letter and the domain of an e-mail address and the
last four characters of anything else, ``null`` shows nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from typing import TYPE_CHECKING, Any

from sqlglot import exp

if TYPE_CHECKING:
    from aiser_jupyter.result import Result

DEFAULT_MASK = "hash"
"""How personal data shows when no matching policy says otherwise."""
HIDDEN = "***"
KEEP_LAST = 4
SALT_FILE = "mask.salt"


def salt() -> str:
    """The masking salt: ``AISER_MASK_SALT``, else a random one kept in ``$AISER_HOME/mask.salt``
    (made on first use, readable by its owner only), so a hashed e-mail cannot be looked up in
    a list of known addresses. Registered as a secret: no output, history or audit shows it."""
    from aiser_jupyter.config import home
    from aiser_jupyter.security.secrets import register

    value = os.environ.get("AISER_MASK_SALT", "")
    if not value:
        path = home() / SALT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_hex(16))
        value = path.read_text().strip()
    register(value)
    return value


def mask_sql(value: exp.Expression, mode: str, kind: Any = None) -> exp.Expression:
    """`value` masked by `mode` as a SQL expression (any dialect sqlglot writes)."""
    text = exp.cast(value, exp.DataType.build("text"))
    if mode == "hash":
        return exp.MD5(this=exp.DPipe(this=exp.Literal.string(salt()), expression=text, safe=True))
    if mode == "null":
        return exp.cast(exp.null(), exp.DataType.build("text"))
    if str(kind).lower() == "email":
        at = exp.StrPosition(this=text.copy(), substr=exp.Literal.string("@"))
        kept = exp.If(
            this=exp.GT(this=at, expression=exp.Literal.number(0)),
            true=exp.Substring(this=text.copy(), start=at.copy()),
            false=exp.Literal.string(""),
        )
        first = exp.Substring(
            this=text.copy(), start=exp.Literal.number(1), length=exp.Literal.number(1)
        )
        return exp.Concat(expressions=[first, exp.Literal.string(HIDDEN), kept], safe=True)
    length = exp.Length(this=text.copy())
    start = exp.Greatest(
        this=exp.Sub(this=length, expression=exp.Literal.number(KEEP_LAST - 1)),
        expressions=[exp.Literal.number(1)],
    )
    return exp.Concat(
        expressions=[exp.Literal.string(HIDDEN), exp.Substring(this=text, start=start)], safe=True
    )


def mask_value(value: Any, mode: str, kind: Any = None) -> Any:
    """One value masked as `mask_sql` masks it in the database (None stays None)."""
    if value is None or mode == "none":
        return value
    text = str(value)
    if mode == "hash":
        return hashlib.md5((salt() + text).encode()).hexdigest()  # a stable mask
    if mode == "null":
        return None
    if str(kind).lower() == "email":
        at = text.find("@")
        return text[:1] + HIDDEN + (text[at:] if at >= 0 else "")
    return HIDDEN + text[-KEEP_LAST:]


def pii_columns(semantic: Any, result: Result) -> dict[str, tuple[str, Any]]:
    """Columns of `result` that hold personal data not masked yet: column → (mode, pii kind).

    A semantic result says so in its annotation; any other result's columns are matched by
    name against the model's personal-data dimensions (their column, or their member name).
    """
    found: dict[str, tuple[str, Any]] = {}
    for group in (result.annotation or {}).values():
        for column, info in group.items():
            meta = info.get("meta") or {}
            if meta.get("pii") and not meta.get("masked"):
                found[column] = (DEFAULT_MASK, meta["pii"])
    model = getattr(semantic, "model", None)
    if model is None or result.annotation:
        return found
    names = set(result.to_arrow().column_names)
    for cube in model.cubes.values():
        for member in cube.members.values():
            if member.kind != "dimension" or not member.meta.get("pii"):
                continue
            for candidate in (_column_of(member), member.name, member.full_name):
                if candidate in names:
                    found[candidate] = (DEFAULT_MASK, member.meta["pii"])
    return found


def _column_of(member: Any) -> str | None:
    """The table column a dimension is, when its SQL is one plain column."""
    import sqlglot

    if member.sql is None or member.sql.refs:
        return None
    try:
        parsed = sqlglot.parse_one(member.sql.text)
    except sqlglot.errors.ParseError:
        return None
    return parsed.name if isinstance(parsed, exp.Column) else None


def mask_for_model(semantic: Any, result: Result, *, allow_pii: bool = False) -> Result:
    """`result` with its personal-data columns masked, for text that leaves the machine (a
    language model's prompt). The result itself is left as it is; `allow_pii` sends it as is."""
    import dataclasses

    import pyarrow as pa

    columns = {} if allow_pii or result.table is None else pii_columns(semantic, result)
    if not columns:
        return result
    table = result.table
    for name, (mode, kind) in columns.items():
        index = table.column_names.index(name)
        masked = [mask_value(v, mode, kind) for v in table.column(index).to_pylist()]
        table = table.set_column(index, name, pa.array(masked, pa.string()))
    return dataclasses.replace(
        result, table=table, notes=[*result.notes, "personal data masked"], _df=None
    )
