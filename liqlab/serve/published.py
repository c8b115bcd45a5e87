"""The notebooks published as Voila apps, listed once.

``liqlab app`` serves exactly these (see :mod:`liqlab.cli.app`); the browser tests and the
benchmark open each of them. The notebooks ship with the package as :mod:`liqlab.notebooks`
(the repository's ``notebooks/`` folder, mapped into the package at build time), so an installed
liqlab serves them as well as a checkout does.
"""

from __future__ import annotations

from pathlib import Path

#: Notebook file names in ``notebooks/`` published as apps, in menu order.
PUBLISHED: tuple[str, ...] = (
    "02_explorer.ipynb",
    "03_liquidation_map.ipynb",
    "05_cascade_lab.ipynb",
    "06_market_scan.ipynb",
)



def notebooks_dir() -> Path:
    """The folder of the notebooks shipped with the package."""
    from importlib import resources

    return Path(str(resources.files("liqlab.notebooks")))


def published_paths(folder: str | Path | None = None) -> list[Path]:
    """Absolute paths of the published notebooks.

    Raises
    ------
    FileNotFoundError
        If one of them is missing (a renamed notebook must be renamed here too).
    """
    root = Path(folder) if folder is not None else notebooks_dir()
    paths = [root / name for name in PUBLISHED]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"published notebook(s) not found: {', '.join(missing)}")
    return paths


def app_url(base: str, name: str) -> str:
    """URL of a published notebook on a Voila server started by ``liqlab app`` (tree mode)."""
    return f"{base.rstrip('/')}/voila/render/{name}"
