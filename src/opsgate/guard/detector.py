"""The detector seam: anything that finds entities in text (NER today, classifiers later)."""

from __future__ import annotations

from typing import Protocol

from opsgate.guard.findings import Finding, ScanContext


class Detector(Protocol):
    """Finds entities of `entities` in text. Offsets are characters of `text`.

    Implementations must be safe to call from several threads and bounded in time
    for the text sizes the guard allows.
    """

    name: str
    entities: frozenset[str]

    def find(self, text: str, ctx: ScanContext) -> list[Finding]: ...
