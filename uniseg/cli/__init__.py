"""The ``uniseg`` command line: thin typer commands that parse, call the library, render with rich."""
