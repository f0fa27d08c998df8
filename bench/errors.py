"""Exceptions shared across cowbench.

`InputError` is the one the CLI turns into a one-line message and exit code 2: raise it (or a
`ValueError`) for anything the user can fix by changing their input.
"""

from __future__ import annotations

from dataclasses import dataclass


class InputError(ValueError):
    """Bad user input: an unknown name, a knob out of range, a malformed suite file."""


class AccessError(PermissionError):
    """A method read a part of the task that its declared access levels do not include."""


@dataclass(frozen=True)
class Lost:
    """Why a call returned no result.

    Attributes
    ----------
    reason : str
        ``timeout`` (past the time limit, stopped), ``exit`` (the process exited: ``os._exit``, ``sys.exit``),
        ``signal`` (the process was killed by a signal) or ``interrupt`` (``KeyboardInterrupt`` in the call).
    message : str
        One line for the job record's ``error``.
    traceback : str
        The traceback when the call raised, else empty.
    """

    reason: str
    message: str
    traceback: str = ""
