"""`python -m pgjobs`: one module per command group, and `main` to run them."""

from pgjobs.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
