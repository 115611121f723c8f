"""The typer CLI: one module per command group; exit codes in ``errors``."""
