// The result card: one explanation as the server coloured it (meta line, its check, legend, the
// texts with their units, the ranked list, the removal preview, the heatmap and search
// tabs), the picks for masking, and the server-side regroupings (granularity, rows,
// intensity) that redraw it without a model call.

import { api, withToken } from "./api.js";
import { renderCheck } from "./check.js";
import { $, clear, el, fmt, fmtScore, paletteBar, showError } from "./dom.js";
import { renderHeatmap } from "./heatmap.js";
import { renderInteractions } from "./interactions.js";
import { paintView } from "./paint.js";
import { methodSpec } from "./params.js";
import { renderSearch } from "./search.js";
import { state, updatePicked } from "./state.js";

// The open run's list of results marks the one shown. That list lives in history.js,
// which imports this module, so it registers here instead of being imported.
const shownListeners = [];
export function onViewShown(listener) {
  shownListeners.push(listener);
}

function renderLegend(view) {
  const box = clear($("legend"));
  const palette = view.palette;
  const peak = palette.peak_label;
  box.append(
    el("span", { class: "legend-label" }, palette.signed ? `−${peak}` : "0"),
    paletteBar(palette),
    el("span", { class: "legend-label" }, palette.signed ? `+${peak}` : peak),
    el("span", { class: "legend-note", id: "legend-caption" }, palette.caption),
    el("span", { class: "legend-note" }, "hover a unit for its score"),
  );
  if (palette.floor) {
    box.append(el("span", { class: "legend-note" }, `uncoloured: within ${Math.round(100 * palette.floor)}% of zero`));
  }
  if (view.selected && view.selected.length) {
    box.append(el("span", { class: "legend-note" }, `underlined: the ${view.selected.length} units ${view.method} chose together`));
  }
}

// The output's heading: its turn in a conversation, and whether it was supplied.
function outputTitle(view) {
  const section = (view.sections || []).find((s) => s.role === "output");
  return view.messages && section ? section.title.replace(/ Output.*$/, " Output") : "Output";
}

function renderSalience(view) {
  const conversation = !!view.messages;
  $("sal-turns").hidden = !conversation;
  $("sal-prompt-block").hidden = conversation;
  $("sal-system-block").hidden = conversation || !view.system_prompt;
  $("sal-output-title").textContent = outputTitle(view);
  $("sal-output-title").classList.toggle("turn-title", conversation);
  $("sal-output-source").hidden = view.output_source !== "given";
  const boxes = { system: $("sal-system"), prompt: $("sal-prompt"), output: $("sal-output"), turns: $("sal-turns") };
  if (!conversation) clear(boxes.turns);
  paintView(view, boxes, { onpick: togglePick });
}

// Bring a unit into view and make it flash, so a list entry finds its place in the text.
function locateUnit(index) {
  showTab("text");
  const node = document.querySelector(`#text-view .unit[data-index="${index}"]`);
  if (!node) return;
  node.scrollIntoView({ behavior: "smooth", block: "center" });
  node.classList.remove("flash");
  void node.offsetWidth; // restart the animation when the same unit is clicked twice
  node.classList.add("flash");
  setTimeout(() => node.classList.remove("flash"), 1600);
}

// What a score's sign says, in words (signed methods only).
function signWord(unit, signed) {
  if (!signed || unit.score === 0) return "";
  return unit.score > 0 ? "▲ raises" : "▼ lowers";
}

// The server's `listed` order: strongest |score| first (a joint method's set first), sign
// kept, near-zero units left out. A click finds the unit in the text; "pick" marks it.
function renderTop(view) {
  const list = clear($("top-list"));
  const spec = methodSpec(view.method);
  $("top-order").textContent = spec && spec.ranking ? `(${spec.ranking})` : "";
  const shown = view.listed.slice(0, 12);
  const max = view.palette.peak || 1;
  for (const index of shown) {
    const unit = view.units[index];
    const width = `${Math.round((100 * Math.abs(unit.score)) / max)}%`;
    const label = unit.text.length > 48 ? `${unit.text.slice(0, 47)}…` : unit.text;
    const sign = signWord(unit, view.signed);
    const item = el(
      "li",
      {
        class: state.picked.has(index) ? "picked" : "",
        title: `${unit.position} · click to find it in the text`,
        dataset: { index: String(index) },
        onclick: () => locateUnit(index),
      },
      el(
        "span",
        { class: "top-row" },
        el("span", { class: "top-text" }, label),
        el("span", { class: "top-score" }, fmtScore(unit.score, view.signed)),
      ),
      el(
        "span",
        { class: "top-where" },
        sign ? el("span", { class: unit.score > 0 ? "sign up" : "sign down" }, sign) : null,
        el("span", { class: "top-position" }, unit.where),
        el(
          "button",
          {
            type: "button",
            class: "pick-button ghost",
            title: "Pick this unit for mask and regenerate",
            onclick: (event) => {
              event.stopPropagation();
              togglePick(index);
            },
          },
          state.picked.has(index) ? "unpick" : "pick",
        ),
      ),
      el("span", { class: "top-bar" }, el("span", { style: { width, backgroundColor: unit.color } })),
    );
    if (view.selected && view.selected.includes(index)) item.classList.add("chosen");
    list.append(item);
  }
  const hidden = view.units.length - view.listed.length;
  $("top-note").textContent = hidden
    ? `${hidden} unit${hidden === 1 ? "" : "s"} with a score within ${Math.round(100 * view.palette.floor)}% of zero ${hidden === 1 ? "is" : "are"} not listed (and not coloured).`
    : "";
}

// What "Remove top-k" will take away: the server's `removal` order (most support for the
// target first, a joint method's set first), not the list order above.
export function renderRemoval() {
  const box = clear($("removal-preview"));
  const view = state.view;
  if (!view) return;
  const k = Math.max(0, Math.min(Number($("mask-k").value) || 0, view.removal.length));
  const spec = methodSpec(view.method);
  const what = spec && spec.removal ? spec.removal : "the first units of the ranking";
  box.append(`Top-${k} removes ${what}: `);
  for (const index of view.removal.slice(0, k)) {
    const unit = view.units[index];
    const label = unit.text.length > 32 ? `${unit.text.slice(0, 31)}…` : unit.text;
    box.append(
      el(
        "span",
        {
          class: "chip",
          title: `${unit.role} text · score ${fmtScore(unit.score, view.signed, 4)}`,
          dataset: { index: String(index) },
          style: { backgroundColor: unit.color, color: unit.text_color },
        },
        label,
      ),
      " ",
    );
  }
}

function renderMeta(view) {
  const m = view.metadata || {};
  const parts = [
    `${view.method} · ${view.granularity}` +
      (view.granularity !== view.base_granularity ? ` (computed on ${view.base_granularity}s)` : ""),
    `${view.units.length} units`,
  ];
  if (m.seconds !== undefined) parts.push(`${fmt(m.seconds, 2)} s`);
  if (m.forward_passes !== undefined) {
    const backward = m.backward_passes ? ` and ${m.backward_passes} backward` : "";
    const n = m.forward_passes;
    parts.push(`${n} forward pass${n === 1 ? "" : "es"}${backward} to explain`);
  }
  // As the other views' cost summary: the masking operator of methods that mask.
  const masking = m.masking || (m.params || {}).masking;
  if (masking && m.family && m.family !== "gradient") parts.push(`masking: ${masking}`);
  // Integrated gradients: how far its scores fall from the sum completeness promises.
  if (view.completeness) parts.push(view.completeness);
  // A contrast: both log-probabilities and their difference, before and after masking.
  if (view.contrast) parts.push(view.contrast);
  if (view.refinement) parts.push(view.refinement);
  if (view.surrogate) parts.push(view.surrogate);
  // A pasted response is scored by this model, not written by it: say so.
  if (view.output_source === "given") parts.push("response supplied, not generated");
  $("result-meta").textContent = parts.join(" · ");
  $("result-meta").title = state.info ? state.info.passes_note : "";
}

export function renderView(view) {
  state.view = view;
  $("gamma").value = String(view.palette.gamma || 1);
  $("gamma-value").textContent = fmt(view.palette.gamma || 1, 1);
  $("result-card").hidden = false;
  $("result-card").dataset.explanation = view.explanation_id;
  $("mask-card").hidden = false;
  $("granularity").value = view.granularity;
  renderMeta(view);
  renderCheck(view);
  renderLegend(view);
  renderSalience(view);
  renderTop(view);
  renderHeatmap(view);
  renderSearch(view);
  renderInteractions(view);
  for (const listener of shownListeners) listener(view);
  const q = `granularity=${encodeURIComponent(view.granularity)}`;
  $("export-json").href = withToken(`/api/explanations/${view.explanation_id}/export?format=json&${q}`);
  $("export-html").href = withToken(`/api/explanations/${view.explanation_id}/export?format=html&${q}`);
  $("mask-top").disabled = !!state.job || state.stale;
  $("mask-k").max = String(view.units.length);
  renderRemoval();
  updatePicked();
}

// The shown result again from the server (no model call): another granularity or intensity.
export function viewPath(explanationId, granularity) {
  const query = new URLSearchParams({ gamma: String(state.gamma), rows: state.rows });
  if (granularity) query.set("granularity", granularity);
  return `/api/explanations/${explanationId}?${query}`;
}

// The shown result again at its granularity, with the current intensity and row grouping;
// an answer for a result that is no longer shown is dropped.
async function reloadView() {
  if (!state.view) return;
  try {
    const view = await api("GET", viewPath(state.view.explanation_id, state.view.granularity));
    if (state.view && view.explanation_id === state.view.explanation_id) renderView(view);
  } catch (err) {
    showError(err.message);
  }
}

// Grouping the heatmap's rows is the server's (the method's rule applies): no model call.
export function regroupRows() {
  state.rows = $("heatmap-rows").value;
  return reloadView();
}

// The intensity slider: the server recolours with the new gamma; picks are kept.
let gammaTimer = null;
export function onGammaInput() {
  state.gamma = Number($("gamma").value) || 1;
  $("gamma-value").textContent = fmt(state.gamma, 1);
  clearTimeout(gammaTimer);
  gammaTimer = setTimeout(reloadView, 120);
}

// ----- picking units to mask ---------------------------------------------------------------
function togglePick(index) {
  if (state.picked.has(index)) state.picked.delete(index);
  else state.picked.add(index);
  document.querySelectorAll(`.unit[data-index="${index}"]`).forEach((node) => {
    node.classList.toggle("picked", state.picked.has(index));
  });
  if (state.view) renderTop(state.view);
  updatePicked();
}

export function clearPicked() {
  state.picked.clear();
  document.querySelectorAll(".unit.picked").forEach((node) => node.classList.remove("picked"));
  if (state.view) renderTop(state.view);
  updatePicked();
}

// No result shown: a new run, or another one opened from the history.
export function resetResults() {
  state.view = null;
  state.runDetail = null;
  $("run-results").hidden = true;
  state.picked.clear();
  $("result-card").hidden = true;
  $("mask-card").hidden = true;
  $("mask-result").hidden = true;
}

// The result card's two tabs: the texts with their units, or the heatmap.
export function showTab(name) {
  const text = name === "text";
  $("text-view").hidden = !text;
  $("heatmap-view").hidden = text;
  $("tab-text").classList.toggle("active", text);
  $("tab-heatmap").classList.toggle("active", !text);
  $("tab-text").setAttribute("aria-selected", String(text));
  $("tab-heatmap").setAttribute("aria-selected", String(!text));
}
