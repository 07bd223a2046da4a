// One mask experiment drawn: the removed units, the prompt or conversation with them
// struck through, PR and KL, and the output before and after as a word diff.

import { $, clear, el, fmt } from "./dom.js";

// Text pieces with the removed ones struck through ({text, removed} from the server).
function appendPieces(container, pieces, title) {
  for (const piece of pieces) {
    if (piece.removed) container.append(el("del", { class: "removed", title }, piece.text));
    else container.append(piece.text);
  }
}

export function renderEdit(edit) {
  $("mask-result").hidden = false;
  $("mask-result").dataset.edit = edit.edit_id || "";
  const n = edit.masked_units.length;
  $("mask-meta").textContent =
    `Removed ${n} ${edit.granularity} unit${n === 1 ? "" : "s"} (masking: ${edit.operator}); ` +
    "PR and KL compare the explained text under the new prompt with the original.";
  $("metric-pr").textContent = fmt(edit.pr);
  $("metric-kl").textContent = fmt(edit.kl);
  const chips = clear($("masked-units"));
  for (const unit of edit.masked_units) chips.append(el("span", { class: "chip", title: `${unit.place || unit.role} text` }, unit.text));
  // The context the model regenerated from: system prompt and prompt, removals struck through.
  const masked = clear($("masked-prompt"));
  $("masked-title").textContent = edit.turn_pieces ? "Conversation without them" : "Prompt without them";
  if (edit.turn_pieces) {
    for (const turn of edit.turn_pieces) {
      const block = el("div", { class: "masked-turn", dataset: { turn: String(turn.turn) } }, el("span", { class: "role-label" }, `${turn.label} `));
      appendPieces(block, turn.pieces, `removed from ${turn.label}`);
      masked.append(block);
    }
  } else if (edit.prompt_pieces) {
    if (edit.system_pieces && edit.system_pieces.length) {
      const system = el("div", { class: "masked-system" }, el("span", { class: "role-label" }, "System: "));
      appendPieces(system, edit.system_pieces, "removed from the system prompt");
      masked.append(system);
    }
    const prompt = el("div", { class: "masked-user" });
    appendPieces(prompt, edit.prompt_pieces, "removed from the prompt");
    masked.append(prompt);
  } else {
    masked.append(edit.masked_prompt || ""); // results saved before pieces were recorded
    if (!edit.masked_prompt) masked.append(el("span", { class: "hint" }, "(nothing left of the prompt)"));
  }
  const before = clear($("diff-before"));
  const after = clear($("diff-after"));
  if (edit.prefix) {
    for (const box of [before, after]) {
      const prefix = el("span", { class: "prefix", title: "earlier output, context for the explained part" });
      if (edit.prefix_pieces) appendPieces(prefix, edit.prefix_pieces, "earlier output removed from the context");
      else prefix.append(edit.prefix);
      box.append(prefix);
    }
  }
  for (const piece of edit.diff) {
    if (piece.op === "equal") {
      before.append(piece.text);
      after.append(piece.text);
    } else if (piece.op === "delete") {
      before.append(el("del", {}, piece.text));
    } else {
      after.append(el("ins", {}, piece.text));
    }
  }
  if (!edit.regenerated) after.append(el("span", { class: "hint" }, "(the model wrote nothing)"));
}
