"""The explorer's "all exchanges" data source, its per-venue breakdown, and honest coverage notes.

* :func:`load_all_exchanges` builds one :class:`~liqlab.core.market.Market` whose open interest and
  realized liquidations are the sums over the venues stored for a symbol
  (:func:`~liqlab.sources.multi_exchange.load_multi_exchange`), with candles from a reference
  venue (the first of ``venues`` with candles stored). The model then runs on it as on any market.
* :func:`venue_bar_parts` draws the realized bars stacked by venue (longs above zero, shorts below,
  one colour family per venue); :func:`breakdown_table_html` is the small table under the figure;
  :func:`coverage_notes` is the status line's account of venues, spans and lower bounds.
* :func:`shortfall_notes` says when the store cannot fill the chosen window and which command
  would fill it, for any data source.

Every text here is shown to visitors of a shared dashboard: it names the problem and the command
that fixes it, never a path on the server (:func:`visitor_text` removes any that slip through).
"""

from __future__ import annotations

from liqlab.apps.guarded import visitor_text  # noqa: F401 (re-exported for the dashboard's notes)

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from liqlab.apps.dashboard_inputs import CUSTOM, WINDOWS, Loaded
from liqlab.core.market import (
    Market,
    MarketDataError,
    make_market,
    timeframe_to_timedelta,
)
from liqlab.sources.export import (
    ExportError,
    pick_period,
    resample_candles,
    stored_symbol,
)
from liqlab.sources.multi_exchange import (
    DEFAULT_VENUES,
    MultiExchange,
    load_multi_exchange,
)
from liqlab.sources.store import Store, safe_name, to_ms
from liqlab.viz.grid import bar_period, epoch_ms, minute_labels, period_bars

__all__ = ["ALL_EXCHANGES", "VENUE_COLOURS", "MultiLoaded", "breakdown_table_html", "coverage_notes",
           "fill_command", "load_all_exchanges", "shortfall_notes", "venue_bar_parts", "venue_bar_values",
           "venue_trace_names", "visitor_text", "window_notes", "with_venue_bars"]

ALL_EXCHANGES = "all exchanges"
#: one colour family per venue slot: (longs, shorts)
VENUE_COLOURS = (("#f0b90b", "#8c6d0a"), ("#4f9dff", "#1f5aa8"), ("#c77dff", "#7b3fb0"))
SLOTS = len(DEFAULT_VENUES)


def venue_trace_names() -> list[str]:
    """Names of the per-venue bar traces, in drawing order: ``venue_long_0 .. venue_short_2``."""
    return [f"venue_{side}_{i}" for side in ("long", "short") for i in range(SLOTS)]


@dataclass
class MultiLoaded(Loaded):
    """A :class:`Loaded` market summed over venues, with the per-venue figures it came from."""

    multi: MultiExchange | None = None
    reference: str = ""


def _compact(symbol: str) -> str:
    base = symbol.split(":")[0]
    return base.replace("/", "").replace("-", "").upper()


def fill_command(venue: str, symbol: str, since: pd.Timestamp, until: pd.Timestamp, timeframe: str = "5m", *,
                 candles: bool = False) -> str:
    """The ``liqlab`` command that fills ``venue``'s history of ``symbol`` from ``since`` to ``until``
    (exclusive: the first time the store already holds): the Binance archive, Bybit/OKX open-interest
    history, else (or with ``candles``) ``liqlab fetch``."""
    sym = _compact(symbol)
    since, until = pd.Timestamp(since).floor("D"), pd.Timestamp(until)
    if venue in ("binanceusdm", "binancecoinm") and not candles:  # whole days, --until inclusive
        last_day = max(until - pd.Timedelta(milliseconds=1), since)
        return f"liqlab archive {venue} {sym} --since {since:%Y-%m-%d} --until {last_day:%Y-%m-%d}"

    def when(t: pd.Timestamp) -> str:
        return f"{t:%Y-%m-%d}" if t == t.normalize() else f"{t:%Y-%m-%dT%H:%M}"

    if venue in ("bybit", "okx") and not candles:
        return f"liqlab oi-history {venue} {sym} --since {when(since)} --until {when(until)}"
    return f"liqlab fetch {venue} {sym} --timeframe {timeframe} --since {when(since)} --until {when(until)}"


def _candles(store: Store, venue: str, symbol: str, timeframe: str, lo: int, hi: int) -> pd.DataFrame | None:
    try:
        sym = stored_symbol(store, venue, symbol)
    except ExportError:
        return None
    periods = [e.period for e in store.entries() if e.kind == "ohlcv" and e.period and e.symbol == sym
               and safe_name(e.exchange) == safe_name(venue)]
    period = timeframe if timeframe in periods else pick_period(periods, timeframe)
    if period is None:
        return None
    step = int(timeframe_to_timedelta(timeframe).total_seconds() * 1000)
    fstep = int(timeframe_to_timedelta(period).total_seconds() * 1000)
    if fstep > step or step % fstep:
        return None
    rows = store.read(venue, sym, "ohlcv", period, lo, hi + step - 1)
    if fstep < step:
        rows = resample_candles(rows, step, fstep)
    return rows if len(rows) else None


def load_all_exchanges(symbol: str, timeframe: str, since, until, store: Store | str | None = None, *,
                       venues=DEFAULT_VENUES) -> MultiLoaded:
    """One market of ``symbol`` summed over the venues the store holds.

    Open interest and realized liquidations are the ``total`` columns of
    :func:`load_multi_exchange`; candles come from the first venue of ``venues`` with candles
    stored. Only candles where every venue with open interest in the window has a value are kept
    (elsewhere the sum would jump when a venue joins it, which the model would read as positions
    opened); :func:`shortfall_notes` names the venue and the command that fills it. A candle
    outside a venue's liquidation record adds zero for that venue, and the coverage notes give
    each venue's recorded span.

    Raises
    ------
    MarketDataError
        Nothing stored for the symbol, or no candles on any venue (the message names the command
        that fills the store, and no path).
    """
    store = store if isinstance(store, Store) else Store(store)
    now = pd.Timestamp.now(tz="UTC")
    until = pd.Timestamp(until) if until is not None else now
    since = pd.Timestamp(since) if since is not None else until - pd.Timedelta(days=7)
    try:
        multi = load_multi_exchange(symbol, timeframe, since, until, store, venues=venues)
    except MarketDataError:
        cmds = "; ".join(fill_command(v, symbol, since, until, timeframe) for v in venues)
        raise MarketDataError(f"the store has no open interest or liquidations of {_compact(symbol)} on "
                              f"{', '.join(venues)}; fill it with: {cmds}") from None
    lo, hi = to_ms(since), to_ms(until)
    reference, candles = "", None
    for venue in venues:
        candles = _candles(store, venue, symbol, timeframe, lo, hi)
        if candles is not None:
            reference = venue
            break
    if candles is None:
        raise MarketDataError(f"the store has no {timeframe} candles of {_compact(symbol)} on {', '.join(venues)}; "
                              f"fill them with: liqlab fetch {venues[0]} {_compact(symbol)} --timeframe {timeframe} "
                              f"--since {since:%Y-%m-%d} --until {until:%Y-%m-%d}")
    frame = candles.set_index(pd.DatetimeIndex(candles["timestamp"]))[["open", "high", "low", "close", "volume"]]
    frame = frame.loc[frame.index.isin(multi.index)]
    candle_index = frame.index
    # only candles where every venue with open interest in the window has it: a venue joining the
    # sum mid-window would look to the model like that venue's whole open interest opening at once
    oi_venues = [c for c in multi.open_interest.columns if c not in ("total", "venues_in_total")]
    complete = multi.open_interest["venues_in_total"].reindex(frame.index).to_numpy() == len(oi_venues)
    frame["open_interest"] = multi.open_interest["total"].reindex(frame.index).to_numpy()
    frame = frame.loc[complete & np.isfinite(frame["open_interest"].to_numpy())]
    if len(frame) < 2:
        raise MarketDataError(f"the store has fewer than two {timeframe} candles of {_compact(symbol)} with open "
                              f"interest between {since:%Y-%m-%d} and {until:%Y-%m-%d}")
    bars = pd.DataFrame({"long_usd": multi.long_usd["total"].reindex(frame.index).fillna(0.0).to_numpy(),
                         "short_usd": multi.short_usd["total"].reindex(frame.index).fillna(0.0).to_numpy()},
                        index=frame.index)
    venues_in = sorted(set(multi.coverage["venue"]), key=list(venues).index)
    breakdown = {v: pd.DataFrame({"open_interest": multi.open_interest[v] if v in multi.open_interest else np.nan,
                                  "long_usd": multi.long_usd[v] if v in multi.long_usd else np.nan,
                                  "short_usd": multi.short_usd[v] if v in multi.short_usd else np.nan},
                                 index=multi.index).reindex(candle_index)
                 for v in venues_in}  # on every stored candle: each venue's own span, before the common one
    market = make_market(frame, symbol=multi.symbol if "/" in multi.symbol else symbol,
                         exchange="+".join(venues_in), timeframe=timeframe, liquidations=bars, source="store",
                         gaps="keep", breakdown=breakdown)
    return MultiLoaded(market, "store", now, multi=multi, reference=reference)


# ----------------------------------------------------------------------------- figure and table
def _venue_frames(loaded: MultiLoaded, market: Market) -> list[tuple[str, pd.DataFrame]]:
    """Per-venue ``open_interest, long_usd, short_usd`` cut to the shown market's candles."""
    full = loaded.market.breakdown or {}
    return [(v, f.reindex(market.index)) for v, f in full.items()]


def _lower_bound(multi: MultiExchange | None, venue: str) -> bool:
    return multi is not None and venue in multi.lower_bound_venues


def venue_bar_parts(loaded: Loaded | None, market: Market, *, max_bars: int = 300) -> dict:
    """Trace properties of the realized bars stacked by venue (empty traces for a single venue).

    Bars use the heatmap's realized slot (the first 45 % of each period, the model's bars beside
    them). Venue ``i``'s trace is filled from zero to the sum of venues ``i..n-1`` and drawn
    before venue ``i+1``'s, so the band of venue ``i`` is exactly its own amount; its hover
    (``customdata``) shows that amount. Longs above zero, shorts below.
    """
    names = venue_trace_names()
    empty = {n: dict(x=np.zeros(0), y=np.zeros(0, np.float32), customdata=np.zeros(0, np.float32), text=[],
                     name=" ", showlegend=False, visible=False) for n in names}
    if not isinstance(loaded, MultiLoaded) or not loaded.market.breakdown:
        return empty
    period = bar_period(market, max_bars)
    width_ms = pd.Timedelta(period).total_seconds() * 1000.0
    frames = _venue_frames(loaded, market)[:SLOTS]
    per = {side: [period_bars(f[["long_usd", "short_usd"]].fillna(0.0), period)[f"{side}_usd"] for _, f in frames]
           for side in ("long", "short")}
    traces = dict(empty)
    for side, sign in (("long", 1.0), ("short", -1.0)):
        values = [s.to_numpy(dtype=np.float64) for s in per[side]]
        tops = np.cumsum(values[::-1], axis=0)[::-1] if values else []
        for i, (venue, _) in enumerate(frames):
            idx = per[side][i].index
            own = np.asarray(values[i], dtype=np.float32)
            y = np.asarray(sign * tops[i], dtype=np.float32)
            start = epoch_ms(idx) + 0.05 * width_ms
            xs = np.repeat(start, 3) + np.tile([0.0, 0.225 * width_ms, 0.45 * width_ms], len(start))
            ys = np.repeat(y, 3)
            ys[2::3] = 0.0
            colour = VENUE_COLOURS[i][0 if side == "long" else 1]
            label = f"{venue} (lower bound)" if _lower_bound(loaded.multi, venue) else venue
            # one legend entry per venue (its longs' colour); clicking it toggles both sides
            traces[f"venue_{side}_{i}"] = dict(
                x=xs, y=ys, mode="lines", line=dict(width=0, shape="hv", color=colour), fill="tozeroy",
                fillcolor=colour, name=label, legendgroup=venue, showlegend=side == "long", visible=True,
                xaxis="x", yaxis="y2", text=np.repeat(minute_labels(idx), 3).tolist(), customdata=np.repeat(own, 3),
                hovertemplate=f"%{{text}} UTC<br>{html.escape(label)} realized {side}s: $%{{customdata:,.0f}}"
                              "<extra></extra>",
            )
    return traces


def venue_bar_values(trace) -> np.ndarray:
    """Each bar's own amount in a venue trace (every third point carries it), signed like the bar."""
    y = np.asarray(trace["y"], dtype=np.float64)[0::3]
    own = np.asarray(trace["customdata"], dtype=np.float64)[0::3]
    return np.where(y < 0, -own, own)


def breakdown_rows(loaded: Loaded | None, market: Market) -> list[dict]:
    """One row per venue over the shown window: OI share at the last candle, realized long/short
    USD, span covered, source, lower bound."""
    if not isinstance(loaded, MultiLoaded) or loaded.multi is None:
        return []
    frames = _venue_frames(loaded, market)
    last_oi = {v: f["open_interest"].dropna() for v, f in frames}
    last = {v: float(s.iloc[-1]) if len(s) else float("nan") for v, s in last_oi.items()}
    total = sum(x for x in last.values() if np.isfinite(x))
    cov = loaded.multi.coverage
    rows = []
    for v, f in frames:
        liq = cov[(cov["venue"] == v) & (cov["figure"] == "liquidations")]
        oi = cov[(cov["venue"] == v) & (cov["figure"] == "open_interest")]
        known = f["long_usd"].notna()
        span = (f"{f.index[known.to_numpy()][0]:%Y-%m-%d %H:%M} → {f.index[known.to_numpy()][-1]:%Y-%m-%d %H:%M}"
                if known.any() else "none in this window")
        sources = sorted({str(s) for s in (*oi["source"], *liq["source"]) if s})
        rows.append(dict(
            venue=v,
            oi_share=(last[v] / total) if total and np.isfinite(last[v]) else float("nan"),
            long_usd=float(np.nansum(f["long_usd"].to_numpy(dtype=float))),
            short_usd=float(np.nansum(f["short_usd"].to_numpy(dtype=float))),
            span=span, source=", ".join(sources) or "none",
            lower_bound=_lower_bound(loaded.multi, v),
        ))
    return rows


def breakdown_table_html(loaded: Loaded | None, market: Market) -> str:
    """The per-venue table shown under the figure ("" for a single venue)."""
    rows = breakdown_rows(loaded, market)
    if not rows:
        return ""
    head = ("<tr><th>venue</th><th>OI share</th><th>realized longs</th><th>realized shorts</th>"
            "<th>liquidations recorded</th><th>source</th><th>lower bound</th></tr>")
    body = "".join(
        f"<tr data-venue='{html.escape(r['venue'])}'><td>{html.escape(r['venue'])}</td>"
        f"<td>{'n/a' if not np.isfinite(r['oi_share']) else format(r['oi_share'], '.1%')}</td>"
        f"<td>${r['long_usd']:,.0f}</td><td>${r['short_usd']:,.0f}</td><td>{html.escape(r['span'])}</td>"
        f"<td>{html.escape(r['source'])}</td><td>{'yes' if r['lower_bound'] else 'no'}</td></tr>" for r in rows)
    return ("<table class='liqlab-breakdown' style='font-size:12px;border-collapse:collapse' cellpadding='3'>"
            f"<caption style='text-align:left'>Per exchange, over the shown window (OI share at its last candle)"
            f"</caption>{head}{body}</table>")


def coverage_notes(loaded: Loaded | None, market: Market) -> list[str]:
    """Status-line sentences: venues summed and their spans, and which figures are lower bounds."""
    if not isinstance(loaded, MultiLoaded) or loaded.multi is None:
        return []
    notes = []
    parts = []
    for v, f in _venue_frames(loaded, market):
        spans = []
        for col, what in (("open_interest", "OI"), ("long_usd", "liquidations")):
            known = f.index[f[col].notna().to_numpy()]
            spans.append(f"{what} {known[0]:%m-%d %H:%M}–{known[-1]:%m-%d %H:%M}" if len(known) else f"no {what}")
        parts.append(f"{v} ({', '.join(spans)})")
    notes.append(f"summed over {', '.join(parts)}; candles from {loaded.reference}")
    lower = [v for v, _ in _venue_frames(loaded, market) if _lower_bound(loaded.multi, v)]
    if lower:
        notes.append(f"realized liquidations of {', '.join(lower)} are lower bounds (at most one per symbol per second "
                     "is published), so the sums are too")
    return notes


def shortfall_notes(exchange: str, symbol: str, timeframe: str, since: pd.Timestamp | None,
                    until: pd.Timestamp | None, loaded: Loaded, market: Market) -> list[str]:
    """Sentences for a window the store cannot fill: which venue lacks history before when, and the
    command that would fill it. Empty for the sample and when the window is filled."""
    if since is None or exchange == "sample" or loaded.source == "sample":
        return []
    step = timeframe_to_timedelta(timeframe)
    since = pd.Timestamp(since)
    sym = _compact(symbol)
    notes = []
    if isinstance(loaded, MultiLoaded) and loaded.multi is not None:
        for v, f in (loaded.market.breakdown or {}).items():
            known = f.index[f["open_interest"].notna().to_numpy()]
            first = known[0] if len(known) else None
            if first is None or first > since + step:
                end = first if first is not None else pd.Timestamp(until if until is not None else loaded.loaded_at)
                have = f"before {first:%Y-%m-%d %H:%M}" if first is not None else "in this window"
                notes.append(f"the store has no {sym} open interest {have} for {v}; fill it with: "
                             f"{fill_command(v, symbol, since, end, timeframe)}")
    if market.start > since + step and not notes:
        venue = exchange if exchange != ALL_EXCHANGES else (getattr(loaded, "reference", "") or "binanceusdm")
        cmd = fill_command(venue, symbol, since, market.start, timeframe)
        if venue in ("bybit", "okx"):  # oi-history brings open interest only; candles come from fetch
            cmd += f" and {fill_command(venue, symbol, since, market.start, timeframe, candles=True)}"
        notes.append(f"the store has no {sym} history before {market.start:%Y-%m-%d %H:%M} for {venue}, so this "
                     f"window shows less than asked; fill it with: {cmd}")
    return notes


def with_venue_bars(parts: dict, loaded: Loaded | None, market: Market) -> dict:
    """Explorer parts with the per-venue bars added; the summed realized bars are hidden while the
    venue bars show (they would cover them), and shown again for a single venue."""
    venue = venue_bar_parts(loaded, market)
    stacked = any(t.get("visible") for t in venue.values())
    traces = dict(parts["traces"])
    for name in ("realized_long", "realized_short"):
        if name in traces:
            traces[name] = {**traces[name], "visible": not stacked}
    traces.update(venue)
    # room for the venues' legend row under the bar panel
    return {**parts, "traces": traces, "layout": {**parts["layout"], "margin.b": 95 if stacked else 70}}


def window_notes(inp, loaded: Loaded, market: Market) -> list[str]:
    """:func:`shortfall_notes` for the dashboard's validated inputs (a preset's window ends now)."""
    if inp.window == CUSTOM:
        since, until = inp.start, inp.end
    else:
        until = pd.Timestamp.now(tz="UTC")
        since = until - pd.Timedelta(WINDOWS[inp.window])
    notes = shortfall_notes(inp.exchange, inp.symbol, inp.timeframe, since, until, loaded, market)
    if inp.exchange == ALL_EXCHANGES and inp.online:
        notes.append("all exchanges reads the store only ('online' asks one exchange at a time)")
    return notes
