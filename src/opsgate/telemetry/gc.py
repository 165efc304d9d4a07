"""Garbage-collector settings for a long-running server, and a GC pause metric.

With CPython's defaults the gateway bench (docs/benchmarks.md) spent ~20% of its CPU in
the cyclic collector and its p99 was the full collections: each one walked the ~250k
objects created at start-up (routes, models, settings, SQLAlchemy and OpenTelemetry
state), pausing the event loop for 50-300 ms. `gc.freeze()` once start-up is done moves
those objects to a permanent generation that collections skip; a larger young-generation
threshold makes young collections rarer, so fewer in-flight request objects are promoted
to the older generations only to be collected there.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

# Allocations (net) between young collections; CPython's default is 700.
GEN0_THRESHOLD = 20_000
# Young collections per generation-1 collection, and those per full one (defaults 10, 10).
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 20
PAUSE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class GcPauses:
    """`opsgate_gc_pause_seconds{generation}`: how long each collection stopped the process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pauses = Histogram(
            "opsgate_gc_pause_seconds",
            "Cyclic garbage collector pauses by generation",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        self._children = [self.pauses.labels(str(g)) for g in range(3)]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._children[info["generation"]].observe(time.perf_counter() - self._started)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


def settle_heap() -> None:
    """Call once start-up is complete: collect its garbage, then exempt what survives from
    future collections, and make young collections rarer.

    Objects created later are collected as usual; the frozen ones are still freed by
    reference counting, only cycles among them are never reclaimed.
    """
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
    if gc.get_freeze_count() == 0:  # once per process (tests start many apps)
        gc.collect()
        gc.freeze()
