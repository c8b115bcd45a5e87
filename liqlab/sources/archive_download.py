"""Download Binance public-archive files, verify them, and import them into the store.

The archive (``https://data.binance.vision`` or any mirror with the same layout; ``--archive-url``
or ``$LIQLAB_ARCHIVE_URL`` names the root that holds ``data/``) keeps one zip per day and per
month, each with a ``.zip.CHECKSUM`` beside it (``<sha256 hex>  <file name>``)::

    data/futures/um/monthly/klines/BTCUSDT/5m/BTCUSDT-5m-2024-01.zip
    data/futures/um/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2024-02-03.zip
    data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-02-03.zip
    data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip
    data/futures/um/daily/liquidationSnapshot/BTCUSDT/BTCUSDT-liquidationSnapshot-2024-02-03.zip

:func:`download_archive` plans monthly files for whole months asked and daily ones otherwise
(``metrics`` and ``liquidationSnapshot`` exist as daily files only, ``fundingRate`` as monthly
files only), skips every file whose span the store already covers, downloads the rest with a few
threads, checks each zip's SHA-256 against its ``.CHECKSUM`` and only then parses it with the
readers of :mod:`liqlab.sources.binance_archive`. Nothing is written to the store until every
file of the run has been downloaded, verified and parsed; then each store file is written once,
atomically. A failure therefore leaves the store exactly as it was. Verified zips wait in
``<store>/_archive/`` until they are imported, so a run that failed half-way downloads only what
it had not got. A file the archive lacks (HTTP 404) is reported and left as a gap.

Quirks normalised here, on import:

* ``metrics`` rows are labelled with the *end* of their 5-minute period up to the file of
  2026-06-24 and with its *start* from the file of 2026-06-25 on; the store stamps every open
  interest value with the time it was taken (the period end), so rows of files dated 2026-06-25
  or later are moved 5 minutes later;
* USD-M ``liquidationSnapshot`` files end on 2024-03-31: later days are not requested.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from liqlab.core.market import MarketDataError
from liqlab.sources.archive_fetch import ArchiveDownloader, ArchiveError
from liqlab.sources.binance_archive import (
    read_funding_rate,
    read_klines,
    read_liquidation_snapshot,
    read_metrics,
)
from liqlab.sources.exchange import RetryPolicy
from liqlab.sources.store import Store

__all__ = [
    "ARCHIVE_ENV", "ArchiveError", "ArchiveFile", "ArchiveReport", "archive_symbol", "default_archive_url",
    "download_archive", "plan_files",
]

ARCHIVE_ENV = "LIQLAB_ARCHIVE_URL"
DEFAULT_ARCHIVE_URL = "https://data.binance.vision"
KINDS = ("klines", "metrics", "fundingRate", "liquidationSnapshot")
MARKET_DIRS = {"binanceusdm": "um", "binancecoinm": "cm"}
#: First metrics file whose rows are labelled with the start of their 5-minute period.
METRICS_START_LABELS = date(2026, 6, 25)
METRICS_PERIOD = "5m"
#: Last day of USD-M liquidationSnapshot files in the archive.
USDM_SNAPSHOT_END = date(2024, 3, 31)
STAGING_DIR = "_archive"
#: Checksums of the files imported so far, by archive path (``--recheck`` compares against them).
MANIFEST = "imported.json"
_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD")
_MS_PER_DAY = 86_400_000
# store kinds each archive kind writes (the first one is the "main" kind)
STORE_KINDS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "klines": (("ohlcv", "interval"),),
    "metrics": (("open_interest", METRICS_PERIOD), ("long_short", METRICS_PERIOD), ("ratios", METRICS_PERIOD)),
    "fundingRate": (("funding", None),),
    "liquidationSnapshot": (("liquidations", None),),
}


def default_archive_url() -> str:
    """The archive root: ``$LIQLAB_ARCHIVE_URL`` when set, else ``https://data.binance.vision``."""
    return os.environ.get(ARCHIVE_ENV) or DEFAULT_ARCHIVE_URL


def archive_symbol(exchange: str, symbol: str) -> tuple[str, str]:
    """The archive's symbol id and the unified ccxt symbol the store files it under.

    ``BTCUSDT`` and ``BTC/USDT:USDT`` both give ``("BTCUSDT", "BTC/USDT:USDT")`` on
    ``binanceusdm``; ``BTCUSD_PERP`` and ``BTC/USD:BTC`` give ``("BTCUSD_PERP", "BTC/USD:BTC")``
    on ``binancecoinm``. Only perpetuals are understood.

    Raises
    ------
    ArchiveError
        For an unknown exchange or a symbol that is not a perpetual of it.
    """
    if exchange not in MARKET_DIRS:
        raise ArchiveError(f"the Binance archive holds binanceusdm and binancecoinm, not {exchange!r}")
    text = str(symbol).strip().upper()
    if exchange == "binanceusdm":
        m = re.fullmatch(r"([A-Z0-9]+)/([A-Z]+):([A-Z]+)", text)
        if m and m.group(2) == m.group(3):
            return m.group(1) + m.group(2), f"{m.group(1)}/{m.group(2)}:{m.group(3)}"
        for quote in _QUOTES:
            if re.fullmatch(r"[A-Z0-9]+", text) and text.endswith(quote) and len(text) > len(quote):
                return text, f"{text[: -len(quote)]}/{quote}:{quote}"
        raise ArchiveError(
            f"binanceusdm symbol {symbol!r} is not a USD-M perpetual; write it as BTCUSDT or BTC/USDT:USDT"
        )
    m = re.fullmatch(r"([A-Z0-9]+)/USD:([A-Z0-9]+)", text)
    if m and m.group(1) == m.group(2):
        return f"{m.group(1)}USD_PERP", f"{m.group(1)}/USD:{m.group(1)}"
    m = re.fullmatch(r"([A-Z0-9]+)USD_PERP", text)
    if m:
        return text, f"{m.group(1)}/USD:{m.group(1)}"
    raise ArchiveError(
        f"binancecoinm symbol {symbol!r} is not a COIN-M perpetual; write it as BTCUSD_PERP or BTC/USD:BTC"
    )


def coin_m_contract_size(symbol_id: str) -> float:
    """USD per COIN-M contract: 100 for BTCUSD_PERP, 10 for the others."""
    return 100.0 if symbol_id.startswith("BTCUSD") else 10.0


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveFile:
    """One archive zip: its kind, cadence, the days it holds and its path under the root."""

    kind: str
    cadence: str  # "daily" or "monthly"
    first: date
    last: date  # inclusive
    relpath: str

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]

    @property
    def span_ms(self) -> tuple[int, int]:
        """The file's days as an inclusive millisecond range."""
        start = int(pd.Timestamp(self.first, tz="UTC").value // 1_000_000)
        return start, start + ((self.last - self.first).days + 1) * _MS_PER_DAY - 1


def _month_end(d: date) -> date:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def _file(market: str, kind: str, cadence: str, symbol_id: str, interval: str, first: date, last: date) -> ArchiveFile:
    stamp = first.strftime("%Y-%m") if cadence == "monthly" else first.isoformat()
    if kind == "klines":
        rel = f"data/futures/{market}/{cadence}/klines/{symbol_id}/{interval}/{symbol_id}-{interval}-{stamp}.zip"
    else:
        rel = f"data/futures/{market}/{cadence}/{kind}/{symbol_id}/{symbol_id}-{kind}-{stamp}.zip"
    return ArchiveFile(kind, cadence, first, last, rel)


def daily_files(f: ArchiveFile, symbol_id: str, interval: str) -> list[ArchiveFile]:
    """The daily files that hold the days of a monthly file (used when the month is missing)."""
    market = f.relpath.split("/")[2]
    n = (f.last - f.first).days + 1
    return [_file(market, f.kind, "daily", symbol_id, interval, d, d)
            for d in (f.first + timedelta(days=i) for i in range(n))]


def plan_files(
    exchange: str, symbol_id: str, kinds: Iterable[str], interval: str, since: date, until: date
) -> tuple[list[ArchiveFile], list[str]]:
    """The archive files holding ``[since, until]`` (both inclusive) and notes on what is not asked.

    Whole calendar months inside the window use monthly klines files, other days daily files;
    ``metrics`` and ``liquidationSnapshot`` are always daily; ``fundingRate`` always monthly
    (the whole month of every day asked). USD-M ``liquidationSnapshot`` days after 2024-03-31 are
    left out with a note.
    """
    market = MARKET_DIRS[exchange]
    files: list[ArchiveFile] = []
    notes: list[str] = []
    for kind in kinds:
        if kind not in KINDS:
            raise ArchiveError(f"unknown archive kind {kind!r}; use {', '.join(KINDS)}")
        month = date(since.year, since.month, 1)
        while month <= until:
            end = _month_end(month)
            lo, hi = max(month, since), min(end, until)
            whole = lo == month and hi == end
            if kind == "fundingRate" or (kind == "klines" and whole):
                files.append(_file(market, kind, "monthly", symbol_id, interval, month, end))
            else:
                if kind == "liquidationSnapshot" and market == "um":
                    cut = min(hi, USDM_SNAPSHOT_END)
                    if hi > USDM_SNAPSHOT_END:
                        skipped = (hi - max(lo, USDM_SNAPSHOT_END + timedelta(days=1))).days + 1
                        if skipped > 0:
                            notes.append(f"liquidationSnapshot: USD-M files end on {USDM_SNAPSHOT_END}; "
                                         f"{skipped} later day(s) of {month:%Y-%m} not requested")
                    hi = cut
                d = lo
                while d <= hi:
                    files.append(_file(market, kind, "daily", symbol_id, interval, d, d))
                    d += timedelta(days=1)
            month = end + timedelta(days=1)
    return files, notes


# ---------------------------------------------------------------------------------------------
@dataclass
class ArchiveReport:
    """What one archive run planned, downloaded, skipped and imported."""

    exchange: str
    symbol: str
    since: date
    until: date
    archive_url: str
    planned: int = 0
    already_stored: int = 0
    downloads: int = 0
    reused: int = 0
    requests: int = 0
    retries: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    republished: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """One paragraph for people (the CLI prints it)."""
        head = f"{self.exchange} {self.symbol} {self.since}..{self.until}"
        if self.planned == self.already_stored and not self.missing and not self.republished:
            text = f"{head}: all {self.planned} archive file(s) already in the store; nothing downloaded"
        else:
            rows = ", ".join(f"{n} {k}" for k, n in self.rows.items()) or "no"
            text = (f"{head}: {self.planned} archive file(s), {self.already_stored} already stored, "
                    f"{self.downloads} downloaded ({self.bytes / 1e6:.1f} MB) and {self.reused} reused from "
                    f"an earlier run, from {self.archive_url}; imported {rows} rows")
        if self.republished:
            text += f"; re-published since imported, imported again: {', '.join(self.republished)}"
        if self.missing:
            shown = ", ".join(self.missing[:5]) + (f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else "")
            text += f"; not in the archive, left as gaps: {shown}"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


# ---------------------------------------------------------------------------------------------
def _store_kinds(kind: str, interval: str) -> list[tuple[str, str | None]]:
    return [(k, interval if p == "interval" else p) for k, p in STORE_KINDS[kind]]


def _is_stored(f: ArchiveFile, interval: str, coverage: dict) -> bool:
    lo, hi = f.span_ms
    for key in _store_kinds(f.kind, interval):
        if not any(a <= lo and hi <= b for a, b in coverage[key]):
            return False
    return True


def parse_files(
    paths: dict[ArchiveFile, Path], *, contract: str, contract_size: float
) -> dict[tuple[str, str | None], list[pd.DataFrame]]:
    """Read every downloaded file with the archive readers; nothing is written.

    Returns
    -------
    dict
        ``(store kind, period) -> frames`` ready for :meth:`Store.write`.

    Raises
    ------
    ArchiveError
        Naming the file whose content could not be read.
    """
    out: dict[tuple[str, str | None], list[pd.DataFrame]] = {}
    for f, path in sorted(paths.items(), key=lambda kv: kv[0].relpath):
        try:
            frames = _parse_one(f, path, contract=contract, contract_size=contract_size)
        except MarketDataError as exc:
            text = str(exc)
            raise ArchiveError(text if text.startswith(f.name) else f"{f.name}: {text}") from None
        for key, frame in frames.items():
            out.setdefault(key, []).append(frame)
    return out


def _parse_one(f: ArchiveFile, path: Path, *, contract: str, contract_size: float) -> dict:
    lo, hi = f.span_ms
    if f.kind == "klines":
        k = read_klines(path, contract=contract)
        k = k.loc[_inside(k.index, lo, hi)]
        interval = f.relpath.split("/")[-2]
        return {("ohlcv", interval): k[["open", "high", "low", "close", "volume"]].rename_axis("timestamp").reset_index()}
    if f.kind == "metrics":
        m = read_metrics(path, contract=contract, contract_size=contract_size)
        index = m.index
        if f.first >= METRICS_START_LABELS:
            index = index + pd.Timedelta(minutes=5)  # period start -> the time the value was taken
        m = m.set_axis(index.rename("timestamp"))
        out = {("open_interest", METRICS_PERIOD): pd.DataFrame({
            "timestamp": m.index, "open_interest_value": m["open_interest"].to_numpy(),
            "open_interest_amount": np.nan})}
        if "long_short_ratio" in m:
            out[("long_short", METRICS_PERIOD)] = pd.DataFrame(
                {"timestamp": m.index, "long_short_ratio": m["long_short_ratio"].to_numpy()})
        ratios = {"timestamp": m.index}
        for col in ("top_trader_account_ratio", "top_trader_position_ratio", "taker_buy_sell_ratio"):
            ratios[col] = m[col].to_numpy() if col in m else np.nan
        out[("ratios", METRICS_PERIOD)] = pd.DataFrame(ratios)
        return out
    if f.kind == "fundingRate":
        s = read_funding_rate(path)
        return {("funding", None): pd.DataFrame({"timestamp": s.index, "funding_rate": s.to_numpy()})}
    if _header_only(path):
        # a day without liquidations: the file holds the header row alone
        return {("liquidations", None): pd.DataFrame({"timestamp": [], "side": [], "price": [], "notional": []})}
    events = read_liquidation_snapshot(path, contract=contract, contract_size=contract_size)
    return {("liquidations", None): events[["timestamp", "side", "price", "notional"]]}


def _header_only(path: Path) -> bool:
    """True when the zip's CSV holds at most a header row (the readers then refuse it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                return False
            lines = [ln for ln in archive.read(names[0]).decode("utf-8", "replace").splitlines() if ln.strip()]
    except zipfile.BadZipFile:
        return False  # the reader says what is wrong
    return len(lines) == 0 or (len(lines) == 1 and not lines[0].strip()[:1].isdigit())


def _inside(index: pd.DatetimeIndex, lo: int, hi: int) -> np.ndarray:
    ms = index.as_unit("ms").asi8
    return (ms >= lo) & (ms <= hi)


def _parse_day(value) -> date:
    if isinstance(value, date) and not isinstance(value, pd.Timestamp):
        return value
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ArchiveError(f"{value!r} is not a date; write it as YYYY-MM-DD") from None
    return ts.date()


def download_archive(
    exchange: str,
    symbol: str,
    *,
    since,
    until,
    kinds: Iterable[str] = ("klines", "metrics", "fundingRate"),
    interval: str = "5m",
    archive_url: str | None = None,
    store: Store | str | os.PathLike | None = None,
    workers: int = 8,
    policy: RetryPolicy | None = None,
    timeout: float = 30.0,
    keep_downloads: bool = False,
    recheck: bool = False,
    progress: bool | None = None,
    today: date | None = None,
) -> ArchiveReport:
    """Download the archive files for ``[since, until]`` that the store lacks, and import them.

    Parameters
    ----------
    exchange
        ``"binanceusdm"`` (USD-M, ``futures/um``) or ``"binancecoinm"`` (COIN-M, ``futures/cm``).
    symbol
        ``BTCUSDT`` / ``BTC/USDT:USDT`` or ``BTCUSD_PERP`` / ``BTC/USD:BTC``.
    since, until
        First and last day (inclusive, UTC). Days from today on are not published yet and are
        dropped with a note.
    kinds
        Any of ``klines, metrics, fundingRate, liquidationSnapshot``.
    interval
        Klines interval (``1m``, ``5m``, ``1h``, ...).
    archive_url
        The archive root; default :func:`default_archive_url`.
    store
        A :class:`Store` or data directory.
    workers, policy, timeout
        Concurrency, retries and per-request timeout of the downloads.
    keep_downloads
        Keep the verified zips in ``<store>/_archive`` after importing them.
    recheck
        Also ask the archive for the checksums of files already imported and import again those
        whose checksum changed since (days the archive re-published).
    progress
        Show a tqdm progress bar (default: when stderr is a terminal).

    Returns
    -------
    ArchiveReport
        Counts of files planned, already stored, downloaded, reused and missing, rows per kind.

    Raises
    ------
    ArchiveError
        One sentence naming the file and the reason (an HTTP failure after retries, a checksum
        that does not match, a damaged zip, malformed rows). The store is then unchanged.
    """
    store = store if isinstance(store, Store) else Store(store)
    symbol_id, unified = archive_symbol(exchange, symbol)
    kinds = [k.strip() for k in kinds if k.strip()]
    first, last = _parse_day(since), _parse_day(until)
    if last < first:
        raise ArchiveError(f"--until {last} is before --since {first}; the window is empty")
    today = today or pd.Timestamp.now(tz="UTC").date()
    root = (archive_url or default_archive_url()).rstrip("/")
    report = ArchiveReport(exchange, unified, first, last, root)
    if last >= today:
        report.notes.append(f"days from {today} on are not published yet and were not requested")
        last = today - timedelta(days=1)
        if last < first:
            return report
    contract = "linear" if exchange == "binanceusdm" else "inverse"
    size = coin_m_contract_size(symbol_id) if contract == "inverse" else 1.0

    files, notes = plan_files(exchange, symbol_id, kinds, interval, first, last)
    report.notes.extend(notes)
    report.planned = len(files)
    keys = {key for k in kinds for key in _store_kinds(k, interval)}
    coverage = {key: store.coverage(exchange, unified, key[0], key[1]) for key in keys}
    todo = [f for f in files if not _is_stored(f, interval, coverage)]
    report.already_stored = len(files) - len(todo)
    downloader = ArchiveDownloader(root, store.root / STAGING_DIR, workers=workers, policy=policy, timeout=timeout)
    manifest_path = store.root / STAGING_DIR / MANIFEST
    try:
        if recheck:
            todo += _republished([f for f in files if f not in todo], downloader, manifest_path, report)
        if not todo:
            report.requests, report.retries = downloader.requests, downloader.retries
            return report
        present = _fetch_all(downloader, todo, symbol_id, interval, progress, report)
        frames = parse_files(present, contract=contract, contract_size=size)
    except ArchiveError as exc:
        raise ArchiveError(f"{exc}; nothing was imported, the store is unchanged") from None
    covered: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
    for f in present:
        for key in _store_kinds(f.kind, interval):
            covered.setdefault(key, []).append(f.span_ms)
    for key, spans in covered.items():
        parts = frames.get(key, [])
        rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"timestamp": []})
        kind, period = key
        store.write(exchange, unified, kind, period, rows, covered=spans)
        report.rows[kind] = report.rows.get(kind, 0) + len(rows)
    _save_manifest(manifest_path, {f.relpath: downloader.checksums[f] for f in present if f in downloader.checksums})
    if not keep_downloads:
        for path in present.values():
            try:
                path.unlink()
            except FileNotFoundError:
                pass
    return report


def _load_manifest(path: Path) -> dict[str, str]:
    try:
        return dict(json.loads(path.read_text()).get("files", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def _save_manifest(path: Path, updates: dict[str, str]) -> None:
    """Merge ``updates`` into the manifest, written atomically (temporary file and rename)."""
    if not updates:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {**_load_manifest(path), **updates}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-manifest.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump({"files": files}, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _republished(stored: list[ArchiveFile], downloader: ArchiveDownloader, manifest_path: Path,
                 report: ArchiveReport) -> list[ArchiveFile]:
    """The stored files whose archive checksum differs from the one imported."""
    manifest = _load_manifest(manifest_path)
    known = [f for f in stored if f.relpath in manifest]
    if len(known) < len(stored):
        report.notes.append(f"{len(stored) - len(known)} stored file(s) have no recorded checksum (imported "
                            "another way or by an older version) and were not rechecked")
    remote = downloader.remote_checksums(known)
    changed = [f for f in known if remote[f] is not None and remote[f] != manifest[f.relpath]]
    report.republished = sorted(f.name for f in changed)
    return changed


def _fetch_all(downloader: ArchiveDownloader, todo: list[ArchiveFile], symbol_id: str, interval: str,
               progress: bool | None, report: ArchiveReport) -> dict[ArchiveFile, Path]:
    """Download and verify ``todo`` (monthly klines the archive lacks are retried as daily files)."""
    bar = _progress_bar(len(todo), f"{symbol_id} archive", progress)
    try:
        fetched = downloader.fetch(todo, bar)
        # a monthly klines file not published (the current month, or a gap): try its days
        fallback = [d for f, p in fetched.items() if p is None and f.kind == "klines" and f.cadence == "monthly"
                    for d in daily_files(f, symbol_id, interval)]
        if fallback:
            if bar is not None:
                bar.total += len(fallback)
                bar.refresh()
            for f in [f for f, p in fetched.items() if p is None and f.kind == "klines" and f.cadence == "monthly"]:
                del fetched[f]
                report.notes.append(f"{f.name} is not in the archive; its days were fetched as daily files")
            fetched.update(downloader.fetch(fallback, bar))
    finally:
        if bar is not None:
            bar.close()
        report.requests, report.retries = downloader.requests, downloader.retries
        report.downloads, report.reused, report.bytes = downloader.downloads, downloader.reused, downloader.bytes
    report.missing = sorted(f.name for f, p in fetched.items() if p is None)
    return {f: p for f, p in fetched.items() if p is not None}


def _progress_bar(total: int, desc: str, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="file", file=sys.stderr, leave=False)
