"""Secrets for the leak tests, and how to search any text or bytes for them.

The tests put the secrets in the environment of the processes they start; these
helpers say which forms (raw and encoded) count as a leak.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

PASSWORD = "Tr0ub4dor\\&3-\u00f6'x"
"""A password whose raw, URL-quoted, repr-escaped and JSON-escaped forms all differ."""
PEPPER = "pepper-Zq9/value+"
"""The value of a variable that is secret only because the file declares it."""
DSN = f"postgres://app:{PASSWORD}@db/x"


def encodings(value: str) -> set[str]:
    """The forms a leaked value may take: raw, URL-quoted, escaped, base64."""
    raw = value.encode()
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        value.encode("unicode_escape").decode(),
    }
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {encoded, encoded.rstrip("=")}
    return forms


LEAKS = {
    form: name
    for name, value in (("DB_PASSWORD", PASSWORD), ("APP_PEPPER", PEPPER))
    for form in encodings(value)
}


def assert_no_secret(text: str | bytes, where: str) -> None:
    """No form of any secret in ``text`` (bytes are searched as UTF-8 too)."""
    data = text.encode() if isinstance(text, str) else text
    found = [f"{name} as {form!r}" for form, name in LEAKS.items() if form.encode() in data]
    assert not found, f"{where} leaked {found}"


def leaky_step(tmp_path: Path, indent: str) -> str:
    """The job step taking the secrets, its lines after the first indented by ``indent``."""
    at = {name: json.dumps(str(tmp_path / name)) for name in ("journal", "marker")}
    lines = [
        "job: tests.e2e.jobs:Leaky",
        "with:",
        '  dsn: "postgres://app:${DB_PASSWORD}@db/x"',
        '  note: "${DB_PASSWORD}"',
        "  pepper: ${APP_PEPPER}",
        f"  journal: {at['journal']}",
        f"  marker: {at['marker']}",
    ]
    return ("\n" + indent).join(lines)
