"""Subcommands of the ``pairproxy`` command line."""
