"""Build the bundled synthetic sample in ``data/sample/``.

Run ``python -m liqlab.sim.sample --out liqlab/sim/sample_data`` (or ``make sample``) to regenerate it. The
output is deterministic: each symbol has a fixed :class:`~liqlab.sim.synth.SynthParams` (seeded), and
the stored values are exactly what :func:`sample_frames` returns in memory, so a test can compare
the committed files with a fresh run.

Files per symbol: ``<SYMBOL>.parquet`` (5-minute candles, open interest and side series, float32)
and ``<SYMBOL>_liquidations.parquet`` (one row per liquidated hidden cohort: ``timestamp, side,
price, notional``), both zstd-compressed and carrying ``{"synthetic": true, ...}`` under the
``liqlab`` key of their Parquet metadata; plus ``manifest.json`` and ``README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from liqlab.core.atomic import atomic_write_parquet, atomic_write_text
from liqlab.sim.datasets import EXCHANGE, TIMEFRAME, market_from_frames
from liqlab.core.market import Market, MarketDataError
from liqlab.sim.synth import HIDDEN_HOLD_DAYS, HIDDEN_MIX, SynthParams, simulate

#: Format version of the sample files; bump when the layout or the generator changes.
SAMPLE_VERSION = 1
START = "2025-01-01"
N_CANDLES = 35 * 288  # 35 days of 5-minute candles
_META_KEY = b"liqlab"

#: Per-symbol settings; everything else is the :class:`SynthParams` default.
SPECS: dict[str, dict] = {
    "BTCUSDT": {"price": 90_000.0, "daily_vol": 0.022, "open_interest": 8e9, "trader_size": 20_000.0, "seed": 1},
    "ETHUSDT": {"price": 3_000.0, "daily_vol": 0.028, "open_interest": 5e9, "trader_size": 8_000.0, "seed": 2},
    "SOLUSDT": {"price": 150.0, "daily_vol": 0.035, "open_interest": 1.5e9, "trader_size": 2_500.0, "seed": 3},
}


def sample_params(symbol: str) -> SynthParams:
    """The generator settings of one bundled symbol."""
    try:
        spec = SPECS[symbol]
    except KeyError:
        raise MarketDataError(
            f"no synthetic sample for {symbol!r}; available: {sorted(SPECS)}"
        ) from None
    return SynthParams(symbol=symbol, n_candles=N_CANDLES, timeframe=TIMEFRAME, start=START, **spec)


def sample_frames(symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Candles and liquidation events of one symbol, exactly as stored (float32 values, ms times)."""
    market = simulate(sample_params(symbol)).market
    data = market.data.astype(np.float32)
    data.index = data.index.as_unit("ms")
    ev = market.liquidation_events
    events = pd.DataFrame({
        "timestamp": pd.DatetimeIndex(ev["timestamp"]).as_unit("ms"),
        "side": ev["side"].astype(str).to_numpy(),
        "price": ev["price"].to_numpy(np.float32),
        "notional": ev["notional"].to_numpy(np.float32),
    })
    return data, events


def sample_market(symbol: str) -> Market:
    """Regenerate one symbol in memory; equal to :func:`liqlab.sim.datasets.load_sample`."""
    return market_from_frames(symbol, *sample_frames(symbol))


def _file_metadata(symbol: str, kind: str) -> dict:
    return {"synthetic": True, "symbol": symbol, "exchange": EXCHANGE, "timeframe": TIMEFRAME,
            "contract": "linear", "kind": kind, "generator": "liqlab.sim.synth", "version": SAMPLE_VERSION,
            "regenerate": "python -m liqlab.sim.sample --out liqlab/sim/sample_data"}


def _write_parquet(frame: pd.DataFrame, path: Path, meta: dict, *, index: bool) -> None:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=index)
    merged = dict(table.schema.metadata or {})
    merged[_META_KEY] = json.dumps(meta, sort_keys=True).encode()
    table = table.replace_schema_metadata(merged)
    atomic_write_parquet(path, table, compression="zstd", compression_level=9, use_dictionary=True)


def read_metadata(path: Path) -> dict:
    """The ``liqlab`` metadata of a sample Parquet file (empty dict when absent)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(_META_KEY)
    return json.loads(raw) if raw else {}


def manifest() -> dict:
    """What ``manifest.json`` holds: the label, the layout and every hidden parameter."""
    symbols = {}
    for sym in SPECS:
        p = sample_params(sym)
        d = {k: v for k, v in asdict(p).items() if k not in ("mix", "brackets")}
        d["hold_days"] = list(p.hold_days)
        d["brackets"] = p.bracket_table.name
        d["files"] = {"market": f"{sym}.parquet", "liquidations": f"{sym}_liquidations.parquet"}
        symbols[sym] = d
    return {
        "synthetic": True,
        "version": SAMPLE_VERSION,
        "generator": "liqlab.sim.synth",
        "regenerate": "python -m liqlab.sim.sample --out liqlab/sim/sample_data",
        "exchange": EXCHANGE,
        "timeframe": TIMEFRAME,
        "hidden_leverage_mix": HIDDEN_MIX.to_dict(),
        "symbols": symbols,
    }


def _readme() -> str:
    mix = HIDDEN_MIX
    tiers = " | ".join(f"{lev:g}x" for lev in mix.leverages)
    longs = " | ".join(f"{w:.3f}" for w in mix.long)
    shorts = " | ".join(f"{w:.3f}" for w in mix.short)
    holds = " | ".join(f"{h:g}" for h in HIDDEN_HOLD_DAYS)
    sep = " | ".join("---" for _ in mix.leverages)
    rows = "\n".join(
        f"| {s} | {v['price']:,.0f} | {v['daily_vol']:.3f} | {v['open_interest'] / 1e9:.1f} B | "
        f"{v['trader_size']:,.0f} | {sample_params(s).bracket_table.name} | {v['seed']} |"
        for s, v in SPECS.items()
    )
    d = SynthParams()
    return f"""# Bundled sample: SYNTHETIC data

Everything in this folder is **synthetic**: made by liqlab's own generator (`liqlab/synth.py`),
not recorded from any exchange. Loaders label it (`Market.synthetic is True`, exchange
`"synthetic"`), and so does every file (`"synthetic": true` in `manifest.json` and under the
`liqlab` key of each Parquet file's metadata).

Regenerate (deterministic, a few seconds):

    python -m liqlab.sim.sample --out liqlab/sim/sample_data      # or: make sample

Load: `liqlab.sim.datasets.load_sample("BTCUSDT")`; list: `liqlab.sim.datasets.sample_symbols()`.

## Contents

Three symbols, {N_CANDLES:,} five-minute candles each (35 days from {START}):

* `<SYMBOL>.parquet`: `open, high, low, close, volume` (base units), `open_interest` (USD),
  `funding_rate` (per 8 h, set every 8 h), `long_short_ratio` (accounts), `taker_buy_volume`;
  float32.
* `<SYMBOL>_liquidations.parquet`: every realized liquidation, `timestamp, side, price, notional`
  (USD at the liquidation price); `side` is the side of the position that was liquidated.
  Per-candle bars (`long_usd, short_usd`) are their sums.
* `manifest.json`: label, layout and all generator parameters.

## How it is made

The generator tracks hidden leveraged positions (cohorts) and liquidates them when the price
reaches their level, so the liquidations are true, not modelled. Per candle: a price path of
{d.substeps} steps with GARCH(1,1) volatility (alpha {d.garch_alpha}, beta {d.garch_beta}),
Student-t shocks (df {d.student_df:g}), Laplace jumps ({d.jumps_per_day:g} per day, mean size
{d.jump_size:.1%}) and a weak pull back to the start price (half-life {d.reversion_days:g} days);
open cohorts whose level is reached by the low (longs) or high (shorts) are liquidated and their
forced orders move the price by a square-root law (1 % for a cumulative flow of
{d.depth_1pct:g} x open interest, thinner when volatility is high), which can reach further levels:
cascades emerge. {d.permanent_impact:.0%} of the impact stays in the close and {d.impact_carry:.0%}
carries into the next candle's drift. Cohorts close after an exponential holding period; new ones
open on both sides with equal notional, entry prices spread over the candle range (Beta(2, 2)),
maintenance margin from the exchange bracket table at a lognormal trader size, and become
vulnerable from the next candle. Open interest is what is open. The first
{d.burn_in_days:g} days are simulated but not stored, so open interest starts at steady state.

## Hidden parameters (what a model has to discover)

Leverage mix `{mix.name}` (deliberately not liqlab's default preset `balanced`):

| tier | {tiers} |
| --- | {sep} |
| long weight | {longs} |
| short weight | {shorts} |
| mean holding period (days) | {holds} |

The weights are tilted over time by a hidden "crowding" factor (AR(1), half-life
{d.crowding_days:g} days): long weights scale with `(L/10)**({d.crowding_tilt:g}*c)`, short weights
with `(L/10)**(-{d.crowding_tilt:g}*c)`. The long/short ratio (`exp(0.25 c + noise)`) and funding
(`1e-4 + 1.5e-4 c + noise`) carry a noisy view of it.

Daily vol is the base level of the GARCH process; realized volatility comes out higher because
liquidations feed back into the price.

| symbol | start price | daily vol | target OI | median trader size (USD) | brackets | seed |
| --- | --- | --- | --- | --- | --- | --- |
{rows}
"""


def write_sample(out: str | Path, symbols: list[str] | None = None) -> list[Path]:
    """Write the sample files for ``symbols`` (default: all) to ``out``; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for sym in symbols or list(SPECS):
        data, events = sample_frames(sym)
        p_market = out / f"{sym}.parquet"
        p_liq = out / f"{sym}_liquidations.parquet"
        _write_parquet(data, p_market, _file_metadata(sym, "market"), index=True)
        _write_parquet(events, p_liq, _file_metadata(sym, "liquidations"), index=False)
        written += [p_market, p_liq]
    atomic_write_text(out / "manifest.json", json.dumps(manifest(), indent=2, sort_keys=True) + "\n")
    atomic_write_text(out / "README.md", _readme())
    return written + [out / "manifest.json", out / "README.md"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m liqlab.sim.sample", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="liqlab/sim/sample_data", help="output folder (default: liqlab/sim/sample_data, run from a source checkout)")
    parser.add_argument("--symbols", nargs="*", choices=sorted(SPECS), help="only these symbols")
    args = parser.parse_args(argv)
    paths = write_sample(args.out, args.symbols)
    total = sum(p.stat().st_size for p in paths)
    for p in paths:
        print(f"{p}  {p.stat().st_size / 1024:,.0f} KiB")
    print(f"total {total / 2**20:.2f} MiB (synthetic)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
