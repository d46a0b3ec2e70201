"""The ``arvel-flow`` command: parse arguments, call the API, render the result.

Each command is a thin layer: it parses options, calls `arvel_flow` functions and
hands their results to the pure ``format_*`` functions of `arvel_flow.cli.render`.
Heavy imports (Pydantic models, PyYAML, rich, the queue runtime) happen inside the
commands, so that ``arvel-flow --help`` starts in well under a quarter of a second.

Exit codes (SPEC §5): 0 success, 1 a run (or ``schema --check``) failed, 2 invalid
pipeline or usage, 3 a backend unreachable, 130 interrupted. `arvel_flow.cli.group`
maps a `FlowError` to its code, shown as its message alone; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from arvel_flow.cli.common import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    SET_OPTION,
    parse_assignments,
    print_renderable,
    scrub_standard_streams,
    use_working_directory,
)
from arvel_flow.cli.env_option import ENV_FILE_OPTION, use_env_file
from arvel_flow.cli.group import FlowGroup
from arvel_flow.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from arvel_flow.cli.validation_render import FileResult
    from arvel_flow.pipeline.models import PipelineSpec


# The run-time commands live in their own modules, imported only when one of them is
# run (or listed by --help): validate does not load what run, worker or top need.
RUNTIME_COMMANDS = {
    "run": "arvel_flow.cli.runs:run",
    "status": "arvel_flow.cli.runs:status",
    "runs": "arvel_flow.cli.runs:runs",
    "failed": "arvel_flow.cli.failed:failed",
    "worker": "arvel_flow.cli.worker:worker",
    "scheduler": "arvel_flow.cli.schedule:scheduler",
    "schedule": "arvel_flow.cli.schedule:schedule",
    "top": "arvel_flow.cli.top:top",
}


@click.group(
    cls=FlowGroup,
    lazy_commands=RUNTIME_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="arvel-flow", prog_name="arvel-flow")
def cli() -> None:
    """Declarative async job orchestration: YAML pipelines of jobs, chains and batches."""


def main() -> None:
    """Entry point of the ``arvel-flow`` script."""
    # For good, not just while a command runs: a traceback printed on the way out of
    # the interpreter is scrubbed too.
    scrub_standard_streams()
    cli.main(prog_name="arvel-flow")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--strict/--no-strict",
    default=True,
    show_default=True,
    help="Also import every dotted path and check job parameters, middleware and exceptions.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text: FILE:LINE:COL lines; json: one document; github: annotations.",
)
@click.option(
    "--require-env",
    is_flag=True,
    help="An unset ${NAME} without a default is an error, as for run (default: a warning).",
)
@SET_OPTION
@ENV_FILE_OPTION
@click.pass_context
def validate(
    ctx: click.Context,
    files: tuple[Path, ...],
    strict: bool,
    output_format: str,
    require_env: bool,
    assignments: tuple[str, ...],
    env_file: Path | None,
) -> None:
    """Check pipeline files, reporting every problem with its line and column.

    A directory stands for the pipelines directly in it: its *.yaml and *.yml files
    with a top-level 'pipeline:' key (others are listed as skipped).
    """
    from arvel_flow.cli.validation_render import FileResult, format_validation
    from arvel_flow.compiler import load_pipeline

    set_vars = parse_assignments(assignments)
    use_env_file(env_file)
    if strict:
        use_working_directory()
    entries, skipped = expand_directories(files)
    results: list[FileResult] = []
    for file in entries:
        if isinstance(file, FileResult):  # a directory with no pipeline
            results.append(file)
            continue
        warnings: list[ConfigIssue] | None = None if require_env else []
        try:
            load_pipeline(file, set_vars=set_vars, strict=strict, file=str(file), warnings=warnings)
            results.append(FileResult(str(file), warnings=tuple(warnings or ())))
        except ConfigError as error:
            results.append(
                FileResult(str(file), error.issues, error.omitted, tuple(warnings or ()))
            )
    click.echo(format_validation(results, output_format, skipped))
    ctx.exit(EXIT_INVALID if any(result.issues for result in results) else EXIT_OK)


def expand_directories(
    paths: tuple[Path, ...],
) -> tuple[list[Path | FileResult], list[tuple[str, str]]]:
    """The files to validate in the order given (a directory's pipelines in its place, or
    a failed result when it holds none), and the YAML files of directories skipped."""
    from arvel_flow.cli.validation_render import FileResult
    from arvel_flow.pipeline.discover import find_pipeline_files

    files: list[Path | FileResult] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        try:
            found = find_pipeline_files(path)
        except OSError as error:
            issue = ConfigIssue(f"cannot list the directory: {error.strerror}", file=str(path))
            files.append(FileResult(str(path), (issue,)))
            continue
        files += found.pipelines
        skipped += [(str(file), reason) for file, reason in found.skipped]
        if not found.pipelines:
            issue = ConfigIssue(
                "no pipeline here: no *.yaml or *.yml file with a top-level 'pipeline:' key "
                "(subdirectories are not searched)",
                file=str(path),
            )
            files.append(FileResult(str(path), (issue,)))
    return files, skipped


@cli.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema here (with --check: compare with this file).",
)
@click.option("--check", is_flag=True, help="Fail (exit 1) if the committed schema is stale.")
@click.pass_context
def schema(ctx: click.Context, output: Path | None, check: bool) -> None:
    """Print, write or check the JSON Schema of pipeline files."""
    from arvel_flow.pipeline.schema import SCHEMA_PATH, format_json_schema

    text = format_json_schema()
    if check:
        path = output or Path(SCHEMA_PATH)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            click.echo(
                f"{path} is {'stale' if current else 'missing'}; "
                f"regenerate it with: arvel-flow schema --output {path}",
                err=True,
            )
            ctx.exit(EXIT_FAILED)
        click.echo(f"{path} is up to date")
    elif output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["tree", "mermaid"]),
    default="tree",
    show_default=True,
    help="tree: for the terminal; mermaid: a flowchart for docs.",
)
@SET_OPTION
@ENV_FILE_OPTION
def graph(
    file: Path, output_format: str, assignments: tuple[str, ...], env_file: Path | None
) -> None:
    """Draw a pipeline's chains, batches, fan-outs and callbacks (imports no job)."""
    from arvel_flow.cli.render import format_mermaid, format_tree
    from arvel_flow.compiler import compile_plan, load_pipeline

    set_vars = parse_assignments(assignments)
    use_env_file(env_file)
    warnings: list[ConfigIssue] = []
    spec = load_pipeline(file, set_vars=set_vars, strict=False, file=str(file), warnings=warnings)
    echo_warnings(warnings)  # on stderr: stdout is the drawing, for tools
    plan = compile_plan(spec, import_classes=False)
    if output_format == "mermaid":
        click.echo(format_mermaid(plan), nl=False)
    else:
        print_renderable(format_tree(plan))


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@SET_OPTION
@ENV_FILE_OPTION
def plan(file: Path, assignments: tuple[str, ...], env_file: Path | None) -> None:
    """Show each job's effective settings, backoff timeline, worst case and traps."""
    from arvel_flow.cli.render import format_plan
    from arvel_flow.compiler import compile_plan, load_pipeline
    from arvel_flow.explain import compute_reports

    set_vars = parse_assignments(assignments)
    use_env_file(env_file)
    use_working_directory()
    warnings: list[ConfigIssue] = []
    spec = load_pipeline(file, set_vars=set_vars, file=str(file), warnings=warnings)
    compiled = compile_plan(spec)
    reports = compute_reports(compiled, redelivery_timeout=redelivery_timeout(spec))
    print_renderable(format_plan(spec.name, reports, file_warnings=warnings))
    if spec.schedule:
        from arvel_flow.cli.schedule_render import format_triggers

        print_renderable(format_triggers(spec.name, str(file), spec.schedule))


def echo_warnings(warnings: list[ConfigIssue]) -> None:
    """Print a file's warnings on stderr, one ``FILE:LINE:COL: warning: ...`` line each."""
    for warning in warnings:
        click.echo(warning.format(), err=True)


def redelivery_timeout(spec: PipelineSpec) -> float:
    """The broker's redelivery timeout: ``ARVEL_FLOW_*`` beats the file beats the default."""
    from arvel_flow.settings import QueueSettings

    return QueueSettings.resolve(spec.queue.model_dump(exclude_none=True)).redelivery_timeout
