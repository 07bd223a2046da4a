// promptxray prompt debugger: plain DOM, no build step, no network beyond this server.
// Every text that came from a user or the model is put in the page with textContent
// (via el()/text()), never parsed as HTML, so a prompt like <img onerror=...> is just text.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  run: null, // {id, prompt, system_prompt, max_new_tokens, output}
  span: null, // [start, end) in the output, or null for all of it
  view: null, // the explanation view being shown
  picked: new Set(), // unit indices (at the current granularity) picked for masking
  job: null, // the job this page is waiting on
  paramValues: {}, // method parameters the user changed, by name (kept across methods)
};

// ----- small helpers ------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node) {
  node.replaceChildren();
  return node;
}

function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return x.toExponential(2);
  return x.toFixed(digits);
}

// `action` ({label, onclick}) adds one button after the message, e.g. "Recompute at token".
function showError(message, action) {
  const box = $("error");
  box.textContent = message;
  if (message && action) {
    box.append(
      " ",
      el("button", { type: "button", id: "error-action", class: "error-action", onclick: action.onclick }, action.label),
    );
  }
  box.hidden = !message;
}

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : `${response.status} ${response.statusText}`;
    const error = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    error.status = response.status;
    throw error;
  }
  return data;
}

// ----- jobs: submit, poll, cancel -----------------------------------------------------
const busyButtons = ["generate", "explain", "mask-top", "mask-picked"];

// While this page waits on a job its action buttons rest (the server would queue more).
function setBusy(busy) {
  if (busy) {
    for (const id of busyButtons) $(id).disabled = true;
  } else {
    $("generate").disabled = false;
    $("explain").disabled = !state.run;
    $("mask-top").disabled = !state.view;
    updatePicked();
  }
}

async function runJob(path, body, label, onPartial) {
  showError("");
  setBusy(true);
  const box = $("job");
  const bar = $("job-progress");
  box.hidden = false;
  $("job-label").textContent = `${label}: starting…`;
  bar.removeAttribute("value");
  try {
    const ref = await api("POST", path, body);
    state.job = ref.job_id;
    // Poll fast at first (short jobs finish sooner on screen), then ease off.
    for (let polls = 0; ; polls += 1) {
      const job = await api("GET", `/api/jobs/${ref.job_id}`);
      if (job.status === "queued") {
        $("job-label").textContent = `${label}: queued behind ${job.queue_position} job(s)…`;
      } else if (job.status === "running") {
        const part = job.total ? ` ${job.done}/${job.total}` : "";
        $("job-label").textContent = `${label}…${part}`;
        if (job.total) {
          bar.max = job.total;
          bar.value = job.done;
        }
      }
      if (onPartial && job.partial) onPartial(job.partial);
      if (job.status === "done") return job.result;
      if (job.status === "error") throw new Error(job.error);
      if (job.status === "cancelled") throw new Error(`${label} was cancelled.`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, 40 + 10 * polls)));
    }
  } finally {
    state.job = null;
    box.hidden = true;
    setBusy(false);
  }
}

async function cancelJob() {
  if (!state.job) return;
  $("job-label").textContent = "Cancelling…";
  try {
    await api("POST", `/api/jobs/${state.job}/cancel`);
  } catch (err) {
    showError(err.message);
  }
}

// ----- colours ------------------------------------------------------------------------
// The page has no colour scale of its own. Units arrive with their colour (unit.color),
// heatmap cells with the index of their stop (view.matrix_stops) in the server's
// palette ({signed, peak, stops, legend, caption, gamma, floor}): the rule from a value
// to a colour, near-zero cut and intensity included, is promptxray/render/palette.py's.
function paletteBar(palette) {
  return el("span", {
    class: "legend-bar",
    style: { background: `linear-gradient(to right, ${palette.stops.join(", ")})` },
  });
}

// Signed methods show the sign of every score, unsigned ones the plain magnitude.
function fmtScore(x, signed, digits = 3) {
  return (signed && x > 0 ? "+" : "") + fmt(x, digits);
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
  if (view.selected && view.selected.length) {
    box.append(el("span", { class: "legend-note" }, `underlined: the ${view.selected.length} units ${view.method} chose together`));
  }
}

// ----- output and span selection ---------------------------------------------------------
function renderOutput(text, span, streaming = false) {
  const box = clear($("output"));
  if (span) {
    box.append(
      text.slice(0, span[0]),
      el("mark", { class: "selected-span" }, text.slice(span[0], span[1])),
      text.slice(span[1]),
    );
  } else {
    box.append(text);
  }
  if (streaming) box.append(el("span", { class: "caret", "aria-hidden": "true" }));
  if (!text && !streaming) box.append(el("span", { class: "hint" }, "(the model wrote nothing)"));
}

function setSpan(span) {
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
}

// Character offsets of the selection inside #output; its text nodes spell the output exactly.
function selectionOffsets() {
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
  return end > start ? [start, end] : null;
}

function onOutputSelect() {
  if (!state.run || state.job) return;
  const span = selectionOffsets();
  if (span) setSpan(span);
}

// ----- the salience view -------------------------------------------------------------------
function unitTitle(unit, rank) {
  return `score ${fmtScore(unit.score, state.view.signed, 4)} · rank ${rank + 1}` + (state.view.selected && state.view.selected.includes(unit.index) ? " · selected" : "");
}

// Draw `text` with the units of `role` shaded; characters outside units stay plain.
function paintRole(container, text, role, view, ranks, limit = text.length) {
  const units = view.units
    .filter((u) => u.role === role && u.span && u.span[0] < limit)
    .sort((a, b) => a.span[0] - b.span[0]);
  let cursor = 0;
  for (const unit of units) {
    const [start, end] = unit.span;
    if (start > cursor) container.append(text.slice(cursor, start));
    const node = el(
      "span",
      {
        class: "unit",
        title: unitTitle(unit, ranks[unit.index]),
        dataset: { index: String(unit.index), score: String(unit.score) },
        style: { backgroundColor: unit.color, color: unit.text_color },
        onclick: () => togglePick(unit.index),
      },
      text.slice(start, end),
    );
    if (view.selected && view.selected.includes(unit.index)) node.classList.add("chosen");
    if (state.picked.has(unit.index)) node.classList.add("picked");
    container.append(node);
    cursor = Math.max(cursor, end);
  }
  if (cursor < limit) container.append(text.slice(cursor, limit));
}

function renderSalience(view) {
  const ranks = {};
  view.top.forEach((index, rank) => {
    ranks[index] = rank;
  });
  const system = clear($("sal-system"));
  $("sal-system-block").hidden = !view.system_prompt;
  if (view.system_prompt) paintRole(system, view.system_prompt, "system", view, ranks);
  paintRole(clear($("sal-prompt")), view.prompt, "user", view, ranks);
  const out = clear($("sal-output"));
  const [t0, t1] = view.target_span;
  paintRole(out, view.output, "output", view, ranks, t0);
  out.append(el("mark", { class: "target" }, view.output.slice(t0, t1)));
  if (t1 < view.output.length) out.append(el("span", { class: "after-target" }, view.output.slice(t1)));
}

// The list order is the server's `top`: strongest |score| first, the sign kept.
function renderTop(view) {
  const list = clear($("top-list"));
  $("top-order").textContent = view.signed ? "(by |score|)" : "";
  const shown = view.top.slice(0, 12);
  const max = view.palette.peak || 1;
  for (const index of shown) {
    const unit = view.units[index];
    const width = `${Math.round((100 * Math.abs(unit.score)) / max)}%`;
    const label = unit.text.length > 48 ? `${unit.text.slice(0, 47)}…` : unit.text;
    const item = el(
      "li",
      {
        class: state.picked.has(index) ? "picked" : "",
        title: `${unit.role} text · click to pick for masking`,
        dataset: { index: String(index) },
        onclick: () => togglePick(index),
      },
      el(
        "span",
        { class: "top-row" },
        el("span", { class: "top-text" }, label),
        el("span", { class: "top-score" }, fmtScore(unit.score, view.signed)),
      ),
      el(
        "span",
        { class: "top-bar" },
        el("span", { style: { width, backgroundColor: unit.color } }),
      ),
    );
    if (view.selected && view.selected.includes(index)) item.classList.add("chosen");
    list.append(item);
  }
}

// What "Remove top-k" will take away: the server's `removal` order (most support for the
// target first, a joint method's set first), not the list order above.
function renderRemoval() {
  const box = clear($("removal-preview"));
  const view = state.view;
  if (!view) return;
  const k = Math.max(0, Math.min(Number($("mask-k").value) || 0, view.removal.length));
  const what = view.signed ? "the units that raise p(target) most" : "the strongest units";
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

function visible(token) {
  return token.replace(/\n/g, "⏎").replace(/ /g, "·") || "∅";
}

function renderHeatmap(view) {
  const table = clear($("heatmap"));
  const note = $("heatmap-note");
  if (!view.matrix) {
    note.textContent =
      "No heatmap for this result: tick “Heatmap” before Explain to compute target tokens × prompt units" +
      " (some methods give only one score per unit).";
    return;
  }
  const palette = view.matrix_palette;
  note.replaceChildren(
    `Rows: the ${view.target_tokens.length} explained output tokens. Columns: the ${view.units.length} source units. `,
    paletteBar(palette),
    " ",
    el("span", { id: "heatmap-caption" }, palette.caption),
    " (the largest cell, its own scale). Hover a cell for its score.",
  );
  const head = el("tr", {}, el("th", { class: "corner" }, "target ↓ / source →"));
  for (const unit of view.units) {
    const label = unit.text.length > 24 ? `${unit.text.slice(0, 23)}…` : unit.text;
    head.append(el("th", { class: "col", title: unit.text }, el("span", {}, label)));
  }
  table.append(el("thead", {}, head));
  const body = el("tbody");
  view.matrix.forEach((row, r) => {
    const token = view.target_tokens[r] ?? "";
    const tr = el("tr", {}, el("th", { class: "rowhead" }, visible(token)));
    row.forEach((value, c) => {
      tr.append(
        el("td", {
          title: `${JSON.stringify(token)} ← ${JSON.stringify(view.units[c].text)}: ${fmtScore(value, palette.signed, 4)}`,
          style: { backgroundColor: palette.stops[view.matrix_stops[r][c]] },
        }),
      );
    });
    body.append(tr);
  });
  table.append(body);
}

function renderMeta(view) {
  const m = view.metadata || {};
  const parts = [
    `${view.method} · ${view.granularity}` +
      (view.granularity !== view.base_granularity ? ` (computed on ${view.base_granularity}s)` : ""),
    `${view.units.length} units`,
  ];
  if (m.seconds !== undefined) parts.push(`${fmt(m.seconds, 2)} s`);
  if (m.forward_passes !== undefined) parts.push(`${m.forward_passes} forward, ${m.backward_passes} backward passes`);
  // As the other views' cost summary: the masking operator of methods that mask.
  const masking = m.masking || (m.params || {}).masking;
  if (masking && m.family && m.family !== "gradient") parts.push(`masking: ${masking}`);
  $("result-meta").textContent = parts.join(" · ");
}

function renderView(view) {
  state.view = view;
  $("result-card").hidden = false;
  $("result-card").dataset.explanation = view.explanation_id;
  $("mask-card").hidden = false;
  $("granularity").value = view.granularity;
  renderMeta(view);
  renderLegend(view);
  renderSalience(view);
  renderTop(view);
  renderHeatmap(view);
  const q = `granularity=${encodeURIComponent(view.granularity)}`;
  $("export-json").href = `/api/explanations/${view.explanation_id}/export?format=json&${q}`;
  $("export-html").href = `/api/explanations/${view.explanation_id}/export?format=html&${q}`;
  $("mask-top").disabled = !!state.job;
  $("mask-k").max = String(view.units.length);
  renderRemoval();
  updatePicked();
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

function updatePicked() {
  const n = state.picked.size;
  $("mask-picked").textContent = `Remove picked (${n})`;
  $("mask-picked").disabled = n === 0 || !!state.job;
  $("clear-picked").disabled = n === 0;
}

function clearPicked() {
  state.picked.clear();
  document.querySelectorAll(".unit.picked").forEach((node) => node.classList.remove("picked"));
  if (state.view) renderTop(state.view);
  updatePicked();
}

// ----- mask and regenerate ---------------------------------------------------------------
function renderEdit(edit) {
  $("mask-result").hidden = false;
  const n = edit.masked_units.length;
  $("mask-meta").textContent =
    `Removed ${n} ${edit.granularity} unit${n === 1 ? "" : "s"} (masking: ${edit.operator}); ` +
    "PR and KL compare the explained text under the new prompt with the original.";
  $("metric-pr").textContent = fmt(edit.pr);
  $("metric-kl").textContent = fmt(edit.kl);
  const chips = clear($("masked-units"));
  for (const unit of edit.masked_units) chips.append(el("span", { class: "chip", title: `${unit.role} text` }, unit.text));
  const masked = clear($("masked-prompt"));
  masked.append(edit.masked_prompt || "");
  if (!edit.masked_prompt) masked.append(el("span", { class: "hint" }, "(nothing left of the prompt)"));
  const before = clear($("diff-before"));
  const after = clear($("diff-after"));
  if (edit.prefix) {
    before.append(el("span", { class: "prefix", title: "earlier output, kept as context" }, edit.prefix));
    after.append(el("span", { class: "prefix", title: "earlier output, kept as context" }, edit.prefix));
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

async function maskAndRegenerate(body) {
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
    $("mask-result").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (err) {
    showError(err.message);
  }
}

// ----- main actions ------------------------------------------------------------------------
function resetResults() {
  state.view = null;
  state.picked.clear();
  $("result-card").hidden = true;
  $("mask-card").hidden = true;
  $("mask-result").hidden = true;
}

async function generate() {
  const prompt = $("prompt").value;
  if (!prompt.trim()) {
    showError("The prompt is empty: type some text first.");
    return;
  }
  const system = $("system").value;
  const body = {
    prompt,
    system_prompt: system.trim() ? system : null,
    max_new_tokens: Number($("max-new").value) || 64,
  };
  resetResults();
  state.run = null;
  $("output-card").hidden = false;
  renderOutput("", null, true);
  try {
    const result = await runJob("/api/generate", body, "Generating", (partial) => renderOutput(partial, null, true));
    state.run = {
      id: result.run_id,
      prompt: body.prompt,
      system_prompt: body.system_prompt,
      max_new_tokens: body.max_new_tokens,
      output: result.output,
    };
    setSpan(null);
    setBusy(false);
    location.hash = `run=${result.run_id}`;
    loadHistory();
  } catch (err) {
    $("output-card").hidden = true;
    showError(err.message);
  }
}

async function explain() {
  if (!state.run) return;
  const method = $("method").value;
  await explainWith({
    run_id: state.run.id,
    span: state.span,
    method,
    granularity: $("granularity").value,
    matrix: $("matrix").checked,
    params: readParams(method),
  });
}

async function explainWith(body) {
  try {
    const view = await runJob("/api/explain", body, `Explaining with ${body.method}`);
    state.picked.clear();
    $("mask-result").hidden = true;
    renderView(view);
    loadHistory();
  } catch (err) {
    showError(err.message);
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
  await explainWith({
    run_id: view.run_id,
    span: settings.span,
    method: settings.method,
    granularity: wanted,
    matrix: !!settings.matrix,
    params,
  });
}

// Switching granularity re-aggregates the stored result on the server: no model call.
// A result computed by masking whole units cannot be regrouped (409): offer to recompute.
async function regroup() {
  if (!state.view) return;
  const wanted = $("granularity").value;
  if (wanted === state.view.granularity) return;
  try {
    const view = await api("GET", `/api/explanations/${state.view.explanation_id}?granularity=${encodeURIComponent(wanted)}`);
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

// ----- history -------------------------------------------------------------------------------
function when(seconds) {
  const d = new Date(seconds * 1000);
  return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

async function loadHistory() {
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
            (run.n_explanations > 1 ? ` · ${run.n_explanations} explanations` : ""),
        ),
      ),
      el("button", {
        type: "button",
        class: "history-delete",
        title: "Delete this run",
        "aria-label": "Delete this run",
        onclick: () => deleteRun(run.id),
      }, "×"),
    );
    list.append(item);
  }
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

async function openRun(runId) {
  if (state.job) return;
  try {
    const run = await api("GET", `/api/runs/${runId}`);
    showError("");
    resetResults();
    state.run = run;
    $("prompt").value = run.prompt;
    $("system").value = run.system_prompt || "";
    $("system-box").open = !!run.system_prompt;
    $("max-new").value = run.max_new_tokens;
    $("output-card").hidden = false;
    location.hash = `run=${run.id}`;
    const last = run.explanations[run.explanations.length - 1];
    setSpan(last && last.settings.span ? last.settings.span : null);
    $("explain").disabled = false;
    if (last) {
      $("method").value = last.settings.method;
      onMethodChange();
      setParams(last.settings.params || {});
      $("matrix").checked = !!last.settings.matrix;
      // Show the latest edit with the units it removed, i.e. at its granularity.
      const edit = [...run.edits].reverse().find((e) => e.explanation_id === last.id);
      const query = edit ? `?granularity=${encodeURIComponent(edit.result.granularity)}` : "";
      const view = await api("GET", `/api/explanations/${last.id}${query}`);
      renderView(view);
      if (edit) renderEdit(edit.result);
    }
    loadHistory();
  } catch (err) {
    showError(err.message);
  }
}

function newRun() {
  state.run = null;
  resetResults();
  $("output-card").hidden = true;
  $("prompt").value = "";
  $("system").value = "";
  history.replaceState(null, "", location.pathname);
  loadHistory();
  $("prompt").focus();
}

// ----- method parameters: form fields generated from /api/info ------------------------------
// Parameters that change only memory use, not the result, are not offered.
const HIDDEN_PARAMS = new Set(["batch_size"]);

function methodSpec(name) {
  return state.info ? state.info.methods.find((m) => m.name === name) : undefined;
}

function paramField(param) {
  const id = `param-${param.name}`;
  const stored = state.paramValues[param.name];
  const value = stored !== undefined ? stored : param.default;
  let input;
  if (param.choices) {
    input = el("select", { id, dataset: { param: param.name, kind: "choice" } });
    for (const choice of param.choices) input.append(el("option", { value: choice }, choice));
    input.value = param.choices.includes(value) ? value : param.default;
  } else if (/^bool/.test(param.type)) {
    input = el("input", { id, type: "checkbox", dataset: { param: param.name, kind: "bool" } });
    input.checked = !!value;
  } else if (/\b(int|float)\b/.test(param.type)) {
    const integer = /\bint\b/.test(param.type);
    input = el("input", {
      id,
      type: "number",
      min: param.minimum ?? undefined,
      max: param.maximum ?? undefined,
      step: integer ? "1" : "any",
      placeholder: param.default === null ? "auto" : undefined,
      dataset: { param: param.name, kind: integer ? "int" : "float" },
    });
    input.value = value === null || value === undefined ? "" : String(value);
  } else {
    input = el("input", { id, type: "text", dataset: { param: param.name, kind: "text" } });
    input.value = value === null || value === undefined ? "" : String(value);
  }
  input.addEventListener("change", () => {
    state.paramValues[param.name] = input.type === "checkbox" ? input.checked : input.value;
  });
  return el("label", { class: "inline", id: `${id}-field`, title: param.help }, param.name.replace(/_/g, " "), input);
}

function renderParams(method) {
  const box = clear($("params"));
  const spec = methodSpec(method);
  if (!spec) return;
  for (const param of spec.params || []) {
    if (!HIDDEN_PARAMS.has(param.name)) box.append(paramField(param));
  }
}

// The chosen method's parameters as the request's `params`; an empty number means "default".
function readParams(method) {
  const params = {};
  const spec = methodSpec(method);
  if (!spec) return params;
  for (const node of $("params").querySelectorAll("[data-param]")) {
    const { param, kind } = node.dataset;
    if (kind === "bool") params[param] = node.checked;
    else if (kind === "int" || kind === "float") {
      if (node.value.trim() !== "") params[param] = Number(node.value);
    } else if (node.value !== "") params[param] = node.value;
  }
  return params;
}

// Put stored parameter values into the generated fields (a reopened or recomputed result).
function setParams(params) {
  for (const [name, value] of Object.entries(params)) {
    const node = $(`param-${name}`);
    if (!node) continue;
    if (node.type === "checkbox") node.checked = !!value;
    else node.value = value === null || value === undefined ? "" : String(value);
  }
}

// ----- set-up --------------------------------------------------------------------------------
function onMethodChange() {
  const method = $("method").value;
  renderParams(method);
  const spec = methodSpec(method);
  $("method-help").textContent = spec
    ? spec.description + (spec.token_level ? "" : " Computed on whole units: it can be regrouped coarser, not finer.")
    : "";
}

async function init() {
  $("generate").addEventListener("click", generate);
  $("explain").addEventListener("click", explain);
  $("job-cancel").addEventListener("click", cancelJob);
  $("whole-output").addEventListener("click", () => setSpan(null));
  $("output").addEventListener("mouseup", onOutputSelect);
  $("output").addEventListener("keyup", onOutputSelect);
  $("granularity").addEventListener("change", regroup);
  $("method").addEventListener("change", onMethodChange);
  $("mask-top").addEventListener("click", () => maskAndRegenerate({ top_k: Number($("mask-k").value) || 3 }));
  $("mask-k").addEventListener("input", renderRemoval);
  $("mask-picked").addEventListener("click", () => maskAndRegenerate({ units: [...state.picked] }));
  $("clear-picked").addEventListener("click", clearPicked);
  $("new-run").addEventListener("click", newRun);
  $("tab-text").addEventListener("click", () => showTab("text"));
  $("tab-heatmap").addEventListener("click", () => showTab("heatmap"));
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) generate();
  });
  $("explain").disabled = true;
  $("mask-top").disabled = true;
  try {
    state.info = await api("GET", "/api/info");
  } catch (err) {
    showError(`Cannot reach the promptxray server: ${err.message}`);
    return;
  }
  $("model-name").textContent = state.info.model;
  $("prompt").maxLength = 200000;
  for (const m of state.info.methods) $("method").append(el("option", { value: m.name }, m.name));
  for (const g of state.info.granularities) $("granularity").append(el("option", { value: g }, g));
  $("method").value = "grad_norm";
  $("granularity").value = "word";
  onMethodChange();
  await loadHistory();
  const match = /run=([0-9a-f]+)/.exec(location.hash);
  if (match) openRun(match[1]);
}

function showTab(name) {
  const text = name === "text";
  $("text-view").hidden = !text;
  $("heatmap-view").hidden = text;
  $("tab-text").classList.toggle("active", text);
  $("tab-heatmap").classList.toggle("active", !text);
  $("tab-text").setAttribute("aria-selected", String(text));
  $("tab-heatmap").setAttribute("aria-selected", String(!text));
}

document.addEventListener("DOMContentLoaded", init);
