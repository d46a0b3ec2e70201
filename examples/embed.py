"""Run pipeline files from Python, as an application (a web endpoint, a notebook) does.

    python -m examples.embed        (from the repository root, as `arvel-flow run` is)

The README's "Python API" section shows this file; a test runs it.
"""

import asyncio

import arvel_flow
from arvel_flow import QueueSettings


async def main() -> None:
    # The fields you set beat ARVEL_FLOW_* variables, which beat the file's queue: section.
    settings = QueueSettings(store="memory")

    # One call: load, validate, compile, run to the end.
    result = await arvel_flow.run("examples/quickstart.yaml", settings=settings)
    print(f"quickstart {result.status}: {result.progress[0]}/{result.progress[1]} jobs")

    # Or a handle: the run's id at once, its events as they happen, its result at the end.
    async with await arvel_flow.start(
        "examples/import_fanout.yaml", vars={"region": "us"}, settings=settings
    ) as run:
        print(f"started run {run.id}")
        async for event in run.events():
            if event.event == "job.retrying":
                print(f"  {event.step} retries: {event.data['error']}")
        result = await run.wait()
    print(f"import-fanout {result.status}: {len(result.failed)} chunk(s) failed")


if __name__ == "__main__":
    asyncio.run(main())
