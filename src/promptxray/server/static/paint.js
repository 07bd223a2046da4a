// Texts drawn with their units shaded in the colours the server gave them: the system
// prompt, the prompt or every turn of a conversation, and the output up to its explained
// part. Shared by the result card and the comparison.

import { clear, el, fmtScore } from "./dom.js";
import { state } from "./state.js";

function unitTitle(unit, rank, view) {
  const rankText = rank === undefined ? "" : ` · rank ${rank + 1}`;
  const chosen = view.selected && view.selected.includes(unit.index) ? " · selected" : "";
  const shared = unit.inherited ? " · ≈ a shared coarse score, not refined" : "";
  return `score ${fmtScore(unit.score, view.signed, 4)}${rankText} · ${unit.position}${chosen}${shared}`;
}

// Draw `text` with the units of `role` shaded in the colours the server gave them;
// characters outside units stay plain. `onpick` (optional) runs when a unit is clicked.
// In a conversation roles repeat, so a turn's text takes only the units of its `turn`.
function paintUnits(container, text, role, view, { ranks = {}, limit = text.length, onpick = null, turn } = {}) {
  const units = view.units
    .filter((u) => u.role === role && u.span && u.span[0] < limit && (turn === undefined || u.turn === turn))
    .sort((a, b) => a.span[0] - b.span[0]);
  let cursor = 0;
  for (const unit of units) {
    const [start, end] = unit.span;
    if (start > cursor) container.append(text.slice(cursor, start));
    const node = el(
      "span",
      {
        class: unit.tinted ? "unit" : "unit plain",
        title: unitTitle(unit, ranks[unit.index], view),
        dataset: { index: String(unit.index), score: String(unit.score) },
        style: { backgroundColor: unit.color, color: unit.text_color },
        onclick: onpick ? () => onpick(unit.index) : undefined,
      },
      text.slice(start, end),
    );
    if (view.selected && view.selected.includes(unit.index)) node.classList.add("chosen");
    // Hierarchical leave-one-out: a score shared from the unit's sentence, not its own.
    if (unit.inherited) node.classList.add("inherited");
    if (onpick && state.picked.has(unit.index)) node.classList.add("picked");
    container.append(node);
    cursor = Math.max(cursor, end);
  }
  if (cursor < limit) container.append(text.slice(cursor, limit));
}

// System prompt, prompt and output of one view into three boxes (the explained part outlined).
// A conversation draws every turn under the server's label ("[turn 2 · assistant]") into
// `boxes.turns` (or the prompt box), each turn with the units of its own turn.
export function paintView(view, boxes, options = {}) {
  const ranks = {};
  view.top.forEach((index, rank) => {
    ranks[index] = rank;
  });
  const opts = { ...options, ranks };
  clear(boxes.system);
  clear(boxes.prompt);
  if (view.messages) {
    paintTurns(boxes.turns || boxes.prompt, view, opts);
  } else {
    if (view.system_prompt) paintUnits(boxes.system, view.system_prompt, "system", view, opts);
    paintUnits(boxes.prompt, view.prompt, "user", view, opts);
  }
  const out = clear(boxes.output);
  const [t0, t1] = view.target_span;
  paintUnits(out, view.output, "output", view, { ...opts, limit: t0 });
  out.append(el("mark", { class: "target" }, view.output.slice(t0, t1)));
  if (t1 < view.output.length) out.append(el("span", { class: "after-target" }, view.output.slice(t1)));
}

// Every turn before the explained one, in reading order, each under its label.
function paintTurns(container, view, opts) {
  clear(container);
  for (const section of view.sections || []) {
    if (section.role === "output") continue;
    const box = el("div", {
      class: "text-box salience turn-box",
      dataset: { turn: String(section.turn), role: section.role },
    });
    paintUnits(box, section.text, section.role, view, { ...opts, turn: section.turn });
    container.append(el("div", { class: "turn-block" }, el("h3", { class: "turn-label" }, section.title), box));
  }
}
