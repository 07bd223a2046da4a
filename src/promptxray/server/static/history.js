// The history sidebar (every saved run: open, delete, start a new one) and the open
// run's own list of explanations and mask experiments, each of which reopens.

import { api } from "./api.js";
import { clearTurns, fillEditor } from "./conversation.js";
import { $, clear, el, fmt, showError, showNotice, when } from "./dom.js";
import { renderEdit } from "./mask.js";
import { setSpan, showOutputSource } from "./output.js";
import { onMethodChange, setParams } from "./params.js";
import { renderView, resetResults, viewPath } from "./result.js";
import { state } from "./state.js";

export async function loadHistory() {
  let runs = [];
  try {
    runs = await api("GET", "/api/runs");
  } catch (err) {
    showError(err.message);
    return;
  }
  const list = clear($("history-list"));
  $("history-empty").hidden = runs.length > 0;
  for (const run of runs) {
    const title = run.prompt.replace(/\s+/g, " ").trim();
    const item = el(
      "li",
      { class: state.run && state.run.id === run.id ? "current" : "", dataset: { run: run.id } },
      el(
        "button",
        { type: "button", class: "history-open", title: run.prompt, onclick: () => openRun(run.id) },
        el("span", { class: "history-title" }, title.length > 70 ? `${title.slice(0, 69)}…` : title),
        el(
          "span",
          { class: "history-meta" },
          when(run.created) + (run.last_method ? ` · ${run.last_method}` : "") +
            (run.n_explanations > 1 ? ` · ${run.n_explanations} explanations` : "") +
            (run.saved === false ? " · not saved (kept until the server stops)" : ""),
        ),
      ),
      el("button", {
        type: "button",
        class: "history-delete",
        title: "Delete this run",
        "aria-label": "Delete this run",
        onclick: () => askToDelete(item, run),
      }, "×"),
    );
    list.append(item);
  }
}

// The × asks first, in the list itself: a run takes all its explanations and mask
// experiments with it, and nothing brings them back.
function askToDelete(item, run) {
  if (item.querySelector(".history-confirm")) return;
  const n = run.n_explanations || 0;
  const what = n ? ` and its ${n} explanation${n === 1 ? "" : "s"}` : "";
  const box = el(
    "div",
    { class: "history-confirm", role: "group" },
    `Delete this run${what}? This cannot be undone.`,
    el("button", { type: "button", class: "danger history-confirm-delete", onclick: () => deleteRun(run.id) }, "Delete"),
    el("button", { type: "button", class: "ghost history-confirm-keep", onclick: () => box.remove() }, "Keep"),
  );
  item.append(box);
  box.querySelector(".history-confirm-keep").focus();
}

async function deleteRun(runId) {
  try {
    await api("DELETE", `/api/runs/${runId}`);
    if (state.run && state.run.id === runId) newRun();
    loadHistory();
  } catch (err) {
    showError(err.message);
  }
}

export async function openRun(runId) {
  if (state.job) return;
  try {
    const run = await api("GET", `/api/runs/${runId}`);
    showError("");
    showNotice("");
    resetResults();
    state.run = run;
    state.runDetail = run;
    fillEditor(run);
    showOutputSource();
    $("max-new").value = run.max_new_tokens;
    $("output-card").hidden = false;
    location.hash = `run=${run.id}`;
    const last = run.explanations[run.explanations.length - 1];
    setSpan(last && last.settings.span ? last.settings.span : null);
    $("explain").disabled = false;
    renderRunResults();
    if (last) {
      // Show the latest explanation with its latest edit (at the edit's granularity).
      const edit = [...run.edits].reverse().find((e) => e.explanation_id === last.id);
      await showExplanation(last.id, edit);
    }
    loadHistory();
  } catch (err) {
    showError(err.message);
  }
}

export async function refreshRunDetail() {
  if (!state.run) return;
  state.runDetail = await api("GET", `/api/runs/${state.run.id}`);
}

// One of the open run's explanations (and optionally one of its mask experiments).
async function showExplanation(explanationId, edit) {
  const detail = state.runDetail;
  const entry = detail ? detail.explanations.find((e) => e.id === explanationId) : null;
  if (entry) {
    const settings = entry.settings;
    $("method").value = settings.method;
    onMethodChange();
    setParams(settings.params || {});
    $("matrix").checked = !!settings.matrix;
    $("contrast").value = settings.contrast || "";
    $("check-on").checked = settings.check !== false;
    $("check-k").value = settings.check_k ?? "";
    setSpan(settings.span || null);
  }
  const granularity = edit ? edit.result.granularity : null;
  const view = await api("GET", viewPath(explanationId, granularity));
  state.picked.clear();
  $("mask-result").hidden = true;
  renderView(view);
  if (edit) renderEdit({ ...edit.result, edit_id: edit.id });
}

export function settingsLabel(settings) {
  const span = settings.span ? ` · chars ${settings.span[0]}–${settings.span[1]}` : " · whole output";
  const contrast = settings.contrast ? ` · instead of ${JSON.stringify(settings.contrast)}` : "";
  return `${settings.method} · ${settings.granularity}${span}${contrast}`;
}

// Every explanation of the open run, each with its mask experiments: all of them reopen.
export function renderRunResults() {
  const box = clear($("run-results"));
  const detail = state.runDetail;
  const explanations = detail ? detail.explanations : [];
  box.hidden = explanations.length === 0;
  if (!explanations.length) return;
  box.append(el("h3", {}, `This run: ${explanations.length} explanation${explanations.length === 1 ? "" : "s"}, ${detail.edits.length} mask experiment${detail.edits.length === 1 ? "" : "s"}`));
  const list = el("ol", { class: "run-results-list" });
  for (const entry of explanations) {
    const current = state.view && state.view.explanation_id === entry.id;
    const item = el(
      "li",
      { class: current ? "current" : "", dataset: { explanation: entry.id } },
      el(
        "button",
        { type: "button", class: "link", onclick: () => state.job || showExplanation(entry.id).catch((e) => showError(e.message)) },
        settingsLabel(entry.settings),
      ),
      el("span", { class: "hint" }, ` ${when(entry.created)}`),
    );
    const edits = detail.edits.filter((e) => e.explanation_id === entry.id);
    if (edits.length) {
      const sub = el("ul", { class: "run-edits" });
      for (const edit of edits) {
        const r = edit.result;
        const label = `removed ${r.masked_units.map((u) => u.text.trim()).join(", ")} → PR ${fmt(r.pr)}, KL ${fmt(r.kl)}`;
        sub.append(
          el(
            "li",
            { dataset: { edit: edit.id } },
            el(
              "button",
              { type: "button", class: "link", onclick: () => state.job || showExplanation(entry.id, edit).catch((e) => showError(e.message)) },
              label.length > 90 ? `${label.slice(0, 89)}…` : label,
            ),
          ),
        );
      }
      item.append(sub);
    }
    list.append(item);
  }
  box.append(list);
}

export function newRun() {
  state.run = null;
  resetResults();
  $("output-card").hidden = true;
  $("prompt").value = "";
  $("system").value = "";
  $("response").value = "";
  $("contrast").value = "";
  clearTurns();
  showOutputSource();
  history.replaceState(null, "", location.pathname);
  loadHistory();
  $("prompt").focus();
}
