"""The `mochi` command line: a thin typer edge over mochi_index and mochi_model."""
