"""``%load_ext aiser_jupyter`` must stay light: nothing heavy is imported until it is used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["duckdb", "pandas", "pyarrow", "sqlglot", "sqlalchemy", "adbc_driver_postgresql", "jinja2"]

PROBE = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
before = set(sys.modules)
shell = InteractiveShell.instance()
before = set(sys.modules)
shell.run_line_magic("load_ext", "aiser_jupyter")
loaded = sorted(m.split(".")[0] for m in set(sys.modules) - before)
magics = sorted(shell.magics_manager.magics["cell"]) + sorted(shell.magics_manager.magics["line"])
print(json.dumps({"loaded": loaded, "magics": magics}))
"""


def test_load_ext_imports_nothing_heavy():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert not set(HEAVY) & set(report["loaded"]), report["loaded"]
    assert {"sql", "aiser"} <= set(report["magics"])
