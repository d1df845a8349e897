"""`tirtasu network` commands."""

import typer

app = typer.Typer(help="EPANET network models and DMAs.", no_args_is_help=True)
