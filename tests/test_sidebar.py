"""The sidebar's comm, spoken to a real ipykernel by a client that plays the JupyterLab panel.

The kernel is a real process started by jupyter_client; the test sends the messages the
panel sends (comm_open, comm_msg, execute_request with a cellId) and reads what the
kernel publishes on IOPub. The TypeScript side's model is tested by vitest (last test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
LABEXTENSION = ROOT / "labextension"
TARGET = "aiser_sidebar"
REGISTER = "from aiser_jupyter.sidebar import register_sidebar\nregister_sidebar(get_ipython())"


class FrontEnd:
    """A kernel client that talks to the kernel as the sidebar does."""

    def __init__(self, client):
        self.client = client
        self.comm_id: str | None = None

    def roundtrip(self, msg_type: str, content: dict, metadata: dict | None = None) -> list:
        """Send a shell message; the IOPub messages it caused, up to the kernel's idle."""
        msg = self.client.session.msg(msg_type, content, metadata=metadata or {})
        self.client.shell_channel.send(msg)
        parent = msg["header"]["msg_id"]
        seen = []
        while True:
            reply = self.client.get_iopub_msg(timeout=30)
            if reply["parent_header"].get("msg_id") != parent:
                continue
            if reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                return seen
            seen.append(reply)

    def execute(self, code: str, cell_id: str | None = None, *, fails: bool = False) -> list:
        content = {"code": code, "silent": False, "store_history": True, "allow_stdin": False}
        seen = self.roundtrip("execute_request", content, {"cellId": cell_id} if cell_id else {})
        errors = [m["content"] for m in seen if m["msg_type"] == "error"]
        assert bool(errors) == fails, errors[0]["evalue"] if errors else "the cell did not fail"
        return seen

    def open(self) -> list:
        self.comm_id = uuid.uuid4().hex
        return self.roundtrip(
            "comm_open", {"comm_id": self.comm_id, "target_name": TARGET, "data": {}}
        )

    def request(self, action: str, **data) -> list:
        content = {"comm_id": self.comm_id, "data": {"action": action, "id": 1, **data}}
        return self.roundtrip("comm_msg", content)

    def close(self) -> None:
        self.roundtrip("comm_close", {"comm_id": self.comm_id, "data": {}})
        self.comm_id = None

    def sent(self, seen: list, kind: str | None = None) -> list[dict]:
        """What the kernel sent this front end's comm (of one type)."""
        return [
            m["content"]["data"]
            for m in seen
            if m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == self.comm_id
            and (kind is None or m["content"]["data"].get("type") == kind)
        ]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    from jupyter_client.manager import start_new_kernel

    home = tmp_path_factory.mktemp("sidebar-kernel")
    env = {**os.environ, "AISER_HOME": str(home)}
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(ROOT), env=env)
    try:
        yield FrontEnd(client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def loaded(kernel):
    """The kernel after ``%load_ext aiser_jupyter`` and the sidebar's registration, with a
    front end attached through the comm the panel opens."""
    kernel.execute(f"%load_ext aiser_jupyter\n{REGISTER}")
    state = kernel.sent(kernel.open(), "state")
    assert len(state) == 1
    return kernel


def test_probe_is_refused_until_the_extension_loads_then_the_kernel_opens_a_comm(kernel):
    seen = kernel.open()
    assert [m["content"]["comm_id"] for m in seen if m["msg_type"] == "comm_close"] == [
        kernel.comm_id
    ]  # the panel shows "run %load_ext aiser_jupyter"

    seen = kernel.execute(f"%load_ext aiser_jupyter\n{REGISTER}")
    opened = [m["content"] for m in seen if m["msg_type"] == "comm_open"]
    assert [(o["target_name"], o["data"]) for o in opened] == [(TARGET, {"type": "hello"})]

    kernel.comm_id = opened[0]["comm_id"]  # the panel adopts it and asks for the state
    seen = kernel.request("refresh")
    (state,) = kernel.sent(seen, "state")
    assert state["connections"] == [] and state["schema"] == [] and state["model"] is None
    assert state["answer"] is None
    assert kernel.sent(seen, "reply")[0]["ok"] is True
    kernel.close()


def test_a_connect_is_pushed_once_when_its_cell_ends(loaded):
    seen = loaded.execute(
        "import pandas as pd\nimport aiser_jupyter as aiser\n"
        "aiser.connect(pd.DataFrame({'region': ['N', 'S'], 'amount': [1.5, 2.5]}), 'sales')\n"
        "aiser.connect(pd.DataFrame({'x': [1]}), 'other')"
    )
    (update,) = loaded.sent(seen, "update")  # two changes in one cell: one message
    assert [(c["name"], c["kind"], c["current"]) for c in update["connections"]] == [
        ("duckdb", "duckdb", True)
    ]
    (duck,) = update["schema"]
    tables = {t["name"]: t for t in duck["tables"]}
    assert {"sales", "other"} <= set(tables)
    assert tables["sales"]["columns"] == [
        {"name": "region", "type": "VARCHAR"},
        {"name": "amount", "type": "DOUBLE"},
    ]
    assert tables["sales"]["sql"] == "sales"


def test_queries_push_history_and_only_ddl_rereads_the_schema(loaded):
    seen = loaded.execute("for i in range(5):\n    aiser.sql(f'SELECT {i} AS n FROM range(3)')")
    (update,) = loaded.sent(seen, "update")
    assert set(update) == {"type", "history"}  # a SELECT changes no table
    runs = update["history"][-5:]
    assert [r["sql"] for r in runs] == [f"SELECT {i} AS n FROM range(3)" for i in range(5)]
    assert {(r["kind"], r["engine"], r["rows"], r["error"]) for r in runs} == {
        ("sql", "duckdb", 3, None)
    }

    seen = loaded.execute('%%sql\nCREATE TABLE "made here" AS SELECT 42 AS answer')
    (update,) = loaded.sent(seen, "update")
    (duck,) = update["schema"]
    made = [t for t in duck["tables"] if t["name"] == "made here"]
    assert made[0]["columns"] == [{"name": "answer", "type": "INTEGER"}]
    assert made[0]["sql"] == '"made here"'  # quoted as DuckDB needs it

    seen = loaded.execute("%%sql\nSELECT nope FROM missing_table", fails=True)
    failed = loaded.sent(seen, "update")[0]["history"][-1]
    assert failed["rows"] is None and "missing_table" in failed["error"]


def test_a_loaded_model_is_pushed_with_its_cubes_and_members(loaded):
    seen = loaded.execute("aiser.model('examples/model/retail.yml');")
    (update,) = loaded.sent(seen, "update")
    model = update["model"]
    written = yaml.safe_load((ROOT / "examples/model/retail.yml").read_text())
    assert [c["name"] for c in model["cubes"] if c["type"] == "cube"] == [
        c["name"] for c in written["cubes"]
    ]
    first = written["cubes"][0]
    cube = model["cubes"][0]
    assert [m["name"] for m in cube["measures"]] == [
        f"{first['name']}.{m['name']}" for m in first.get("measures", [])
    ]
    assert [d["name"] for d in cube["dimensions"]] == [
        f"{first['name']}.{d['name']}" for d in first.get("dimensions", [])
    ]


def test_an_answer_is_pushed_and_thumbs_from_the_panel_reach_its_memory(loaded):
    seen = loaded.execute("aiser.load_sample()\nanswer = aiser.ask('revenue by region')")
    (update,) = loaded.sent(seen, "update")
    pushed = update["answer"]
    assert {"answer", "history"} <= set(update)
    seen = loaded.execute("print(repr(answer.text), answer.status)")
    text = [m["content"]["text"] for m in seen if m["msg_type"] == "stream"]
    assert text == [f"{pushed['text']!r} answered\n"]
    assert pushed == {
        "question": "revenue by region",
        "status": "answered",
        "text": pushed["text"],
        "suggestions": [],
        "rateable": True,
        "verdict": None,
    }
    assert update["history"][-1]["kind"] == "ask"

    seen = loaded.request("feedback", good=True)
    (update,) = loaded.sent(seen, "update")
    assert update == {"type": "update", "answer": {**pushed, "verdict": True}}
    (reply,) = loaded.sent(seen, "reply")
    assert reply["ok"] is True and reply["message"].startswith("Thanks")
    code = (
        "memory = aiser.session().agent.memory\n"
        "print(memory.confirmed('Revenue by region?').id == answer.episode_id)"
    )
    seen = loaded.execute(code)
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["True\n"]

    seen = loaded.request("feedback", good=False)
    assert loaded.sent(seen, "update")[0]["answer"]["verdict"] is False
    seen = loaded.execute("print(aiser.session().agent.memory.confirmed('revenue by region'))")
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["None\n"]


def test_test_and_remove_requests_answer_and_a_bad_one_loses_nothing(loaded):
    (reply,) = loaded.sent(loaded.request("test", name="duckdb"), "reply")
    assert reply["ok"] is True and reply["message"].startswith("OK: duckdb answered in ")

    (reply,) = loaded.sent(loaded.request("remove", name="nope"), "reply")
    assert reply["ok"] is False
    assert reply["message"].startswith("UnknownConnection: No connection named 'nope'")
    (reply,) = loaded.sent(loaded.request("explode"), "reply")
    assert reply == {
        "type": "reply",
        "id": 1,
        "action": "explode",
        "ok": False,
        "message": "AiserError: Unknown sidebar request 'explode'",
        "name": None,
    }
    seen = loaded.request("refresh")
    assert [c["name"] for c in loaded.sent(seen, "state")[0]["connections"]] == ["duckdb"]

    seen = loaded.request("remove", name="duckdb")
    assert loaded.sent(seen, "update")[0]["connections"] == []
    assert loaded.sent(seen, "reply")[0]["ok"] is True
    seen = loaded.execute("print(sorted(aiser.session().sources.connections))")
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["[]\n"]


def test_insert_cell_goes_below_the_running_cell_only_while_a_panel_listens(loaded):
    code = "from aiser_jupyter.sidebar import insert_cell\nprint(insert_cell('%%sql\\nSELECT 1'))"
    seen = loaded.execute(code, cell_id="cell-42")
    assert loaded.sent(seen, "insert_cell") == [
        {"type": "insert_cell", "text": "%%sql\nSELECT 1", "cell_id": "cell-42"}
    ]
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["True\n"]

    loaded.close()  # the panel went away: %%ask must fall back to set_next_input
    seen = loaded.execute(code)
    assert [m["content"]["text"] for m in seen if m["msg_type"] == "stream"] == ["False\n"]


def test_without_a_kernel_there_is_no_sidebar(ip):
    from aiser_jupyter.sidebar import insert_cell, register_sidebar

    assert register_sidebar(ip) is None
    assert insert_cell("SELECT 1") is False


def test_typescript_model_tests_pass():
    """vitest over labextension/test (the panel's model: messages, search, cells)."""
    if not (LABEXTENSION / "node_modules" / ".bin" / "vitest").exists():
        pytest.fail("labextension/node_modules is missing: run ./dev test (it installs it)")
    node = shutil.which("node")
    assert node, "node is needed for the labextension's tests"
    done = subprocess.run(
        [node, "node_modules/vitest/vitest.mjs", "run"],
        cwd=LABEXTENSION,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout


def test_the_wheel_installs_the_extension_enabled_and_ok(tmp_path):
    """The wheel, built from the front ends already built here (no hooks: offline), installed
    by pip into a fresh venv: JupyterLab there lists the extension as enabled and OK. The
    venv borrows the dev venv's third-party packages (a .pth), not aiser_jupyter."""
    import re
    import sys
    import sysconfig

    from aiser_jupyter import __version__

    if not (LABEXTENSION / "dist" / "aiser-jupyter" / "package.json").exists():
        pytest.fail("labextension/dist is not built: run ./dev test (it builds it)")
    env = {**os.environ, "HATCH_BUILD_NO_HOOKS": "true", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [sys.executable, "-m", "pip", "-q"]
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(wheels)],
        check=True,
        env=env,
        capture_output=True,
    )
    (wheel,) = wheels.glob("aiser_jupyter-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", str(wheel)],
        check=True,
        env=env,
        capture_output=True,
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    jupyter_env = {
        k: v for k, v in os.environ.items() if not k.startswith("JUPYTER") and k != "PYTHONPATH"
    }
    jupyter_env |= {
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    listed = subprocess.run(
        [python, "-m", "jupyterlab.labextensions", "list"],
        cwd=tmp_path,
        env=jupyter_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    assert listed.returncode == 0, text
    assert f"aiser-jupyter v{__version__} enabled OK (python, aiser-jupyter)" in text, text
    installed = venv / "share" / "jupyter" / "labextensions" / "aiser-jupyter"
    assert str(installed.parent) in text
    entry = json.loads((installed / "package.json").read_text())
    assert (installed / entry["jupyterlab"]["_build"]["load"]).is_file()
