"""Library errors name the parameter at fault (`param`), never a command-line flag."""

from __future__ import annotations

import pytest

from promptxray import attribute, build_problem
from promptxray.errors import InvalidParameterError
from promptxray.methods import get_method


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, "The cat sat on the mat", target=" It slept.")


def _raised(call) -> InvalidParameterError:
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert "--" not in str(info.value)  # a notebook user has no flags
    return info.value


@pytest.mark.parametrize(
    ("method", "params", "param"),
    [
        ("xprompt", {"k": 50}, "k"),
        ("xprompt_paper", {"k": 50}, "k"),
        ("xprompt", {"k": 2, "strategy": "exhaustive", "budget": 3}, "budget"),
        ("xprompt", {"k": 0}, "k"),
        ("xprompt", {"masking": "erase"}, "masking"),
        ("integrated_gradients", {"steps": 0}, "steps"),
        ("leave_one_out", {"coarse": "chapter"}, "coarse"),
        ("grad_norm", {"k": 3}, "k"),  # a parameter the method does not take
    ],
)
def test_the_error_names_the_parameter(tiny_lm, problem, method, params, param):
    error = _raised(lambda: attribute(tiny_lm, problem, method, "word", **params))
    assert error.param == param
    assert param in str(error)


def test_exhaustive_above_its_limit_points_at_the_strategy(tiny_lm):
    long = build_problem(tiny_lm, " ".join(f"w{i}" for i in range(40)), target=" ok")
    error = _raised(lambda: attribute(tiny_lm, long, "xprompt", "word", k=3, strategy="exhaustive"))
    assert error.param == "strategy"


def test_several_unknown_parameters_name_no_single_one():
    error = _raised(lambda: get_method("grad_norm").resolve({"k": 3, "seed": 1}))
    assert error.param is None
    assert "'k'" in str(error) and "'seed'" in str(error)
