// Build liqlab's plotly.js bundle: `node build.mjs [outfile]` (default: the package's static folder).
//
// The output is an ES module whose default export is Plotly with the core (scatter) plus the trace
// types liqlab's apps draw. The build is deterministic: the same package-lock.json gives the same
// bytes, and tests/test_plotly_bundle.py checks the committed file against a rebuild.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outfile = path.resolve(process.argv[2] || path.join(here, "..", "liqlab", "apps", "static", "plotly-liqlab.js"));

// plotly.js's registry requires maplibre's stylesheet when a map trace type is registered; this
// bundle has none, so stylesheets resolve to nothing (no CSS file is written next to the bundle).
const noStylesheets = {
  name: "no-stylesheets",
  setup(b) {
    b.onResolve({ filter: /\.css$/ }, (args) => ({ path: args.path, namespace: "no-stylesheets" }));
    b.onLoad({ filter: /.*/, namespace: "no-stylesheets" }, () => ({ contents: "", loader: "js" }));
  },
};

await build({
  absWorkingDir: here,
  entryPoints: ["src/plotly-liqlab.js"],
  outfile,
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: false,
  target: "es2020",
  platform: "browser",
  legalComments: "eof",
  charset: "utf8",
  // as plotly.js's own build: browser globals for the node-isms of a few dependencies
  define: { global: "window", "define.amd": "false", "process.env.NODE_DEBUG": "false" },
  plugins: [noStylesheets],
  logLevel: "warning",
});
console.log(`wrote ${path.relative(process.cwd(), outfile)}`);
