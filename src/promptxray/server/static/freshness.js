// One visible state: what the form asks for now (target, method, granularity, parameters)
// against what the shown result was computed for. A result of another request stays on
// screen dimmed, says what changed, and offers "Explain again"; it cannot be masked.
// Every change also clears the last action's error and re-asks the estimate.

import { api } from "./api.js";
import { $, clear, el, showError, showNotice } from "./dom.js";
import { clearFieldErrors } from "./fields.js";
import { HIDDEN_PARAMS, methodSpec, readParams } from "./params.js";
import { state, updatePicked } from "./state.js";

// The "instead of…" field: a contrast when anything is typed (spaces count: " Red").
function contrastValue() {
  const value = $("contrast").value;
  return value === "" ? null : value;
}

// The explain request the form describes now (what Explain would send).
export function explainBody() {
  const method = $("method").value;
  const k = $("check-k").value.trim();
  return {
    run_id: state.run ? state.run.id : null,
    span: state.span,
    method,
    granularity: $("granularity").value,
    matrix: $("matrix").checked,
    params: readParams(method),
    contrast: contrastValue(),
    check: $("check-on").checked,
    check_k: k === "" ? null : Number(k),
  };
}

const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

// A parameter as the form and as the result hold it: a missing or empty one is its default.
function paramsDiffer(spec, asked, stored) {
  for (const param of spec ? spec.params : []) {
    if (HIDDEN_PARAMS.has(param.name)) continue;
    const a = param.name in asked ? asked[param.name] : param.default;
    const b = stored && param.name in stored ? stored[param.name] : param.default;
    if (String(a ?? "") !== String(b ?? "")) return true;
  }
  return false;
}

// What the form asks for that the shown result was not computed for, in words (empty: fresh).
export function differences(view = state.view) {
  if (!view) return [];
  const body = explainBody();
  const s = view.settings || {};
  const changed = [];
  if (!state.run || state.run.id !== view.run_id || !same(body.span, s.span)) changed.push("target");
  if (body.method !== view.method) changed.push("method");
  else if (paramsDiffer(methodSpec(body.method), body.params, s.params)) changed.push("parameters");
  if (body.granularity !== view.granularity) changed.push("granularity");
  if (!same(body.contrast, s.contrast)) changed.push("“instead of…” text");
  if (body.matrix && !s.matrix) changed.push("heatmap");
  if (body.check !== (s.check !== false) || !same(body.check_k, s.check_k)) changed.push("check");
  return changed;
}

export function isStale() {
  return differences().length > 0;
}

// ----- the estimate next to Explain: recomputed for every change, never left over -------
let estimateTimer = null;
let estimateSeq = 0;

function scheduleEstimate() {
  const seq = ++estimateSeq;
  const box = $("estimate");
  box.textContent = "";
  clearTimeout(estimateTimer);
  if (!state.run || state.job) return;
  estimateTimer = setTimeout(async () => {
    let answer = null;
    try {
      answer = await api("POST", "/api/estimate", explainBody());
    } catch (_) {
      answer = null; // a request the server refuses is reported by Explain, under its field
    }
    if (seq !== estimateSeq) return; // the form changed meanwhile: a newer one is coming
    box.textContent = answer ? answer.line : "";
    box.title = state.info ? state.info.passes_note : "";
  }, 250);
}

// The answer for the request the form shows now, fetched at once (Explain uses it).
export async function currentEstimate(body) {
  ++estimateSeq;
  clearTimeout(estimateTimer);
  const answer = await api("POST", "/api/estimate", body);
  $("estimate").textContent = answer.line;
  $("estimate").title = state.info ? state.info.passes_note : "";
  return answer;
}

// ----- marking the shown result ---------------------------------------------------------
function renderBanner(changed) {
  const banner = clear($("stale-banner"));
  banner.hidden = changed.length === 0;
  if (!changed.length) return;
  const what = changed.join(", ");
  banner.append(
    el("strong", {}, "Out of date: "),
    `this result was computed for another ${what} than the form now asks for. ` +
      "Masking is off until it is explained again. ",
    el("button", { type: "button", id: "explain-again", class: "primary", onclick: () => $("explain").click() }, "Explain again"),
  );
}

// Apply the comparison to the page: dim the result and the mask card, say why, and keep
// the mask buttons off while the result is not of the request the form shows.
export function markFreshness() {
  const changed = differences();
  const stale = changed.length > 0;
  state.stale = stale;
  for (const id of ["result-card", "mask-card"]) $(id).classList.toggle("stale", stale);
  renderBanner(changed);
  $("mask-card").dataset.stale = String(stale);
  $("mask-stale").hidden = !stale;
  $("mask-top").disabled = !state.view || stale || !!state.job;
  updatePicked();
  return stale;
}

// The form changed (target, method, granularity, a parameter, a switch): the last action's
// error and notice no longer apply, the estimate is asked again, the result is re-marked.
export function formChanged() {
  showError("");
  showNotice("");
  clearFieldErrors();
  refreshForm();
}

// The page set the form itself (a result opened, a run generated): re-mark and re-estimate,
// keeping what the action that did it reported.
export function refreshForm() {
  markFreshness();
  scheduleEstimate();
}
