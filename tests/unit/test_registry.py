import subprocess
import sys

import pytest

import cowbench as cb
from cowbench.errors import InputError
from cowbench.registry import Registry


def test_decorator_registers_and_get_returns():
    reg = Registry("thing")

    @reg.decorator("a")
    class A:
        pass

    assert reg.get("a") is A
    assert reg.names() == ["a"]


def test_duplicate_name_is_an_error():
    reg = Registry("thing")
    reg.register("a", object(), origin="one")
    with pytest.raises(ValueError, match="duplicate thing name 'a'"):
        reg.register("a", object(), origin="two")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(InputError, match="did you mean 'logistic'"):
        cb.get_method("logistc")
    with pytest.raises(ValueError, match=r"unknown scenario 'caw'.*did you mean 'cow'"):
        cb.make_scenario("caw")


def test_registries_list_the_builtin_entries():
    assert "cow" in cb.list_scenarios()
    assert {"logistic", "env_instability", "input_gradient", "erase_spurious", "group_reweight"} <= set(
        cb.list_methods())


def test_importing_cowbench_and_the_cli_does_not_import_torch():
    code = ("import sys, cowbench, cowbench.cli, cowbench as cb; cb.make_scenario('cow'); cb.list_scenarios(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
