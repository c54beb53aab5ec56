"""Where webhooks may be sent: the allow list of ``JOBQUEUE_WEBHOOK_ALLOW``.

An envelope's ``webhook`` field (a job's ``_webhook=``), and a delivery job's URL, are written by whoever
can write to a queue; unchecked, they would make a worker POST to anything it can reach (the cloud's
metadata service at ``http://169.254.169.254/``, an internal admin port). So a URL is sent to only when
the app itself configured it (``JOBQUEUE_WEBHOOK_URL``, a queue's ``webhook=``, ``app.webhooks.configure``)
or an entry of the allow list matches it. Entries:

- a URL prefix, ``https://hooks.example.com/jobqueue``: same scheme, host and port, and a path equal to
  the prefix's or below it (``/jobqueue`` or ``/jobqueue/...``, not ``/jobqueue-admin``);
- a host name, ``hooks.example.com``: any ``http``/``https`` URL on that host (any port and path);
- ``*``: any URL (turns the check off; for setups where only trusted code can write to the queues).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import SplitResult, unquote, urlsplit

ANY = "*"
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?$|^\[[0-9A-Fa-f:.]+\]$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: a "." or ".." path segment (also with backslashes, which some servers read as slashes)
_DOT_SEGMENT = re.compile(r"(^|[/\\])\.{1,2}([/\\]|$)")


def check_entry(entry: str) -> str:
    """``entry`` stripped, if it is ``*``, an ``http(s)://`` URL prefix with a host, or a host name; else ValueError."""
    entry = entry.strip()
    if entry == ANY or (("://" not in entry) and _HOST.match(entry)):
        return entry
    parts = _split(entry)
    if parts is None or parts.query or parts.fragment or parts.username is not None or parts.password is not None:
        raise ValueError(f"{entry!r} is not '*', a host name, or an http(s):// URL prefix without query, fragment or user")
    return entry


def split_entries(raw: str) -> list[str]:
    """The entries of ``JOBQUEUE_WEBHOOK_ALLOW``: separated by commas or whitespace."""
    return [part for part in re.split(r"[,\s]+", raw) if part]


def _split(url: str) -> SplitResult | None:
    """``url``'s parts, or None unless it is an http(s) URL with a host and a valid port."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or _DEFAULT_PORTS[parts.scheme]


class AllowList:
    """The entries of ``JOBQUEUE_WEBHOOK_ALLOW`` (see the module), checked against URLs."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.entries = tuple(check_entry(e) for e in entries)
        self.any = ANY in self.entries
        self._hosts = {e.lower().rstrip(".") for e in self.entries if e != ANY and "://" not in e}
        self._prefixes = [p for p in (_split(e) for e in self.entries if "://" in e) if p is not None]

    def permits(self, url: str) -> bool:
        """Whether ``url`` matches an entry."""
        if self.any:
            return _split(url) is not None
        parts = _split(url)
        if parts is None or parts.username is not None or parts.password is not None:
            return False
        host = (parts.hostname or "").lower().rstrip(".")
        if host in self._hosts:
            return True
        return any(_under(parts, host, prefix) for prefix in self._prefixes)


def _under(parts: SplitResult, host: str, prefix: SplitResult) -> bool:
    if parts.scheme != prefix.scheme or host != (prefix.hostname or "").lower().rstrip(".") or _port(parts) != _port(prefix):
        return False
    base = prefix.path.rstrip("/")
    path = parts.path or "/"
    if _DOT_SEGMENT.search(unquote(path)):
        return False  # the receiver would resolve "/jobs/../admin" to a path outside the prefix
    return path == base or path.startswith(base + "/")
