"""Market scans: the engine over a universe of symbols and settings, serially, on a process pool
or on a Dask cluster, with identical results (see :func:`scan` and :func:`calibrate`)."""

from liqlab.scan.api import Calibration, ScanError, calibrate, magnet_zones, param_sets, scan, universe
from liqlab.scan.executors import DaskExecutor, ExecutorError, ProcessExecutor, SerialExecutor, make_executor
from liqlab.scan.sources import SampleSource, StoreSource, parse_window

__all__ = ["Calibration", "DaskExecutor", "ExecutorError", "ProcessExecutor", "SampleSource", "ScanError",
           "SerialExecutor", "StoreSource", "calibrate", "magnet_zones", "make_executor", "param_sets",
           "parse_window", "scan", "universe"]
