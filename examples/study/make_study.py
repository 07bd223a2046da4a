"""Write examples/study/study.jsonl: 4 tasks x 3 prompt structures x 8 items = 96 rows.

Written anew for promptxray (the product must not need ../shared). Every item
appears under three structures, tied by its `group`:

- instruction-first: the instruction and its constraint, then the input;
- instruction-last: the input, then the instruction and its constraint;
- constraint-twice: instruction-first with the constraint stated again at the end.

Parts: `instruction` (what to do), `constraint` (the limit the checks test) and
`input`. The two prompts of the heatmap project are the first `qa` and `story`
items under instruction-first, word for word.

Run: python examples/study/make_study.py
"""

from __future__ import annotations

import json
from pathlib import Path

QA = [
    "What color is the sky?",
    "What is the capital of France?",
    "Which animal barks?",
    "What do bees make?",
    "What is frozen water called?",
    "Which planet do we live on?",
    "What season comes after winter?",
    "What is the opposite of hot?",
]
STORY = ["love", "the sea", "a robot", "winter", "friendship", "a lost key", "the moon", "coffee"]
REVIEWS = [
    "The food was cold and the waiter ignored us all evening.",
    "Absolutely loved the show, the actors were brilliant.",
    "The battery died after two days and support never answered.",
    "A cozy hotel with friendly staff and a great breakfast.",
    "The plot was dull and I fell asleep halfway through.",
    "Fast delivery, and the shoes fit perfectly.",
    "Overpriced, noisy, and the room smelled of smoke.",
    "My kids adored this game and we play it every weekend.",
]
PASSAGES = [
    "The city council voted on Tuesday to turn the old rail yard into a public park "
    "with playgrounds, a pond and bike paths, opening in two years.",
    "Researchers found that people who walk for thirty minutes a day sleep better "
    "and report less stress than those who rarely exercise.",
    "A storm knocked out power to thousands of homes overnight; crews expect to "
    "restore electricity to most areas by the weekend.",
    "The library will stay open until midnight during exam weeks, and students can "
    "borrow laptops at the front desk for free.",
    "Local farmers say the dry summer cut their apple harvest in half, so prices at "
    "the market are likely to rise this autumn.",
    "The museum's new exhibit shows tools and jewelry from a village that stood on "
    "the river bank three thousand years ago.",
    "After a year of repairs the bridge reopened to cars on Monday, cutting the drive "
    "between the two towns from forty minutes to ten.",
    "A small bakery won the national bread prize with a sourdough that rises for two "
    "days before it is baked in a wood oven.",
]

TASKS = {
    "qa": dict(
        items=QA,
        instruction="Answer",
        constraint="in one word:",
        again="Remember: answer in one word.",
        checks={"one_word": True},
    ),
    "story": dict(
        items=STORY,
        instruction="Write a story about",
        constraint="in exactly six words.",
        again="Use exactly six words.",
        checks={"exact_words": 6},
    ),
    "classification": dict(
        items=REVIEWS,
        instruction="Is the sentiment of this review positive or negative?",
        constraint="Answer with one word.",
        again="Answer with one word: positive or negative.",
        checks={"regex": r"(?i)^\W*(positive|negative)\W*$"},
    ),
    "summarisation": dict(
        items=PASSAGES,
        instruction="Summarise this text",
        constraint="in at most twelve words.",
        again="Keep it to twelve words or fewer.",
        checks={"max_words": 12},
    ),
}


def row(task: str, index: int, structure: str, spec: dict) -> dict:
    item = spec["items"][index]
    pieces: list[tuple[str, str | None]]  # (text, part)
    head = [(spec["instruction"], "instruction"), (" ", None), (spec["constraint"], "constraint")]
    if task == "story":  # "Write a six-word story about love", the seed's own prompt
        head = [
            ("Write a", "instruction"),
            (" ", None),
            ("six-word", "constraint"),
            (" ", None),
            ("story about", "instruction"),
        ]
        body = [(" ", None), (item, "input")]
        if structure == "instruction-first":
            pieces = head + body
        elif structure == "instruction-last":
            pieces = (
                [("Topic: ", None), (item, "input"), (". ", None)]
                + head[:-1]
                + [("story about it", "instruction")]
            )
        else:
            pieces = head + body + [(". ", None), (spec["again"], "constraint")]
    elif task == "qa":  # "Answer in one word: What color is the sky?"
        if structure == "instruction-first":
            pieces = head + [(" ", None), (item, "input")]
        elif structure == "instruction-last":
            pieces = [(item, "input"), (" ", None)] + head
        else:
            pieces = head + [
                (" ", None),
                (item, "input"),
                (" ", None),
                (spec["again"], "constraint"),
            ]
    else:
        if structure == "instruction-first":
            pieces = head + [("\n\n", None), (item, "input")]
        elif structure == "instruction-last":
            pieces = [(item, "input"), ("\n\n", None)] + head
        else:
            pieces = head + [
                ("\n\n", None),
                (item, "input"),
                ("\n\n", None),
                (spec["again"], "constraint"),
            ]
    prompt, parts, at = "", {}, 0
    for text, part in pieces:
        if part:
            parts.setdefault(part, []).append([at, at + len(text)])
        prompt += text
        at += len(text)
    return {
        "id": f"{task}-{index + 1}-{structure}",
        "group": f"{task}-{index + 1}",
        "task": task,
        "structure": structure,
        "prompt": prompt,
        "parts": parts,
        "checks": spec["checks"],
    }


def main() -> None:
    out = Path(__file__).with_name("study.jsonl")
    rows = [
        row(task, i, structure, spec)
        for task, spec in TASKS.items()
        for i in range(len(spec["items"]))
        for structure in ("instruction-first", "instruction-last", "constraint-twice")
    ]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{out}: {len(rows)} rows")


if __name__ == "__main__":
    main()
