from promptxray import explain


def test_tiny_explain_runs(tiny_lm):
    a = explain("Say hello to the world.", model=tiny_lm, max_new_tokens=5, granularity="word")
    assert len(a.units) == 5
    assert abs(sum(a.scores) - sum(a.base_scores)) < 1e-6
