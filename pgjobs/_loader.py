"""Loading the user's App from a `module:attribute` reference, with errors that help."""

from __future__ import annotations

import importlib
import os
import sys

from pgjobs._app import App
from pgjobs.errors import ConfigurationError


def load_app(reference: str) -> App:
    """Import `package.module:app` (the attribute defaults to `app`).

    Raises:
        ConfigurationError: the module cannot be imported or holds no App there.
    """
    module_name, _, attribute = reference.partition(":")
    attribute = attribute or "app"
    if not module_name:
        raise ConfigurationError(f"bad app reference {reference!r}; expected module:attribute")
    # Like `python -m`, make the current directory importable.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigurationError(
                f"cannot import {module_name!r} (from {reference!r}): {exc}. "
                "Run from the directory that contains it, or add it to PYTHONPATH."
            ) from None
        raise
    app = getattr(module, attribute, None)
    if not isinstance(app, App):
        found = type(app).__name__ if app is not None else "nothing"
        raise ConfigurationError(
            f"{reference!r} is {found}, not a pgjobs.App; point at the App instance, "
            "e.g. myapp.jobs:app"
        )
    return app
