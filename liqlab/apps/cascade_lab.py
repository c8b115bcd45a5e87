"""The cascade lab: watch a liquidation cascade round by round, and where small shocks become large.

:class:`CascadeLab` wires ipywidgets to :mod:`liqlab.sim.cascade` and :mod:`liqlab.viz.cascade_plots`. It
holds the setting widgets (leverage, crowding of entries, book depth, shock, maintenance margin), a
round slider with a ``Play`` button and step buttons, one figure widget built once (the cascade
on top, the phase diagram with the current setting ringed below) and a status line.

Every callback goes through :meth:`CascadeLab.read_inputs`, which validates all values (a Voila
visitor can send anything over the widget channel) and raises :class:`LabInputError` with one
sentence for the status line; the figures then keep their last good state. Figures are updated in
place, one message per change holding only what changed
(:meth:`~liqlab.apps.plotly_view.PlotlyView.apply`); a new setting re-runs the cascade (a few
milliseconds) and, when the shock, margin or crowding changed, re-sweeps the phase diagram (a
fraction of a second).
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqlab.apps.view_cache import shared_view, view_key
from liqlab.apps.guarded import GuardedComponent, visitor_text
from liqlab.apps.plotly_view import PlotlyView
from liqlab.sim.cascade import CascadeError, CascadeParams, make_population, phase_diagram, simulate_cascade
from liqlab.viz import cascade_plots, plotting

LEVERAGE_RANGE = (2.0, 100.0)
DEPTH_RANGE_M = (1.0, 10_000.0)  # USD millions per 1 % move
SHOCK_RANGE_PCT = (-20.0, 20.0)
MMR_RANGE_PCT = (0.0, 5.0)
PRICE = 100.0  # reference price: a 1 % move is 1 price unit
TOTAL_NOTIONAL = 1e9  # positions on both sides together


class LabInputError(ValueError):
    """A widget value that cannot be used; the message is shown in the status line."""


@dataclass(frozen=True)
class LabInputs:
    """Validated widget values.

    Attributes
    ----------
    leverage
        Leverage of every position (x).
    crowding
        Share of entries bunched around a few prices (``cluster_share`` of the population).
    depth
        Book depth: USD that moves the price by 1 %.
    shock
        Relative price shock (-0.02 = 2 % down).
    mmr
        Maintenance-margin rate (0.005 = 0.5 %).
    """

    leverage: float
    crowding: float
    depth: float
    shock: float
    mmr: float

    @property
    def population_key(self) -> tuple:
        return (self.leverage, self.crowding, self.mmr)

    @property
    def phase_key(self) -> tuple:
        return (self.crowding, self.shock, self.mmr)


def _number(x: Any, what: str) -> float:
    if isinstance(x, bool):
        raise LabInputError(f"{what} must be a number, got {x!r}")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise LabInputError(f"{what} must be a number, got {str(x)[:40]!r}") from None
    if not math.isfinite(v):
        raise LabInputError(f"{what} must be a finite number, got {x!r}")
    return v


def _within(v: float, lo: float, hi: float, what: str, unit: str = "") -> float:
    if not lo <= v <= hi:
        raise LabInputError(f"{what} must lie between {lo:g}{unit} and {hi:g}{unit}, got {v:g}{unit}")
    return v


class CascadeLab(GuardedComponent):
    """Widgets, a cascade figure, a phase diagram and a status line for teaching cascades.

    Parameters
    ----------
    leverage, crowding, depth_m, shock_pct, mmr_pct
        Initial setting: leverage (x), crowding (0-1), depth (USD millions per 1 %), shock (%),
        maintenance margin (%).
    n
        Positions in the population (the phase diagram uses the same number and seed).
    seed
        Seed of the population: the same seed gives the same entries at every leverage.
    phase_grid
        ``(leverage points, depth points)`` of the phase diagram sweep.
    max_rounds
        Most rounds simulated.
    height
        Height of the figure (cascade on top, phase diagram below) in pixels.
    """

    EXPECTED = (LabInputError, CascadeError, ValueError, TypeError, KeyError)

    def __init__(
        self,
        *,
        leverage: float = 25.0,
        crowding: float = 0.5,
        depth_m: float = 200.0,
        shock_pct: float = -2.0,
        mmr_pct: float = 0.5,
        n: int = 30_000,
        seed: int = 0,
        phase_grid: tuple[int, int] = (20, 20),
        max_rounds: int = 200,
        height: int = 1000,
    ) -> None:
        from liqlab.apps.guarded import widgets as W

        self._W = W
        self.n = int(n)
        self.seed = int(seed)
        self.phase_grid = (int(phase_grid[0]), int(phase_grid[1]))
        self.max_rounds = int(max_rounds)
        self.height = int(height)
        self.inputs: LabInputs | None = None
        self.population = None
        self.result = None
        self.diagram = None
        self.round = 0
        self.message = ""
        self.error = False
        self.compute_ms = 0.0
        self.updates = 0
        self.shared_view = False  # whether the first view came from another kernel's computation
        self._muted = False
        self._parts: dict | None = None
        self._edges: np.ndarray | None = None
        self._pop_key: tuple | None = None
        self._phase_key: tuple | None = None

        wide = {"description_width": "initial"}

        def cls(widget, name):
            widget.add_class(f"liqlab-{name}")
            return widget

        self.w_leverage = cls(W.FloatSlider(
            value=leverage, min=LEVERAGE_RANGE[0], max=LEVERAGE_RANGE[1], step=1.0, description="Leverage (x)",
            continuous_update=False, readout_format=".0f", layout=W.Layout(width="300px"), style=wide), "leverage")
        self.w_crowding = cls(W.FloatSlider(
            value=crowding, min=0.0, max=1.0, step=0.05, description="Crowding of entries",
            continuous_update=False, readout_format=".2f", layout=W.Layout(width="300px"), style=wide), "crowding")
        self.w_depth = cls(W.FloatText(
            value=depth_m, description="Book depth ($M per 1 %)", layout=W.Layout(width="230px"), style=wide,
            continuous_update=False), "depth")
        self.w_shock = cls(W.FloatSlider(
            value=shock_pct, min=-10.0, max=10.0, step=0.25, description="Shock (%)", continuous_update=False,
            readout_format="+.2f", layout=W.Layout(width="300px"), style=wide), "shock")
        self.w_mmr = cls(W.FloatSlider(
            value=mmr_pct, min=0.0, max=2.5, step=0.1, description="Maintenance margin (%)",
            continuous_update=False, readout_format=".1f", layout=W.Layout(width="300px"), style=wide), "mmr")
        self.w_round = cls(W.IntSlider(
            value=0, min=0, max=1, description="Round", continuous_update=True,
            layout=W.Layout(width="360px"), style=wide), "round")
        self.w_play = cls(W.Play(value=0, min=0, max=1, step=1, interval=700, description="play"), "play")
        W.jslink((self.w_play, "value"), (self.w_round, "value"))
        self.w_back = cls(W.Button(description="◀ step", tooltip="one round back",
                                   layout=W.Layout(width="80px")), "step-back")
        self.w_next = cls(W.Button(description="step ▶", tooltip="one round forward",
                                   layout=W.Layout(width="80px")), "step-next")
        self.w_start = cls(W.Button(description="before the shock", icon="fast-backward",
                                    layout=W.Layout(width="160px")), "step-start")
        self.status = cls(W.HTML(""), "status")

        self.figure = None
        self.refresh()
        if self.figure is None:  # the initial setting itself was refused: build from the defaults
            self._build_default_figures()
        self._wire()
        self.layout = self._build_layout()

    # -------------------------------------------------------------------------- building
    def _build_default_figures(self) -> None:
        inp = LabInputs(25.0, 0.5, 2e8, -0.02, 0.005)
        result = self._simulate(inp)
        diagram = self._sweep(inp)
        self.figure = PlotlyView(cascade_plots.lab_figure(result, diagram, 0, height=self.height))

    def _build_layout(self):
        W = self._W
        settings = W.HBox([
            W.VBox([self.w_leverage, self.w_crowding, self.w_depth]),
            W.VBox([self.w_shock, self.w_mmr]),
        ], layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        steps = W.HBox([self.w_play, self.w_start, self.w_back, self.w_next, self.w_round],
                       layout=W.Layout(flex_flow="row wrap", align_items="center"))
        box = W.VBox([settings, steps, self.status, self.figure], layout=W.Layout(width="100%"))
        box.add_class("liqlab-cascade-lab")
        return box

    def _wire(self) -> None:
        for w in (self.w_leverage, self.w_crowding, self.w_depth, self.w_shock, self.w_mmr):
            w.observe(self._on_setting, names="value")
        self.w_round.observe(self._on_round, names="value")
        self._guard_widget_states()
        self.w_back.on_click(lambda _b: self._guarded(self.step, -1))
        self.w_next.on_click(lambda _b: self._guarded(self.step, 1))
        self.w_start.on_click(lambda _b: self._guarded(self.show_round, 0))

    def _repr_mimebundle_(self, **kwargs):
        return self.layout._repr_mimebundle_(**kwargs)

    # -------------------------------------------------------------------------- callbacks
    def _on_setting(self, _change=None) -> None:
        if not self._muted:
            self.refresh()

    def _on_round(self, _change=None) -> None:
        if not self._muted:
            self._guarded(self._show_round_widget)

    # -------------------------------------------------------------------------- validation
    def read_inputs(self) -> LabInputs:
        """All setting widgets, validated.

        Raises
        ------
        LabInputError
            The first value that cannot be used, in one sentence.
        """
        lev = _within(_number(self.w_leverage.value, "leverage"), *LEVERAGE_RANGE, "leverage", "x")
        crowd = _within(_number(self.w_crowding.value, "crowding"), 0.0, 1.0, "crowding")
        depth_m = _number(self.w_depth.value, "book depth")
        if depth_m <= 0:
            raise LabInputError(f"book depth must be positive (USD millions that move the price 1 %), got {depth_m:g}")
        depth_m = _within(depth_m, *DEPTH_RANGE_M, "book depth", " $M")
        shock = _within(_number(self.w_shock.value, "shock"), *SHOCK_RANGE_PCT, "shock", " %")
        mmr = _within(_number(self.w_mmr.value, "maintenance margin"), *MMR_RANGE_PCT, "maintenance margin", " %")
        if mmr / 100.0 >= 1.0 / lev:
            raise LabInputError(
                f"a maintenance margin of {mmr:g}% is at least the {100 / lev:.2f}% initial margin of {lev:g}x: "
                "every position would be liquidated at entry; lower the margin or the leverage"
            )
        return LabInputs(leverage=lev, crowding=crowd, depth=depth_m * 1e6, shock=shock / 100.0, mmr=mmr / 100.0)

    # -------------------------------------------------------------------------- compute
    def _simulate(self, inp: LabInputs):
        if self._pop_key != inp.population_key or self.population is None:
            self.population = make_population(self.n, price=PRICE, leverage=inp.leverage, cluster_share=inp.crowding,
                                              mmr=inp.mmr, total_notional=TOTAL_NOTIONAL, seed=self.seed)
            self._pop_key = inp.population_key
        params = CascadeParams(depth=inp.depth, max_rounds=self.max_rounds)
        return simulate_cascade(self.population, params, inp.shock)

    def _sweep(self, inp: LabInputs):
        nl, nd = self.phase_grid
        lev = np.geomspace(LEVERAGE_RANGE[0], LEVERAGE_RANGE[1], nl)
        # a margin at or above 1/leverage leaves no room: such leverages are left out of the sweep
        lev = lev[inp.mmr < 1.0 / lev] if inp.mmr > 0 else lev
        dep = np.geomspace(10e6, 2e9, nd)
        return phase_diagram(lev, dep, shock=inp.shock, n=self.n, params=CascadeParams(max_rounds=self.max_rounds),
                             price=PRICE, cluster_share=inp.crowding, mmr=inp.mmr, total_notional=TOTAL_NOTIONAL,
                             seed=self.seed)

    def refresh(self) -> bool:
        """Validate the settings, re-run the cascade (and the sweep if needed), update the figures.

        Returns True when the figures were updated; otherwise the status line says why.
        """
        return bool(self._guarded(self._refresh))

    def _refresh(self) -> bool:
        t0 = time.perf_counter()
        inp = self.read_inputs()
        if self.figure is None:
            # every visitor's kernel starts with the same cascade and phase diagram: share them
            key = view_key("cascade_lab", inp, self.n, self.seed, self.max_rounds, self.phase_grid)
            (result, diagram), self.shared_view = shared_view(key, lambda: (self._simulate(inp), self._sweep(inp)))
        else:
            result = self._simulate(inp)
            diagram = self.diagram
            if self._phase_key != inp.phase_key or diagram is None:
                diagram = self._sweep(inp)
        last = len(result.rounds) - 1
        edges = cascade_plots.display_edges(result)
        parts = cascade_plots.lab_parts(result, diagram, last, leverage=inp.leverage, depth=inp.depth, edges=edges)
        if self.figure is None:
            self.figure = PlotlyView(cascade_plots.lab_figure(result, diagram, last, leverage=inp.leverage,
                                                                 depth=inp.depth, edges=edges, height=self.height))
        else:
            self.figure.apply(parts, self._parts)
        self._parts = parts
        self.inputs, self.result, self.diagram, self._edges = inp, result, diagram, edges
        self._phase_key = inp.phase_key
        self.round = last
        with self._mute():
            self.w_round.max = max(last, 1)
            self.w_play.max = max(last, 1)
            self.w_round.value = last
            self.w_play.value = last
        self.compute_ms = 1000 * (time.perf_counter() - t0)
        self.updates += 1
        self._set_status("")
        return True

    # -------------------------------------------------------------------------- rounds
    def show_round(self, r: int) -> None:
        """Show the cascade after round ``r`` (0 = before the shock) and move the slider there."""
        if self.result is None:
            raise LabInputError("no cascade yet: fix the settings first")
        last = len(self.result.rounds) - 1
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r <= last:
            raise LabInputError(f"round must be a whole number from 0 to {last}, got {str(r)[:40]!r}")
        inp = self.inputs
        parts = cascade_plots.lab_parts(self.result, self.diagram, int(r), leverage=inp.leverage, depth=inp.depth,
                                        edges=self._edges)
        self.figure.apply(parts, self._parts)
        self._parts = parts
        self.round = int(r)
        with self._mute():
            self.w_round.value = int(r)
        self._set_status("")

    def step(self, delta: int) -> None:
        """Move ``delta`` rounds (clamped to the cascade)."""
        if self.result is None:
            raise LabInputError("no cascade yet: fix the settings first")
        last = len(self.result.rounds) - 1
        self.show_round(int(min(max(self.round + int(delta), 0), last)))

    def _show_round_widget(self) -> None:
        raw = self.w_round.value
        if self.result is not None and not (isinstance(raw, (int, np.integer)) and 0 <= raw < len(self.result.rounds)):
            with self._mute():
                self.w_round.value = self.round
        self.show_round(raw)

    # -------------------------------------------------------------------------- status
    def summary(self) -> str:
        """One line on the cascade shown."""
        res, inp = self.result, self.inputs
        if res is None or inp is None:
            return "no cascade computed"
        side = res.shocked_side
        return (f"{inp.leverage:g}x, crowding {inp.crowding:.2f}, depth ${inp.depth / 1e6:,.4g}M per 1 %, "
                f"MMR {100 * inp.mmr:.2g}%: a {100 * inp.shock:+.2f}% shock liquidated "
                f"{plotting.format_usd(res.size)} ({100 * res.size_share:.1f}% of {side}s) in {res.n_rounds} round(s); "
                f"the price went {100 * res.overshoot:.2f}% beyond the shock")

    def _set_status(self, message: str, *, error: bool = False) -> None:
        message = visitor_text(message)  # the page is shared: no server paths, one bounded line
        self.message = message
        self.error = error
        timing = f" · computed in {self.compute_ms:.0f} ms" if self.result is not None else ""
        msg = ""
        if message:
            colour = "#ff6b6b" if error else "#c9a227"
            label = "Error" if error else "Note"
            msg = (f"<div class='liqlab-message' data-error='{int(error)}' style='color:{colour}'>"
                   f"{label}: {html.escape(message)}</div>")
        self.status.value = (f"<div class='liqlab-summary' style='font-size:13px'>{html.escape(self.summary())}"
                             f"<span style='opacity:.6'>{timing}</span></div>{msg}")

    # -------------------------------------------------------------------------- public API
    def set(self, **values) -> bool:
        """Set widgets by name and recompute once (for scripts and tests).

        Names: leverage, crowding, depth_m, shock_pct, mmr_pct.
        """
        names = {"leverage": self.w_leverage, "crowding": self.w_crowding, "depth_m": self.w_depth,
                 "shock_pct": self.w_shock, "mmr_pct": self.w_mmr}
        with self._mute():
            for key, value in values.items():
                if key not in names:
                    raise KeyError(f"unknown lab setting {key!r}; use one of {sorted(names)}")
                names[key].value = value
        return self.refresh()

    def trace(self, name: str) -> dict:
        """The figure's trace named ``name`` (``meta``), as stored (arrays are numpy arrays)."""
        return self.figure.trace(name)
