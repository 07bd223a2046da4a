"""`python -m promptxray` runs the same command line as `promptxray`."""

from promptxray.cli import app

app(prog_name="promptxray")
