// plotly.js with only the trace types liqlab's apps draw (scatter is part of the core).
import Plotly from "plotly.js/lib/core";
import bar from "plotly.js/lib/bar";
import candlestick from "plotly.js/lib/candlestick";
import heatmap from "plotly.js/lib/heatmap";

Plotly.register([bar, candlestick, heatmap]);

export default Plotly;
