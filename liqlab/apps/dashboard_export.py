"""The explorer's exports: the shown data as CSV or Parquet, the figure as a standalone HTML file."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd

from liqlab.apps.dashboard_inputs import InputError
from liqlab.viz import plotting

EXPORT_MIN_INTERVAL = 2.0  # seconds between exports, so a button cannot be used to fill a disk


class Exporter:
    """Mixin of :class:`~liqlab.apps.dashboard.Dashboard`: writes files into ``export_dir`` (never a
    folder a visitor chooses), at most one every :data:`EXPORT_MIN_INTERVAL` seconds."""

    def export(self, kind: str) -> Path:
        """Write the shown data (``"csv"``, ``"parquet"``) or figure (``"html"``) to the export folder.

        Returns the path written; the status line reports it.
        """
        if kind not in ("csv", "parquet", "html"):
            raise InputError(f"export kind must be csv, parquet or html, not {kind!r}")
        if self.result is None or self.market is None or self.snapshot is None:
            raise InputError("nothing to export yet")
        now = time.monotonic()
        if now - self._last_export < EXPORT_MIN_INTERVAL:
            raise InputError("exports are limited to one every 2 seconds")
        self._last_export = now
        self.export_dir.mkdir(parents=True, exist_ok=True)
        m = self.market
        stem = f"{m.exchange}_{_safe(m.symbol)}_{m.timeframe}_{m.start:%Y%m%dT%H%M}_{m.end:%Y%m%dT%H%M}"
        if kind == "html":
            inp = self.inputs
            fig = plotting.explorer_figure(self.result, m, self.snapshot, side=inp.side, price_style=inp.price_style)
            path = self.export_dir / f"{stem}.html"
            fig.write_html(path, include_plotlyjs=True, full_html=True)
        else:
            frame = self.data_frame()
            path = self.export_dir / f"{stem}.{kind}"
            if kind == "csv":
                frame.to_csv(path)
            else:
                frame.to_parquet(path)
        self._set_status(f"exported to {path}")  # shown as the file's name only (visitor_text)
        return path

    def data_frame(self) -> pd.DataFrame:
        """The shown window per candle: market columns, realized and predicted liquidations."""
        m, r = self.market, self.result
        frame = m.data.copy()
        if m.liquidations is not None:
            frame["realized_long_usd"] = m.liquidations["long_usd"]
            frame["realized_short_usd"] = m.liquidations["short_usd"]
        frame["predicted_long_usd"] = r.predicted["long_usd"]
        frame["predicted_short_usd"] = r.predicted["short_usd"]
        return frame



def _safe(symbol: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", symbol)

