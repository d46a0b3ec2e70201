"""`arvel_flow.envfile`: ``.env`` files parsed by python-dotenv, exported under the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from arvel_flow.envfile import load_env_file, read_env_file
from arvel_flow.errors import ConfigError
from arvel_flow.secrets import scrub_text


def test_values_follow_dotenv_syntax(tmp_path: Path) -> None:
    # Given a .env file with export, quotes, comments and a reference to a line above
    path = tmp_path / "app.env"
    path.write_text(
        '# comment\nexport A=1  # trailing\nB="two words"\nC=\'${A}\'\nD="${A}-x"\nBARE\n',
        encoding="utf-8",
    )

    # When it is read
    values = read_env_file(path)

    # Then each line gives its value; a name without '=' sets nothing
    assert values == {"A": "1", "B": "two words", "C": "1", "D": "1-x"}


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    # Given a variable set both in the environment and in the file
    path = tmp_path / ".env"
    path.write_text("REGION=file\nZONE=b\n", encoding="utf-8")
    environ = {"REGION": "real"}

    # When the file is loaded into that environment
    used = load_env_file(path, environ=environ)

    # Then only what the environment lacked was added
    assert used == path
    assert environ == {"REGION": "real", "ZONE": "b"}


def test_no_dotenv_in_the_working_directory_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    environ: dict[str, str] = {}
    assert load_env_file(environ=environ) is None
    assert environ == {}


def test_a_secret_read_from_the_file_is_scrubbed(tmp_path: Path) -> None:
    # Given a .env holding a secret by its name
    path = tmp_path / ".env"
    path.write_text("UNIT_ENVFILE_TOKEN=t0ken-from-dotenv\n", encoding="utf-8")

    # When it is loaded
    load_env_file(path, environ={})

    # Then the value is masked in whatever this process shows
    assert scrub_text("got t0ken-from-dotenv") == "got ***"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "missing.env: error: env file not found"),
        (b"A=\xff\n", "missing.env: error: env file is not UTF-8 text"),
        (
            b"A=1\nnot a line\n",
            "missing.env:2:1: error: not a NAME=value line (python-dotenv syntax)",
        ),
    ],
)
def test_a_bad_file_is_one_clear_error(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "missing.env"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        read_env_file(path)
    assert str(raised.value).replace(str(tmp_path) + "/", "") == expected
