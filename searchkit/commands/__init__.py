"""Subcommands of the ``searchkit`` command line, one module each."""
