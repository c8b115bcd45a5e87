"""The ``liqlab`` command line: one entry point, sub-commands registered by small modules.

Every failure reaches the user as one readable sentence on stderr and a non-zero exit status;
tracebacks are shown only with ``LIQLAB_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Each module exposes ``register(subparsers)`` adding its sub-commands; each sub-command sets
# ``func(args) -> int`` as its default.
COMMAND_MODULES = ("liqlab.cli.model", "liqlab.cli.data", "liqlab.cli.history", "liqlab.cli.scan", "liqlab.cli.app")


class CommandError(Exception):
    """A failure to report to the user as one sentence (no traceback)."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one sentence, not a usage block.

    Sub-command parsers are of the same class (argparse makes them with ``type(self)``).
    """

    def error(self, message: str):  # type: ignore[override]
        """Print ``<prog>: <message>; see <prog> --help`` on stderr and exit with status 2."""
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="liqlab", description="Liquidation heatmaps for crypto perpetual futures."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a module not yet present must not break the others
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("liqlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # one sentence, never a traceback
        if os.environ.get("LIQLAB_DEBUG"):
            raise
        message = str(exc).strip() or type(exc).__name__
        print(f"liqlab {args.command}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
