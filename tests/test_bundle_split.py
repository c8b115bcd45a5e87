"""Splitting plotly's widget bundle: exact parts of hand-made bundles, refusals, and plotly's own file."""

from __future__ import annotations

import re
import sys

import pytest

from liqlab.serve.bundle_split import EVAL_NAME, INDEX_PATTERN, split_bundle
from liqlab.serve.served_bundle import EAGER_TRACES, REGISTER_DEFERRED, bundle_file, fast_first_copy

pytest.importorskip("tree_sitter_javascript", reason="the split needs tree-sitter's JavaScript grammar")

# a bundle as esbuild writes plotly's: lazy factories declared in one function, lib/index.js registering
_HEAD = "var ye=(m)=>{var f=Object.values(m)[0],c;return()=>c||(f(0,c={exports:{}}),c).exports};var Q=(()=>{var "
_FACTORIES = {
    "K": '"lib/core.js"(e,r){r.exports={register(l){}}}',
    "S": '"src/shared.js"(e,r){r.exports=/}/.source}',         # a regular expression holding a brace
    "A": '"lib/bar.js"(e,r){r.exports=S()}',
    "P": '"src/pie/index.js"(e,r){r.exports="A() }"+G()}',    # a factory's name in a string: not a reference
    "G": '"src/geo.js"(e,r){var S=`}${1}`;r.exports=S.K}',    # a local named like a factory; K after a dot
    "B": '"lib/pie.js"(e,r){r.exports=P()}',
    "C": '"lib/heatmap.js"(e,r){r.exports=S()}',
    "D": '"lib/candlestick.js"(e,r){r.exports={}}',
    "I": '"lib/index.js"(e,r){var t=K();t.register([A(),B(),C(),D()]),r.exports=t}',
}
_TAIL = ";return I()})();export{Q as default};"


def _bundle(factories: dict[str, str] = _FACTORIES, extra: str = "") -> str:
    return _HEAD + ",".join(f"{name}=ye({{{body}}})" for name, body in factories.items()) + extra + _TAIL


def _decl(name: str) -> str:
    return f"{name}=ye({{{_FACTORIES[name]}}})"


def _registration(now: str) -> str:
    return (
        f"(function(p){{t.register([{now}]);"
        f"t.{REGISTER_DEFERRED}=function(){{return p||(p=fetch(function(u){{u.pathname=u.pathname.replace(/\\.js$/,"
        '"-deferred.js");return u}(new URL(import.meta.url))).then(function(r){if(!r.ok)throw new Error('
        '"plotly.js: HTTP "+r.status+" for "+r.url);return r.text()}).then(function(s){'
        f"t.register({EVAL_NAME}(s))}}).catch(function(e){{p=null;throw e}}))}}}})(null)"
    )


def test_split_of_a_hand_made_bundle():
    split = split_bundle(_bundle(), EAGER_TRACES, REGISTER_DEFERRED)
    assert split is not None and split.moved == 3
    # pie and what only pie needs (P, then G through P) move; G's local S and the K after a dot keep nothing
    expected_main = (
        _bundle()
        .replace(_decl("P"), f"P,{EVAL_NAME}=(__liqlabSource)=>eval(__liqlabSource)")
        .replace(_decl("G"), "G")
        .replace(_decl("B"), "B")
        .replace("t.register([A(),B(),C(),D()])", _registration("A(),C(),D()"))
    )
    assert split.main == expected_main
    assert split.deferred == f"var {_decl('P')},{_decl('G')},{_decl('B')};[B()]\n//# sourceURL=plotly-deferred.js\n"


def test_split_keeps_what_anything_outside_the_factories_refers_to():
    split = split_bundle(_bundle(extra=",W=G"), EAGER_TRACES, REGISTER_DEFERRED)
    assert split.moved == 2 and _decl("G") in split.main and _decl("G") not in split.deferred


def test_split_keeps_what_a_kept_factory_refers_to_in_any_way():
    factories = dict(_FACTORIES, D='"lib/candlestick.js"(e,r){r.exports={f:()=>G}}')  # G inside a closure
    split = split_bundle(_bundle(factories), EAGER_TRACES, REGISTER_DEFERRED)
    assert split.moved == 2 and "G=ye(" in split.main and "P=ye(" in split.deferred


def test_split_follows_the_chosen_eager_types():
    split = split_bundle(_bundle(), ("bar", "pie", "heatmap", "candlestick"), REGISTER_DEFERRED)
    assert split is None  # nothing left to move
    split = split_bundle(_bundle(), ("pie", "candlestick"), REGISTER_DEFERRED)
    assert split.moved == 2  # bar (A) and heatmap (C); S stays, as G (kept for pie) names a local S
    assert "t.register([B(),D()])" in split.main and split.deferred.endswith("[A(),C()]\n//# sourceURL=plotly-deferred.js\n")


@pytest.mark.parametrize("source", [
    "",
    _bundle().replace("var t=K();", "var t=K(),u=0;"),                          # another form of lib/index.js
    _bundle(dict(_FACTORIES, C='"lib/image.js"(e,r){r.exports=S()}')),          # an eager type missing
    _bundle().replace("t.register([A(),", "t.register([Z(),"),                  # a registered module not defined
    _bundle().replace("var ye=", f"var {EVAL_NAME}=1;var ye="),                 # the evaluator's name taken
    _bundle().replace("return I()}", "return I()"),                             # not JavaScript
])
def test_split_refuses_what_it_does_not_recognise(source):
    assert split_bundle(source, EAGER_TRACES, REGISTER_DEFERRED) is None


def test_split_without_tree_sitter_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "tree_sitter", None)
    assert split_bundle(_bundle(), EAGER_TRACES, REGISTER_DEFERRED) is None


@pytest.fixture(scope="module")
def plotly_split():
    source = fast_first_copy(bundle_file().read_text(encoding="utf-8"))
    return source, split_bundle(source, EAGER_TRACES, REGISTER_DEFERRED)


def test_plotlys_bundle_splits_into_parts_holding_every_factory_once(plotly_split):
    source, split = plotly_split
    assert split is not None
    factory = re.compile(r'([\w$]+)=[\w$]+\(\{"([^"]+)"\(')
    everything = factory.findall(source)
    main, deferred = factory.findall(split.main), factory.findall(split.deferred)
    assert sorted(main + deferred) == sorted(everything) and len(deferred) == split.moved
    # the apps' types and plotly's core stay; 3-D, maps and WebGL go
    paths = {path for _, path in deferred}
    assert {f"lib/{t}.js" for t in EAGER_TRACES} | {"lib/core.js", "lib/index.js"} <= {p for _, p in main}
    assert {"lib/scatter3d.js", "lib/scattermap.js", "lib/scattergl.js", "lib/pie.js"} <= paths
    assert len(split.main) < 0.4 * len(source)
    # every type registered once, the others in plotly's order
    every = re.search(INDEX_PATTERN, source).group(2).split(",")
    now = re.search(r"\(function\(p\)\{t\.register\(\[([^\]]*)\]\)", split.main).group(1).split(",")
    later = re.search(r";\[([^\]]*)\]\n//# sourceURL", split.deferred).group(1).split(",")
    assert sorted(now + later) == sorted(every) and later == [c for c in every if c not in now]
    names = dict(factory.findall(source))
    assert sorted(names[c[:-2]] for c in now) == sorted(f"lib/{t}.js" for t in EAGER_TRACES)
