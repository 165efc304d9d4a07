"""Each secret family: a positive and a near miss."""

from __future__ import annotations

import base64
import json

import pytest

from opsgate.guard.core import Guard
from tests.guard.conftest import types

B64_86 = "x" * 10 + "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5kL7nP9rS1uV3xY5zA7cE9gI1kM3oQ5sU7wY9aC1e"
PEM_BODY = "MIIEowIBAAKCAQEA7bq98Uj2Lk3zQ9Rk4pXvYt2Wc8JmN0aHs5DfGi1KoPlQuVwXyZ3b4c5d6e7f8g9h0"


def _jwt() -> str:
    def enc(o: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(o).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc({'sub': '42'})}.abcDEF123_-xyzUVW456"


CASES = [
    ("AWS_ACCESS_KEY", "key AKIAZ7Q3HX5N2LPV4JTW here", "AKIAZ7Q3HX5N2LPV4JTW"),
    ("AWS_SECRET_KEY", "aws_secret_access_key = 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",
     "9hJk2LmN4pQr6StU8vWx0yZa1Bc3De5Fg7Hi9Jk1"),
    ("AZURE_STORAGE_KEY", f"AccountName=x;AccountKey={B64_86}==;EndpointSuffix=core.windows.net",
     f"{B64_86}=="),
    ("AZURE_SAS_TOKEN", "https://a.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig=Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed%3D",
     "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed%3D"),
    ("GCP_API_KEY", "key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q rest", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
    ("GITHUB_TOKEN", "token ghp_16C7e42F292c6912E7710c838347Ae178B4a ok", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("GITLAB_TOKEN", "PRIVATE-TOKEN: glpat-Ab12Cd34Ef56Gh78Ij90", "glpat-Ab12Cd34Ef56Gh78Ij90"),
    ("SLACK_TOKEN", "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("SLACK_WEBHOOK", "post to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX now",
     "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("STRIPE_KEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("OPENAI_KEY", "OPENAI_API_KEY=sk-proj-Ab3De5Gh7Jk9Mn1Pq3St5Vw7Yz9Bc1Df3Hj5Kl7", "sk-proj-Ab3De5Gh7Jk9Mn1Pq3St5Vw7Yz9Bc1Df3Hj5Kl7"),
    ("ANTHROPIC_KEY", "x-api-key: sk-ant-api03-" + "Ab3De5Gh7Jk9Mn1Pq3St5Vw7Yz9" * 3 + "AA",
     "sk-ant-api03-" + "Ab3De5Gh7Jk9Mn1Pq3St5Vw7Yz9" * 3 + "AA"),
    ("JWT", f"Authorization: Bearer {_jwt()}", _jwt()),
    ("PRIVATE_KEY", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n-----END OPENSSH PRIVATE KEY-----",
     f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n-----END OPENSSH PRIVATE KEY-----"),
    ("DB_CONNECTION_STRING", "DATABASE_URL=postgresql://app:Tr0ub4dor&3@db.internal:5432/app",
     "postgresql://app:Tr0ub4dor&3@db.internal:5432/app"),
    ("PASSWORD", "https://deploy:hunter2x@git.example.com/repo.git", "hunter2x"),
    ("PASSWORD", 'password="c0rrect-h0rse"', "c0rrect-h0rse"),
    ("PASSWORD", "secret: Tr0ub4dor", "Tr0ub4dor"),
    ("GENERIC_SECRET", "api_key = 'q8Zr4Tn2Wm6Yp0Lk3Hs7Dv1Fb5Xc9Jg'", "q8Zr4Tn2Wm6Yp0Lk3Hs7Dv1Fb5Xc9Jg"),
]  # fmt: skip


@pytest.mark.parametrize(("etype", "text", "value"), CASES, ids=[c[0] for c in CASES])
def test_secret_families(guard: Guard, etype: str, text: str, value: str) -> None:
    assert (etype, value) in types(guard, text)


def test_gcp_service_account_json(guard: Guard) -> None:
    key = "-----BEGIN PRIVATE KEY-----\\n" + PEM_BODY + "\\n-----END PRIVATE KEY-----\\n"
    doc = json.dumps({"type": "service_account", "private_key_id": "a" * 40})[:-1]
    text = doc + f', "private_key": "{key}"}}'
    found = types(guard, text)
    assert ("GCP_SERVICE_ACCOUNT", key) in found
    assert ("GCP_SERVICE_ACCOUNT", "a" * 40) in found


NEAR_MISSES = [
    "AKIA1234 is too short",
    "the secret sauce is love",
    "password: <password>",
    "password=${DB_PASSWORD}",
    "Password: must be at least 12 characters",
    "sk-test is a prefix, not a key",
    "eyJhbGciOi.not-a-jwt",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
    "postgres://db.internal:5432/app (no credentials)",
    "api_key = aaaaaaaaaaaaaaaaaaaaaaaa",  # not random
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "token: ${{ secrets.GITHUB_TOKEN }}",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_secret_near_misses(guard: Guard, text: str) -> None:
    assert types(guard, text) == []
