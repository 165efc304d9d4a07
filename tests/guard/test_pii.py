"""Structured PII: positives and near-miss negatives for each detector."""

from __future__ import annotations

import pytest

from opsgate.guard import validators as v
from opsgate.guard.core import Guard
from tests.guard.conftest import types


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1111",  # Visa
        "4000056655665556",
        "5555 5555 5555 4444",  # Mastercard 51-55
        "2221 0000 0000 0009",  # Mastercard 2-series, low end
        "2720 9900 0000 0007",  # Mastercard 2-series, high end
        "3782 822463 10005",  # Amex
        "6011 1111 1111 1117",  # Discover
        "3530 1113 3330 0000",  # JCB
        "4111111111111111110",  # 19-digit Visa
        "6759649826438453",  # Maestro
        "501800000009",  # 12-digit Maestro
    ],
)
def test_credit_cards(guard: Guard, number: str) -> None:
    assert types(guard, f"card: {number} thanks") == [("CREDIT_CARD", number)]


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112",  # Luhn fails
        "2721 0000 0000 0005 is not an IIN",  # just past the Mastercard 2-series range
        "id 1234567812345678",  # Luhn fails
        "0000 0000 0000 0000",  # all one digit
        "sku 41111111111111111111",  # 20 digits: too long for any card
    ],
)
def test_credit_card_near_misses(guard: Guard, text: str) -> None:
    assert not [t for t in types(guard, text) if t[0] == "CREDIT_CARD"]


def test_mastercard_2series_iin_bounds() -> None:
    assert v.card_iin_ok("2221000000000009")
    assert v.card_iin_ok("2720990000000007")
    assert not v.card_iin_ok("2220990000000000")
    assert not v.card_iin_ok("2721000000000000")


@pytest.mark.parametrize(
    "iban",
    ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606",
     "NL91ABNA0417164300", "NO9386011117947", "MT84MALT011000012345MTLCAST001S"],
)  # fmt: skip
def test_iban(guard: Guard, iban: str) -> None:
    assert types(guard, f"IBAN {iban}.") == [("IBAN", iban)]


def test_iban_country_length_and_checksum() -> None:
    assert v.iban_ok("DE89370400440532013000")
    assert not v.iban_ok("DE8937040044053201300")  # DE is 22 characters
    assert not v.iban_ok("DE88370400440532013000")  # mod-97 fails
    assert not v.iban_ok("XX89370400440532013000")  # no such country


@pytest.mark.parametrize("ssn", ["123-45-6789", "536-22-1234", "001-01-0001"])
def test_ssn(guard: Guard, ssn: str) -> None:
    assert types(guard, f"SSN {ssn}") == [("US_SSN", ssn)]


@pytest.mark.parametrize(
    "ssn", ["000-12-3456", "666-12-3456", "900-12-3456", "999-45-6789", "123-00-4567",
            "123-45-0000", "078-05-1120"],
)  # fmt: skip
def test_ssn_invalid_areas_and_groups(guard: Guard, ssn: str) -> None:
    assert not v.us_ssn_ok(ssn)
    assert ("US_SSN", ssn) not in types(guard, f"SSN {ssn}")


def test_bare_ssn_needs_context(guard: Guard) -> None:
    assert types(guard, "social security number 536221234") == [("US_SSN", "536221234")]
    assert types(guard, "processed 536221234 rows") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("call (212) 555-0143 today", "(212) 555-0143"),
        ("Phone: +44 20 7946 0958", "+44 20 7946 0958"),
        ("Telefon 030 12345678", "030 12345678"),
        ("tél 01 23 45 67 89", "01 23 45 67 89"),
        ("móvil 612 34 56 78", "612 34 56 78"),
        ("call +39 06 1234 5678", "+39 06 1234 5678"),
        ("bel 020 123 4567", "020 123 4567"),
        ("ring 0049 89 12345678", "0049 89 12345678"),
    ],
)
def test_phone_numbers_several_regions(guard: Guard, text: str, value: str) -> None:
    assert types(guard, text) == [("PHONE", value)]


@pytest.mark.parametrize(
    "text",
    ["epoch 1769463617", "at 2024-01-15 10:30:00", "version 10.4.12", "ids 123 456",
     "uuid 550e8400-e29b-41d4-a716-446655440000", "value 925-78-4814 is not an SSN"],
)  # fmt: skip
def test_phone_near_misses(guard: Guard, text: str) -> None:
    assert [t for t in types(guard, text) if t[0] == "PHONE"] == []


def test_bare_digits_phone_with_context(guard: Guard) -> None:
    assert types(guard, "call me on 2125550143") == [("PHONE", "2125550143")]


@pytest.mark.parametrize(
    "ip", ["10.0.0.5", "192.168.1.254", "2001:db8::1", "fe80::1ff:fe23:4567:890a",
           "::ffff:192.0.2.128", "2001:0db8:0000:0000:0000:ff00:0042:8329", "::1"],
)  # fmt: skip
def test_ip_addresses(guard: Guard, ip: str) -> None:
    assert types(guard, f"host {ip}.") == [("IP_ADDRESS", ip)]


@pytest.mark.parametrize(
    "text", ["999.1.1.1", "v1.2.3.4", "version 10.0.0.1", "1.2.3.4.5", "10:30:00",
             "std::vector", "00:1a:2b:3c:4d:5e", "01.02.03.04"],
)  # fmt: skip
def test_ip_near_misses(guard: Guard, text: str) -> None:
    assert [t for t in types(guard, text) if t[0] == "IP_ADDRESS"] == []


def test_dates_of_birth_only_in_context(guard: Guard) -> None:
    assert types(guard, "Date of birth: 14/03/1985") == [("DATE_OF_BIRTH", "14/03/1985")]
    assert types(guard, "born on March 14, 1985") == [("DATE_OF_BIRTH", "March 14, 1985")]
    assert types(guard, "released on 14/03/1985") == []
    assert types(guard, "DOB: 31/02/1985") == []  # no such date


def test_passport_and_licence_in_context(guard: Guard) -> None:
    assert types(guard, "passport no. C01X00T47") == [("PASSPORT", "C01X00T47")]
    assert types(guard, "driver's license D1234567") == [("DRIVER_LICENSE", "D1234567")]
    assert types(guard, "part number C01X00T47") == []


@pytest.mark.parametrize(
    ("value", "ok"),
    [("12345678Z", True), ("12345678A", False), ("X1234567L", True), ("Y1234567X", True),
     ("Z1234567R", True), ("X1234567A", False)],
)  # fmt: skip
def test_es_dni_nie_letters(guard: Guard, value: str, ok: bool) -> None:
    assert v.es_nif_ok(value) is ok
    assert (("ES_NIF", value) in types(guard, f"DNI {value}")) is ok


def test_it_codice_fiscale_check_char(guard: Guard) -> None:
    assert types(guard, "codice fiscale RSSMRA85T10A562S") == [
        ("IT_FISCAL_CODE", "RSSMRA85T10A562S")
    ]
    assert not v.it_fiscal_code_ok("RSSMRA85T10A562T")
    assert v.it_fiscal_code_ok("RSSMRA85T10A56NH")  # omocodia: digits replaced by letters
    assert types(guard, "codice fiscale RSSMRA85T10A562T") == []


def test_nl_bsn_eleven_test(guard: Guard) -> None:
    assert v.nl_bsn_ok("111222333")
    assert not v.nl_bsn_ok("111222334")
    assert types(guard, "BSN: 111222333") == [("NL_BSN", "111222333")]
    assert types(guard, "BSN: 111222334") == []


def test_de_steuer_id_checksum(guard: Guard) -> None:
    assert v.de_tax_id_ok("65929970489")
    assert not v.de_tax_id_ok("65929970488")
    assert not v.de_tax_id_ok("12345678901")  # no repeated digit
    assert types(guard, "Steuer-ID: 65929970489") == [("DE_TAX_ID", "65929970489")]


def test_aba_checksum(guard: Guard) -> None:
    assert v.aba_ok("011000015")
    assert not v.aba_ok("011000016")
    assert not v.aba_ok("991000015")  # invalid Federal Reserve prefix
    assert types(guard, "routing number 011000015") == [("US_ABA_ROUTING", "011000015")]
    assert types(guard, "batch 011000015 done") == []


def test_email(guard: Guard) -> None:
    assert types(guard, "mail jane+x@mail.example.co.uk") == [
        ("EMAIL", "jane+x@mail.example.co.uk")
    ]
    assert types(guard, "user@localhost is not routable") == []
