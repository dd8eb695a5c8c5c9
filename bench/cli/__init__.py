"""The command line: ``bench`` and its subcommands, argument parsing and one-line error reporting.

Owns: parsing argv into requests, printing tables and errors, exit codes. Holds no logic of its own.
May import: every other layer (it is the top); nothing imports it but ``bench.__main__``.
"""
