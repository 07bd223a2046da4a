// Two runs or explanations side by side on one shared colour scale, with word diffs of
// the prompts and outputs and the change in each shared unit's score.

import { api } from "./api.js";
import { $, clear, el, fmtScore, paletteBar, showError, when } from "./dom.js";
import { settingsLabel } from "./history.js";
import { paintView } from "./paint.js";
import { state } from "./state.js";

// Both sides are coloured by the server on one shared scale (one peak); the page only
// places the colours. The address (#compare=A,B) reopens the same comparison.
function diffInto(container, pieces) {
  clear(container);
  for (const piece of pieces) {
    if (piece.op === "equal") container.append(piece.text);
    else if (piece.op === "delete") container.append(el("del", {}, piece.text));
    else container.append(el("ins", {}, piece.text));
  }
  if (!pieces.length) container.append(el("span", { class: "hint" }, "(empty)"));
}

async function fillCompareChoices(a, b) {
  const choices = await api("GET", "/api/compare/choices");
  for (const [id, wanted] of [["compare-a", a], ["compare-b", b]]) {
    const select = clear($(id));
    for (const choice of choices) select.append(el("option", { value: choice.ref }, `${when(choice.created)} · ${choice.label}`));
    if (wanted && !choices.some((c) => c.ref === wanted)) select.append(el("option", { value: wanted }, wanted));
    if (wanted) select.value = wanted;
  }
  // By default: the two newest explanations, older on the left (before → after).
  if (!a && choices.length > 1) $("compare-a").value = choices[1].ref;
  if (!b && choices.length) $("compare-b").value = choices[0].ref;
  return choices;
}

export async function openCompare(a, b) {
  showError("");
  document.body.classList.add("comparing");
  $("compare-card").hidden = false;
  try {
    const choices = await fillCompareChoices(a, b);
    $("compare-empty").hidden = choices.length >= 2 || (a && b);
    if ($("compare-a").value && $("compare-b").value) await loadCompare();
  } catch (err) {
    showError(err.message);
  }
}

export function closeCompare() {
  document.body.classList.remove("comparing");
  $("compare-card").hidden = true;
  if (/compare=/.test(location.hash)) history.replaceState(null, "", location.pathname + (state.run ? `#run=${state.run.id}` : ""));
}

export async function loadCompare() {
  const a = $("compare-a").value;
  const b = $("compare-b").value;
  if (!a || !b) return;
  history.replaceState(null, "", `${location.pathname}#compare=${a},${b}`);
  const query = new URLSearchParams({ a, b, gamma: String(state.gamma) });
  const data = await api("GET", `/api/compare?${query}`);
  renderCompare(data);
}

function renderCompareSide(side, key) {
  const view = side.view;
  const run = side.run;
  const title = view ? settingsLabel(view.settings) : "run (not explained)";
  // The explanation's time (the menu's), not its run's: one entry, one time.
  $(`cmp-${key}-title`).textContent = `${key.toUpperCase()}: ${title} · ${when(side.created ?? run.created)}`;
  const boxes = { system: $(`cmp-${key}-system`), prompt: $(`cmp-${key}-prompt`), output: $(`cmp-${key}-output`) };
  $(`cmp-${key}-system-block`).hidden = !run.system_prompt || !!(view && view.messages);
  if (view) {
    paintView(view, boxes);
  } else {
    clear(boxes.system).append(run.system_prompt || "");
    clear(boxes.prompt).append(run.prompt);
    clear(boxes.output).append(run.output);
  }
}

function renderCompare(data) {
  $("compare-result").hidden = false;
  renderCompareSide(data.a, "a");
  renderCompareSide(data.b, "b");
  const legend = clear($("compare-legend"));
  if (data.palette) {
    legend.append(
      el("span", { class: "legend-label" }, data.palette.signed ? `−${data.palette.peak_label}` : "0"),
      paletteBar(data.palette),
      el("span", { class: "legend-label" }, data.palette.signed ? `+${data.palette.peak_label}` : data.palette.peak_label),
      el("span", { class: "legend-note", id: "compare-caption" }, `one scale for both: ${data.palette.caption}`),
    );
  }
  $("compare-note").textContent = data.note || "";
  $("compare-note").hidden = !data.note;
  const hasSystem = data.a.run.system_prompt || data.b.run.system_prompt;
  $("cmp-system-diff-block").hidden = !hasSystem;
  diffInto($("cmp-system-diff"), data.diff.system_prompt);
  diffInto($("cmp-prompt-diff"), data.diff.prompt);
  diffInto($("cmp-output-diff"), data.diff.output);
  const body = clear($("cmp-changes"));
  $("cmp-changes-block").hidden = !data.changes.length;
  const signed = data.a.view ? data.a.view.signed : true;
  for (const change of data.changes.slice(0, 30)) {
    body.append(
      el(
        "tr",
        {},
        el("td", { class: "mono" }, change.text),
        el("td", {}, change.role === "user" ? "prompt" : change.role),
        el("td", { class: "num" }, fmtScore(change.a_score, signed)),
        el("td", { class: "num" }, fmtScore(change.b_score, signed)),
        el("td", { class: "num delta", style: { backgroundColor: change.color, color: change.text_color } }, fmtScore(change.delta, true)),
      ),
    );
  }
}
