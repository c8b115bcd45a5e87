"""Kill store writers mid-write and check that no committed row is lost and no file is torn.

Run ``python benchmarks/bench_store_kill.py [--writers 100] [--rows 300000] [--seed 0]``.
Each trial starts two writer processes that keep merging new batches into the same large ohlcv
file; each in turn is let commit 0 to 2 batches and then, once a temporary file shows that a
write is under way, killed (``SIGKILL``) after a random delay of up to 20 ms. A batch counts as
committed when ``Store.write`` returned for it (the writer printed its id). After each trial the
file is read back: ``corrupt`` counts reads that fail, ``lost_rows`` the committed rows (the
initial ones included) missing from it. Prints one JSON line. Target: 0 corrupt, 0 lost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from liqlab.sources.store import Store  # noqa: E402

EX, SYM, KIND, PERIOD = "binanceusdm", "BTC/USDT:USDT", "ohlcv", "1m"
BATCH = 10
START = pd.Timestamp("2000-01-01", tz="UTC")

WRITER = textwrap.dedent("""
    import sys
    import pandas as pd
    from liqlab.sources.store import Store
    root, writer, offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = Store(root)
    for k in range(10**6):
        ts = pd.Timestamp("2000-01-01", tz="UTC") + pd.to_timedelta(offset + (writer * 10**5 + k) * 10
                                                                   + pd.RangeIndex(10), unit="min")
        frame = pd.DataFrame({"timestamp": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5,
                              "volume": float(writer)})
        store.write("binanceusdm", "BTC/USDT:USDT", "ohlcv", "1m", frame)
        print(k, flush=True)  # printed only once the write has returned: committed
""")


def _batch_times(offset: int, writer: int, k: int) -> pd.DatetimeIndex:
    return START + pd.to_timedelta(offset + (writer * 10**5 + k) * 10 + pd.RangeIndex(BATCH), unit="min")


def _spawn(root: Path, writer: int, offset: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(writer), str(offset)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _committed(proc: subprocess.Popen) -> list[int]:
    out, _ = proc.communicate(timeout=30)
    return [int(line) for line in out.split()]


def _wait_for_temp(path: Path, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(path.parent.glob(f".tmp-{path.name}.*")):
            return True
        time.sleep(0.002)
    return False


def run(writers: int = 100, rows: int = 300_000, seed: int = 0) -> dict:
    """Kill ``writers`` writers (two per trial) and count corrupt reads and lost committed rows."""
    rng = np.random.default_rng(seed)
    corrupt = lost = mid_write = trials = 0
    committed_batches = 0
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="liqlab-kill-") as tmp:
        store = Store(tmp)
        ts = pd.date_range("1990-01-01", periods=rows, freq="1min", tz="UTC")
        store.write(EX, SYM, KIND, PERIOD, pd.DataFrame({"timestamp": ts, "open": 1.0, "high": 2.0, "low": 0.5,
                                                         "close": 1.5, "volume": 0.0}))
        expected = set(ts.as_unit("ms").asi8.tolist())
        path = store.path(EX, SYM, KIND, PERIOD)
        killed = 0
        while killed < writers:
            trials += 1
            offset = trials * 10**7
            procs = [_spawn(Path(tmp), w, offset) for w in (0, 1)]
            seen: list[list[int]] = [[], []]
            for w, proc in enumerate(procs):
                # let it commit 0-2 batches, then kill it while a write is under way
                for _ in range(int(rng.integers(0, 3))):
                    line = proc.stdout.readline()
                    if line.strip():
                        seen[w].append(int(line))
                mid_write += _wait_for_temp(path)
                time.sleep(float(rng.uniform(0, 0.02)))
                proc.send_signal(signal.SIGKILL)
                killed += 1
            for w, proc in enumerate(procs):
                proc.wait(30)
                done = seen[w] + _committed(proc)
                committed_batches += len(done)
                for k in done:
                    expected.update(_batch_times(offset, w, k).as_unit("ms").asi8.tolist())
            try:
                back = store.read(EX, SYM, KIND, PERIOD)
            except Exception as exc:  # a torn or unreadable file
                corrupt += 1
                errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
                continue
            have = set(pd.DatetimeIndex(back["timestamp"]).as_unit("ms").asi8.tolist())
            lost += len(expected - have)
    return {"case": "store_writers_killed", "writers_killed": killed, "trials": trials,
            "killed_while_a_write_was_under_way": mid_write, "committed_batches": committed_batches,
            "rows_in_file": rows, "corrupt": corrupt, "lost_committed_rows": lost, "errors": errors[:5]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=100, help="writers to kill (default 100, two per trial)")
    parser.add_argument("--rows", type=int, default=300_000, help="rows in the file rewritten (default 300000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run(args.writers, args.rows, args.seed)
    print(json.dumps(result))
    return 0 if not (result["corrupt"] or result["lost_committed_rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
