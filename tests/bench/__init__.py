"""The peers' benchmark adapters, kept out of the wheel: `nox -s bench` loads them."""
