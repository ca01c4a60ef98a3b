"""The pgjobs dashboard and HTTP API (`pip install 'pgjobs[web]'`); `create_app` builds it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgjobs.web._app import create_app

__all__ = ["create_app"]

#: What the extra installs; named in the error when one is missing.
EXTRA_HINT = "install the dashboard's extra: pip install 'pgjobs[web]'"


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `python -m pgjobs` (which registers the
    # `dashboard` command from pgjobs.cli._dashboard) works without the extra.
    if name == "create_app":
        try:
            from pgjobs.web._app import create_app
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"the pgjobs dashboard needs {exc.name}, which is not installed; {EXTRA_HINT}",
                name=exc.name,
            ) from None
        return create_app
    raise AttributeError(f"module 'pgjobs.web' has no attribute {name!r}")
