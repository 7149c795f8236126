"""The timing helper the benchmark scripts share."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """Median wall and median process-CPU seconds per call, after one warm-up call.

    On a shared machine the CPU time is the steadier estimate of the work done (with one thread it is
    what the wall time would be on an idle core); on CUDA only the wall time is meaningful, so pass a
    `sync` that waits for the device.
    """
    fn()
    sync()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)
