"""Fetch Binance archive zips over HTTP and verify each against its ``.zip.CHECKSUM``.

:class:`ArchiveDownloader` downloads a few files at a time into a staging folder, streaming each
through SHA-256, and keeps a file only when its digest matches the archive's checksum file
(``<sha256 hex>  <file name>``). Timeouts, dropped connections, bodies shorter than announced,
HTTP 5xx/429 and checksum mismatches are retried with exponential backoff; HTTP 404 means the
archive has no such file. Every failure ends as one :class:`ArchiveError` sentence naming the file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from liqlab.core.market import MarketDataError
from liqlab.sources.exchange import RetryPolicy

if TYPE_CHECKING:  # pragma: no cover
    from liqlab.sources.archive_download import ArchiveFile

__all__ = ["ArchiveDownloader", "ArchiveError", "sha256_file"]

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class ArchiveError(MarketDataError):
    """A download or import that failed; the message names the file and the reason."""


class _Missing(Exception):
    """HTTP 404: the archive has no such file."""


_RETRYABLE = (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException)


class ArchiveDownloader:
    """Fetch and verify archive zips into a staging folder, a few at a time, with retries.

    Parameters
    ----------
    root_url
        The archive root (the folder that holds ``data/``).
    staging
        Where verified zips wait until they are imported (same file system as the store).
    workers
        Files downloaded at once.
    policy
        Retries of a failed request (timeouts, dropped connections, 5xx, 429, truncated bodies,
        checksum mismatches) with exponential backoff.
    timeout
        Seconds before a silent connection counts as failed.
    """

    def __init__(self, root_url: str, staging: Path, *, workers: int = 8, policy: RetryPolicy | None = None,
                 timeout: float = 30.0) -> None:
        self.root_url = root_url.rstrip("/")
        self.staging = Path(staging)
        self.workers = max(1, int(workers))
        self.policy = policy or RetryPolicy(retries=3, base_delay=0.5, max_delay=10.0)
        self.timeout = float(timeout)
        self.requests = 0
        self.retries = 0
        self.downloads = 0
        self.reused = 0
        self.bytes = 0
        self._lock = threading.Lock()
        #: SHA-256 of every file verified in this run, by file
        self.checksums: dict = {}

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def url(self, f: ArchiveFile) -> str:
        return f"{self.root_url}/{f.relpath}"

    # -- one request ------------------------------------------------------------------------
    def _open(self, url: str):
        self._count("requests")
        try:
            return urllib.request.urlopen(url, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                raise _Missing() from None
            if exc.code in (408, 418, 425, 429) or exc.code >= 500:
                raise ConnectionError(f"HTTP {exc.code}") from None
            raise ArchiveError(f"{url.rsplit('/', 1)[-1]}: the archive refused the request (HTTP {exc.code})") from None

    def _retrying(self, what: str, action: Callable[[], object]):
        last: Exception | None = None
        for attempt in range(self.policy.retries + 1):
            try:
                return action()
            except (_Missing, ArchiveError):
                raise
            except _RETRYABLE as exc:
                last = exc
            except _ChecksumMismatch as exc:
                last = exc
            if attempt < self.policy.retries:
                self._count("retries")
                self.policy.sleep(self.policy.delay(attempt + 1))
        assert last is not None
        if isinstance(last, _ChecksumMismatch):
            raise ArchiveError(f"{what}: checksum does not match its .CHECKSUM file ({last}) after "
                               f"{self.policy.retries + 1} attempt(s)") from None
        reason = _reason(last)
        raise ArchiveError(f"{what}: download failed after {self.policy.retries + 1} attempt(s) ({reason})") from None

    def _checksum(self, f: ArchiveFile) -> str:
        def get() -> str:
            with self._open(self.url(f) + ".CHECKSUM") as resp:
                text = resp.read().decode("ascii", "replace")
            token = (text.split() or [""])[0]
            if not _HEX64.match(token):
                raise ArchiveError(f"{f.name}.CHECKSUM: not a SHA-256 checksum file (starts {text[:40]!r})")
            return token.lower()

        return self._retrying(f"{f.name}.CHECKSUM", get)

    def _download(self, f: ArchiveFile, target: Path, expected: str) -> None:
        def get() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
            try:
                digest = hashlib.sha256()
                size = 0
                with os.fdopen(fd, "wb") as out, self._open(self.url(f)) as resp:
                    declared = resp.headers.get("Content-Length")
                    while True:
                        chunk = resp.read(1 << 16)
                        if not chunk:
                            break
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                if declared is not None and declared.isdigit() and size < int(declared):
                    raise http.client.IncompleteRead(b"", int(declared) - size)
                got = digest.hexdigest()
                if got != expected:
                    raise _ChecksumMismatch(f"expected {expected[:12]}..., got {got[:12]}...")
                os.replace(tmp, target)
                self._count("bytes", size)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise

        self._retrying(f.name, get)
        self._count("downloads")

    def fetch_one(self, f: ArchiveFile) -> Path | None:
        """The verified local copy of ``f``; None when the archive has no such file."""
        target = self.staging / f.relpath
        try:
            expected = self._checksum(f)
            with self._lock:
                self.checksums[f] = expected
            if target.exists() and sha256_file(target) == expected:
                self._count("reused")
                return target
            self._download(f, target, expected)
        except _Missing:
            return None
        return target

    def remote_checksum(self, f: ArchiveFile) -> str | None:
        """The archive's current checksum of ``f`` (None when the archive has no such file)."""
        try:
            return self._checksum(f)
        except _Missing:
            return None

    def remote_checksums(self, files: list[ArchiveFile]) -> dict:
        """:meth:`remote_checksum` of many files, a few at a time."""
        if not files:
            return {}
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return dict(zip(files, pool.map(self.remote_checksum, files)))

    def fetch(self, files: list[ArchiveFile], progress=None) -> dict[ArchiveFile, Path | None]:
        """Fetch ``files`` concurrently; stops at the first failure and raises it."""
        out: dict[ArchiveFile, Path | None] = {}
        if not files:
            return out
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(self.fetch_one, f): f for f in files}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    exc = fut.exception()
                    if exc is not None:
                        for other in pending:
                            other.cancel()
                        raise exc
                    out[futures[fut]] = fut.result()
                    if progress is not None:
                        progress.update(1)
        return out


class _ChecksumMismatch(Exception):
    pass


def _reason(exc: Exception) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"the connection closed {exc.expected} bytes short of the announced size, the file is truncated"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer within the timeout"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the archive: {exc.reason}"
    return f"{type(exc).__name__}: {exc}".strip()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
