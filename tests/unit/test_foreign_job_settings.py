"""Settings of foreign job classes: class variables, Arvel's and Laravel's names, and
what a class declares that cannot be honoured (`read_settings`, `setting_problems`)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, SecretStr

from arvel_flow.compiler import load_pipeline
from arvel_flow.errors import ConfigError, JobFailedError
from arvel_flow.job_settings import DEFAULTS, JobSettings, setting_problems
from arvel_flow.queue.job import Job
from arvel_flow.queue.runner import JobRunner
from arvel_flow.queue.targets import JobRef, resolve_target


class ClassVarModel(BaseModel):
    max_retries: ClassVar[int] = 1
    backoff: ClassVar[list[int]] = [1, 5]
    timeout_seconds: ClassVar[float] = 20

    user_id: int

    async def handle(self) -> None:
        return None


class ArvelJob:
    """Shaped as Arvel's ``arvel.queue.Job``."""

    queue = "mail"
    tries = 3
    backoff: ClassVar[int | list[int]] = 5
    timeout = 60

    def __init__(self, to: str, retries_seen: int = 0) -> None:
        self.to = to
        self.retries_seen = retries_seen

    async def handle(self) -> None:
        raise ConnectionError(f"cannot reach {self.to}")

    def failed(self, exc: BaseException) -> None:
        FAILED.append((self.to, exc))


FAILED: list[tuple[str, BaseException]] = []


def test_a_pydantic_model_s_classvar_settings_are_read() -> None:
    # Given a Pydantic model declaring its settings as ClassVar
    # When its settings are read / Then they are the class's, defaults elsewhere
    settings = JobSettings.of(ClassVarModel)
    assert (settings.max_retries, settings.backoff, settings.timeout_seconds) == (1, (1.0, 5.0), 20)
    assert settings.queue_name == DEFAULTS.queue_name
    assert setting_problems(ClassVarModel) == []


def test_arvel_names_are_read_with_tries_counting_every_attempt() -> None:
    # Given an Arvel-style plain class: tries = 3 attempts in all
    # When its settings are read
    settings = JobSettings.of(ArvelJob)
    # Then it retries twice, with its timeout, backoff and queue
    assert settings.max_retries == 2
    assert (settings.timeout_seconds, settings.backoff, settings.queue_name) == (60, 5, "mail")
    assert setting_problems(ArvelJob) == []


def test_a_laravel_max_exceptions_is_read() -> None:
    class Laravelish:
        maxExceptions = 2

        async def handle(self) -> None:
            return None

    assert JobSettings.of(Laravelish).max_exceptions == 2


def test_a_pydantic_field_named_like_a_foreign_setting_stays_a_parameter() -> None:
    # Given a model whose 'timeout' and 'queue' are fields (parameters of the work)
    class Fetch(BaseModel):
        url: str
        timeout: float = 5.0
        queue: str = "inbox"

        async def handle(self) -> None:
            return None

    # When its settings are read / Then they are the defaults, and nothing is reported
    assert JobSettings.of(Fetch) == DEFAULTS
    assert setting_problems(Fetch) == []


def test_an_own_name_wins_over_a_foreign_one_and_the_clash_is_reported() -> None:
    class Both:
        max_retries = 5
        tries = 2

        async def handle(self) -> None:
            return None

    assert JobSettings.of(Both).max_retries == 5
    assert setting_problems(Both) == ["both 'tries' and 'max_retries' are set: 'max_retries' wins"]


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"tries": "three"}, "'tries' must be a whole number of attempts, not 'three'"),
        ({"tries": 0}, "'tries' must be at least 1 (Laravel's 0 = 'retry forever'"),
        ({"timeout": "soon"}, "'timeout' is not a valid setting value"),
        ({"max_retries": -1}, "'max_retries' is not a valid setting value"),
        ({"backoff": "linear"}, "'backoff' is not a valid setting value"),
        ({"jitter": "maybe"}, "'jitter' is not a valid setting value"),
        ({"backoff": lambda self: [1, 5]}, "'backoff' is a method or property"),
        ({"failOnTimeout": True}, "'failOnTimeout' is not a setting arvel-flow honours"),
        ({"delay": 10}, "'delay' is not a setting arvel-flow honours: set 'delay' on the step"),
    ],
)
def test_a_setting_that_cannot_be_honoured_is_reported_and_left_at_its_default(
    attributes: dict[str, Any], expected: str
) -> None:
    # Given a class declaring a setting arvel-flow cannot honour
    cls = type("Odd", (), {**attributes, "handle": ArvelJob.handle})
    # When its settings are read / Then the default stays, and the problem is named
    [problem] = setting_problems(cls)
    assert problem.startswith(expected)
    assert JobSettings.of(cls) == DEFAULTS


def test_a_job_subclass_reads_as_before() -> None:
    class Plain(Job):
        async def handle(self) -> None:
            return None

    class Tuned(Job):
        max_retries: int = 0
        timeout_seconds: float = 9

        async def handle(self) -> None:
            return None

    assert JobSettings.of(Plain) == DEFAULTS
    assert (JobSettings.of(Tuned).max_retries, JobSettings.of(Tuned).timeout_seconds) == (0, 9)
    assert setting_problems(Plain) == setting_problems(Tuned) == []


def test_a_plain_class_is_a_target_whose_parameters_are_its_constructor_s() -> None:
    target = resolve_target(f"{__name__}:ArvelJob")
    assert target.kind == "plain"
    assert target.parameter_names() == {"to", "retries_seen"}
    job = target.build({"to": "ops@example.com", "retries_seen": "2"})
    assert (job.to, job.retries_seen) == ("ops@example.com", 2)


async def test_a_plain_job_runs_its_tries_then_its_sync_failed_hook() -> None:
    # Given an Arvel-style job that always fails, with tries = 3 and no wait
    FAILED.clear()
    runner = JobRunner()
    ref = JobRef.of(ArvelJob("ops@example.com")).with_settings(backoff=0.0)
    # When it runs / Then it fails after three attempts, failed() once with the last error
    with pytest.raises(JobFailedError):
        await runner.execute(ref)
    [(to, error)] = FAILED
    assert (to, str(error)) == ("ops@example.com", "cannot reach ops@example.com")
    assert ref.params == {"to": "ops@example.com", "retries_seen": 0}


class PlainWithSecret:
    def __init__(self, user: str, conninfo: SecretStr) -> None:
        self.user = user
        self.conninfo = conninfo

    async def handle(self) -> None:
        return None


def test_a_plain_job_s_secret_given_in_python_is_never_stored() -> None:
    # Given a plain job instance holding a SecretStr under an innocent name
    ref = JobRef.of(PlainWithSecret("ana", SecretStr("postgres-password-1")))
    # When its ref is written out / Then the secret is redacted, the rest kept
    stored = ref.to_dict()["params"]
    assert stored["user"] == "ana"
    assert "postgres-password-1" not in str(stored)
    assert stored["conninfo"] == {"$redacted": "conninfo"}


class Fetch:
    timeout = 30

    def __init__(self, url: str, timeout: float = 5.0, **headers: str) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = headers

    async def handle(self) -> None:
        return None


def test_a_plain_instance_s_attributes_are_parameters_its_class_s_are_settings() -> None:
    # Given a plain job whose instance sets 'timeout' (a parameter of the work)
    ref = JobRef.of(Fetch("https://example.com", timeout=1.0), queue_name="web")
    # When its settings are read / Then they are its class's (timeout = 30), not its own
    assert (ref.settings.timeout_seconds, ref.settings.queue_name) == (30, "web")


def test_strict_checks_a_plain_class_s_parameters_against_its_constructor() -> None:
    # Given steps naming a plain class: one without 'url', one with extra keywords
    def pipeline(with_: str) -> str:
        path = f"{__name__}:Fetch"
        return f"version: 1\nname: f\npipeline: {{job: {path}, with: {with_}}}\n"

    # When validated strictly / Then 'url' is required and **headers takes any name
    with pytest.raises(ConfigError, match="url"):
        load_pipeline(pipeline("{timeout: 2}"))
    load_pipeline(pipeline("{url: 'https://example.com', accept: json}"))


def test_strict_reports_a_class_s_unhonoured_settings_where_the_step_names_it() -> None:
    text = f"version: 1\nname: o\npipeline: {{job: '{__name__}:Odd'}}\n"
    with pytest.raises(ConfigError) as caught:
        load_pipeline(text, file="o.yaml")
    [issue] = caught.value.issues
    assert "'failOnTimeout' is not a setting arvel-flow honours" in str(issue)


class Odd:
    failOnTimeout = True

    async def handle(self) -> None:
        return None
