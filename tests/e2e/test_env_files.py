"""Checking a pipeline without its environment, and ``.env`` files, through the real command.

``validate``, ``graph`` and ``plan`` warn about an unset ``${NAME}`` and carry on;
``run`` refuses it, and so does ``validate --require-env``. ``.env`` in the working
directory (or ``--env-file``) fills the environment, the real one winning; its secrets
stay secret. Each test works in a directory of its own, so no ``.env`` leaks between
tests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, read_lines
from tests.e2e.jobs import fingerprint
from tests.e2e.leaks import DSN, PASSWORD, PEPPER, assert_no_secret, leaky_step

pytestmark = pytest.mark.slow

UNSET = "ENVSCHEMA_TEST_REGION"
"""A variable no environment sets."""


@pytest.fixture
def here(tmp_path: Path) -> Path:
    """The working directory of the command: empty but for what a test writes."""
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.fixture
def cli_here(here: Path, tmp_path: Path) -> Cli:
    """The command, run in ``here``, with ``UNSET`` surely unset."""
    cli = Cli(here, tmp_path / "logs")
    cli.env.pop(UNSET, None)
    return cli


def write_pipeline(here: Path, out: Path) -> Path:
    """A pipeline whose one job appends ``${UNSET}`` (line 8) to ``out``."""
    path = here / "regional.yaml"
    path.write_text(
        f"""version: 1
name: regional
pipeline:
  id: note
  job: tests.e2e.jobs:append_line
  with:
    path: {json.dumps(str(out))}
    line: "region=${{{UNSET}}}"
""",
        encoding="utf-8",
    )
    return path


WARNING = (
    f"regional.yaml:8:11: warning: pipeline.with.line: environment variable '{UNSET}' "
    f"is not set (write ${{{UNSET}:-default}} for a fallback)"
)


def test_validate_warns_about_an_unset_variable_at_its_position_and_passes(
    cli_here: Cli, here: Path
) -> None:
    # Given a pipeline using a variable this environment does not set
    write_pipeline(here, here / "out")

    # When it is validated, as a CI job without the production secrets would
    result = cli_here("validate", "regional.yaml")

    # Then the variable is named at its position as a warning, and the file passes
    assert result.code == 0, result
    assert result.stdout.splitlines() == [WARNING, "regional.yaml: ok (1 warning)"]


def test_validate_json_and_github_formats_carry_the_warning(cli_here: Cli, here: Path) -> None:
    # Given a pipeline using an unset variable
    write_pipeline(here, here / "out")

    # When it is validated for a script and for GitHub Actions
    as_json = cli_here("validate", "regional.yaml", "--format", "json")
    github = cli_here("validate", "regional.yaml", "--format", "github")

    # Then the file is valid and the warning is listed apart from the issues
    assert as_json.code == 0, as_json
    [file] = as_json.json()["files"]
    assert file["valid"] is True
    assert file["issues"] == []
    assert file["warnings"] == [
        {
            "path": "pipeline.with.line",
            "line": 8,
            "column": 11,
            "message": f"environment variable '{UNSET}' is not set "
            f"(write ${{{UNSET}:-default}} for a fallback)",
        }
    ]
    # And GitHub gets a warning annotation, not an error
    assert github.code == 0, github
    assert github.stdout.startswith("::warning file=regional.yaml,line=8,col=11,"), github


def test_validate_require_env_makes_an_unset_variable_an_error(cli_here: Cli, here: Path) -> None:
    # Given a pipeline using an unset variable
    write_pipeline(here, here / "out")

    # When it is validated with --require-env
    result = cli_here("validate", "--require-env", "regional.yaml")

    # Then the variable is an error, and validation fails
    assert result.code == 2, result
    assert result.stdout.splitlines()[0] == WARNING.replace(": warning: ", ": error: ")


def test_graph_and_plan_warn_and_still_draw_the_pipeline(cli_here: Cli, here: Path) -> None:
    # Given a pipeline using an unset variable, even where a number belongs
    path = write_pipeline(here, here / "out")
    text = path.read_text(encoding="utf-8").replace(
        "  id: note\n", "  id: note\n  timeout_seconds: ${ENVSCHEMA_TEST_TIMEOUT}\n"
    )
    path.write_text(text, encoding="utf-8")

    # When it is drawn and planned
    mermaid = cli_here("graph", "regional.yaml", "--format", "mermaid")
    plan = cli_here("plan", "regional.yaml")

    # Then both succeed, naming each unset variable at its position
    assert mermaid.code == 0, mermaid
    assert mermaid.stdout.startswith("flowchart"), mermaid
    assert "regional.yaml:5:20: warning: pipeline.timeout_seconds: environment variable " in (
        mermaid.stderr
    )
    assert WARNING.replace(":8:11:", ":9:11:") in mermaid.stderr  # stdout stays a drawing
    assert plan.code == 0, plan
    assert "1 job steps, 2 warnings" in plan.stdout
    assert "regional.yaml:5:20: warning: pipeline.timeout_seconds:" in plan.stdout


def test_run_still_refuses_an_unset_variable(cli_here: Cli, here: Path) -> None:
    # Given a pipeline using an unset variable
    write_pipeline(here, here / "out")

    # When it is run
    result = cli_here("run", "regional.yaml", "--store", "memory", "--output", "plain")

    # Then it is refused before anything runs, with the variable named at its position
    assert result.code == 2, result
    assert WARNING.replace(": warning: ", ": error: ") in result.stderr
    assert "Traceback" not in result.stderr
    assert not (here / "out").exists()


def test_dotenv_in_the_working_directory_sets_variables_and_the_environment_wins(
    cli_here: Cli, here: Path
) -> None:
    # Given a .env file setting the variable
    out = here / "out"
    write_pipeline(here, out)
    (here / ".env").write_text(f"# deploy settings\nexport {UNSET}=eu-west\n", encoding="utf-8")

    # When the pipeline is validated and run
    validated = cli_here("validate", "regional.yaml")
    ran = cli_here("run", "regional.yaml", "--store", "memory", "--output", "plain")
    # And run again with the variable set in the real environment
    cli_here.env[UNSET] = "us-east"
    again = cli_here("run", "regional.yaml", "--store", "memory", "--output", "plain")

    # Then .env supplied the value, and the real environment beat it
    assert validated.code == 0, validated
    assert validated.stdout == "regional.yaml: ok\n"
    assert ran.code == 0, ran
    assert again.code == 0, again
    assert read_lines(out) == ["region=eu-west", "region=us-east"]


def test_env_file_option_names_the_file_and_a_missing_one_is_an_error(
    cli_here: Cli, here: Path
) -> None:
    # Given a pipeline and an env file elsewhere than .env
    write_pipeline(here, here / "out")
    (here / "ci.env").write_text(f"{UNSET}=ap-south\n", encoding="utf-8")

    # When it is validated with --env-file, then with a file that does not exist
    named = cli_here("validate", "--require-env", "--env-file", "ci.env", "regional.yaml")
    missing = cli_here("validate", "--env-file", "nope.env", "regional.yaml")
    worker = cli_here("worker", "--env-file", "nope.env", "--allow", "tests.e2e")

    # Then the named file is read, and a missing one is one line and exit 2, for any command
    assert named.code == 0, named
    assert missing.code == 2, missing
    assert missing.stderr == "nope.env: error: env file not found\n"
    assert worker.code == 2, worker
    assert worker.stderr == "nope.env: error: env file not found\n"


def test_a_malformed_env_line_is_reported_by_number_without_its_text(
    cli_here: Cli, here: Path
) -> None:
    # Given a .env file whose second line is not NAME=value (and holds a secret)
    write_pipeline(here, here / "out")
    (here / ".env").write_text(f"{UNSET}=eu\nAPI_TOKEN secret-t0ken-value\n", encoding="utf-8")

    # When the pipeline is validated
    result = cli_here("validate", "regional.yaml")

    # Then the line is named, not quoted, and the command fails as for a bad pipeline
    assert result.code == 2, result
    assert result.stderr == ".env:2:1: error: not a NAME=value line (python-dotenv syntax)\n"
    assert "secret-t0ken-value" not in result.stdout + result.stderr


def test_arvel_flow_settings_in_dotenv_apply(cli_here: Cli, here: Path, tmp_path: Path) -> None:
    # Given a .env file choosing the store, and no --store flag
    out = here / "out"
    write_pipeline(here, out)
    database = tmp_path / "from-dotenv.db"
    (here / ".env").write_text(
        f"{UNSET}=eu\nARVEL_FLOW_STORE=sqlite:{database}\n", encoding="utf-8"
    )

    # When the pipeline runs, and its runs are listed with the same .env
    ran = cli_here("run", "regional.yaml", "--output", "plain")

    # Then the run used the store .env named
    assert ran.code == 0, ran
    assert database.is_file()
    assert not (here / ".arvel-flow").exists()


def test_secrets_from_dotenv_reach_the_job_and_nothing_else(
    cli_here: Cli, here: Path, tmp_path: Path
) -> None:
    # Given secrets in .env only (one secret by its name, one declared by the file)
    (here / ".env").write_text(
        f"DB_PASSWORD={json.dumps(PASSWORD, ensure_ascii=False)}\nAPP_PEPPER={PEPPER}\n",
        encoding="utf-8",
    )
    cli_here.env.pop("DB_PASSWORD", None)
    cli_here.env.pop("APP_PEPPER", None)
    (here / "leaky.yaml").write_text(
        f"""version: 1
name: leaky
secrets: [APP_PEPPER]
pipeline:
  id: leak
  retry: {{max_retries: 0}}
  {leaky_step(tmp_path, "  ")}
""",
        encoding="utf-8",
    )
    store = tmp_path / "state.db"
    events = tmp_path / "events.jsonl"

    # When it is validated, planned and run (the job fails quoting its secrets)
    looks = [
        cli_here("validate", "leaky.yaml"),
        cli_here("plan", "leaky.yaml"),
        cli_here("run", "leaky.yaml", "--store", f"sqlite:{store}", "--events", str(events)),
    ]

    # Then the job received the real values from .env
    assert [look.code for look in looks] == [0, 0, 1], looks
    assert read_lines(tmp_path / "journal") == [fingerprint(DSN, PASSWORD, PEPPER)]
    # And no output, event or byte of the store holds any form of them
    for look in looks:
        assert_no_secret(look.stdout + look.stderr, " ".join(look.args))
    for path in (events, *store.parent.glob("state.db*")):
        assert_no_secret(path.read_bytes(), str(path))


@pytest.mark.parametrize("option", [(), ("--env-file", "retry.env")])
def test_failed_retry_reads_the_password_of_its_job_from_dotenv(
    cli_here: Cli, here: Path, tmp_path: Path, option: tuple[str, ...]
) -> None:
    # Given a job that failed, its password given by the environment of its run
    password = "open-sesame"
    marker = tmp_path / "marker"
    (here / "unlock.yaml").write_text(
        f"""version: 1
name: unlock
pipeline:
  id: unlock
  job: tests.e2e.jobs:Unlock
  retry: {{max_retries: 0}}
  with:
    marker: {json.dumps(str(marker))}
    password: ${{UNLOCK_PASSWORD}}
    password_sha256: {hashlib.sha256(password.encode()).hexdigest()}
""",
        encoding="utf-8",
    )
    store = f"sqlite:{tmp_path / 'state.db'}"
    cli_here.env["UNLOCK_PASSWORD"] = password
    assert cli_here("run", "unlock.yaml", "--store", store).code == 1
    listed = cli_here("failed", "list", "--store", store, "--format", "json")
    failed_id = listed.json()[0]["id"]

    # When its cause is gone and it is retried where only a .env file holds the password
    marker.touch()
    del cli_here.env["UNLOCK_PASSWORD"]
    (here / (option[-1] if option else ".env")).write_text(
        f"UNLOCK_PASSWORD={password}\n", encoding="utf-8"
    )
    result = cli_here("failed", "retry", failed_id, "--store", store, *option)

    # Then the retry read the file and the job succeeded
    assert result.code == 0, result
    assert result.stdout.rstrip().endswith("unlock (tests.e2e.jobs:Unlock): succeeded")
