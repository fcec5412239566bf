"""Fetching task resources under the network rule: file:// and http://127.0.0.1 only.

OSWorld tasks download their inputs (and ``cloud_file`` gold files) from huggingface.co. Here
no traffic may leave the machine, so a remote URL is served from a local mirror directory laid
out as ``MIRROR/<host>/<url path>`` (percent-decoded), e.g.
``MIRROR/huggingface.co/datasets/xlangai/ubuntu_osworld_file_cache/resolve/main/...``.
A remote URL without a mirror copy raises ``NetworkPolicyError`` saying where to put the file.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from envs.tasks.errors import NetworkPolicyError

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_FETCH_BYTES = 2 * 1024**3


def is_local_url(url: str) -> bool:
    """True for file:// URLs and http(s) URLs whose host is the loopback interface."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return True
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class _LocalRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only when it stays on the loopback interface."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if not is_local_url(newurl):
            raise NetworkPolicyError(f"{req.full_url} redirects to {newurl}, which is not local; refusing to follow")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


# No proxies: a proxy would carry "local" requests off the machine.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _LocalRedirects)


@dataclass(frozen=True)
class FetchPolicy:
    """Where remote URLs come from: ``mirror`` (a directory) or nowhere."""

    mirror: Path | None = None

    def __post_init__(self) -> None:
        if self.mirror is not None and not isinstance(self.mirror, Path):
            object.__setattr__(self, "mirror", Path(self.mirror))

    def mirror_path(self, url: str) -> Path | None:
        """The mirror file for a remote ``url`` (whether or not it exists), or None without a mirror."""
        if self.mirror is None:
            return None
        parts = urllib.parse.urlsplit(url)
        rel = urllib.parse.unquote(parts.path).lstrip("/")
        target = (self.mirror / (parts.hostname or "") / rel).resolve()
        if not target.is_relative_to(self.mirror.resolve()):
            raise NetworkPolicyError(f"URL {url!r} escapes the mirror directory {self.mirror}")
        return target

    def available(self, url: str) -> bool:
        """Can ``url`` be fetched under this policy (local URL, or mirrored file present)?"""
        if is_local_url(url):
            return True
        target = self.mirror_path(url)
        return target is not None and target.is_file()

    def fetch(self, url: str, timeout_s: float = 60.0) -> bytes:
        """The bytes at ``url``; remote URLs are read from the mirror, never the network."""
        if not is_local_url(url):
            target = self.mirror_path(url)
            if target is None or not target.is_file():
                where = f" at {target}" if target is not None else " (no mirror directory configured)"
                raise NetworkPolicyError(
                    f"{url} is not local and has no mirror copy{where}: only file:// and http://127.0.0.1 "
                    "are fetched here; copy the file into the mirror (MIRROR/<host>/<path>) and pass its directory")
            return target.read_bytes()
        with _OPENER.open(url, timeout=timeout_s) as resp:  # local by the check above
            data = resp.read(MAX_FETCH_BYTES + 1)
        if len(data) > MAX_FETCH_BYTES:
            raise NetworkPolicyError(f"{url} is larger than {MAX_FETCH_BYTES} bytes; refusing to load it into memory")
        return data
