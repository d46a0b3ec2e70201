"""The allowlist's rule (`arvel_flow.queue.allowlist`): every forgery refused, nothing imported.

The allowed module is `tests.unit.queue.allowlist_jobs`: it holds legitimate jobs and,
on purpose, everything a forged message would try to reach through it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from arvel_flow.compiler import load_pipeline
from arvel_flow.errors import ConfigError, ImportTargetError, JobFailedError
from arvel_flow.pipeline.names import parse_prefixes
from arvel_flow.queue.allowlist import Role, import_allowed, is_under, screen_path
from arvel_flow.queue.backoff import exception_classes
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.job import MiddlewareRef, format_key
from arvel_flow.queue.middleware import build_middleware
from arvel_flow.queue.runner import Failed, JobRunner
from arvel_flow.queue.targets import JobRef, resolve_target
from arvel_flow.store import MemoryStore
from arvel_flow.worker.refusals import compute_refusal
from tests.unit.queue import allowlist_jobs

M = "tests.unit.queue.allowlist_jobs"
ALLOWED = (M,)
FORBIDDEN = "tests.unit.queue.forbidden_jobs"

LEGITIMATE: list[tuple[str, Role, object]] = [
    (f"{M}:Import", "job", allowlist_jobs.Import),
    (f"{M}.Import", "job", allowlist_jobs.Import),
    (f"{M}:send", "job", allowlist_jobs.send),
    (f"{M}:Jobs.Nested", "job", allowlist_jobs.Jobs.Nested),
    (f"{M}:Guard", "middleware", allowlist_jobs.Guard),
    (f"{M}:QuotaError", "exception", allowlist_jobs.QuotaError),
    (f"{M}.QuotaError", "exception", allowlist_jobs.QuotaError),
    ("ConnectionError", "exception", ConnectionError),
    ("TimeoutError", "exception", TimeoutError),
]

FORGERIES: list[tuple[str, Role, str]] = [
    # attribute chains through another module, in both forms
    (f"{M}:logging.os.popen", "job", "'logging' in tests.unit.queue.allowlist_jobs is a module"),
    (f"{M}:asyncio.subprocess.create_subprocess_shell", "job", "is a module"),
    (f"{M}.asyncio.subprocess.create_subprocess_shell", "job", "no module named"),
    (f"{M}:os.system", "job", "is a module"),
    (f"{M}.os.system", "job", "no module named"),
    (f"{M}.logging.os.popen", "job", "no module named"),
    # re-exports: objects defined outside the allowed modules
    (f"{M}:popen", "job", "is os:popen, defined outside the allowed modules"),
    (f"{M}.popen", "job", "is os:popen, defined outside the allowed modules"),
    (f"{M}:Popen", "job", "is subprocess:Popen, defined outside"),
    (f"{M}:Job", "job", "is arvel_flow.queue.job:Job, defined outside"),
    (f"{M}:RateLimited", "middleware", "arvel_flow.queue.middleware:RateLimited, defined outside"),
    (f"{M}:JSONDecodeError", "exception", "is json.decoder:JSONDecodeError, defined outside"),
    # things that are not a class or function defined under their own name
    (f"{M}:evaluate", "job", "is a builtin_function_or_method, not a class or function"),
    (f"{M}:Alias", "job", f"is another name for {M}:Import; use that path"),
    (f"{M}:partial_send", "job", "is a partial, not a class or function"),
    (f"{M}:bound", "job", "is a method, not a class or function"),
    (f"{M}:lambda_job", "job", "another name for tests.unit.queue.allowlist_jobs:<lambda>"),
    (f"{M}:NUMBER", "job", "is a int, not a class or function"),
    (f"{M}:Import.helper", "job", "names a class only"),
    (f"{M}:Import.path", "job", "Import has no attribute 'path'"),
    (f"{M}:NoSuchJob", "job", "tests.unit.queue.allowlist_jobs has no attribute 'NoSuchJob'"),
    # builtins: never a job or a middleware; as an exception, a builtin exception class only
    ("eval", "job", "a job is never a builtin"),
    ("exec", "job", "a job is never a builtin"),
    ("open", "job", "a job is never a builtin"),
    ("print", "middleware", "a middleware is never a builtin"),
    ("eval", "exception", "not a builtin exception class"),
    ("NoSuchError", "exception", "not a builtin exception class"),
    ("__import__", "job", "a name starting with '__' is never allowed"),
    # modules outside the prefixes, and prefix tricks
    ("os:system", "job", "not under the allowed modules"),
    ("os.system", "job", "not under the allowed modules"),
    ("builtins:eval", "job", "not under the allowed modules"),
    ("builtins.ConnectionError", "exception", "not under the allowed modules"),
    (f"{FORBIDDEN}:Forbidden", "job", "not under the allowed modules"),
    (f"{FORBIDDEN}.Forbidden", "job", "not under the allowed modules"),
    (f"{M}x:Import", "job", "not under the allowed modules"),
    (f"{M}_evil:Import", "job", "not under the allowed modules"),
    ("tests.unit.queue:allowlist_jobs", "job", "not under the allowed modules"),
    (M, "job", "not under the allowed modules"),
    # dunder attributes
    (f"{M}:Import.__init__", "job", "starting with '__'"),
    (f"{M}:Import.__class__", "job", "starting with '__'"),
    (f"{M}:send.__globals__", "job", "starting with '__'"),
    (f"{M}:__builtins__", "job", "starting with '__'"),
    (f"{M}.__builtins__", "job", "starting with '__'"),
    (f"{M}:__loader__", "job", "starting with '__'"),
    (f"{M}:Import.__subclasses__", "middleware", "starting with '__'"),
    # malformed: whitespace, newlines, lookalikes, empty segments, relative paths
    (f"{M}:Import ", "job", "not a dotted path of ASCII identifiers"),
    (f" {M}:Import", "job", "not a dotted path of ASCII identifiers"),
    (f"{M}:Import\n", "job", "not a dotted path of ASCII identifiers"),
    (f"{M}\n:Import", "job", "not a dotted path of ASCII identifiers"),
    (f"{M}:Im\tport", "job", "not a dotted path of ASCII identifiers"),
    ("tests.unit.queue.allowlist_j\u043ebs:Import", "job", "ASCII identifiers"),  # Cyrillic o
    (f"{M}:\u0406mport", "job", "ASCII identifiers"),  # Cyrillic I
    (f"{M}:\ufb01", "job", "ASCII identifiers"),  # the "fi" ligature NFKC folds to "fi"
    (".allowlist_jobs:Import", "job", "not a dotted path"),
    (":Import", "job", "not a dotted path"),
    (f"{M}:", "job", "not a dotted path"),
    (f"{M}.", "job", "not a dotted path"),
    (f"{M}::Import", "job", "not a dotted path"),
    ("tests.unit..queue.allowlist_jobs:Import", "job", "not a dotted path"),
    (f"{M}:Jobs..Nested", "job", "not a dotted path"),
    ("", "job", "not a dotted path"),
    # what retry_on and middleware must be
    (f"{M}:Import", "exception", "not an exception class"),
    (f"{M}:send", "exception", "not an exception class"),
    (f"{M}:send", "middleware", "a middleware is a class, not a function"),
]


@pytest.fixture
def nothing_new_imported() -> object:
    """The test ends with the modules it started with (the allowed one loaded already)."""
    before = set(sys.modules)
    yield
    assert set(sys.modules) == before
    assert FORBIDDEN not in sys.modules


@pytest.mark.parametrize(("path", "role", "expected"), LEGITIMATE)
def test_a_path_naming_its_object_directly_in_an_allowed_module_is_allowed(
    path: str, role: Role, expected: object
) -> None:
    assert import_allowed(path, ALLOWED, role) is expected


@pytest.mark.usefixtures("nothing_new_imported")
@pytest.mark.parametrize(("path", "role", "reason"), FORGERIES)
def test_a_forged_path_is_refused_with_its_reason_and_imports_nothing(
    path: str, role: Role, reason: str
) -> None:
    # When a forged path is resolved under the allowlist
    with pytest.raises(ImportTargetError) as refused:
        import_allowed(path, ALLOWED, role)
    # Then it is refused, saying why (no new module: see the autouse fixture)
    assert refused.value.path == path
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    "path",
    [f"{FORBIDDEN}.Forbidden", f"{M}x:Import", "os:system", f"{M}:__dict__", "eval", f"{M}:a b"],
)
def test_the_screen_refuses_without_importing_anything(path: str) -> None:
    # Given the modules loaded now (the allowed one included)
    before = set(sys.modules)
    # When a path outside the prefixes, or malformed, is screened
    with pytest.raises(ImportTargetError):
        screen_path(path, ALLOWED, "job")
    # Then nothing was imported
    assert set(sys.modules) == before


@pytest.mark.usefixtures("nothing_new_imported")
def test_an_all_dots_path_whose_split_leaves_the_prefixes_is_refused_before_importing() -> None:
    # Given a prefix that allows one module of a package whose sibling must stay unimported
    allowed = ("tests.unit.queue.allowlist_jobs",)
    # When an all-dots path is split as module + name, the module being that sibling
    with pytest.raises(ImportTargetError, match="not under the allowed modules"):
        import_allowed("tests.unit.queue.forbidden_jobs.Forbidden", allowed, "job")
    # Then it was refused by its module alone (the fixture checks nothing was imported)


@pytest.mark.usefixtures("nothing_new_imported")
def test_a_forged_envelope_is_refused_by_the_worker_screen_without_importing() -> None:
    # Given envelopes whose job, middleware or retry_on is forged
    forged = [
        JobRef(f"{M}:logging.os.popen", {"cmd": "true"}),
        JobRef(f"{M}:Import").with_settings(middleware=(MiddlewareRef(f"{M}:RateLimited", {}),)),
        JobRef(f"{M}:Import").with_settings(retry_on=(f"{M}:JSONDecodeError",)),
        JobRef(f"{M}:Import").with_settings(dont_retry_on=(f"{FORBIDDEN}.Error",)),
    ]
    # When the worker screens them, then each is refused
    for ref in forged:
        assert compute_refusal(Envelope(ref, "e1"), ALLOWED) is not None
    # And a legitimate one passes
    legit = JobRef(f"{M}:Import").with_settings(
        middleware=(MiddlewareRef(f"{M}:Guard", {}), MiddlewareRef("rate_limited", {})),
        retry_on=("ConnectionError", f"{M}:QuotaError"),
    )
    assert compute_refusal(Envelope(legit, "e2"), ALLOWED) is None


def test_a_module_object_is_never_a_target() -> None:
    # Given a prefix wide enough that the module is an attribute of an allowed package
    with pytest.raises(ImportTargetError) as refused:
        import_allowed(M, ("tests.unit.queue",), "job")
    assert "'allowlist_jobs' in tests.unit.queue is a module" in refused.value.reason


def test_a_class_defined_in_another_allowed_module_is_allowed_under_its_own_path() -> None:
    # Given two allowed prefixes, and a class one of them re-exports from the other
    allowed = (M, "arvel_flow.queue.middleware")
    # When the re-export is named, then it is allowed: it is defined under the prefixes
    assert import_allowed(f"{M}:RateLimited", allowed, "middleware") is not None


def test_without_an_allowlist_paths_resolve_as_before() -> None:
    # Without allowed prefixes (a trusted, in-process run), a dotted path imports as written
    assert resolve_target(f"{M}:Import").obj is allowlist_jobs.Import
    assert resolve_target(f"{M}.Jobs.Nested").obj is allowlist_jobs.Jobs.Nested


def test_resolve_target_applies_the_rule_under_an_allowlist() -> None:
    assert resolve_target(f"{M}:Import", allowed=ALLOWED).obj is allowlist_jobs.Import
    with pytest.raises(ImportTargetError, match="defined outside the allowed modules"):
        resolve_target(f"{M}:popen", allowed=ALLOWED)
    with pytest.raises(ImportTargetError, match="a job is never a builtin"):
        resolve_target("eval", allowed=ALLOWED)


def test_middleware_and_retry_on_go_through_the_same_rule() -> None:
    forged = MiddlewareRef(f"{M}:RateLimited", {"key": "k", "max_attempts": 1, "decay": 1})
    with pytest.raises(ImportTargetError, match="defined outside the allowed modules"):
        build_middleware(forged, allowed=ALLOWED)
    assert isinstance(build_middleware(MiddlewareRef(f"{M}:Guard", {}), allowed=ALLOWED), object)
    with pytest.raises(ImportTargetError, match="defined outside the allowed modules"):
        exception_classes((f"{M}:JSONDecodeError",), ALLOWED)
    with pytest.raises(ImportTargetError, match="not an exception class"):
        exception_classes((f"{M}:Import",), None)
    assert exception_classes(("ConnectionError", f"{M}:QuotaError"), ALLOWED) == (
        ConnectionError,
        allowlist_jobs.QuotaError,
    )


@pytest.mark.parametrize(
    "target",
    [
        f"{M}:popen",
        f"{M}:logging.os.popen",
        f"{M}:os.popen",
        f"{M}.os.popen",
    ],
)
async def test_a_forged_job_is_recorded_as_failed_and_its_code_never_runs(
    target: str, tmp_path: Path
) -> None:
    # Given a runner under the allowlist, and a message whose job would create a file
    marker = tmp_path / "ran"
    runner = JobRunner(store=MemoryStore(), allowed_modules=ALLOWED)
    envelope = Envelope(JobRef(target, {"cmd": f"touch {marker}"}), "msg-1")
    # When it is attempted
    outcome = await runner.attempt(envelope)
    # Then it failed for good, recorded with the allowlist's reason, and nothing ran
    assert isinstance(outcome, Failed)
    [record] = await runner.store.list_failed()
    assert record.job == target
    assert record.exception == "arvel_flow.errors.ImportTargetError"
    assert "cannot use" in record.message
    assert not marker.exists()


async def test_a_forged_retry_on_fails_the_job_before_it_runs() -> None:
    # Given a legitimate job whose policy names a re-exported exception
    ref = JobRef(f"{M}:send").with_settings(retry_on=(f"{M}:JSONDecodeError",))
    # When it runs under the allowlist
    with pytest.raises(JobFailedError) as caught:
        await JobRunner(allowed_modules=ALLOWED).execute(ref)
    # Then the refusal says the exception is defined outside the allowed modules
    assert "json.decoder:JSONDecodeError, defined outside" in str(caught.value.__cause__)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["examples"], ("examples",)),
        (["examples."], ("examples",)),
        (["examples:"], ("examples",)),
        ([" examples.jobs "], ("examples.jobs",)),
        (["a", "b.c", "a"], ("a", "b.c")),
    ],
)
def test_prefixes_are_normalised(values: list[str], expected: tuple[str, ...]) -> None:
    assert parse_prefixes(values) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "an empty module prefix"),
        ("   ", "an empty module prefix"),
        (".", "an empty module prefix"),
        ("examples..jobs", "not a module prefix"),
        ("examples..", "not a module prefix"),
        ("ex amples", "not a module prefix"),
        ("*", "not a module prefix"),
        ("examples.*", "not a module prefix"),
        (".examples", "not a module prefix"),
        ("ex\u0430mples", "not a module prefix"),  # Cyrillic a
        ("examples:jobs", "not a module prefix"),
    ],
)
def test_an_empty_or_malformed_prefix_is_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_prefixes([value])


def test_a_prefix_allows_its_module_and_submodules_only() -> None:
    assert is_under("myapp.jobs", ("myapp.jobs",))
    assert is_under("myapp.jobs.deep", ("myapp.jobs",))
    assert not is_under("myapp.jobs_old", ("myapp.jobs",))
    assert not is_under("myapp", ("myapp.jobs",))


@pytest.mark.parametrize(
    "template",
    [
        "{path.__class__}",
        "{handle.__func__.__globals__[os].environ}",
        "{path[0]}",
        "{path!r}",
        "{path:>99999999}",
        "{_private}",
        "{0}",
        "{}",
    ],
)
def test_a_key_template_reads_bare_fields_only(template: str) -> None:
    # When a forged lock or unique key reaches into the job's attributes or memory
    with pytest.raises(ValueError, match="does not name a job field"):
        format_key(template, allowlist_jobs.Import())
    # Then it is refused before anything is read, as validation refuses it in a file
    text = f"version: 1\nname: k\npipeline:\n  job: {M}:Import\n  unique_id: '{template}'\n"
    with pytest.raises(ConfigError, match="does not name a job field"):
        load_pipeline(text, strict=False)


def test_a_key_template_of_bare_fields_is_filled() -> None:
    assert format_key("import-{path}-{queue_name}", allowlist_jobs.Import()) == (
        "import-rows.csv-default"
    )


async def test_a_forged_key_fails_the_job_before_it_runs() -> None:
    # Given a legitimate job whose message carries a lock key that reads the worker's globals
    forged = MiddlewareRef("without_overlapping", {"key": "{function.__globals__[os].environ}"})
    ref = JobRef(f"{M}:send").with_settings(middleware=(forged,))
    runner = JobRunner(store=MemoryStore(), allowed_modules=ALLOWED)
    # When it is attempted, then it fails for good and the key is never built
    outcome = await runner.attempt(Envelope(ref, "msg-1"))
    assert isinstance(outcome, Failed)
    [record] = await runner.store.list_failed()
    assert "does not name a job field" in record.message
    assert "PATH" not in record.message
