"""Short import path kept for the README's first calls: the names live in :mod:`liqlab.sim.datasets`."""

from liqlab.sim.datasets import load_sample, sample_symbols  # noqa: F401

__all__ = ['load_sample', 'sample_symbols']
