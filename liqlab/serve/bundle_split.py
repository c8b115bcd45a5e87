"""plotly's widget bundle in two parts: the code the apps' figures need, and the rest, fetched when needed.

plotly's widget bundle holds plotly.js as ~1,200 modules, each wrapped by its bundler in a lazy
factory declared at the top of one function (``A=ye({"src/lib/index.js"(e,r){...}})``): a module's
code runs only when something calls its factory, but the browser must still download, parse and
compile all 5 MB before the first figure is drawn. About two thirds of it (3-D, maps, geo, WebGL,
...) serves only trace types the apps never draw.

:func:`split_bundle` follows the factories' references from everything outside them and from the
trace types registered at once, and moves every factory nothing reaches into a second text. The
bundle keeps each moved factory's name (declared, never assigned) and gains a function that
evaluates the second text in the factories' own scope (a direct ``eval``, which sees the kept
modules by name) and registers the remaining trace types from it. The references followed are
every variable name in a factory's code, declarations included: a superset of its real references
(a local variable that happens to share a factory's name counts), so a module is only ever kept
when it might not be needed, never moved when it is.

The bundle is parsed with tree-sitter's JavaScript grammar, so strings, template literals and
regular expressions never confuse where a factory ends or what is a name; both parts are parsed
again before they are returned. The evaluated part sees the kept modules through the scope the
evaluating function is declared in, which holds only the bundle's own top-level names.
"""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

#: plotly's lib/index.js, as its bundler writes it: core, then one register call with every type
#: (group 1: the call; group 2: the factory calls in it).
INDEX_PATTERN = r'"lib/index\.js"\(e,r\)\{var t=[\w$]+\(\);(t\.register\(\[((?:[\w$]+\(\),)*[\w$]+\(\))\]\))'
_INDEX_CALL = re.compile(INDEX_PATTERN.encode())

# a lazy module factory: ``Rre=ye({"lib/bar.js"(e,r){...}})``
_WRAPPERS = """(variable_declarator
  name: (identifier) @name
  value: (call_expression
    function: (identifier)
    arguments: (arguments . (object . (method_definition name: (string) @path) .) .))) @decl"""

# every name that may refer to a variable (declarations too: a superset of references)
_NAMES = "[(identifier) (shorthand_property_identifier)] @name"

#: The function the split bundle adds to its factories' scope to evaluate the deferred part.
EVAL_NAME = "__liqlabEvalDeferred"


class Split(NamedTuple):
    """The two parts of a split bundle."""

    main: str
    """The bundle without the moved factories; ``Plotly.<register>()`` fetches and evaluates the rest."""
    deferred: str
    """JavaScript evaluated in the factories' scope: the moved factories, then the list of the
    remaining trace modules (the value the evaluation returns)."""
    moved: int
    """Number of factories moved."""


class _Factory(NamedTuple):
    name: bytes
    path: str
    start: int
    end: int


def split_bundle(source: str, eager: tuple[str, ...], register: str) -> Split | None:
    """Split plotly's widget bundle ``source`` into what the ``eager`` trace types need and the rest.

    Parameters
    ----------
    source
        plotly's widget bundle (``plotly/package_data/widgetbundle.js``).
    eager
        Trace types (plotly's ``lib/<type>.js`` modules) registered when the bundle is evaluated;
        plotly's core always registers ``scatter`` too.
    register
        Name of the function added to the ``Plotly`` object: ``Plotly.<register>()`` fetches the
        deferred part from the bundle's own URL with ``-deferred`` before ``.js``, evaluates it and
        registers the other types, in plotly's order. It returns a promise, the same one for every
        call once it has succeeded (a failed fetch may be retried).

    Returns
    -------
    Split or None
        ``None`` if tree-sitter is not installed, or ``source`` does not have the expected form
        (plotly's registration call, the factories in one scope, every eager type), or a part would
        not parse.
    """
    try:
        import tree_sitter_javascript
        from tree_sitter import Language, Parser, Query, QueryCursor
    except ImportError:
        return None
    data = source.encode("utf-8")
    index_call = _INDEX_CALL.search(data)
    if index_call is None or EVAL_NAME.encode() in data:
        return None
    language = Language(tree_sitter_javascript.language())
    parser = Parser(language)
    tree = parser.parse(data)
    if tree.root_node.has_error:
        return None
    found = QueryCursor(Query(language, _WRAPPERS)).matches(tree.root_node)
    # the factories are declared in one scope: the one declaring lib/index.js
    by_scope: dict[int, list] = {}
    for _, caps in found:
        decl, path = caps["decl"][0], caps["path"][0]
        if decl.parent is None or decl.parent.type != "variable_declaration" or decl.parent.parent is None:
            continue
        by_scope.setdefault(decl.parent.parent.id, []).append(
            _Factory(caps["name"][0].text, path.text[1:-1].decode(), decl.start_byte, decl.end_byte))
    scope = [s for s in by_scope.values() if any(f.path == "lib/index.js" for f in s)]
    if len(scope) != 1:
        return None
    factories = sorted(scope[0], key=lambda f: f.start)
    by_name = {f.name: f for f in factories}
    index = next(f for f in factories if f.path == "lib/index.js")
    if len(by_name) != len(factories) or not index.start < index_call.start() < index.end:
        return None
    registered = [call[:-2] for call in index_call.group(2).split(b",")]
    if any(name not in by_name for name in registered):
        return None
    module = {name: by_name[name].path[4:-3] for name in registered}
    now = [name for name in registered if module[name] in eager]
    later = [name for name in registered if module[name] not in eager]
    if set(module[name] for name in now) != set(eager):
        return None

    # who refers to whom; names outside every factory are roots
    refs: dict[bytes, set[bytes]] = {f.name: set() for f in factories}
    roots: set[bytes] = set(now)
    starts = [f.start for f in factories]
    call_start, call_end = index_call.span(1)
    names = QueryCursor(Query(language, _NAMES)).captures(tree.root_node).get("name", [])
    for node in names:
        at = node.start_byte
        name = data[at:node.end_byte]
        if name not in by_name:
            continue
        i = bisect.bisect_right(starts, at) - 1
        owner = factories[i] if i >= 0 and at < factories[i].end else None
        if owner is None:
            roots.add(name)
        elif owner is index and call_start <= at < call_end:
            continue  # the registration call: its eager part is a root, the rest may be moved
        elif name != owner.name:
            refs[owner.name].add(name)
    kept: set[bytes] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name not in kept:
            kept.add(name)
            stack.extend(refs[name])
    moved = [f for f in factories if f.name not in kept]
    if not moved:
        return None

    evaluator = f",{EVAL_NAME}=(__liqlabSource)=>eval(__liqlabSource)".encode()
    registration = (
        f"(function(p){{t.register([{','.join(n.decode() + '()' for n in now)}]);"
        f"t.{register}=function(){{return p||(p=fetch(function(u){{u.pathname=u.pathname.replace(/\\.js$/,"
        f"\"-deferred.js\");return u}}(new URL(import.meta.url))).then(function(r){{if(!r.ok)throw new Error("
        f"\"plotly.js: HTTP \"+r.status+\" for \"+r.url);return r.text()}}).then(function(s){{"
        f"t.register({EVAL_NAME}(s))}}).catch(function(e){{p=null;throw e}}))}}}})(null)"
    ).encode()
    edits = [(f.start, f.end, f.name + (evaluator if k == 0 else b"")) for k, f in enumerate(moved)]
    edits.append((call_start, call_end, registration))
    parts, at = [], 0
    for start, end, text in sorted(edits):
        parts += [data[at:start], text]
        at = end
    main = b"".join(parts) + data[at:]
    deferred = (b"var " + b",".join(data[f.start:f.end] for f in moved) + b";["
                + b",".join(n + b"()" for n in later) + b"]\n//# sourceURL=plotly-deferred.js\n")
    if parser.parse(main).root_node.has_error or parser.parse(deferred).root_node.has_error:
        return None
    return Split(main.decode("utf-8"), deferred.decode("utf-8"), len(moved))
