"""The version of cowbench (the release sets it here; `cowbench.__version__` re-exports it)."""

__version__ = "0.2.1"
