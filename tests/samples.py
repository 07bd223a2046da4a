"""Texts that several test modules use (not a test module): one home for each.

A test that needs "a short prompt", "a pasted response", "a conversation" or "a story
of four sentences" reads the same one, so a change to it is made once.
"""

from __future__ import annotations

PROMPT = "The sea is calm tonight. Write one line about the sky.\nKeep it short."
RESPONSE = "The sky is grey and low today."
# A conversation that ends with the user's turn: the model (or a pasted response) answers it.
MESSAGES = [
    {"role": "system", "content": "You answer in one short line."},
    {"role": "user", "content": "Name a colour of the sea."},
    {"role": "assistant", "content": "Deep green, mostly."},
    {"role": "user", "content": "And of the sky at night?"},
]
# Four sentences in two paragraphs: coarse units for hierarchical leave-one-out and xprompt.
STORY = (
    "The storm came at night. The keeper lit the lamp and waited.\n\n"
    "A ship passed the rocks safely. Nobody thanked him, but he smiled."
)
STORY_TARGET = " He was proud."
