"""The public surface cannot break: importing any subpackage leaves every name of
``aiser_jupyter.__all__`` as it was, the functions stay callable, and the errors a user
catches are importable from the top level."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import aiser_jupyter as aiser

SKIP = {"aiser_jupyter.mcp.__main__"}  # runs a server when imported


def all_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(aiser.__path__, "aiser_jupyter."):
        if info.name not in SKIP:
            names.append(info.name)
    return names


def test_every_subpackage_import_leaves_the_public_names_alone():
    before = {name: getattr(aiser, name) for name in aiser.__all__}
    for name in all_modules():
        try:
            importlib.import_module(name)
        except ImportError:  # an optional extra that is not installed
            continue
    for name in aiser.__all__:
        assert getattr(aiser, name) is before[name], name
    for name, value in before.items():
        if name == "__version__":
            continue
        if inspect.isclass(value):
            assert issubclass(value, Exception), name
        else:
            assert inspect.isfunction(value), name


def test_no_subpackage_is_named_like_a_public_function():
    modules = {info.name for info in pkgutil.iter_modules(aiser.__path__)}
    functions = {n for n in aiser.__all__ if inspect.isfunction(getattr(aiser, n))}
    assert not modules & functions, modules & functions


def test_errors_a_user_catches_are_top_level():
    from aiser_jupyter.errors import AiserError, UnsafeSQLError
    from aiser_jupyter.security.context import AccessDenied

    assert aiser.UnsafeSQLError is UnsafeSQLError
    assert aiser.AccessDenied is AccessDenied
    for name in aiser.__all__:
        value = getattr(aiser, name)
        if inspect.isclass(value):
            assert issubclass(value, AiserError), name


def test_insights_and_dashboard_stay_callable_however_often_used():
    import pandas as pd

    import aiser_jupyter.analysis
    import aiser_jupyter.boards  # noqa: F401

    frame = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=40), "sales": range(40)})
    for _ in range(3):
        assert isinstance(aiser.insights(frame), list)
    assert callable(aiser.dashboard)
    assert aiser.dashboard.kpi("orders.revenue").source == "orders.revenue"


def test_star_import_and_a_fresh_interpreter():
    probe = (
        "import aiser_jupyter as a, aiser_jupyter.analysis, aiser_jupyter.boards;"
        "from aiser_jupyter import *;"
        "assert callable(a.insights) and callable(a.dashboard) and UnsafeSQLError"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
