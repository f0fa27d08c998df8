"""Baseline methods: one module per method, each registering itself with ``@register_method``.

The registry finds a method by module name on first use, so adding a method is adding one file here
(or an entry point ``cowbench.methods`` in your own package).
"""

from cowbench.access import Task
from cowbench.method import Choice, LogUniform, Method, MethodOutput, Uniform, register_method

__all__ = ["Choice", "LogUniform", "Method", "MethodOutput", "Task", "Uniform", "register_method"]
