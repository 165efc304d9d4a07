"""Precision/recall/F1 per entity type on a labelled set (used by tests and bench/guard)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Span = tuple[str, int, int]


@dataclass(slots=True)
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(slots=True)
class Report:
    scores: dict[str, Score] = field(default_factory=lambda: defaultdict(Score))
    errors: list[tuple[int, str, Span]] = field(default_factory=list)

    def micro(self, types: Iterable[str]) -> Score:
        total = Score()
        for t in types:
            s = self.scores.get(t, Score())
            total.tp += s.tp
            total.fp += s.fp
            total.fn += s.fn
        return total


def _iou(a: Span, b: Span) -> float:
    inter = min(a[2], b[2]) - max(a[1], b[1])
    if inter <= 0:
        return 0.0
    return inter / (max(a[2], b[2]) - min(a[1], b[1]))


def evaluate(
    gold: Sequence[Sequence[Span]],
    predicted: Sequence[Sequence[Span]],
    types: Iterable[str],
    *,
    min_iou: float = 0.5,
) -> Report:
    """Match predictions to gold spans of the same type (IoU >= `min_iou`, one-to-one).

    Only `types` are scored; predictions of other types are ignored.
    """
    wanted = set(types)
    report = Report()
    for t in wanted:
        report.scores[t] = Score()
    for i, (g_spans, p_spans) in enumerate(zip(gold, predicted, strict=True)):
        g = [s for s in g_spans if s[0] in wanted]
        p = [s for s in p_spans if s[0] in wanted]
        used: set[int] = set()
        for gs in g:
            best, best_j = 0.0, -1
            for j, ps in enumerate(p):
                if j in used or ps[0] != gs[0]:
                    continue
                iou = _iou(gs, ps)
                if iou > best:
                    best, best_j = iou, j
            if best >= min_iou:
                used.add(best_j)
                report.scores[gs[0]].tp += 1
            else:
                report.scores[gs[0]].fn += 1
                report.errors.append((i, "fn", gs))
        for j, ps in enumerate(p):
            if j not in used:
                report.scores[ps[0]].fp += 1
                report.errors.append((i, "fp", ps))
    return report
