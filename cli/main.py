"""The ``simtools`` command group; each subcommand lives in its own module."""

from __future__ import annotations

import click

from simtools._version import __version__

from .common import LazyGroup

# Imported lazily so that `simtools classify` starts without scikit-learn, scipy or torch.
COMMANDS = {
    "classify": "simtools_cli.classify:classify_command",
    "compare": "simtools_cli.compare:compare_command",
    "search": "simtools_cli.search:search_command",
    "index": "simtools_cli.index:index_group",
    "distill": "simtools_cli.distill:distill_command",
    "evaluate": "simtools_cli.distill:evaluate_command",
    "diagnose": "simtools_cli.diagnose:diagnose_group",
    "cache": "simtools_cli.cache:cache_group",
    "benchmark": "simtools_cli.benchmark:benchmark_group",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="simtools")
def main() -> None:
    """simtools: find similar texts and classify them, fast and offline.

    \b
    Examples:
      simtools classify "Shares fell after the bank cut its profit forecast"
      simtools compare "a goal in the last minute" "a long text about football ..." "tennis"
      simtools index files notes/ --out my-index
      simtools search "machine learning" --index my-index
      simtools benchmark metrics --data bbc-news --encoder count
      simtools index wikipedia "Tennis" "Association football" --out wiki-index
      simtools -V
    """
