"""Whether live widgets can show here: a widget front end (JupyterLab, Notebook 7, Voila)
is attached to this kernel, or the ``widgets`` setting forces them on or off."""

from __future__ import annotations

import os


def widgets_live() -> bool:
    """Whether a widget front end is attached to this kernel (or widgets are forced on)."""
    from aiser_jupyter.sessions import get_session

    choice = get_session().settings.widgets
    if choice in ("on", "off"):
        return choice == "on"
    from IPython import get_ipython

    shell = get_ipython()
    in_kernel = shell is not None and getattr(shell, "kernel", None) is not None
    front_end = "JPY_SESSION_NAME" in os.environ or any(k.startswith("VOILA_") for k in os.environ)
    return in_kernel and front_end
