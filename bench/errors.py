"""Exceptions shared across cowbench.

`InputError` is the one the CLI turns into a one-line message and exit code 2: raise it (or a
`ValueError`) for anything the user can fix by changing their input.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: an unknown name, a knob out of range, a malformed suite file."""


class AccessError(PermissionError):
    """A method read a part of the task that its declared access levels do not include."""
