"""The house stays easy to change: imports flow down (the import-linter contract in
pyproject.toml), the Session is a composition root of parts, and no class grows past
about 25 public methods."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aiser_jupyter"
MAX_PUBLIC_METHODS = 25


def test_imports_flow_down_and_nothing_imports_in_a_circle():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def public_methods(node: ast.ClassDef) -> list[str]:
    return [
        item.name
        for item in node.body
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
        and not item.name.startswith("_")
    ]


def test_no_class_has_more_than_about_25_public_methods():
    large = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and len(public_methods(node)) > MAX_PUBLIC_METHODS:
                large[f"{path.relative_to(ROOT)}:{node.name}"] = len(public_methods(node))
    assert not large, large


def test_the_session_is_made_of_parts_that_stand_alone(tmp_path, monkeypatch):
    """Each part is built from what it needs, never the Session, and works alone."""
    monkeypatch.setenv("AISER_HOME", str(tmp_path))
    from aiser_jupyter.config import Settings
    from aiser_jupyter.engines.execute import Executor
    from aiser_jupyter.engines.routing import Routing
    from aiser_jupyter.governance.governance import Governance
    from aiser_jupyter.semantic.layer import SemanticLayer
    from aiser_jupyter.sessions import Session
    from aiser_jupyter.sources.sources import Sources

    settings = Settings(audit="off")
    events: list[str] = []
    history: list = []
    sources = Sources(settings, events.append)
    executor = Executor(settings, history.append)
    sources.load_sample()
    routed = Routing(settings, sources, executor).run("SELECT count(*) AS n FROM orders")
    assert routed.rowcount == 1 and len(history) == 1 and events == ["connections"]

    semantic = SemanticLayer(settings, sources.connection, executor.run)
    semantic.load_model(ROOT / "examples" / "model" / "retail.yml")
    answer = semantic.query({"measures": ["orders.count"]})
    assert answer.df.iloc[0, 0] == routed.df.iloc[0, 0]

    listeners: list = []
    governance = Governance(settings, semantic, history, _on(listeners))
    assert governance.lineage("orders.revenue").sources["orders.revenue"]
    governance.start_audit(tmp_path / "audit.db")
    assert len(listeners) == 1
    governance.stop_audit()
    assert listeners == []
    semantic.close()
    sources.close()

    session = Session(settings)
    parts = ["sources", "executor", "router", "semantic", "governance", "analyst", "agent"]
    for name in parts:
        part = getattr(session, name)
        assert type(part).__module__.startswith("aiser_jupyter."), name
        assert not any(isinstance(v, Session) for v in vars(part).values()), name
    session.close()


def _on(listeners: list):
    def on_change(listener):
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    return on_change
