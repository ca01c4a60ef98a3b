"""Who is asking: bearer tokens and signed session cookies, roles, CSRF, and redaction."""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import ipaddress
import math
import os
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection

from pgjobs import _log
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

#: Tokens with fewer different characters than this are refused
#: (`aaaaaaaaaaaaaaaa`, `abababababababab`).
MIN_TOKEN_DISTINCT = 6

#: The rule weak tokens break, as the error and the README state it.
TOKEN_RULE = (
    f"at least {MIN_TOKEN_LENGTH} characters, at least {MIN_TOKEN_DISTINCT} different "
    "ones, and no one character making up more than half of it"
)

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
        if weak_token(secret):
            raise ConfigurationError(
                f"{source}: a {role} token is too easy to guess: a token needs {TOKEN_RULE}; "
                "generate one with `openssl rand -hex 24`"
            )
        token = Token(secret, role, "")
        tokens.append(Token(secret, role, name.strip() or f"{role}:{token.key[:8]}"))
    return tokens


def weak_token(secret: str) -> bool:
    """Whether `secret` breaks TOKEN_RULE (few different characters, or one dominating)."""
    if len(secret) < MIN_TOKEN_LENGTH:
        return True
    counts = collections.Counter(secret)
    return len(counts) < MIN_TOKEN_DISTINCT or max(counts.values()) * 2 > len(secret)


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


def client_key(conn: HTTPConnection) -> str:
    """Whom failed logins are counted against: the client's address.

    IPv6 clients count per /64, the block one host usually holds, so rotating
    through addresses does not reset the count. Behind a proxy this is the
    proxy's address unless the server trusts its forwarded headers
    (`--proxy-headers`).
    """
    host = conn.client.host if conn.client else ""
    if not host:
        return "local"  # a Unix socket: only this machine
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6 and not address.is_loopback:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(slots=True)
class _Failures:
    count: int
    last: float  # when the last failure was
    locked_until: float


class FailureLimiter:
    """Counts failed authentications per client and locks a client out for a while.

    After `threshold` failures the client is locked out for `first_lock`
    seconds; each further failure doubles that, up to `max_lock`. A success
    forgets the client, and so does `window` seconds without a failure after
    its lockout ends. Kept in this process only.

    Args:
        threshold: failures allowed before the first lockout.
        window: seconds after which a client's failures are forgotten.
        first_lock: seconds of the first lockout.
        max_lock: the longest lockout, in seconds.
        max_clients: clients remembered at most (the oldest are forgotten first).
        clock: seconds from a monotonic clock (tests pass their own).
    """

    def __init__(
        self,
        *,
        threshold: int = 5,
        window: float = 900.0,
        first_lock: float = 30.0,
        max_lock: float = 3600.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.window = window
        self.first_lock = first_lock
        self.max_lock = max_lock
        self.max_clients = max_clients
        self._clock = clock
        self._clients: collections.OrderedDict[str, _Failures] = collections.OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try to authenticate again; 0 when it may now."""
        with self._lock:
            found = self._current(client)
            return max(0.0, found.locked_until - self._clock()) if found else 0.0

    def failed(self, client: str) -> tuple[int, float]:
        """Count a failure of `client`: its failures so far, and the lockout it starts (or 0)."""
        with self._lock:
            found = self._current(client)
            if found is None:
                found = self._clients[client] = _Failures(0, 0.0, 0.0)
                while len(self._clients) > self.max_clients:
                    self._clients.popitem(last=False)
            self._clients.move_to_end(client)
            found.count += 1
            found.last = self._clock()
            lock = 0.0
            if found.count >= self.threshold:
                doublings = min(found.count - self.threshold, 32)
                lock = min(self.first_lock * 2**doublings, self.max_lock)
                found.locked_until = found.last + lock
            return found.count, lock

    def succeeded(self, client: str) -> None:
        """Forget `client`'s failures."""
        with self._lock:
            self._clients.pop(client, None)

    def _current(self, client: str) -> _Failures | None:
        found = self._clients.get(client)
        if found is not None and self._clock() > max(found.last, found.locked_until) + self.window:
            del self._clients[client]
            return None
        return found


class Auth:
    """Decides who a request comes from, and whether it may do what it asks.

    With tokens, every request needs one: an `Authorization: Bearer` header,
    or the session cookie the login form sets. Without tokens the dashboard
    is open, as local development wants, but only to requests made to and
    from loopback (a DNS-rebinding page in a browser sends its own Host), unless
    `insecure` is set: then anyone who can reach it is an admin.

    Each login starts a session with its own id, signed into the cookie. Logging
    out revokes that id in this process: a copy of the cookie stops working here
    (the revocations are not shared with other processes, nor kept across a
    restart). Failed logins and bearer tokens are logged and counted per client
    (see FailureLimiter).

    Args:
        tokens: the configured tokens; empty means no authentication.
        secret_key: signs session cookies and CSRF tokens; default
            $PGJOBS_DASHBOARD_SECRET, else a random key (sessions then end when
            the process restarts).
        insecure: without tokens, answer requests from any address.
        limiter: counts failed authentications (default: FailureLimiter()).
    """

    def __init__(
        self,
        tokens: list[Token],
        *,
        secret_key: str | None = None,
        insecure: bool = False,
        limiter: FailureLimiter | None = None,
    ) -> None:
        self.tokens = tokens
        self.insecure = insecure
        self.limiter = limiter or FailureLimiter()
        self.log = _log.get_logger()
        key = secret_key or os.environ.get(SECRET_ENV) or secrets.token_hex(32)
        self._serializer = URLSafeTimedSerializer(key, salt="pgjobs-dashboard-session")
        self._csrf_key = hashlib.sha256(b"pgjobs-dashboard-csrf\x00" + key.encode()).digest()
        self._by_key = {t.key: t for t in tokens}
        # Revoked session ids, and when their cookies would expire anyway.
        self._revoked: dict[str, float] = {}

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
        """The signed cookie value of a new session for someone who logged in with `secret`."""
        principal = self.from_token(secret)
        if principal is None:
            return None
        key = next(
            t.key for t in self.tokens if t.name == principal.name and t.role == principal.role
        )
        return self._serializer.dumps({"k": key, "s": secrets.token_urlsafe(18)})

    def identify(self, conn: HTTPConnection) -> Principal | None:
        """Who sent this request; None when they must authenticate first.

        Raises:
            HttpError: 401 for a bad bearer token, 403 for an anonymous
                request that is not local, 429 while the client is locked
                out after too many failures.
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
            self.throttle(conn, "bearer")
            scheme, _, secret = header.partition(" ")
            principal = self.from_token(secret.strip()) if scheme.lower() == "bearer" else None
            if principal is None:
                self.failed(conn, "bearer")
                raise HttpError(
                    401,
                    "the Authorization header is not `Bearer TOKEN` with a configured token",
                )
            self.limiter.succeeded(client_key(conn))
            return principal
        session = self._session(conn)
        if session is not None:
            token, _ = session
            return Principal(token.name, token.role, "session")
        return None

    # -- failures ----------------------------------------------------------

    def throttle(self, conn: HTTPConnection, via: str) -> None:
        """Refuse an authentication attempt from a client that is locked out.

        A valid token is refused too while the lockout lasts, so that guessing
        learns nothing from it. Sessions already open are not affected.

        Args:
            conn: the request.
            via: "form" or "bearer", for the log.

        Raises:
            HttpError: 429, with the seconds to wait as `retry_after`.
        """
        client = client_key(conn)
        wait = self.limiter.retry_after(client)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            self.log.warning(
                "dashboard.auth_throttled", client=client, via=via, retry_after=seconds
            )
            raise HttpError(
                429,
                f"too many failed logins or tokens from {client}; try again in {seconds} s",
                retry_after=seconds,
            )

    def failed(self, conn: HTTPConnection, via: str) -> None:
        """Log and count a failed login ("form") or bearer token ("bearer"); never the token."""
        client = client_key(conn)
        failures, lock = self.limiter.failed(client)
        self.log.warning(
            "dashboard.auth_failed",
            client=client,
            via=via,
            failures=failures,
            locked_for=math.ceil(lock),
        )

    def succeeded(self, conn: HTTPConnection) -> None:
        """Forget the client's failures after it authenticated."""
        self.limiter.succeeded(client_key(conn))

    # -- sessions ----------------------------------------------------------

    def session_id(self, conn: HTTPConnection) -> str | None:
        """The id of the live session whose cookie `conn` carries, if any."""
        session = self._session(conn)
        return session[1] if session else None

    def revoke(self, conn: HTTPConnection) -> Principal | None:
        """Revoke the session whose cookie `conn` carries (logout); its holder, if any."""
        session = self._session(conn)
        if session is None:
            return None
        token, sid = session
        now = time.time()
        self._revoked = {s: t for s, t in self._revoked.items() if t > now}
        self._revoked[sid] = now + SESSION_MAX_AGE
        return Principal(token.name, token.role, "session")

    def _session(self, conn: HTTPConnection) -> tuple[Token, str] | None:
        cookie = conn.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        token = self._by_key.get(data.get("k", ""))
        sid = data.get("s")
        # A cookie from before sessions had ids has no "s", and cannot be revoked.
        if token is None or not isinstance(sid, str) or sid in self._revoked:
            return None
        return token, sid

    # -- CSRF --------------------------------------------------------------

    def csrf_for(self, session_id: str) -> str:
        """The CSRF token of a session (or of a visitor's pre-login id): an HMAC of it."""
        digest = hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def csrf_token(self, conn: HTTPConnection) -> str | None:
        """The CSRF token forms must carry on `conn`'s session; None without one.

        Logged in, it is derived from the session id, so a token from one
        session is refused in another. Before login (the login form itself,
        or a dashboard without tokens) it is derived from the random id in the
        CSRF cookie.
        """
        sid = self.session_id(conn)
        if sid is None:
            visitor = conn.cookies.get(CSRF_COOKIE, "")
            if not visitor:
                return None
            sid = "visitor:" + visitor
        return self.csrf_for(sid)

    def check_csrf(self, conn: HTTPConnection, value: object) -> None:
        """Refuse a state-changing request whose CSRF token is not its session's.

        Raises:
            HttpError: 403.
        """
        check_origin(conn)
        expected = self.csrf_token(conn)
        if not expected or not isinstance(value, str) or not hmac.compare_digest(expected, value):
            raise HttpError(
                403,
                "the form's CSRF token is missing or stale; reload the page and try again",
            )

    @staticmethod
    def _local(conn: HTTPConnection) -> bool:
        # No client address is a Unix socket, which only this machine can reach.
        client = conn.client.host if conn.client else "localhost"
        return is_loopback(client) and is_loopback(conn.url.hostname or "localhost")


# -- CSRF ------------------------------------------------------------------


def new_csrf_token() -> str:
    """A fresh random value for the CSRF cookie: a visitor's id before login."""
    return secrets.token_urlsafe(24)


def check_csrf(conn: HTTPConnection, form_value: object) -> None:
    """Refuse a POST whose CSRF token is not its session's, or that comes from another origin.

    The token is the one `Auth.csrf_token` gives the request's session (from the
    form field, or a header the caller read); it is checked with the Auth of
    the dashboard app serving `conn`.

    Raises:
        HttpError: 403.
    """
    current(conn).check_csrf(conn, form_value)


def current(conn: HTTPConnection) -> Auth:
    """The Auth of the dashboard app that serves `conn`."""
    auth: Auth = conn.app.state.dashboard.auth
    return auth


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
