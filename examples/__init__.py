"""Example jobs and pipelines; run ``arvel-flow`` from the repository root to use them."""
