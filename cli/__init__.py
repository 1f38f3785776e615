"""The ``simtools`` command line (installed as the ``simtools_cli`` package): click commands only.

Each command parses its options, calls one library function and formats the result; results go
to stdout, progress and errors to stderr.
"""
