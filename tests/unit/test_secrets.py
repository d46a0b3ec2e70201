"""What is secret, how references resolve, and what the scrubber masks."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import quote, quote_plus

import pytest

from arvel_flow.errors import SecretError
from arvel_flow.secrets import (
    Scrubber,
    ScrubbingStream,
    SecretRef,
    is_secret_env,
    is_secret_field_name,
    redacted,
    redacted_fields,
    register_secret,
    resolve_secrets,
    scrub_text,
)


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "db_password",
        "dbPassword",
        "api_token",
        "apiKey",
        "api_key",
        "aws_secret_key",
        "client_secret",
        "dsn",
        "authorization",
        "credentials",
        "passphrase",
        "private_key",
    ],
)
def test_fields_named_like_secrets_are_secret(name: str) -> None:
    assert is_secret_field_name(name)


@pytest.mark.parametrize(
    "name", ["max_tokens", "token_count", "token_type", "password_hint", "keyboard", "user", "key"]
)
def test_fields_that_only_mention_a_secret_word_are_not(name: str) -> None:
    assert not is_secret_field_name(name)


def test_variables_are_secret_by_name_declaration_or_url_password() -> None:
    assert is_secret_env("DB_PASSWORD", "x")
    assert is_secret_env("github_token", "x")
    assert is_secret_env("PEPPER", "x", declared={"PEPPER"})
    assert is_secret_env("DATABASE_URL", "postgres://app:pw@db/x")
    assert not is_secret_env("DATABASE_URL", "postgres://app@db/x")
    assert not is_secret_env("REGION", "eu")


def test_a_reference_is_a_plain_mapping_shown_as_its_template() -> None:
    ref = SecretRef("postgres://app:${DB_PASSWORD}@db/x")
    assert json.loads(json.dumps({"dsn": ref})) == {
        "dsn": {"$secret": "postgres://app:${DB_PASSWORD}@db/x"}
    }
    assert str(ref) == repr(ref) == "SecretRef('postgres://app:${DB_PASSWORD}@db/x')"


def test_references_resolve_from_the_environment_nested_and_typed() -> None:
    env = {"PW": "s3cret", "PORT_TOKEN": "8080"}
    params = {
        "dsn": {"$secret": "pg://a:${PW}@h/$$x"},
        "port": SecretRef("${PORT_TOKEN}", plain=True),
        "fallback": {"$secret": "${UNSET:-dev}"},
        "nested": [{"token": SecretRef("${PW}")}],
        "plain": 3,
    }
    assert resolve_secrets(params, env) == {
        "dsn": "pg://a:s3cret@h/$x",
        "port": 8080,
        "fallback": "dev",
        "nested": [{"token": "s3cret"}],
        "plain": 3,
    }


def test_an_unset_variable_fails_naming_it_and_the_parameter() -> None:
    with pytest.raises(SecretError) as raised:
        resolve_secrets({"dsn": SecretRef("pg://a:${DB_PW}@h")}, {})
    assert raised.value.name == "DB_PW"
    assert "environment variable 'DB_PW' is not set in this process" in str(raised.value)
    assert "job parameter 'dsn'" in str(raised.value)


def test_a_redacted_marker_can_never_be_resolved() -> None:
    params = {"user": "ann", "api_token": redacted("api_token")}
    assert redacted_fields(params) == ["api_token"]
    with pytest.raises(SecretError, match="parameter 'api_token' held a secret given in Python"):
        resolve_secrets(params, {})


def test_an_old_record_masked_with_stars_counts_as_redacted() -> None:
    assert redacted_fields({"password": "***", "note": "***"}) == ["password"]


def test_the_scrubber_masks_a_value_in_every_common_encoding() -> None:
    # Given a registered value whose encodings all differ
    value = "Tr0ub4dor\\&3-\u00f6'x"
    scrubber = Scrubber()
    scrubber.add(value)
    raw = value.encode()
    forms = [
        value,
        quote(value, safe=""),
        quote_plus(value),
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]
    # When text quoting it in each form is scrubbed
    text = scrubber.scrub(" | ".join(forms))
    # Then every form is masked
    assert text == " | ".join(["***"] * len(forms))


def test_the_scrubber_masks_url_passwords_but_keeps_references() -> None:
    scrubber = Scrubber()
    text = "redis://:hunter2@cache:6379/0 and postgres://app:${DB_PASSWORD}@db/x"
    assert (
        scrubber.scrub(text) == "redis://:***@cache:6379/0 and postgres://app:${DB_PASSWORD}@db/x"
    )


def test_values_shorter_than_four_characters_are_not_scrubbed() -> None:
    scrubber = Scrubber()
    scrubber.add("on1")
    assert scrubber.scrub("turn on1 on") == "turn on1 on"


def test_a_scrubbing_stream_masks_what_is_written_and_is_the_stream_otherwise() -> None:
    register_secret("stream-secret-42")
    target = io.StringIO()
    stream = ScrubbingStream(target)
    stream.write("leaked stream-secret-42?\n")
    assert target.getvalue() == "leaked ***?\n"
    assert stream.getvalue() == target.getvalue()
    assert scrub_text("x stream-secret-42") == "x ***"


@pytest.mark.parametrize("value", ["true", "False", "null", "none", "1000", "3.14", "-42"])
def test_numbers_and_boolean_words_are_not_scrubbed(value: str) -> None:
    # Given a variable named like a secret whose value is a number or a word such as true
    scrubber = Scrubber()
    scrubber.add(value)
    # When a JSON event holding that word or number is scrubbed
    event = json.dumps({"ok": True, "attempts": 1000, "rate": 3.14, "x": None, "d": -42})
    # Then it is unchanged, and still JSON
    assert scrubber.scrub(event) == event
    assert scrubber.scrub(f"un{value}") == f"un{value}"
