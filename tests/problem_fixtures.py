"""Fixtures on the tiny model that several test modules share (registered in conftest.py).

`story_problem` is the four-sentence story with its target: the coarse pass, hierarchical
leave-one-out and xprompt's pruning are all checked on this one problem.
"""

from __future__ import annotations

import pytest
from samples import STORY, STORY_TARGET

from promptxray import Problem, build_problem


@pytest.fixture(scope="module")
def story_problem(tiny_lm) -> Problem:
    return build_problem(tiny_lm, STORY, target=STORY_TARGET)
