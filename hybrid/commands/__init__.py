"""Subcommands of the ``hybrid`` command line (each module: ``add_parser(subparsers)`` and ``run(args)``)."""
