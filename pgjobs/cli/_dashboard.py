"""`python -m pgjobs dashboard module:app`: serve the dashboard and API with uvicorn."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pgjobs import _dsn
from pgjobs.cli._terminal import add_dsn
from pgjobs.errors import ConfigurationError, PgjobsError

DEFAULT_BIND = "127.0.0.1:8080"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `dashboard` command."""
    p = sub.add_parser(
        "dashboard",
        help="serve the web dashboard and HTTP API",
        description="Serve the pgjobs web dashboard and HTTP JSON API (pip install "
        "'pgjobs[web]'). Tokens come from $PGJOBS_DASHBOARD_TOKENS ('admin:TOKEN1,"
        "viewer:TOKEN2') or --tokens-file. Without tokens it serves loopback only.",
    )
    p.add_argument("app", help="the App whose tasks may be submitted, as module:attribute")
    add_dsn(p)
    p.add_argument(
        "--bind",
        default=DEFAULT_BIND,
        help=f"HOST:PORT to listen on (default {DEFAULT_BIND}, loopback only)",
    )
    p.add_argument(
        "--tokens-file",
        help="a file of role:TOKEN lines (default: $PGJOBS_DASHBOARD_TOKENS_FILE)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="without tokens, answer every address, not only loopback: anyone who can "
        "reach it is admin (only behind a proxy that authenticates)",
    )
    p.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-Proto and X-Forwarded-For from the proxy at 127.0.0.1 (or "
        "$FORWARDED_ALLOW_IPS): behind TLS, cookies are then Secure, and failed logins "
        "count per client rather than per proxy",
    )
    p.add_argument(
        "--allowed-hosts",
        metavar="HOSTS",
        help="comma-separated host names the dashboard answers to, e.g. "
        "dash.example.com,*.example.com; a request with another Host header gets 400 "
        "(default: any; set it when the dashboard is reachable by name)",
    )
    p.add_argument(
        "--refresh",
        type=float,
        default=5.0,
        help="seconds between live refreshes of a page (0: off; default 5)",
    )
    p.add_argument(
        "--root-path",
        type=_root_path,
        default="",
        help="the path a reverse proxy serves the dashboard under, such as /pgjobs: its "
        "links, redirects and cookies start with it, and it answers with the prefix or "
        "without it (a proxy that strips it)",
    )
    p.add_argument(
        "--pooled",
        action="store_true",
        help="the DSN is a transaction-pooling PgBouncer: send no statement timeout "
        "(PgBouncer refuses it at connect); default: the App's `pooled`",
    )
    p.set_defaults(handler=run)


def _root_path(text: str) -> str:
    """--root-path: a path that starts with / and does not end with one ('' for none)."""
    if text and (not text.startswith("/") or text.endswith("/") or "//" in text):
        raise argparse.ArgumentTypeError(
            f"a path that starts with / and does not end with one, such as /pgjobs; got {text!r}"
        )
    return text


def parse_bind(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT, or a bare port (on 127.0.0.1).

    Raises:
        ConfigurationError: not one of those.
    """
    host, _, port = text.rpartition(":")
    if not _:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(
            f"--bind {text!r} is not HOST:PORT with a port from 1 to 65535; e.g. 127.0.0.1:8080"
        )
    return host, int(port)


def check_exposure(host: str, has_tokens: bool, insecure: bool) -> None:
    """Refuse to serve beyond loopback with no tokens, unless the operator insists.

    Raises:
        ConfigurationError: a non-loopback host, no tokens, and no --insecure.
    """
    from pgjobs.web._auth import is_loopback

    if has_tokens or insecure or is_loopback(host):
        return
    raise ConfigurationError(
        f"refusing to serve the dashboard on {host} without tokens: anyone who can reach "
        "it could retry, cancel and submit jobs. Set PGJOBS_DASHBOARD_TOKENS="
        "'admin:TOKEN,viewer:TOKEN' (or --tokens-file), bind to 127.0.0.1, or pass "
        "--insecure if a proxy in front already authenticates."
    )


def build(args: argparse.Namespace) -> tuple[Any, str, int]:
    """The ASGI app and the address, from the command's arguments."""
    try:
        import uvicorn  # noqa: F401

        from pgjobs.web import create_app
        from pgjobs.web._auth import load_tokens
    except ModuleNotFoundError as exc:
        raise PgjobsError(
            f"the dashboard needs {exc.name}, which is not installed; "
            "install it with: pip install 'pgjobs[web]'"
        ) from None
    from pgjobs._loader import load_app

    host, port = parse_bind(args.bind)
    tokens = load_tokens(tokens_file=args.tokens_file)
    check_exposure(host, bool(tokens), args.insecure)
    app = load_app(args.app)
    dsn = _dsn.require(args.dsn) if args.dsn else app.dsn
    web = create_app(
        app,
        dsn=dsn,
        tokens_file=args.tokens_file,
        insecure=args.insecure,
        refresh_seconds=args.refresh,
        allowed_hosts=args.allowed_hosts,
        pooled=args.pooled or app.pooled,
    )
    return web, host, port


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import uvicorn

    from pgjobs.web._serve import under_root_path, url_for

    web, host, port = build(args)
    url = url_for(host, port, args.root_path)
    print(f"pgjobs dashboard on {url}", file=sys.stderr, flush=True)
    if args.insecure and not web.state.dashboard.auth.enabled:
        print(
            "warning: no tokens and --insecure: anyone who can reach this address is admin",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.run(
        under_root_path(web, args.root_path),
        host=host,
        port=port,
        root_path=args.root_path,
        log_level=os.environ.get("PGJOBS_DASHBOARD_LOG_LEVEL", "warning"),
        proxy_headers=args.proxy_headers,
        server_header=False,
    )
    return 0
