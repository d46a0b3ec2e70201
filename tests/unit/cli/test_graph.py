"""``arvel-flow graph``: a tree for terminals, Mermaid for docs; no job is imported."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from arvel_flow.cli.app import cli
from arvel_flow.cli.render import format_mermaid
from arvel_flow.compiler import compile_plan, load_pipeline
from tests.fixtures.spec_paths import ENV, EXAMPLES, VALID


def test_tree_shows_groups_fan_outs_and_callbacks() -> None:
    result = CliRunner().invoke(cli, ["graph", str(EXAMPLES / "weekly_digest.yaml")])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "weekly-digest",
        "└── chain root",
        "    ├── refresh examples.jobs:ImportRows",
        "    ├── batch digests (name 'weekly digests', concurrency 4, allow_failures 1)",
        "    │   ├── digests.0 examples.jobs:SendWeeklyDigest x 6 (matrix of user_id, locale)",
        "    │   ├── bounced examples.jobs:SendWeeklyDigest x 1 (each)",
        "    │   ├── then: digests.then examples.jobs:NotifyDone",
        "    │   ├── catch: digests.catch examples.jobs:Alert",
        "    │   └── finally: digests.finally examples.jobs:Cleanup",
        "    ├── compact examples.jobs:compact_logs",
        "    └── finally: report examples.jobs:Report",
    ]


def test_mermaid_is_a_flowchart_with_subgraphs_and_labelled_callbacks() -> None:
    spec = load_pipeline(VALID / "spec_example.yaml", env=ENV)
    text = format_mermaid(compile_plan(spec))
    assert text.splitlines()[0] == "flowchart TD"
    assert '  subgraph n0["chain root"]' in text
    assert '      n3[["digests.0<br/>tests.fixtures.jobs_for_spec:SendDigest x 2"]]' in text
    assert "    n2 -. then .-> n8" in text
    assert "    n1 --> n2" in text
    assert text.count("subgraph") == text.count("\n  end") + text.count("\n    end") + text.count(
        "\n      end"
    )


def test_mermaid_command_prints_only_the_chart() -> None:
    result = CliRunner().invoke(cli, ["graph", "--format", "mermaid", str(VALID / "minimal.yaml")])
    assert (
        result.stdout == 'flowchart TD\n  subgraph n0["chain root"]\n'
        '    n1["root.0<br/>tests.fixtures.jobs_for_spec:Notify"]\n  end\n'
    )


def test_graph_does_not_import_jobs(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: x\npipeline:\n  job: not_installed.jobs:Job\n")
    result = CliRunner().invoke(cli, ["graph", str(path)])
    assert result.exit_code == 0
    assert "root.0 not_installed.jobs:Job" in result.stdout


def test_an_invalid_file_exits_2_with_the_issues_only() -> None:
    result = CliRunner().invoke(
        cli, ["graph", str(VALID.parent / "invalid" / "schema_bad_version.yaml")]
    )
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "schema_bad_version.yaml:1:10: error: version: Input should be 1\n"
    )
    assert "Traceback" not in result.output
