"""Structured PII rules: patterns find candidates, validators confirm them."""

from __future__ import annotations

import re

from opsgate.guard import validators as v
from opsgate.guard.phones import PHONE_CONTEXT, PHONE_PATTERN, PhoneValidator
from opsgate.guard.rules import Rule

DETECTOR = "pii"

_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _standalone(text: str, start: int, end: int, extra: str = "") -> bool:
    """The match is not glued to a longer identifier (letters, digits, `_`, `extra`)."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    bad = _IDENT_CHARS | frozenset(extra)
    return before not in bad and after not in bad


def _card(value: str, text: str, start: int, end: int) -> bool:
    return _standalone(text, start, end, "-") and v.credit_card_ok(value)


def _iban(value: str, text: str, start: int, end: int) -> bool:
    return v.iban_ok(value)


def _ssn(value: str, text: str, start: int, end: int) -> bool:
    return _standalone(text, start, end, "-") and v.us_ssn_ok(value)


def _ip_bounded(text: str, start: int, end: int) -> bool:
    """Not part of a longer dotted/colon-separated token (a sentence's full stop is fine)."""
    before = text[start - 1] if start > 0 else " "
    if before in _IDENT_CHARS or before in ".:":
        return False
    after = text[end] if end < len(text) else " "
    if after in _IDENT_CHARS:
        return False
    if after in ".:":
        nxt = text[end + 1] if end + 1 < len(text) else " "
        return nxt not in _IDENT_CHARS
    return True


_VERSION_WORDS = ("version", "ver", "release", "build", "rev", "firmware", "kernel")


def _ipv4(value: str, text: str, start: int, end: int) -> bool:
    if not _ip_bounded(text, start, end) or not v.ipv4_ok(value):
        return False
    before = text[max(0, start - 16) : start].lower()
    words = before.split()
    # "v1.2.3.4", "version 10.0.0.1": release numbers, not hosts.
    return not (before.endswith("v") or (words and words[-1].strip(":") in _VERSION_WORDS))


def _ipv6(value: str, text: str, start: int, end: int) -> bool:
    return _ip_bounded(text, start, end) and v.ipv6_ok(value)


_DATEISH = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\b(?:19|20)\d{2}\b")


def _dob(value: str, text: str, start: int, end: int) -> bool:
    # "DOB 1974-06-04, patient since 2024-06-03": only the date right after the context
    # word is the birth date. (Python re on a 40-char window: bounded work.)
    before = text[max(0, start - 40) : start].lower()
    cut = max((before.rfind(w) + len(w) for w in DOB_CONTEXT if w in before), default=0)
    if _DATEISH.search(before[cut:]) is not None:
        return False
    return v.date_parts(value) is not None


def _cf(value: str, text: str, start: int, end: int) -> bool:
    return _standalone(text, start, end) and v.it_fiscal_code_ok(value)


def _nif(value: str, text: str, start: int, end: int) -> bool:
    return _standalone(text, start, end) and v.es_nif_ok(value)


def _bsn(value: str, text: str, start: int, end: int) -> bool:
    return _standalone(text, start, end, "-") and v.nl_bsn_ok(value)


def _de_tax(value: str, text: str, start: int, end: int) -> bool:
    return _standalone(text, start, end, "-") and v.de_tax_id_ok(value)


def _aba(value: str, text: str, start: int, end: int) -> bool:
    return _standalone(text, start, end, "-") and v.aba_ok(value)


def _has_digit(value: str, text: str, start: int, end: int) -> bool:
    return any(c.isdigit() for c in value) and _standalone(text, start, end, "-")


_EMAIL = r"(?:^|[^\pL\pN._%+\-])(?P<v>[\pL\pN][\pL\pN._%+\-]*@(?:[\pL\pN\-]+\.)+[A-Za-z]{2,24})\b"
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DATE = (
    rf"(?i)\b(?P<v>\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}[./-]\d{{1,2}}[./-](?:\d{{4}}|\d{{2}})|"
    rf"{_MONTH}\.? \d{{1,2}},? \d{{4}}|\d{{1,2}}(?:st|nd|rd|th)? {_MONTH}\.?,? \d{{4}})\b"
)
DOB_CONTEXT = (
    "date of birth", "birth date", "birthdate", "dob", "d.o.b", "born", "birthday",
    "geboren", "geburtsdatum", "né le", "née le", "date de naissance", "fecha de nacimiento",
    "data di nascita", "geboortedatum",
)  # fmt: skip
PASSPORT_CONTEXT = (
    "passport", "passport no", "passport number", "passport #", "reisepass", "passeport",
    "pasaporte", "passaporto", "paspoort", "travel document",
)  # fmt: skip
LICENCE_CONTEXT = (
    "driver's license", "drivers license", "driver license", "driving licence",
    "driving license", "driver's licence", "dl#", "dl no", "licence number",
    "license number", "license no", "führerschein", "permis de conduire",
    "carnet de conducir", "patente di guida", "rijbewijs",
)  # fmt: skip
SSN_CONTEXT = ("ssn", "social security", "social-security", "ss#", "ss #")
BSN_CONTEXT = ("bsn", "burgerservicenummer", "sofinummer", "sofi", "citizen service number")
DE_TAX_CONTEXT = (
    "steuer-id", "steuerid", "steuer id", "steueridentifikationsnummer", "idnr",
    "identifikationsnummer", "tax id", "tax identification", "steuernummer", "tin",
)  # fmt: skip
ABA_CONTEXT = ("routing", "aba", "rtn", "transit number", "routing number", "bank routing")
NIF_CONTEXT = ("dni", "nie", "nif", "documento nacional", "número de identidad", "id")
CF_CONTEXT = ("codice fiscale", "cf", "fiscal code", "tax code")


def pii_rules(phone_regions: tuple[str, ...]) -> list[Rule]:
    """The built-in structured PII rules."""
    d = DETECTOR
    return [
        Rule("credit_card", "CREDIT_CARD",
             r"\b(?:\d[ \-]?){11,18}\d\b", 0.9, d, _card,
             context=("card", "credit", "visa", "mastercard", "amex", "cc", "kreditkarte"),
             context_boost=0.05),
        Rule("iban", "IBAN",
             r"\b[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11,30}\b", 0.95, d, _iban),
        Rule("us_ssn", "US_SSN", r"\b\d{3}-\d{2}-\d{4}\b|\b\d{3} \d{2} \d{4}\b", 0.8, d, _ssn,
             context=SSN_CONTEXT, context_boost=0.15),
        Rule("us_ssn_bare", "US_SSN", r"\b\d{9}\b", 0.8, d, _ssn,
             context=SSN_CONTEXT, context_required=True, window=32),
        Rule("email", "EMAIL", _EMAIL, 0.95, d),
        Rule("phone", "PHONE", PHONE_PATTERN, 0.75, d, PhoneValidator(phone_regions),
             context=PHONE_CONTEXT, context_boost=0.1),
        Rule("ipv4", "IP_ADDRESS", r"\b(?:\d{1,3}\.){3}\d{1,3}\b", 0.9, d, _ipv4),
        Rule("ipv6", "IP_ADDRESS",
             r"(?i)(?:[0-9a-f]{0,4}:){2,6}(?:\d{1,3}\.){3}\d{1,3}"
             r"|(?:[0-9a-f]{1,4}:|::)[0-9a-f:]{0,38}[0-9a-f](?:%[0-9a-z]{1,15})?", 0.9, d, _ipv6),
        Rule("date_of_birth", "DATE_OF_BIRTH", _DATE, 0.85, d, _dob,
             context=DOB_CONTEXT, context_required=True, window=40),
        Rule("passport", "PASSPORT",
             r"\b(?P<v>[A-Z]{1,2}\d{6,8}|\d{8,9}|\d{2}[A-Z]{2}\d{5}|[CFGHJK][0-9CFGHJKLMNPRTVWXYZ]{8})\b",
             0.8, d, _has_digit, context=PASSPORT_CONTEXT, context_required=True, window=32),
        Rule("driver_license", "DRIVER_LICENSE",
             r"\b(?P<v>[A-Z9]{5}\d{6}[A-Z9]{2}\d[A-Z]{2}|[A-Z]{1,3}[\- ]?\d{4,14}|\d{7,12}|"
             r"[A-Z]\d{3}-\d{3}-\d{2}-\d{3}-\d)\b",
             0.75, d, _has_digit, context=LICENCE_CONTEXT, context_required=True, window=32),
        Rule("es_nif", "ES_NIF", r"(?i)\b[XYZ]?\d{7,8}-?[A-Z]\b", 0.9, d, _nif,
             context=NIF_CONTEXT, context_boost=0.05),
        Rule("it_fiscal_code", "IT_FISCAL_CODE",
             r"(?i)\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b",
             0.95, d, _cf),
        Rule("nl_bsn", "NL_BSN", r"\b\d{4}\.?\d{2}\.?\d{3}\b|\b\d{8,9}\b", 0.85, d, _bsn,
             context=BSN_CONTEXT, context_required=True, window=32),
        Rule("de_tax_id", "DE_TAX_ID", r"\b\d{2} ?\d{3} ?\d{3} ?\d{3}\b", 0.85, d, _de_tax,
             context=DE_TAX_CONTEXT, context_required=True, window=40),
        Rule("us_aba", "US_ABA_ROUTING", r"\b\d{4}-?\d{4}-?\d\b", 0.85, d, _aba,
             context=ABA_CONTEXT, context_required=True, window=40),
    ]  # fmt: skip
