"""Other libraries' log lines stay out of the notebook unless the user asks for them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from aiser_jupyter.logs import OFF, level_of, quiet_libraries

PROBE = """
import json
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "aiser_jupyter")
guard = shell.run_cell("%%sql --read-only\\nLOAD httpfs")
import aiser_jupyter as aiser
aiser.connect("duckdb:///:memory:", name="other")
plan = aiser.session().sql("LOAD httpfs", engine="duckdb", explain=True)
print(json.dumps({"guard": type(guard.error_in_exec).__name__, "plan": plan.decision}))
"""


def run_probe(tmp_path, **env):
    environment = {**os.environ, "AISER_HOME": str(tmp_path), "AISER_AUDIT": "off", **env}
    return subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=environment
    )


def test_sqlglot_says_nothing_when_the_guard_or_the_router_parses_a_command(tmp_path):
    done = run_probe(tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["guard"] == "UnsafeSQLError"
    assert "unsupported syntax" not in done.stdout + done.stderr
    assert done.stderr == ""


def test_asked_for_they_show(tmp_path):
    done = run_probe(tmp_path, AISER_LOG_LEVEL="warning")
    assert "contains unsupported syntax" in done.stderr


def test_levels():
    assert level_of("off") == OFF and level_of("") == OFF
    assert level_of("debug") == logging.DEBUG
    try:
        quiet_libraries("info")
        assert logging.getLogger("sqlglot").level == logging.INFO
    finally:
        quiet_libraries("off")
    assert logging.getLogger("uvicorn.error").level == OFF
