"""Checksums and plausibility checks run on pattern candidates (never on whole texts)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
from collections import Counter
from datetime import date

_DIGITS = frozenset("0123456789")


def digits_of(value: str) -> str:
    return "".join(c for c in value if c in _DIGITS)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# (first, last, lengths): IIN ranges compared on the leading digits, length-dependent.
# Sources: the card networks' published IIN tables (Visa, Mastercard incl. 2221-2720,
# Amex, Discover incl. 622126-622925 and 644-649, JCB, Diners, UnionPay, Maestro, Mir,
# RuPay, Verve, Troy, UATP).
_IIN: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (4, 4, (13, 16, 19)),  # Visa
    (51, 55, (16,)),  # Mastercard
    (2221, 2720, (16,)),  # Mastercard 2-series
    (34, 34, (15,)),  # American Express
    (37, 37, (15,)),
    (6011, 6011, (16, 17, 18, 19)),  # Discover
    (644, 649, (16, 17, 18, 19)),
    (65, 65, (16, 17, 18, 19)),
    (622126, 622925, (16, 17, 18, 19)),
    (3528, 3589, (16, 17, 18, 19)),  # JCB
    (300, 305, (14, 15, 16, 17, 18, 19)),  # Diners Club
    (36, 36, (14, 15, 16, 17, 18, 19)),
    (38, 39, (14, 15, 16, 17, 18, 19)),
    (62, 62, (16, 17, 18, 19)),  # UnionPay
    (81, 81, (16, 17, 18, 19)),
    (50, 50, (12, 13, 14, 15, 16, 17, 18, 19)),  # Maestro
    (56, 58, (12, 13, 14, 15, 16, 17, 18, 19)),
    (6304, 6304, (12, 13, 14, 15, 16, 17, 18, 19)),
    (6759, 6759, (12, 13, 14, 15, 16, 17, 18, 19)),
    (676770, 676774, (12, 13, 14, 15, 16, 17, 18, 19)),
    (2200, 2204, (16, 17, 18, 19)),  # Mir
    (60, 60, (16,)),  # RuPay
    (508, 508, (16,)),
    (82, 82, (16,)),
    (506099, 506198, (16, 18, 19)),  # Verve
    (650002, 650027, (16, 18, 19)),
    (9792, 9792, (16,)),  # Troy
    (1, 1, (15,)),  # UATP
)


def card_iin_ok(digits: str) -> bool:
    n = len(digits)
    for first, last, lengths in _IIN:
        if n not in lengths:
            continue
        width = len(str(first))
        if first <= int(digits[:width]) <= last:
            return True
    return False


def credit_card_ok(value: str) -> bool:
    d = digits_of(value)
    if not 12 <= len(d) <= 19 or len(set(d)) == 1:
        return False
    return card_iin_ok(d) and luhn_ok(d)


# IBAN lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip


def iban_ok(value: str) -> bool:
    s = "".join(value.split()).replace("-", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit() or not s.isalnum():
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


_SSN_BLOCKLIST = frozenset({"078051120", "219099999"})


def us_ssn_ok(value: str) -> bool:
    d = digits_of(value)
    if len(d) != 9 or d in _SSN_BLOCKLIST:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area in {"000", "666"} or area[0] == "9":
        return False
    return group != "00" and serial != "0000"


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_nif_ok(value: str) -> bool:
    """Spanish DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter)."""
    s = value.replace("-", "").replace(" ", "").upper()
    if len(s) != 9:
        return False
    head = s[:8]
    if head[0] in "XYZ":
        head = str("XYZ".index(head[0])) + head[1:]
    if not head.isdigit():
        return False
    return _DNI_LETTERS[int(head) % 23] == s[8]


_CF_ODD = {
    **dict(zip("0123456789", (1, 0, 5, 7, 9, 13, 15, 17, 19, 21), strict=True)),
    **dict(
        zip(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10,
             22, 25, 24, 23),
            strict=True,
        )
    ),
}  # fmt: skip
_CF_OMOCODE = "LMNPQRSTUV"


def _cf_even(c: str) -> int:
    return ord(c) - 48 if c.isdigit() else ord(c) - 65


def it_fiscal_code_ok(value: str) -> bool:
    """Italian codice fiscale: shape (incl. omocodia substitutions) and check character."""
    s = value.upper()
    if len(s) != 16 or not s.isalnum() or not s[:6].isalpha():
        return False
    for i in (6, 7, 9, 10, 12, 13, 14):
        if not (s[i].isdigit() or s[i] in _CF_OMOCODE):
            return False
    if s[8] not in "ABCDEHLMPRST" or not s[11].isalpha() or not s[15].isalpha():
        return False
    total = sum(_CF_ODD[c] if i % 2 == 0 else _cf_even(c) for i, c in enumerate(s[:15]))
    return chr(65 + total % 26) == s[15]


def nl_bsn_ok(value: str) -> bool:
    """Dutch BSN: 9 digits passing the 11-test."""
    d = digits_of(value)
    if len(d) == 8:
        d = "0" + d
    if len(d) != 9 or d == "000000000":
        return False
    total = sum(int(c) * w for c, w in zip(d[:8], range(9, 1, -1), strict=True)) - int(d[8])
    return total % 11 == 0


def de_tax_id_ok(value: str) -> bool:
    """German Steuer-ID: 11 digits, no leading 0, one digit repeated, ISO 7064 MOD 11,10."""
    d = digits_of(value)
    if len(d) != 11 or d[0] == "0":
        return False
    counts = Counter(d[:10]).values()
    if not (sorted(counts, reverse=True)[0] in (2, 3) and sum(1 for c in counts if c > 1) == 1):
        return False
    product = 10
    for c in d[:10]:
        total = (int(c) + product) % 10 or 10
        product = (total * 2) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(d[10])


def aba_ok(value: str) -> bool:
    d = digits_of(value)
    if len(d) != 9 or len(set(d)) < 2:
        return False
    prefix = int(d[:2])
    if not (prefix <= 12 or 21 <= prefix <= 32 or 61 <= prefix <= 72 or prefix == 80):
        return False
    w = (3, 7, 1) * 3
    return sum(int(c) * k for c, k in zip(d, w, strict=True)) % 10 == 0


def ipv4_ok(value: str) -> bool:
    parts = value.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit() or int(p) > 255 or (len(p) > 1 and p[0] == "0"):
            return False
    return value not in {"0.0.0.0", "255.255.255.255"}  # noqa: S104 - a comparison


def ipv6_ok(value: str) -> bool:
    if value == "::" or value.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(value.split("%", 1)[0])
    except ValueError:
        return False
    return True


_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        )
    )
    for m in names
}  # fmt: skip


def plausible_birth_date(year: int, month: int, day: int) -> bool:
    if not 1900 <= year <= date.today().year:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def date_parts(value: str) -> tuple[int, int, int] | None:
    """Parse the date shapes the DOB rule matches into (year, month, day); None if invalid."""
    tokens = [t for t in value.replace(",", " ").replace(".", " ").replace("/", " ")
              .replace("-", " ").split() if t]  # fmt: skip
    if len(tokens) != 3:
        return None
    words = [t.lower() for t in tokens]
    month_words = [i for i, w in enumerate(words) if w in _MONTHS]
    if month_words:
        i = month_words[0]
        others = [int(t) for j, t in enumerate(tokens) if j != i and t.isdigit()]
        if len(others) != 2:
            return None
        day, year = (others[0], others[1]) if others[1] > 31 else (others[1], others[0])
        return (
            (year, _MONTHS[words[i]], day)
            if plausible_birth_date(year, _MONTHS[words[i]], day)
            else None
        )
    if not all(t.isdigit() for t in tokens):
        return None
    a, b, c = (int(t) for t in tokens)
    if len(tokens[0]) == 4:
        candidates = [(a, b, c)]
    else:
        year = c + (1900 if c >= 30 else 2000) if len(tokens[2]) == 2 else c
        candidates = [(year, b, a), (year, a, b)]  # day-first, then US month-first
    for y, m, d in candidates:
        if plausible_birth_date(y, m, d):
            return (y, m, d)
    return None


def shannon_entropy(value: str) -> float:
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def looks_random(value: str, min_entropy: float = 3.0) -> bool:
    """A token that is probably generated, not a word: mixed classes and high entropy."""
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return has_digit and has_alpha and shannon_entropy(value) >= min_entropy


_PLACEHOLDERS = frozenset(
    {"password", "passwd", "secret", "changeme", "null", "none", "nil", "true", "false",
     "undefined", "example", "redacted", "hidden", "xxxx", "your_password", "yourpassword",
     "<password>", "string", "required", "optional", "empty", "value"}
)  # fmt: skip


def is_placeholder(value: str) -> bool:
    v = value.strip().strip("\"'`").lower()
    if not v or v in _PLACEHOLDERS or len(set(v)) == 1:
        return True
    if (v[0] == "<" and v.endswith(">")) or v.startswith(("${", "{{", "%(", "$(")) or v == "%s":
        return True  # <password>, ${PASS}, {{ secret }}, %(pw)s
    if v[0] == "[" and v.endswith("]"):
        return True  # [REDACTED]
    return v.startswith(("your", "my_", "xxx", "***", "env(", "os.environ", "process.env"))


def jwt_ok(value: str) -> bool:
    header = value.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return False
    return b'"alg"' in raw or b"'alg'" in raw


def b64_text(value: str) -> str | None:
    """Decode a base64 token to text if it is mostly printable; None otherwise."""
    v = value.strip()
    try:
        raw = base64.b64decode(v + "=" * (-len(v) % 4), validate=False)
    except (binascii.Error, ValueError):
        return None
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    printable = sum(1 for c in text if c.isprintable() or c in "\n\t ")
    return text if printable / len(text) > 0.9 else None
