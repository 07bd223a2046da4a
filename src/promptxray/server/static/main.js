// The prompt debugger's entry point (loaded by index.html as a module): wires the page's
// controls to the views and actions, asks the server what it offers, and reopens the run
// or comparison the address names.

import { explain, generate, maskAndRegenerate, regroup, useResponse } from "./actions.js";
import { adoptUrlToken, api, cancelJob, saveToken } from "./api.js";
import { closeCompare, loadCompare, openCompare } from "./compare.js";
import { addTurn, renumberTurns } from "./conversation.js";
import { $, el, showError } from "./dom.js";
import { loadHistory, newRun, openRun, renderRunResults } from "./history.js";
import { formChanged, markFreshness } from "./freshness.js";
import { chooseSpan, onOutputClick, onOutputMouseDown, onOutputSelect } from "./output.js";
import { fillMethods, onMethodChange } from "./params.js";
import { clearPicked, onGammaInput, onViewShown, regroupRows, renderRemoval, showTab } from "./result.js";
import { state } from "./state.js";

async function init() {
  onViewShown(renderRunResults);
  onViewShown(markFreshness);
  $("generate").addEventListener("click", generate);
  $("use-response").addEventListener("click", useResponse);
  $("add-turn").addEventListener("click", () => addTurn().querySelector(".turn-text").focus());
  $("system").addEventListener("input", renumberTurns);
  $("explain").addEventListener("click", explain);
  $("job-cancel").addEventListener("click", cancelJob);
  $("whole-output").addEventListener("click", () => chooseSpan(null));
  $("output").addEventListener("mousedown", onOutputMouseDown);
  $("output").addEventListener("mouseup", onOutputSelect);
  $("output").addEventListener("click", onOutputClick);
  $("output").addEventListener("keyup", onOutputSelect);
  // Every change of what Explain would ask re-marks the shown result and re-asks the estimate.
  $("granularity").addEventListener("change", () => {
    formChanged();
    regroup();
  });
  $("method").addEventListener("change", () => {
    onMethodChange();
    formChanged();
  });
  $("params").addEventListener("change", formChanged);
  $("params").addEventListener("input", formChanged);
  for (const id of ["matrix", "check-on"]) $(id).addEventListener("change", formChanged);
  for (const id of ["check-k", "contrast"]) $(id).addEventListener("input", formChanged);
  $("mask-top").addEventListener("click", () => maskAndRegenerate({ top_k: Number($("mask-k").value) || 3 }));
  $("mask-k").addEventListener("input", renderRemoval);
  $("mask-picked").addEventListener("click", () => maskAndRegenerate({ units: [...state.picked] }));
  $("clear-picked").addEventListener("click", clearPicked);
  $("new-run").addEventListener("click", newRun);
  $("compare-open").addEventListener("click", () => openCompare());
  $("compare-close").addEventListener("click", closeCompare);
  $("compare-a").addEventListener("change", () => loadCompare().catch((e) => showError(e.message)));
  $("compare-b").addEventListener("change", () => loadCompare().catch((e) => showError(e.message)));
  $("gamma").addEventListener("input", onGammaInput);
  $("heatmap-rows").addEventListener("change", regroupRows);
  $("token-save").addEventListener("click", saveToken);
  $("tab-text").addEventListener("click", () => showTab("text"));
  $("tab-heatmap").addEventListener("click", () => showTab("heatmap"));
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) generate();
  });
  $("explain").disabled = true;
  $("mask-top").disabled = true;
  adoptUrlToken();
  try {
    state.info = await api("GET", "/api/info");
  } catch (err) {
    showServerState(err);
    return;
  }
  $("model-name").textContent = state.info.model;
  $("model-name").dataset.state = "ready";
  $("jobs-note").textContent = state.info.jobs_note;
  $("prompt").maxLength = 200000;
  fillMethods($("method"), state.info.methods);
  for (const g of state.info.granularities) $("granularity").append(el("option", { value: g }, g));
  $("method").value = "grad_norm";
  $("granularity").value = "word";
  onMethodChange();
  await loadHistory();
  const compare = /compare=([^,]+),(.+)$/.exec(location.hash);
  if (compare) {
    openCompare(decodeURIComponent(compare[1]), decodeURIComponent(compare[2]));
    return;
  }
  const match = /run=([0-9a-f]+)/.exec(location.hash);
  if (match) openRun(match[1]);
}

// The badge and the message say what the server answered: a token asked for (the token box
// says so), another refusal in its own words, or no answer at all.
function showServerState(err) {
  const badge = $("model-name");
  if (err.status === 401) {
    badge.textContent = "access token needed";
    badge.dataset.state = "token";
  } else if (err.status) {
    badge.textContent = "server refused";
    badge.dataset.state = "error";
    showError(`The promptxray server answered ${err.status}: ${err.message}`);
  } else {
    badge.textContent = "no connection";
    badge.dataset.state = "offline";
    showError(`Cannot reach the promptxray server: ${err.message}`);
  }
}

document.addEventListener("DOMContentLoaded", init);
