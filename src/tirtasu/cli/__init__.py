"""The ``tirtasu`` command.

Each domain has its own sub-command module (``tirtasu network``, ``tirtasu telemetry``,
``tirtasu nrw`` …); this module only assembles them.
"""

from __future__ import annotations

import typer

from tirtasu import __version__
from tirtasu.cli import demo, leaks, network, nrw, serve, simulate, telemetry, token
from tirtasu.cli import ingest

app = typer.Typer(
    name="tirtasu",
    help=(
        "tirtasu: run a water network from its telemetry. EPANET models and DMAs, SCADA and AMR "
        "imports, simulated field data with known leaks, non-revenue water. Internal units: "
        "pressure and head [m], flow [m³/h], customer demand [L/h], times in UTC."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(network.app, name="network")
app.add_typer(telemetry.app, name="telemetry")
app.add_typer(nrw.app, name="nrw")
app.add_typer(leaks.app, name="leaks")
app.add_typer(ingest.app, name="ingest")
app.command("simulate")(simulate.simulate)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.add_typer(token.app, name="token")


def _version(value: bool):
    if value:
        typer.echo(f"tirtasu {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    pass


def main() -> None:  # entry point of the console script
    app()
