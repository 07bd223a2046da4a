// The page's model calls, each one job on the server: generate (or record a pasted
// response), explain (after the cost check), recompute at another granularity, and
// mask and regenerate; plus the granularity switch that only regroups on the server.

import { api, reportFailure, runJob } from "./api.js";
import { promptBody } from "./conversation.js";
import { $, showError } from "./dom.js";
import { loadHistory, refreshRunDetail, renderRunResults } from "./history.js";
import { renderEdit } from "./mask.js";
import { renderOutput, setSpan, showOutputSource } from "./output.js";
import { showFieldError } from "./fields.js";
import { currentEstimate, explainBody } from "./freshness.js";
import { methodSpec, onMethodChange, setParams } from "./params.js";
import { renderView, resetResults, viewPath } from "./result.js";
import { setBusy, state } from "./state.js";

export async function maskAndRegenerate(body) {
  if (!state.view) return;
  try {
    const edit = await runJob(
      "/api/mask",
      {
        explanation_id: state.view.explanation_id,
        granularity: state.view.granularity,
        // Regenerate with the operator the explanation itself masked with, if it masked.
        operator: (state.view.settings.params || {}).masking || "delete",
        ...body,
      },
      "Regenerating without the removed units",
    );
    renderEdit(edit);
    await refreshRunDetail();
    renderRunResults();
    $("mask-result").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (err) {
    reportFailure(err);
  }
}

async function startRun(response) {
  // Sent as typed: 0 or 99999 is the server's to refuse, under this field, never replaced.
  const typed = $("max-new").value.trim();
  const body = { ...promptBody(), max_new_tokens: typed === "" ? null : Number(typed) };
  if (body.prompt !== undefined && !body.prompt.trim()) {
    const message = "The prompt is empty: type some text first.";
    if (!showFieldError({ field: "prompt", message })) showError(message);
    return;
  }
  if (response !== undefined) body.response = response;
  resetResults();
  state.run = null;
  showOutputSource();
  $("output-card").hidden = false;
  renderOutput("", null, true);
  const label = response === undefined ? "Generating" : "Using the pasted response";
  try {
    const result = await runJob("/api/generate", body, label, (partial) => renderOutput(partial, null, true));
    state.run = await api("GET", `/api/runs/${result.run_id}`);
    state.runDetail = state.run;
    showOutputSource();
    renderRunResults();
    setSpan(null);
    setBusy(false);
    location.hash = `run=${result.run_id}`;
    loadHistory();
  } catch (err) {
    $("output-card").hidden = true;
    reportFailure(err);
  }
}

export function generate() {
  return startRun();
}

export function useResponse() {
  return startRun($("response").value);
}

export async function explain() {
  if (!state.run) return;
  const body = explainBody();
  if (!(await costAccepted(body))) return;
  await explainWith(body);
}

// The predicted cost next to Explain; a long job (the server says which) runs only once
// the user agrees. A request the server refuses is left for the explain call to report.
async function costAccepted(body) {
  let estimate;
  try {
    estimate = await currentEstimate(body);
  } catch (err) {
    $("estimate").textContent = "";
    return true;
  }
  if (!estimate.confirm) return true;
  return window.confirm(`${estimate.line}.\nStart it?`);
}

async function explainWith(body) {
  try {
    let view = await runJob("/api/explain", body, `Explaining with ${body.method}`);
    state.picked.clear();
    $("mask-result").hidden = true;
    // The job colours at full intensity with token rows; the slider's setting and the
    // row grouping are the server's to apply.
    if (state.gamma !== 1 || state.rows !== "token") view = { ...(await api("GET", viewPath(view.explanation_id, view.granularity))), warning: view.warning };
    await refreshRunDetail();
    renderView(view);
    loadHistory();
  } catch (err) {
    reportFailure(err);
  }
}

// The shown result again at granularity `wanted`: same run, span, method, parameters, heatmap.
async function recompute(wanted) {
  const view = state.view;
  if (!view || state.job) return;
  const settings = view.settings;
  const spec = methodSpec(settings.method);
  const known = new Set(spec ? spec.params.map((p) => p.name) : []);
  const params = {};
  for (const [name, value] of Object.entries(settings.params || {})) {
    if (known.has(name)) params[name] = value;
  }
  $("method").value = settings.method;
  onMethodChange();
  setParams(params);
  $("granularity").value = wanted;
  $("matrix").checked = !!settings.matrix;
  $("contrast").value = settings.contrast || "";
  $("check-on").checked = settings.check !== false;
  $("check-k").value = settings.check_k ?? "";
  await explainWith({
    run_id: view.run_id,
    span: settings.span,
    method: settings.method,
    granularity: wanted,
    matrix: !!settings.matrix,
    params,
    contrast: settings.contrast || null,
    check: settings.check !== false,
    check_k: settings.check_k ?? null,
  });
}

// Switching granularity re-aggregates the stored result on the server: no model call.
// A result computed by masking whole units cannot be regrouped (409): offer to recompute.
export async function regroup() {
  if (!state.view) return;
  const wanted = $("granularity").value;
  if (wanted === state.view.granularity) return;
  try {
    const view = await api("GET", viewPath(state.view.explanation_id, wanted));
    showError("");
    state.picked.clear();
    renderView(view);
  } catch (err) {
    // Keep the choice: the user may want to recompute at this granularity.
    if (err.status === 409) {
      showError(err.message, { label: `Recompute at ${wanted}`, onclick: () => recompute(wanted) });
    } else {
      showError(err.message);
    }
  }
}
