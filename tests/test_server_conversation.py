"""The prompt debugger's API with conversations, pasted responses and contrasts (issue 9).

Runs on the tiny random model of `server_helpers`: these tests are about the server
handing conversations, supplied responses and contrasts to the library and back,
not about what a real model attributes.
"""

from __future__ import annotations

import pytest
from samples import MESSAGES, RESPONSE
from server_helpers import detail, run_job

from promptxray import attribute, build_problem
from promptxray.masking import MaskedContext, mask_context

PROMPT = "Write one line about the sky."


def one_line(response) -> str:
    """The error body's detail, checked to be one line a user can read."""
    text = detail(response)
    assert text and "\n" not in text, text
    return text


def test_a_run_from_messages_is_explained_masked_and_kept_by_turn(client, wordy_lm):
    state = run_job(client, "/api/generate", {"messages": MESSAGES, "max_new_tokens": 8})
    run_id, output = state["result"]["run_id"], state["result"]["output"]
    assert state["result"]["output_source"] == "generated"
    encoding = wordy_lm.encode_messages(build_problem_messages())
    expected_ids = wordy_lm.generate(encoding.ids, 8)
    assert output == wordy_lm.decode(expected_ids)

    # the history keeps the conversation: the last user message reads as the prompt
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["messages"] == MESSAGES and run["output_source"] == "generated"
    assert run["prompt"] == MESSAGES[-1]["content"]
    assert run["system_prompt"] == MESSAGES[0]["content"]

    # explain: units carry their turn and role, places and sections name the turns
    body = {"run_id": run_id, "method": "leave_one_out", "granularity": "word"}
    view = run_job(client, "/api/explain", body)["result"]
    problem = build_problem(wordy_lm, messages=MESSAGES, output_ids=expected_ids)
    direct = attribute(wordy_lm, problem, "leave_one_out", "word")
    assert [(u["text"], u["turn"]) for u in view["units"]] == [
        (u.text, u.turn) for u in direct.units
    ]
    assert [u["score"] for u in view["units"]] == pytest.approx(direct.scores, rel=1e-4)
    assert view["messages"] == MESSAGES
    assert {(u["turn"], u["role"]) for u in view["units"]} == {
        (0, "system"),
        (1, "user"),
        (2, "assistant"),
        (3, "user"),
    }
    assert [s["title"] for s in view["sections"]][:4] == [
        "[turn 0 · system]",
        "[turn 1 · user]",
        "[turn 2 · assistant]",
        "[turn 3 · user]",
    ]
    assert view["sections"][2]["text"] == MESSAGES[2]["content"]
    assert view["sections"][-1]["role"] == "output" and view["sections"][-1]["text"] == output
    green = next(u for u in view["units"] if u["text"].strip() == "green,")
    assert green["place"] == "[turn 2 · assistant]" and green["line"] == 1
    assert green["position"].endswith("· [turn 2 · assistant] line 1")
    # every unit's span indexes its own turn's text
    for unit in view["units"]:
        text = view["sections"][unit["turn"]]["text"]
        assert text[unit["span"][0] : unit["span"][1]] == unit["text"]

    # mask the earlier assistant turn's words: that turn loses them, the others stay
    picked = [u["index"] for u in view["units"] if u["turn"] == 2]
    mask = {"explanation_id": view["explanation_id"], "units": picked}
    edit = run_job(client, "/api/mask", mask)["result"]
    assert [t["label"] for t in edit["turn_pieces"]] == [s["title"] for s in view["sections"][:4]]
    removed = {
        t["turn"]: [p["text"] for p in t["pieces"] if p["removed"]] for t in edit["turn_pieces"]
    }
    assert removed[2] == [view["units"][i]["text"] for i in picked]
    assert removed[0] == removed[1] == removed[3] == []
    assert [m["content"] for m in edit["masked_messages"]] == [
        MESSAGES[0]["content"],
        MESSAGES[1]["content"],
        "",
        MESSAGES[3]["content"],
    ]
    assert {u["place"] for u in edit["masked_units"]} == {"[turn 2 · assistant]"}
    # the regeneration read the conversation without that turn's words
    context = mask_context(wordy_lm, problem, direct.units, picked, "delete")
    assert isinstance(context, MaskedContext)
    room = max(1, 8 - problem.target_token_range[0])
    assert edit["regenerated"] == wordy_lm.decode(wordy_lm.generate_from(context, room))

    # regroup to one unit per turn without the model: leave_one_out refuses (409)
    regroup = client.get(f"/api/explanations/{view['explanation_id']}?granularity=turn")
    assert regroup.status_code == 409
    turn_view = run_job(client, "/api/explain", {**body, "granularity": "turn"})["result"]
    assert [u["text"] for u in turn_view["units"]][:4] == [m["content"] for m in MESSAGES]


def build_problem_messages():
    from promptxray.conversation import check_messages

    return check_messages(MESSAGES).context


def test_a_pasted_response_is_the_output_with_no_generation(client, wordy_lm, monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("a supplied response must not be generated")

    monkeypatch.setattr(wordy_lm, "generate", no_generation)
    body = {"prompt": PROMPT, "response": RESPONSE, "max_new_tokens": 4}
    state = run_job(client, "/api/generate", body)
    result = state["result"]
    assert result["output"] == RESPONSE and result["output_source"] == "given"
    run = client.get(f"/api/runs/{result['run_id']}").json()
    assert run["output"] == RESPONSE and run["output_source"] == "given"
    assert run["messages"] is None and run["prompt"] == PROMPT
    # mask-and-regenerate may write as long as the pasted response
    assert run["max_new_tokens"] == len(wordy_lm.tokenize_text(RESPONSE)[0])

    span = [RESPONSE.index("grey"), RESPONSE.index("grey") + len("grey")]
    explain = {"run_id": result["run_id"], "span": span, "method": "grad_x_input"}
    view = run_job(client, "/api/explain", explain)["result"]
    assert view["output_source"] == "given"
    assert view["metadata"]["output_source"] == "given"
    assert (
        view["output"] == RESPONSE and view["output"][slice(*view["target_span"])].strip() == "grey"
    )
    direct = attribute(
        wordy_lm, build_problem(wordy_lm, PROMPT, target=RESPONSE, span=tuple(span)), "grad_x_input"
    )
    assert [u["score"] for u in view["units"]] == pytest.approx(direct.scores, rel=1e-4)

    # a conversation that ends with an assistant message is a supplied response too
    messages = [*MESSAGES, {"role": "assistant", "content": RESPONSE}]
    ended = run_job(client, "/api/generate", {"messages": messages})["result"]
    assert ended["output"] == RESPONSE and ended["output_source"] == "given"
    assert client.get(f"/api/runs/{ended['run_id']}").json()["messages"] == MESSAGES


def test_explain_with_a_contrast_rows_are_target_then_contrast(client, wordy_lm):
    body = {"prompt": PROMPT, "response": " Blue", "max_new_tokens": 4}
    run_id = run_job(client, "/api/generate", body)["result"]["run_id"]
    explain = {
        "run_id": run_id,
        "method": "grad_x_input",
        "contrast": " Red sky",
        "matrix": True,
    }
    estimate = client.post("/api/estimate", json=explain)
    plain = client.post("/api/estimate", json={**explain, "contrast": None})
    assert estimate.status_code == plain.status_code == 200, estimate.text
    # the contrast's own pass is counted: A and B are both teacher-forced
    assert estimate.json()["backward_calls"] > plain.json()["backward_calls"]

    view = run_job(client, "/api/explain", explain)["result"]
    assert view["settings"]["contrast"] == " Red sky"
    assert view["contrast"] and "rather than ' Red sky'" in view["contrast"]
    problem = build_problem(wordy_lm, PROMPT, target=" Blue", contrast=" Red sky")
    pieces = wordy_lm.token_pieces(problem.target_ids)
    contrast_pieces = wordy_lm.token_pieces(problem.contrast_ids)
    labels = view["matrix_rows"]["labels"]
    assert labels == pieces + [f"vs{p}" for p in contrast_pieces]
    assert len(view["matrix"]) == len(pieces) + len(contrast_pieces)
    direct = attribute(wordy_lm, problem, "grad_x_input")
    assert [u["score"] for u in view["units"]] == pytest.approx(direct.scores, rel=1e-4)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"messages": "hello"}, "Messages must be a list"),
        ({"messages": {"role": "user", "content": "hi"}}, "Messages must be a list"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "unknown role 'robot'"),
        ({"messages": [{"role": "user"}]}, "Turn 0 has no content"),
        ({"messages": []}, "The conversation is empty"),
        ({"messages": [{"role": "user", "content": "  "}]}, "Turn 0 (user) is empty"),
        ({"prompt": "hi", "messages": MESSAGES}, "either a prompt or messages"),
        ({}, "Give a prompt or messages"),
        ({"prompt": "  "}, "The prompt is empty"),
        (
            {"messages": [*MESSAGES, {"role": "assistant", "content": "ok"}], "response": "x"},
            "do not give a target as well",
        ),
        ({"prompt": "hi", "response": ""}, "target text is empty"),
    ],
)
def test_bad_prompts_and_responses_get_400_with_one_line(client, body, words):
    response = client.post("/api/generate", json=body)
    assert response.status_code == 400, response.text
    assert words in one_line(response)
    assert client.get("/api/runs").json() == []  # nothing was run or saved


def test_an_empty_contrast_gets_400_with_one_line(client):
    run_id = run_job(client, "/api/generate", {"prompt": PROMPT, "response": RESPONSE})["result"][
        "run_id"
    ]
    for path in ("/api/explain", "/api/estimate"):
        response = client.post(path, json={"run_id": run_id, "contrast": ""})
        assert response.status_code == 400, response.text
        assert "contrast text is empty" in one_line(response)


def test_a_history_from_before_conversations_opens_and_reads_as_single_turn(tmp_path):
    import sqlite3

    from promptxray.server.store import DB_NAME, HistoryStore

    old = sqlite3.connect(tmp_path / DB_NAME)
    old.executescript(
        """
        CREATE TABLE runs (id TEXT PRIMARY KEY, created REAL NOT NULL, model TEXT NOT NULL,
            prompt TEXT NOT NULL, system_prompt TEXT, max_new_tokens INTEGER NOT NULL,
            output TEXT NOT NULL, output_ids TEXT NOT NULL);
        INSERT INTO runs VALUES ('abc', 1.0, 'm', 'hi', NULL, 4, ' there', '[1, 2]');
        """
    )
    old.commit()
    old.close()
    store = HistoryStore(tmp_path)
    run = store.get_run("abc")
    assert run["messages"] is None and run["output_source"] == "generated"
    new = store.add_run(
        model="m",
        prompt="q",
        system_prompt=None,
        max_new_tokens=4,
        output="a",
        output_ids=[3],
        messages=MESSAGES,
        output_source="given",
    )
    assert store.get_run(new)["messages"] == MESSAGES
    assert store.get_run(new)["output_source"] == "given"
