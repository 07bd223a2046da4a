// promptxray prompt debugger: plain DOM, no build step, no network beyond this server.
// Every text that came from a user or the model is put in the page with textContent
// (via el()/text()), never parsed as HTML, so a prompt like <img onerror=...> is just text.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  run: null, // {id, prompt, system_prompt, messages, output_source, max_new_tokens, output}
  span: null, // [start, end) in the output, or null for all of it
  view: null, // the explanation view being shown
  picked: new Set(), // unit indices (at the current granularity) picked for masking
  job: null, // the job this page is waiting on
  paramValues: {}, // method parameters the user changed, by name (kept across methods)
  gamma: 1, // colour intensity the server colours with (the slider)
  rows: "token", // how the server groups the heatmap's rows: token, word, sentence, line
  runDetail: null, // the open run with all its explanations and mask experiments
  dragged: false, // a mouse drag just set the target (the click that follows is ignored)
};

// ----- access token ------------------------------------------------------------------
// A server bound beyond localhost asks for the token it printed at start. The address
// it printed carries it as ?token=…; the page keeps it (per server origin) and sends it
// with every API call, then takes it out of the address bar.
const TOKEN_KEY = "promptxray-token";

function adoptUrlToken() {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
}

function accessToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

// Export links are plain downloads: they carry the token in their query.
function withToken(path) {
  const token = accessToken();
  return token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;
}

function askForToken(message) {
  const box = $("token-box");
  box.hidden = false;
  $("token-message").textContent = message;
  $("token-input").focus();
}

function saveToken() {
  const token = $("token-input").value.trim();
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  location.reload();
}

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
// Neutral notices (a cancelled job, a result that could not be saved): not errors.
function showNotice(message) {
  const box = $("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

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
  const token = accessToken();
  if (token) options.headers["X-Promptxray-Token"] = token;
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
    if (response.status === 401) askForToken(error.message);
    throw error;
  }
  return data;
}

// ----- jobs: submit, poll, cancel -----------------------------------------------------
const busyButtons = ["generate", "use-response", "explain", "mask-top", "mask-picked"];

// While this page waits on a job its action buttons rest (the server would queue more).
function setBusy(busy) {
  if (busy) {
    for (const id of busyButtons) $(id).disabled = true;
  } else {
    $("generate").disabled = false;
    $("use-response").disabled = false;
    $("explain").disabled = !state.run;
    $("mask-top").disabled = !state.view;
    updatePicked();
  }
}

class JobCancelledError extends Error {}

async function runJob(path, body, label, onPartial) {
  showError("");
  showNotice("");
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
      if (job.status === "done") {
        if (job.result && job.result.warning) showNotice(job.result.warning);
        return job.result;
      }
      if (job.status === "error") throw new Error(job.error);
      if (job.status === "cancelled") throw new JobCancelledError(`${label} was cancelled.`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, 40 + 10 * polls)));
    }
  } finally {
    state.job = null;
    box.hidden = true;
    setBusy(false);
  }
}

// A cancelled job is the user's choice, not a failure: a neutral notice, not a red error.
function reportFailure(err) {
  if (err instanceof JobCancelledError) showNotice(err.message);
  else showError(err.message);
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
  if (palette.floor) {
    box.append(el("span", { class: "legend-note" }, `uncoloured: within ${Math.round(100 * palette.floor)}% of zero`));
  }
  if (view.selected && view.selected.length) {
    box.append(el("span", { class: "legend-note" }, `underlined: the ${view.selected.length} units ${view.method} chose together`));
  }
}

// ----- output and the target: drag-select, click a word, shift-click to extend ----------
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

function renderOutput(text, span, streaming = false) {
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
function onOutputSelect() {
  if (!state.run || state.job) return;
  const picked = selectionInOutput();
  if (!picked) return;
  state.dragged = true;
  if (!picked.span) {
    showError("The selection is only whitespace: select or click a word of the output to explain.");
    return;
  }
  showError("");
  setSpan(picked.span);
}

// Click a word: it becomes the target. Shift-click: the target grows to reach that word.
function onOutputClick(event) {
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
  showError("");
  setSpan(span);
}

// Shift-click must not start the browser's own selection extension.
function onOutputMouseDown(event) {
  state.dragged = false;
  if (event.shiftKey) event.preventDefault();
}

// ----- the salience view -------------------------------------------------------------------
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
function paintView(view, boxes, options = {}) {
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
  $("top-order").textContent = view.signed ? "(by |score|)" : "";
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

// A joint method's search, instead of a list of near-zero scores: where it started,
// what it spent, how far it pushed log p(target) down, and its best value as it went.
function renderSearch(view) {
  const box = clear($("search-detail"));
  const search = view.search;
  box.hidden = !search;
  if (!search) return;
  box.append(el("h3", {}, `${view.method} search`));
  const facts = el("dl", { class: "facts" });
  const fact = (name, value) => facts.append(el("dt", {}, name), el("dd", {}, value));
  if (search.chosen) fact("chosen together", search.chosen.map((t) => t.trim()).join(" + ") || "–");
  if (search.start) fact("best start", search.start);
  if (search.spent !== undefined) {
    fact("passes", search.budget !== undefined ? `${search.spent} of a budget of ${search.budget}` : String(search.spent));
  }
  if (search.passes_by_phase) {
    fact("by phase", Object.entries(search.passes_by_phase).map(([k, v]) => `${k} ${v}`).join(" · "));
  }
  if (search.log_prob_drop !== undefined) {
    fact(
      "log p(target) drop",
      `${fmt(search.log_prob_drop)} (from ${fmt(search.baseline_objective)} to ${fmt(search.objective)})`,
    );
  }
  if (search.accepted_swaps !== undefined) fact("accepted swaps", String(search.accepted_swaps));
  box.append(facts);
  if (search.starts && search.starts.length) {
    const starts = el("ul", { class: "starts" });
    for (const start of search.starts) {
      starts.append(
        el("li", {}, `${start.name}: `, el("code", {}, start.units.map((t) => t.trim()).join(" + ")), ` → ${fmt(start.objective)}`),
      );
    }
    box.append(el("div", { class: "hint" }, "Starting sets (log p(target) with them masked):"), starts);
  }
  if (search.trajectory && search.trajectory.length > 1) box.append(sparkline(search.trajectory));
}

// The best log p(target) found against passes spent, as a small line (SVG built with DOM calls).
function sparkline(points) {
  const NS = "http://www.w3.org/2000/svg";
  const w = 240;
  const h = 48;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => (x1 > x0 ? ((x - x0) / (x1 - x0)) * (w - 4) + 2 : w / 2);
  const sy = (y) => (y1 > y0 ? h - 2 - ((y - y0) / (y1 - y0)) * (h - 4) : h / 2);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(h));
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `best log p(target) from ${fmt(ys[0])} to ${fmt(ys[ys.length - 1])} over ${x1} passes`);
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "));
  svg.append(line);
  const title = document.createElementNS(NS, "title");
  title.textContent = "best log p(target) so far, against forward passes spent";
  svg.append(title);
  return el("figure", { class: "spark" }, svg, el("figcaption", { class: "hint" }, `best log p(target) as the search spent its ${x1} passes`));
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

const ROW_NAMES = { token: "output tokens", word: "output words", sentence: "output sentences", line: "output lines" };

// The heatmap as the server grouped and coloured it: rows (tokens, or output words,
// sentences, lines) come with their text, cells with their stop index. Header row and
// first column stay in view while the table scrolls (position: sticky in style.css);
// hovering a cell names its row, its column and its score.
function renderHeatmap(view) {
  const table = clear($("heatmap"));
  const note = $("heatmap-note");
  if (!view.matrix) {
    note.textContent = view.matrix_note ||
      "No heatmap for this result: tick “Heatmap” before Explain to compute target tokens × prompt units" +
      " (some methods give only one score per unit).";
    return;
  }
  const palette = view.matrix_palette;
  const rows = view.matrix_rows || { by: "token", labels: view.target_tokens, tokens: view.target_tokens.map((_, i) => [i]) };
  $("heatmap-rows").value = rows.by;
  const grouped = rows.by === "token" ? "" : ` (${view.target_tokens.length} tokens, combined by the method's rule)`;
  // A contrast's rows: the target's tokens, then the contrast's ("vs …", sign flipped).
  const what = view.contrast
    ? "target tokens, then the contrast's tokens (“vs …”, log p subtracted)"
    : `explained ${ROW_NAMES[rows.by].replace(/s$/, view.matrix.length === 1 ? "" : "s")}`;
  note.replaceChildren(
    `Rows: the ${view.matrix.length} ${what}${grouped}. ` +
      `Columns: the ${view.units.length} source units. `,
    paletteBar(palette),
    " ",
    el("span", { id: "heatmap-caption" }, palette.caption),
    " (the largest cell, its own scale). Hover a cell for its row, column and score.",
  );
  const head = el("tr", {}, el("th", { class: "corner" }, `${ROW_NAMES[rows.by]} ↓ / source →`));
  for (const unit of view.units) {
    const label = unit.text.length > 24 ? `${unit.text.slice(0, 23)}…` : unit.text;
    head.append(el("th", { class: "col", title: unit.text }, el("span", {}, label)));
  }
  table.append(el("thead", {}, head));
  const body = el("tbody");
  view.matrix.forEach((row, r) => {
    const text = rows.labels[r] ?? "";
    const shown = rows.by === "token" ? visible(text) : text.replace(/\n/g, "⏎");
    const tr = el("tr", {}, el("th", { class: "rowhead", title: text }, shown));
    row.forEach((value, c) => {
      tr.append(
        el("td", {
          title: `${JSON.stringify(text)} ← ${JSON.stringify(view.units[c].text)}: ${fmtScore(value, palette.signed, 4)}`,
          style: { backgroundColor: palette.stops[view.matrix_stops[r][c]] },
        }),
      );
    });
    body.append(tr);
  });
  table.append(body);
}

// Grouping the heatmap's rows is the server's (the method's rule applies): no model call.
async function regroupRows() {
  state.rows = $("heatmap-rows").value;
  if (!state.view) return;
  try {
    const view = await api("GET", viewPath(state.view.explanation_id, state.view.granularity));
    if (state.view && view.explanation_id === state.view.explanation_id) renderView(view);
  } catch (err) {
    showError(err.message);
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
  if (m.forward_passes !== undefined) parts.push(`${m.forward_passes} forward, ${m.backward_passes} backward passes`);
  // As the other views' cost summary: the masking operator of methods that mask.
  const masking = m.masking || (m.params || {}).masking;
  if (masking && m.family && m.family !== "gradient") parts.push(`masking: ${masking}`);
  // Integrated gradients: how far its scores fall from the sum completeness promises.
  if (view.completeness) parts.push(view.completeness);
  // A contrast: both log-probabilities and their difference, before and after masking.
  if (view.contrast) parts.push(view.contrast);
  if (view.refinement) parts.push(view.refinement);
  // A pasted response is scored by this model, not written by it: say so.
  if (view.output_source === "given") parts.push("response supplied, not generated");
  $("result-meta").textContent = parts.join(" · ");
}

function renderView(view) {
  state.view = view;
  $("gamma").value = String(view.palette.gamma || 1);
  $("gamma-value").textContent = fmt(view.palette.gamma || 1, 1);
  $("result-card").hidden = false;
  $("result-card").dataset.explanation = view.explanation_id;
  $("mask-card").hidden = false;
  $("granularity").value = view.granularity;
  renderMeta(view);
  renderLegend(view);
  renderSalience(view);
  renderTop(view);
  renderHeatmap(view);
  renderSearch(view);
  renderRunResults();
  const q = `granularity=${encodeURIComponent(view.granularity)}`;
  $("export-json").href = withToken(`/api/explanations/${view.explanation_id}/export?format=json&${q}`);
  $("export-html").href = withToken(`/api/explanations/${view.explanation_id}/export?format=html&${q}`);
  $("mask-top").disabled = !!state.job;
  $("mask-k").max = String(view.units.length);
  renderRemoval();
  updatePicked();
}

// The shown result again from the server (no model call): another granularity or intensity.
function viewPath(explanationId, granularity) {
  const query = new URLSearchParams({ gamma: String(state.gamma), rows: state.rows });
  if (granularity) query.set("granularity", granularity);
  return `/api/explanations/${explanationId}?${query}`;
}

// The intensity slider: the server recolours with the new gamma; picks are kept.
let gammaTimer = null;
function onGammaInput() {
  state.gamma = Number($("gamma").value) || 1;
  $("gamma-value").textContent = fmt(state.gamma, 1);
  clearTimeout(gammaTimer);
  gammaTimer = setTimeout(async () => {
    if (!state.view) return;
    try {
      const view = await api("GET", viewPath(state.view.explanation_id, state.view.granularity));
      if (state.view && view.explanation_id === state.view.explanation_id) renderView(view);
    } catch (err) {
      showError(err.message);
    }
  }, 120);
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
// Text pieces with the removed ones struck through ({text, removed} from the server).
function appendPieces(container, pieces, title) {
  for (const piece of pieces) {
    if (piece.removed) container.append(el("del", { class: "removed", title }, piece.text));
    else container.append(piece.text);
  }
}

function renderEdit(edit) {
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
    await refreshRunDetail();
    renderRunResults();
    $("mask-result").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (err) {
    reportFailure(err);
  }
}

// ----- main actions ------------------------------------------------------------------------
function resetResults() {
  state.view = null;
  state.runDetail = null;
  $("run-results").hidden = true;
  state.picked.clear();
  $("result-card").hidden = true;
  $("mask-card").hidden = true;
  $("mask-result").hidden = true;
}

// ----- the conversation editor ----------------------------------------------------------
// The prompt box is the first user turn (after the optional system prompt); "Add turn"
// appends turns, each with a role and a text, each removable. The server checks the
// conversation (promptxray.conversation), so the page only collects it.
const ROLES = ["system", "user", "assistant"];

function turnItems() {
  return [...document.querySelectorAll("#turns .turn")];
}

// The role a new turn most likely has: the other side of the last turn.
function nextRole() {
  const items = turnItems();
  const last = items.length ? items[items.length - 1].querySelector(".turn-role").value : "user";
  return last === "user" ? "assistant" : "user";
}

function renumberTurns() {
  const first = $("system").value.trim() ? 2 : 1;
  turnItems().forEach((item, i) => {
    item.querySelector(".turn-number").textContent = `turn ${first + i}`;
  });
}

function addTurn(role, content = "") {
  const select = el("select", { class: "turn-role", "aria-label": "Role" }, ...ROLES.map((r) => el("option", { value: r }, r)));
  select.value = role || nextRole();
  const text = el("textarea", { class: "turn-text", rows: "3", spellcheck: "false", "aria-label": "Turn text" });
  text.value = content;
  const item = el("div", { class: "turn" });
  const remove = el("button", {
    type: "button",
    class: "ghost danger turn-remove",
    title: "Remove this turn",
    onclick: () => {
      item.remove();
      renumberTurns();
    },
  }, "Remove");
  item.append(el("div", { class: "turn-head" }, el("span", { class: "turn-number" }), select, el("span", { class: "spacer" }), remove), text);
  $("turns").append(item);
  renumberTurns();
  return item;
}

function clearTurns() {
  clear($("turns"));
}

// The prompt as the API takes it: prompt (+ system prompt), or messages once turns exist.
function promptBody() {
  const prompt = $("prompt").value;
  const system = $("system").value;
  const turns = turnItems().map((item) => ({
    role: item.querySelector(".turn-role").value,
    content: item.querySelector(".turn-text").value,
  }));
  if (!turns.length) return { prompt, system_prompt: system.trim() ? system : null };
  const messages = [];
  if (system.trim()) messages.push({ role: "system", content: system });
  if (prompt.trim()) messages.push({ role: "user", content: prompt });
  return { messages: [...messages, ...turns] };
}

// A run reopened from the history back into the editor: system, first user turn, the rest.
function fillEditor(run) {
  clearTurns();
  const messages = run.messages ? [...run.messages] : null;
  if (!messages) {
    $("prompt").value = run.prompt;
    $("system").value = run.system_prompt || "";
  } else {
    $("system").value = messages.length && messages[0].role === "system" ? messages.shift().content : "";
    $("prompt").value = messages.length && messages[0].role === "user" ? messages.shift().content : "";
    for (const m of messages) addTurn(m.role, m.content);
  }
  $("system-box").open = !!$("system").value;
  $("response").value = run.output_source === "given" ? run.output : "";
  $("response-box").open = run.output_source === "given";
}

function showOutputSource() {
  $("output-source").hidden = !(state.run && state.run.output_source === "given");
}

// Generate an answer, or (with `response`) record a pasted one as the run's output.
async function startRun(response) {
  const body = { ...promptBody(), max_new_tokens: Number($("max-new").value) || 64 };
  if (body.prompt !== undefined && !body.prompt.trim()) {
    showError("The prompt is empty: type some text first.");
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

function generate() {
  return startRun();
}

function useResponse() {
  return startRun($("response").value);
}

// The "instead of…" field: a contrast when anything is typed (spaces count: " Red").
function contrastValue() {
  const value = $("contrast").value;
  return value === "" ? null : value;
}

async function explain() {
  if (!state.run) return;
  const method = $("method").value;
  const body = {
    run_id: state.run.id,
    span: state.span,
    method,
    granularity: $("granularity").value,
    matrix: $("matrix").checked,
    params: readParams(method),
    contrast: contrastValue(),
  };
  if (!(await costAccepted(body))) return;
  await explainWith(body);
}

// The predicted cost next to Explain; a long job (the server says which) runs only once
// the user agrees. A request the server refuses is left for the explain call to report.
async function costAccepted(body) {
  let estimate;
  try {
    estimate = await api("POST", "/api/estimate", body);
  } catch (err) {
    $("estimate").textContent = "";
    return true;
  }
  $("estimate").textContent = estimate.line;
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
  await explainWith({
    run_id: view.run_id,
    span: settings.span,
    method: settings.method,
    granularity: wanted,
    matrix: !!settings.matrix,
    params,
    contrast: settings.contrast || null,
  });
}

// Switching granularity re-aggregates the stored result on the server: no model call.
// A result computed by masking whole units cannot be regrouped (409): offer to recompute.
async function regroup() {
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
            (run.n_explanations > 1 ? ` · ${run.n_explanations} explanations` : "") +
            (run.saved === false ? " · not saved (kept until the server stops)" : ""),
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

async function refreshRunDetail() {
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
    setSpan(settings.span || null);
  }
  const granularity = edit ? edit.result.granularity : null;
  const view = await api("GET", viewPath(explanationId, granularity));
  state.picked.clear();
  $("mask-result").hidden = true;
  renderView(view);
  if (edit) renderEdit({ ...edit.result, edit_id: edit.id });
}

function settingsLabel(settings) {
  const span = settings.span ? ` · chars ${settings.span[0]}–${settings.span[1]}` : " · whole output";
  const contrast = settings.contrast ? ` · instead of ${JSON.stringify(settings.contrast)}` : "";
  return `${settings.method} · ${settings.granularity}${span}${contrast}`;
}

// Every explanation of the open run, each with its mask experiments: all of them reopen.
function renderRunResults() {
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

function newRun() {
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

// ----- compare two runs or explanations ---------------------------------------------------
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

async function openCompare(a, b) {
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

function closeCompare() {
  document.body.classList.remove("comparing");
  $("compare-card").hidden = true;
  if (/compare=/.test(location.hash)) history.replaceState(null, "", location.pathname + (state.run ? `#run=${state.run.id}` : ""));
}

async function loadCompare() {
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
  $(`cmp-${key}-title`).textContent = `${key.toUpperCase()}: ${title} · ${when(run.created)}`;
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
  $("use-response").addEventListener("click", useResponse);
  $("add-turn").addEventListener("click", () => addTurn().querySelector(".turn-text").focus());
  $("system").addEventListener("input", renumberTurns);
  $("explain").addEventListener("click", explain);
  $("job-cancel").addEventListener("click", cancelJob);
  $("whole-output").addEventListener("click", () => setSpan(null));
  $("output").addEventListener("mousedown", onOutputMouseDown);
  $("output").addEventListener("mouseup", onOutputSelect);
  $("output").addEventListener("click", onOutputClick);
  $("output").addEventListener("keyup", onOutputSelect);
  $("granularity").addEventListener("change", regroup);
  $("method").addEventListener("change", onMethodChange);
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
    showError(`Cannot reach the promptxray server: ${err.message}`);
    return;
  }
  $("model-name").textContent = state.info.model;
  $("jobs-note").textContent = state.info.jobs_note;
  $("prompt").maxLength = 200000;
  for (const m of state.info.methods) $("method").append(el("option", { value: m.name }, m.name));
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
