"""Phone numbers: RE2 finds phone-shaped candidates, `phonenumbers` decides validity."""

from __future__ import annotations

import re

import phonenumbers

from opsgate.guard.validators import digits_of

# Candidates: an optional +/00 prefix, then digits with the separators people use.
PHONE_PATTERN = (
    r"(?:\+\s?\(?|\(|\b)\d{1,4}\)?(?:[ \t.\-/]{0,2}\(?\d{1,5}\)?){1,6}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?\b"
)
PHONE_CONTEXT = (
    "phone", "tel", "tel.", "telephone", "mobile", "mob", "cell", "call", "fax", "whatsapp",
    "sms", "text me", "contact", "reach", "dial", "number", "ring", "hotline", "telefon",
    "telefono", "téléphone", "portable", "handy", "móvil", "cellulare", "nummer", "numéro",
)  # fmt: skip

# Python re on candidates of at most a few dozen characters (bounded work).
_DATE_SHAPES = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})(?:\D|$)"
)
_HAS_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SSN_SHAPE = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_SEPARATED = re.compile(r"[ \t.\-/()]")
_WORDISH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


class PhoneValidator:
    """Validates phone candidates for a list of default regions (ISO 3166 codes)."""

    def __init__(self, regions: tuple[str, ...]) -> None:
        self.regions = regions
        self._cache: dict[tuple[str, str | None], bool] = {}

    def __call__(self, value: str, text: str, start: int, end: int) -> float | None:
        digits = digits_of(value)
        if not 7 <= len(digits) <= 15 or not self._shape_ok(value, text, start, end):
            return None
        separated = _SEPARATED.search(value) is not None
        stripped = value.lstrip("(")
        if stripped.startswith(("+", "00")):
            number = "+" + stripped.lstrip("+")[2:] if stripped.startswith("00") else stripped
            return 0.9 if self._valid(number, None) else None
        if not separated and len(digits) < 10:
            return None  # bare short digit runs are ids far more often than phones
        if _SSN_SHAPE.search(value) is not None:
            return None
        for region in self._plausible_regions(digits):
            if self._valid(value, region):
                # Bare digit runs (epoch timestamps, ids) need a context word to pass.
                return 0.75 if separated else 0.4
        return None

    def _shape_ok(self, value: str, text: str, start: int, end: int) -> bool:
        before = text[start - 1] if start > 0 else " "
        after = text[end] if end < len(text) else " "
        if before in _WORDISH or before in "-_.:/#" or after in _WORDISH or after in "-_:/":
            return False  # inside an identifier, path, UUID, time or version string
        if after == "." and end + 1 < len(text) and text[end + 1].isdigit():
            return False
        return _DATE_SHAPES.search(value) is None and _HAS_DATE.search(value) is None

    def _plausible_regions(self, digits: str) -> tuple[str, ...]:
        if digits[0] == "0":
            return tuple(r for r in self.regions if r not in {"US", "CA", "ES"})
        if len(digits) == 10:
            first = [r for r in self.regions if r in {"US", "CA"}]
            return (*first, *(r for r in self.regions if r not in first))
        return self.regions

    def _valid(self, number: str, region: str | None) -> bool:
        key = (number, region)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        try:
            parsed = phonenumbers.parse(number, region)
            ok = bool(phonenumbers.is_valid_number(parsed))
        except phonenumbers.NumberParseException:
            ok = False
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = ok
        return ok
