"""Secret rules: cloud and SaaS credentials, keys, tokens, passwords.

Shapes follow the public rule sets of gitleaks and detect-secrets (prefixes, lengths,
charsets); the patterns themselves are written for RE2 and tested here.
"""

from __future__ import annotations

from opsgate.guard import validators as v
from opsgate.guard.rules import Rule, Validator

DETECTOR = "secrets"

SECRET_KEYWORDS = (
    "api_key", "apikey", "api-key", "secret", "token", "access_key", "access-key",
    "private_key", "client_secret", "auth", "credential", "bearer", "session_key",
    "signing_key", "encryption_key", "x-api-key",
)  # fmt: skip


def _random(min_entropy: float) -> Validator:
    def check(value: str, text: str, start: int, end: int) -> bool:
        return v.looks_random(value, min_entropy)

    return check


def _not_placeholder(value: str, text: str, start: int, end: int) -> bool:
    return not v.is_placeholder(value)


def _password(value: str, text: str, start: int, end: int) -> bool:
    if v.is_placeholder(value):
        return False
    # "Password: must be 8+ characters" is prose, not a password.
    follows = text[end : end + 2]
    prose = value.isalpha() and value.islower() and len(follows) == 2 and follows[0] == " "
    return not (prose and follows[1].isalpha())


def _jwt(value: str, text: str, start: int, end: int) -> bool:
    return v.jwt_ok(value)


def _generic(value: str, text: str, start: int, end: int) -> bool:
    return not v.is_placeholder(value) and v.looks_random(value, 3.3)


def _sas(value: str, text: str, start: int, end: int) -> bool:
    around = text[max(0, start - 400) : start]
    return "sv=" in around or "se=" in around or "sp=" in around


_B64 = r"[A-Za-z0-9+/]"
_DB_SCHEMES = (
    r"(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|"
    r"oracle|cockroachdb|clickhouse|couchdb|neo4j(?:\+s)?|cassandra|db2|snowflake)"
)
_QUOTED_VALUE = r"""(?:"(?P<v>[^"\s]{3,})"|'(?P<v2>[^'\s]{3,})'|(?P<v3>[^\s"',;&<>]{3,}))"""


def secret_rules() -> list[Rule]:
    """The built-in secret rules."""
    d = DETECTOR
    rand = _random
    return [
        Rule("aws_access_key", "AWS_ACCESS_KEY",
             r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b", 0.95, d),
        Rule("aws_secret_key", "AWS_SECRET_KEY",
             r"(?i)(?:aws|secret[_\-]?access[_\-]?key)[\w\-. \"']{0,30}?[:=>]\s*[\"']?"
             rf"(?P<v>{_B64}{{40}})(?:[^A-Za-z0-9+/=]|$)", 0.95, d, rand(3.5)),
        Rule("azure_storage_key", "AZURE_STORAGE_KEY",
             rf"(?i)AccountKey=(?P<v>{_B64}{{86}}==)", 0.95, d),
        Rule("azure_storage_key_ctx", "AZURE_STORAGE_KEY",
             rf"(?:^|[^A-Za-z0-9+/])(?P<v>{_B64}{{86}}==)", 0.9, d, rand(4.0),
             context=("azure", "storage", "accountkey", "account_key", "account key"),
             context_required=True, window=80),
        Rule("azure_sas", "AZURE_SAS_TOKEN",
             r"[?&]sig=(?P<v>[A-Za-z0-9%+/=]{30,})", 0.9, d, _sas),
        Rule("gcp_service_account_key", "GCP_SERVICE_ACCOUNT",
             r"\"private_key\"\s*:\s*\"(?P<v>-----BEGIN (?:RSA )?PRIVATE KEY-----[A-Za-z0-9+/=\\]+"
             r"-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)\"", 0.99, d),
        Rule("gcp_service_account_key_id", "GCP_SERVICE_ACCOUNT",
             r"\"private_key_id\"\s*:\s*\"(?P<v>[a-f0-9]{40})\"", 0.9, d),
        Rule("gcp_api_key", "GCP_API_KEY",
             r"\b(?P<v>AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)", 0.95, d),
        Rule("github_token", "GITHUB_TOKEN", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b", 0.97, d),
        Rule("github_pat", "GITHUB_TOKEN", r"\bgithub_pat_[A-Za-z0-9_]{82}\b", 0.97, d),
        Rule("gitlab_token", "GITLAB_TOKEN",
             r"\bgl(?:pat|dt|ptt|rt|ft|imt|oas|soat|cbt|ffct|agent)-[A-Za-z0-9_\-]{20,}",
             0.97, d),
        Rule("gitlab_runner", "GITLAB_TOKEN", r"\bGR1348941[A-Za-z0-9_\-]{20}\b", 0.97, d),
        Rule("slack_token", "SLACK_TOKEN", r"\bxox[abposre]-[0-9A-Za-z\-]{10,}", 0.97, d),
        Rule("slack_app_token", "SLACK_TOKEN", r"\bxapp-\d-[A-Z0-9]{8,}-\d{6,}-[a-z0-9]{32,}",
             0.97, d),
        Rule("slack_webhook", "SLACK_WEBHOOK",
             r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+\-]{20,}",
             0.97, d),
        Rule("stripe_key", "STRIPE_KEY", r"\b(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{16,}\b",
             0.97, d),
        Rule("stripe_webhook", "STRIPE_KEY", r"\bwhsec_[A-Za-z0-9]{32,64}\b", 0.95, d),
        Rule("openai_key", "OPENAI_KEY",
             r"\bsk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,}"
             r"|\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b|\bsk-[A-Za-z0-9]{48}\b", 0.97, d),
        Rule("anthropic_key", "ANTHROPIC_KEY",
             r"\bsk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_\-]{20,}", 0.98, d),
        Rule("jwt", "JWT",
             r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", 0.95, d,
             _jwt),
        Rule("private_key", "PRIVATE_KEY",
             r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s\\:,.\-]*?"
             r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----", 0.99, d),
        Rule("private_key_partial", "PRIVATE_KEY",
             r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\\n]*"
             rf"{_B64}{{64}}[A-Za-z0-9+/=\s\\]*", 0.95, d),
        Rule("db_connection_string", "DB_CONNECTION_STRING",
             rf"\b{_DB_SCHEMES}(?:\+[a-z0-9]+)?://[^\s:/@\"'<>]+:[^\s@\"'<>]+@"
             r"[^\s\"'<>]*[^\s\"'<>.,;:!?)\]]", 0.98, d, _url_password_ok),
        Rule("url_password", "PASSWORD",
             r"\b[a-z][a-z0-9+.\-]*://[^\s:/@\"'<>]+:(?P<v>[^\s@\"'<>/]+)@",
             0.97, d, _not_placeholder),
        Rule("password_assignment", "PASSWORD",
             r"(?i)(?:^|[^A-Za-z0-9_])(?:[A-Za-z0-9]+[_\-.])?"
             r"(?:password|passwd|pwd|passphrase|secret|db_pass)[\"']?\s*(?::=|=>|[:=])\s*"
             + _QUOTED_VALUE,
             0.85, d, _password),
        Rule("generic_secret", "GENERIC_SECRET",
             r"(?i)(?:api[_\-]?key|apikey|secret|token|access[_\-]?key|private[_\-]?key|"
             r"client[_\-]?secret|auth[_\-]?key|credential|bearer|session[_\-]?key|"
             r"signing[_\-]?key)[\w\-.]*[\"']?\s*(?::=|=>|[:=]|\s)\s*[\"']?"
             r"(?P<v>[A-Za-z0-9_\-+/=.~]{16,})", 0.8, d, _generic),
    ]  # fmt: skip


def _url_password_ok(value: str, text: str, start: int, end: int) -> bool:
    creds = value.split("://", 1)[1].split("@", 1)[0]
    return not v.is_placeholder(creds.split(":", 1)[1])
