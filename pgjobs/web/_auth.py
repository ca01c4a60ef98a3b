"""Who is asking: bearer tokens and signed session cookies, roles, CSRF, and redaction."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from pgjobs.errors import ConfigurationError
from pgjobs.web._http import HttpError

ROLES = ("viewer", "admin")

#: Args keys that look like any of these words are redacted for viewers. A key
#: is compared with case and separators removed (`apiKey`, `api-key` and
#: `API_KEY` are all `apikey`), and matches when it contains a word; a word of
#: SHORT_WORD letters or fewer (`auth`, `pwd`) must instead be one or more
#: whole words of the key (split at separators and camelCase), so `basicAuth`
#: matches `auth` but `author` does not.
DEFAULT_REDACT_KEYS = (
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "authorization",
    "auth",
    "bearer",
    "jwt",
    "cookie",
    "session",
    "signature",
)

#: Redaction words this long or shorter match whole words of a key only.
SHORT_WORD = 4

REDACTED = "[redacted]"

TOKENS_ENV = "PGJOBS_DASHBOARD_TOKENS"
TOKENS_FILE_ENV = "PGJOBS_DASHBOARD_TOKENS_FILE"
SECRET_ENV = "PGJOBS_DASHBOARD_SECRET"  # noqa: S105 - the variable's name, not a secret

SESSION_COOKIE = "pgjobs_session"
CSRF_COOKIE = "pgjobs_csrf"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE = 12 * 3600

#: Tokens shorter than this are refused: they are guessable.
MIN_TOKEN_LENGTH = 16

_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True, slots=True)
class Principal:
    """Someone the dashboard answers: a role, a name for the logs, and how they proved it."""

    name: str
    role: str
    via: str  # "token", "session" or "anonymous"

    @property
    def is_admin(self) -> bool:
        """Whether they may act (retry, cancel, delete, pause, submit)."""
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class Token:
    """One configured token: its role and the name its holder appears under in logs."""

    secret: str
    role: str
    name: str

    @property
    def key(self) -> str:
        """A short, stable id of the token that does not reveal it (for cookies and logs)."""
        return hashlib.sha256(self.secret.encode()).hexdigest()[:16]


def parse_tokens(text: str, source: str = TOKENS_ENV) -> list[Token]:
    """Tokens from `role:TOKEN` or `name=role:TOKEN` entries, comma- or line-separated.

    Blank entries and lines starting with `#` are skipped.

    Raises:
        ConfigurationError: an entry without a known role, or a short token.
    """
    tokens: list[Token] = []
    for raw in text.replace(",", "\n").splitlines():
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        head, sep, secret = entry.partition(":")
        name, _, role = head.rpartition("=")
        role = role.strip().lower()
        secret = secret.strip()
        if not sep or role not in ROLES:
            raise ConfigurationError(
                f"{source}: entry {head[:20]!r}... is not `role:TOKEN` with a role of "
                f"{' or '.join(ROLES)}; e.g. admin:$(openssl rand -hex 24)"
            )
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(
                f"{source}: a {role} token is shorter than {MIN_TOKEN_LENGTH} characters; "
                "generate one with `openssl rand -hex 24`"
            )
        token = Token(secret, role, "")
        tokens.append(Token(secret, role, name.strip() or f"{role}:{token.key[:8]}"))
    return tokens


def load_tokens(
    tokens: str | Iterable[str] | None = None,
    tokens_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Token]:
    """The configured tokens: given ones, else $PGJOBS_DASHBOARD_TOKENS and/or the file.

    Args:
        tokens: entries as parse_tokens reads them (a string or a list of entries).
        tokens_file: a file of entries; default $PGJOBS_DASHBOARD_TOKENS_FILE.
        environ: where to read the variables (default os.environ).

    Raises:
        ConfigurationError: a malformed entry, or an unreadable file.
    """
    env = os.environ if environ is None else environ
    found: list[Token] = []
    if tokens is not None:
        text = tokens if isinstance(tokens, str) else "\n".join(tokens)
        found += parse_tokens(text, "tokens")
    elif env.get(TOKENS_ENV):
        found += parse_tokens(env[TOKENS_ENV], TOKENS_ENV)
    path = tokens_file if tokens_file is not None else env.get(TOKENS_FILE_ENV)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the tokens file {path}: {exc.strerror}"
            ) from None
        found += parse_tokens(text, str(path))
    return found


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine only."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Auth:
    """Decides who a request comes from, and whether it may do what it asks.

    With tokens, every request needs one: an `Authorization: Bearer` header,
    or the session cookie the login form sets. Without tokens the dashboard
    is open, as local development wants, but only to requests made to and
    from loopback (a DNS-rebinding page in a browser sends its own Host), unless
    `insecure` is set.

    Args:
        tokens: the configured tokens; empty means no authentication.
        secret_key: signs session and CSRF cookies; default $PGJOBS_DASHBOARD_SECRET,
            else a random key (sessions then end when the process restarts).
        insecure: without tokens, answer requests from any address.
    """

    def __init__(
        self, tokens: list[Token], *, secret_key: str | None = None, insecure: bool = False
    ) -> None:
        self.tokens = tokens
        self.insecure = insecure
        key = secret_key or os.environ.get(SECRET_ENV) or secrets.token_hex(32)
        self._serializer = URLSafeTimedSerializer(key, salt="pgjobs-dashboard-session")
        self._by_key = {t.key: t for t in tokens}

    @property
    def enabled(self) -> bool:
        """Whether requests must authenticate."""
        return bool(self.tokens)

    def from_token(self, secret: str) -> Principal | None:
        """The holder of `secret`, compared in constant time with every token."""
        found = None
        for token in self.tokens:
            if hmac.compare_digest(token.secret.encode(), secret.encode()):
                found = token
        return Principal(found.name, found.role, "token") if found else None

    def session_value(self, secret: str) -> str | None:
        """The signed cookie value for someone who logged in with `secret`."""
        principal = self.from_token(secret)
        if principal is None:
            return None
        key = next(
            t.key for t in self.tokens if t.name == principal.name and t.role == principal.role
        )
        return self._serializer.dumps({"k": key})

    def identify(self, conn: HTTPConnection) -> Principal | None:
        """Who sent this request; None when they must authenticate first.

        Raises:
            HttpError: 401 for a bad bearer token, 403 for an anonymous
                request that is not local.
        """
        if not self.enabled:
            if not self.insecure and not self._local(conn):
                raise HttpError(
                    403,
                    "this dashboard has no tokens configured, so it only answers requests "
                    "to and from loopback; set PGJOBS_DASHBOARD_TOKENS (e.g. admin:TOKEN)",
                )
            return Principal("anonymous", "admin", "anonymous")
        header = conn.headers.get("authorization", "")
        if header:
            scheme, _, secret = header.partition(" ")
            principal = self.from_token(secret.strip()) if scheme.lower() == "bearer" else None
            if principal is None:
                raise HttpError(
                    401,
                    "the Authorization header is not `Bearer TOKEN` with a configured token",
                )
            return principal
        cookie = conn.cookies.get(SESSION_COOKIE)
        if cookie:
            try:
                data = self._serializer.loads(cookie, max_age=SESSION_MAX_AGE)
            except BadSignature:
                return None
            token = self._by_key.get(data.get("k", "")) if isinstance(data, dict) else None
            if token is not None:
                return Principal(token.name, token.role, "session")
        return None

    @staticmethod
    def _local(conn: HTTPConnection) -> bool:
        # No client address is a Unix socket, which only this machine can reach.
        client = conn.client.host if conn.client else "localhost"
        return is_loopback(client) and is_loopback(conn.url.hostname or "localhost")


# -- CSRF ------------------------------------------------------------------


def new_csrf_token() -> str:
    """A fresh random value for the CSRF cookie and form field."""
    return secrets.token_urlsafe(24)


def check_csrf(conn: HTTPConnection, form_value: object) -> None:
    """Refuse a form POST whose token does not match its cookie, or from another origin.

    Raises:
        HttpError: 403.
    """
    check_origin(conn)
    cookie = conn.cookies.get(CSRF_COOKIE, "")
    if not cookie or not isinstance(form_value, str) or not hmac.compare_digest(cookie, form_value):
        raise HttpError(
            403,
            "the form's CSRF token is missing or stale; reload the page and try again",
        )


def check_origin(conn: HTTPConnection) -> None:
    """Refuse a state-changing request that a browser sent from another site.

    Browsers send Origin (or Sec-Fetch-Site) on cross-site POSTs; tools such
    as curl send neither, and authenticate with a bearer token instead.

    Raises:
        HttpError: 403.
    """
    site = conn.headers.get("sec-fetch-site")
    origin = conn.headers.get("origin")
    if site in ("cross-site", "same-site"):
        raise HttpError(403, "cross-site requests may not change anything here")
    if origin and origin != "null":
        host = conn.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise HttpError(403, f"requests from {origin} may not change anything here")


# -- URLs ------------------------------------------------------------------


def path_segment(name: str) -> str:
    """`name` as one URL path segment, for the URL of an action on the object it names.

    Every `/`, `%`, `?` and `#` is escaped: a browser resolves `..` segments
    before it sends a URL, so a queue named `zz/../emails` left unescaped would
    address `emails`. The routes take names as `path` parameters, which receive
    `%2F` decoded back to `/`. (A name that is exactly `.` or `..` cannot be a
    path segment at all; those objects are reachable through the API.)
    """
    return urllib.parse.quote(name, safe="")


# -- redaction -------------------------------------------------------------


def redact(value: Any, keys: tuple[str, ...]) -> Any:
    """A copy of `value` in which dict entries whose key looks like one of `keys` are hidden.

    See DEFAULT_REDACT_KEYS for how a key is compared with the words.
    """
    words = tuple(w for w in (_fold(k) for k in keys) if w)
    return _redact(value, words)


def _redact(value: Any, words: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if secret_key(k, words) else _redact(v, words) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v, words) for v in value]
    return value


_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _fold(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def secret_key(key: object, words: tuple[str, ...]) -> bool:
    """Whether an args key looks like one of the (folded) redaction `words`."""
    text = str(key)
    folded = _fold(text)
    if any(len(w) > SHORT_WORD and w in folded for w in words):
        return True
    short = [w for w in words if len(w) <= SHORT_WORD and w in folded]
    if not short:
        return False  # the common case: no need to split the key into words
    parts = [p.lower() for p in _WORD.findall(text)][:32]
    runs = {"".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}
    return any(w in runs for w in short)
