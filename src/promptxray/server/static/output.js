// The output box and the target to explain: drag-select, click a word, shift-click to
// extend; and the note that a pasted response was supplied, not generated.

import { $, clear, el, showError } from "./dom.js";
import { formChanged, refreshForm } from "./freshness.js";
import { canRetarget, retarget } from "./retarget.js";
import { state } from "./state.js";

const WORD = /\S+/g;

// [start, end) of every word of the output: what a click on the output targets.
function wordBounds(text) {
  return [...text.matchAll(WORD)].map((m) => [m.index, m.index + m[0].length]);
}

// Words of text[from, to) as clickable spans (a word cut by the target's edge is split,
// both parts still naming the whole word); the text nodes still spell the output exactly.
function appendWords(container, text, from, to, bounds) {
  let cursor = from;
  for (const [ws, we] of bounds) {
    if (we <= from || ws >= to) continue;
    const a = Math.max(ws, from);
    const b = Math.min(we, to);
    if (a > cursor) container.append(text.slice(cursor, a));
    container.append(
      el("span", { class: "out-word", dataset: { start: String(ws), end: String(we) } }, text.slice(a, b)),
    );
    cursor = b;
  }
  if (cursor < to) container.append(text.slice(cursor, to));
}

export function renderOutput(text, span, streaming = false) {
  const box = clear($("output"));
  if (streaming) {
    box.append(text, el("span", { class: "caret", "aria-hidden": "true" }));
    return;
  }
  const bounds = wordBounds(text);
  if (span) {
    appendWords(box, text, 0, span[0], bounds);
    const mark = el("mark", { class: "selected-span" });
    appendWords(mark, text, span[0], span[1], bounds);
    box.append(mark);
    appendWords(box, text, span[1], text.length, bounds);
  } else {
    appendWords(box, text, 0, text.length, bounds);
  }
  if (!text) box.append(el("span", { class: "hint" }, "(the model wrote nothing)"));
}

export function setSpan(span) {
  state.span = span;
  const info = $("selection-info");
  const output = state.run ? state.run.output : "";
  if (span) {
    info.replaceChildren(
      `Explaining characters ${span[0]}–${span[1]}: `,
      el("q", {}, output.slice(span[0], span[1])),
    );
  } else {
    info.textContent = "Explaining: the whole output";
  }
  $("whole-output").hidden = !span;
  renderOutput(output, span);
  refreshForm();
}

// The user picked another target: the last action's messages no longer apply. A result
// that kept its ablations answers the new span at once.
export function chooseSpan(span) {
  setSpan(span);
  formChanged();
  if (canRetarget(span)) retarget(span);
}

// The selection inside #output as {raw: [start, end), span: trimmed or null}; null when
// nothing (or something outside the output) is selected.
function selectionInOutput() {
  const sel = window.getSelection();
  const box = $("output");
  if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
  const range = sel.getRangeAt(0);
  if (!box.contains(range.startContainer) || !box.contains(range.endContainer)) return null;
  const before = document.createRange();
  before.selectNodeContents(box);
  before.setEnd(range.startContainer, range.startOffset);
  let start = before.toString().length;
  let end = start + range.toString().length;
  const text = state.run.output;
  while (start < end && /\s/.test(text[start])) start += 1;
  while (end > start && /\s/.test(text[end - 1])) end -= 1;
  return { span: end > start ? [start, end] : null };
}

// A drag that ends inside the output sets the target; a whitespace-only one is refused.
export function onOutputSelect() {
  if (!state.run || state.job) return;
  const picked = selectionInOutput();
  if (!picked) return;
  state.dragged = true;
  if (!picked.span) {
    showError("The selection is only whitespace: select or click a word of the output to explain.");
    return;
  }
  chooseSpan(picked.span);
}

// Click a word: it becomes the target. Shift-click: the target grows to reach that word.
export function onOutputClick(event) {
  if (state.dragged) {
    state.dragged = false;
    return;
  }
  if (!state.run || state.job) return;
  const word = event.target.closest ? event.target.closest(".out-word") : null;
  if (!word) return;
  let span = [Number(word.dataset.start), Number(word.dataset.end)];
  if (event.shiftKey && state.span) {
    span = [Math.min(span[0], state.span[0]), Math.max(span[1], state.span[1])];
  }
  chooseSpan(span);
}

// Shift-click must not start the browser's own selection extension.
export function onOutputMouseDown(event) {
  state.dragged = false;
  if (event.shiftKey) event.preventDefault();
}

export function showOutputSource() {
  $("output-source").hidden = !(state.run && state.run.output_source === "given");
}
