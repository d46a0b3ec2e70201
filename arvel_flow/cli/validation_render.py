"""Validation results for people, scripts and CI: the output of ``arvel-flow validate``.

Pure functions over `FileResult`: compiler-style text, one JSON document, or GitHub
Actions annotations. Kept apart from `arvel_flow.cli.render` so that ``validate``
imports neither rich nor the queue runtime to print a line per issue.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from arvel_flow.errors import ConfigIssue
from arvel_flow.pipeline.problems import MAX_PROBLEMS


@dataclass(frozen=True, slots=True)
class FileResult:
    """The outcome of validating one file: no issues means valid.

    ``omitted`` counts the issues found past those listed (at most `MAX_PROBLEMS`);
    ``warnings`` (unset variables) do not make the file invalid.
    """

    file: str
    issues: tuple[ConfigIssue, ...] = ()
    omitted: int = 0
    warnings: tuple[ConfigIssue, ...] = ()


def format_validation(
    results: Sequence[FileResult],
    output_format: str,
    skipped: Sequence[tuple[str, str]] = (),
) -> str:
    """All files' results as ``text`` (compiler style), ``json`` or ``github`` annotations.

    ``skipped`` are the files of a directory that are not pipelines, with the reason:
    a line each in text, a ``skipped`` list in JSON, nothing in annotations.
    """
    if output_format == "json":
        return format_validation_json(results, skipped)
    lines: list[str] = []
    for result in results:
        if output_format == "github":
            lines += [format_github_annotation(issue) for issue in result.issues]
            if result.omitted:
                lines.append(format_github_annotation(_omitted_issue(result)))
            lines += [format_github_annotation(warning) for warning in result.warnings]
        else:
            lines += [issue.format() for issue in result.issues]
            lines += [_omitted_issue(result).format()] if result.omitted else []
            lines += [warning.format() for warning in result.warnings]
    if output_format != "github":
        lines += [f"{result.file}: ok{_warned(result)}" for result in results if not result.issues]
        lines += [f"{file}: skipped ({reason})" for file, reason in skipped]
    invalid = sum(1 for result in results if result.issues)
    if invalid:
        count = sum(len(result.issues) + result.omitted for result in results)
        noun = "error" if count == 1 else "errors"
        lines.append(
            f"{count:,} {noun} in {invalid} of {len(results)} file{'s' * (len(results) != 1)}"
        )
    return "\n".join(lines)


def _warned(result: FileResult) -> str:
    count = len(result.warnings)
    return f" ({count} warning{'s' * (count != 1)})" if count else ""


def _omitted_issue(result: FileResult) -> ConfigIssue:
    """The line that stands for the issues of a file left out."""
    more = "problem" if result.omitted == 1 else "problems"
    return ConfigIssue(
        f"... and {result.omitted:,} more {more} (at most {MAX_PROBLEMS} are listed per file)",
        file=result.file,
    )


def format_validation_json(
    results: Sequence[FileResult], skipped: Sequence[tuple[str, str]] = ()
) -> str:
    """One JSON document: ``{"valid": ..., "files": [{"file", "valid", "issues", ...}],
    "skipped": [{"file", "reason"}]}``.

    Each file has ``issues``, ``omitted`` (its issues past the `MAX_PROBLEMS` listed)
    and ``warnings`` (same shape as issues; they do not make it invalid). ``skipped``
    lists the files of a directory that are not pipelines.
    """
    files = [
        {
            "file": result.file,
            "valid": not result.issues,
            "issues": [_issue_json(issue) for issue in result.issues],
            "omitted": result.omitted,
            "warnings": [_issue_json(warning) for warning in result.warnings],
        }
        for result in results
    ]
    document = {
        "valid": all(f["valid"] for f in files),
        "files": files,
        "skipped": [{"file": file, "reason": reason} for file, reason in skipped],
    }
    return json.dumps(document, indent=2)


def _issue_json(issue: ConfigIssue) -> dict[str, object]:
    return {
        "path": issue.path,
        "line": issue.line,
        "column": issue.column,
        "message": issue.message,
    }


def format_github_annotation(issue: ConfigIssue) -> str:
    """A GitHub Actions ``::error`` (or ``::warning``) workflow command for one issue."""
    properties = [f"file={_escape_property(issue.file or '')}"]
    if issue.line is not None:
        properties += [f"line={issue.line}", f"col={issue.column or 1}"]
    message = f"{issue.path}: {issue.message}" if issue.path else issue.message
    command = "warning" if issue.severity == "warning" else "error"
    return f"::{command} {','.join(properties)},title=arvel-flow::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
