// The faithfulness check next to a result: a badge (the verdict's first words in the
// server's tone; its tooltip the whole verdict), the deletion curve (p(target) per token
// against the number of top units removed, with the random sets and the top-k kept alone
// for reference) and the figures in words. A regrouped result's check, and one heatmap
// row's, is computed by a small job on the server (POST /api/check) and drawn only while
// the same result, at the same units, is still shown: never a check of other units.

import { pollJob } from "./api.js";
import { $, clear, el, fmt } from "./dom.js";
import { state } from "./state.js";

const SVG = "http://www.w3.org/2000/svg";

// An SVG element with its attributes and children (nodes, or values that become text).
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const ratio = (x) => `${fmt(x, 2)}×`;

// ----- badge, curve and figures ---------------------------------------------------------------
export function checkBadge(check) {
  return el(
    "span",
    { class: `check-badge tone-${check.tone}`, title: check.verdict, dataset: { tone: check.tone } },
    check.label,
  );
}

function badgeWithout(label, title) {
  return el("span", { class: "check-badge tone-none", title, dataset: { tone: "none" } }, label);
}

// The curve: x = top units removed (0..k), y = p-ratio per token on a log scale (1× dashed);
// the random k-sets as faint dots (and their range as a band) beside k; the top k kept
// alone as a labelled point on the right. Each point carries its value as data-ratio.
export function deletionCurve(check) {
  const curve = check.curve || [];
  if (curve.length < 2) return null;
  const k = curve.length - 1;
  const width = 250;
  const height = 110;
  const pad = { left: 40, right: 86, top: 10, bottom: 26 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const random = check.random_ratios || [];
  const kept = check.sufficiency_ratio;
  const values = [...curve, ...random, 1, ...(kept ? [kept] : [])].filter((v) => v > 0);
  let lo = Math.log(Math.min(...values));
  let hi = Math.log(Math.max(...values));
  if (hi - lo < 1e-6) {
    lo -= 0.1;
    hi += 0.1;
  }
  const x = (j) => pad.left + (j * plotW) / k;
  const y = (v) => pad.top + ((hi - Math.log(Math.max(v, 1e-300))) / (hi - lo)) * plotH;
  const randomX = x(k) + 28;
  const keptX = x(k) + 66;
  const chart = svg("svg", {
    class: "check-curve",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `p(target) per token with the top 0 to ${k} units removed: ${curve.map(ratio).join(", ")}`,
  });
  chart.append(
    svg("line", { class: "ref", x1: pad.left, x2: keptX + 6, y1: y(1), y2: y(1) }),
    svg("text", { class: "axis", x: pad.left - 4, y: y(1) + 3, "text-anchor": "end" }, "1×"),
    svg("text", { class: "axis", x: pad.left - 4, y: pad.top + 3, "text-anchor": "end" }, ratio(Math.exp(hi))),
    svg("text", { class: "axis", x: pad.left - 4, y: pad.top + plotH + 3, "text-anchor": "end" }, ratio(Math.exp(lo))),
    svg("text", { class: "axis", x: x(0), y: height - 12, "text-anchor": "middle" }, "0"),
    svg("text", { class: "axis", x: x(k), y: height - 12, "text-anchor": "middle" }, String(k)),
    svg("text", { class: "axis", x: pad.left + plotW / 2, y: height - 2, "text-anchor": "middle" }, "top units removed"),
  );
  if (random.length) {
    const top = y(Math.max(...random));
    const bottom = y(Math.min(...random));
    chart.append(
      svg("rect", { class: "random-band", x: randomX - 5, y: top - 2, width: 10, height: bottom - top + 4, rx: 3 }),
      svg("text", { class: "axis", x: randomX, y: height - 12, "text-anchor": "middle" }, "random"),
    );
    random.forEach((value, i) => {
      chart.append(
        svg(
          "circle",
          { class: "random-point", cx: randomX, cy: y(value), r: 2.5, "data-ratio": value, "data-set": i },
          svg("title", {}, `random ${k}-set ${i + 1} removed: ${ratio(value)}`),
        ),
      );
    });
  }
  chart.append(svg("polyline", { class: "curve-line", points: curve.map((v, j) => `${x(j)},${y(v)}`).join(" ") }));
  curve.forEach((value, j) => {
    chart.append(
      svg(
        "circle",
        { class: "curve-point", cx: x(j), cy: y(value), r: 3.5, "data-removed": j, "data-ratio": value },
        svg("title", {}, `top ${j} removed: ${ratio(value)} per token`),
      ),
    );
  });
  if (kept) {
    chart.append(
      svg(
        "rect",
        { class: "sufficiency-point", x: keptX - 3.5, y: y(kept) - 3.5, width: 7, height: 7, "data-ratio": kept },
        svg("title", {}, `only the top ${k} kept: ${ratio(kept)} per token`),
      ),
      svg("text", { class: "axis", x: keptX, y: height - 12, "text-anchor": "middle" }, `top ${k}`),
      svg("text", { class: "axis", x: keptX, y: height - 2, "text-anchor": "middle" }, "kept"),
    );
  }
  return chart;
}

// The figures behind the verdict, in words.
export function checkFigures(check) {
  if (check.reason) return el("p", { class: "check-figures" }, check.verdict);
  const k = check.k;
  const n = check.random_ratios.length;
  const parts = [
    `top ${k} removed: ${ratio(check.deletion_ratio)} per token`,
    `drops p more than ${check.beats_random} of ${n} random ${k}-${check.granularity} sets`,
    `only the top ${k} kept: ${ratio(check.sufficiency_ratio)}`,
    `LDS ${check.lds === null ? "n/a" : fmt(check.lds, 2)} over ${check.lds_ablations} ablations`,
    `${check.forward_passes} forward passes to check, ${fmt(check.seconds, 2)} s`,
  ];
  return el("p", { class: "check-figures" }, parts.join(" · "));
}

function checkBlock(check, heading) {
  const curve = deletionCurve(check);
  return el(
    "div",
    { class: "check-block", dataset: { granularity: check.granularity, token: check.token ?? "" } },
    el("div", { class: "check-line" }, heading ? el("span", { class: "check-heading" }, heading) : null, checkBadge(check)),
    curve,
    checkFigures(check),
  );
}

// ----- the result's check -----------------------------------------------------------------
const pending = new Map(); // one job per check asked: "explanation|granularity|token"

const keyOf = (view, token) => `${view.explanation_id}|${view.granularity}|${token ?? ""}`;
const stillShown = (view) =>
  state.view && state.view.explanation_id === view.explanation_id && state.view.granularity === view.granularity;

// Ask the server for a check (once per result, units and row); the answer is dropped when
// another result or other units are shown by then.
function ask(view, token) {
  const key = keyOf(view, token);
  if (!pending.has(key)) {
    const body = { explanation_id: view.explanation_id, granularity: view.granularity };
    if (token !== null && token !== undefined) body.token = token;
    const job = pollJob("/api/check", body).finally(() => pending.delete(key));
    pending.set(key, job);
  }
  return pending.get(key);
}

async function askForView(view) {
  try {
    const result = await ask(view, null);
    if (!stillShown(view)) return;
    state.view.check = result.check;
    state.view.check_due = false;
    renderCheck(state.view);
  } catch (err) {
    if (!stillShown(view)) return;
    const box = clear($("check-result"));
    box.append(
      el("div", { class: "check-line" }, badgeWithout("not checked", err.message)),
      el("p", { class: "check-figures check-error" }, err.message),
    );
  }
}

// The shown result's check: drawn, being computed (a regrouped result), or offered.
export function renderCheck(view) {
  const box = clear($("check-result"));
  box.dataset.granularity = view.granularity;
  if (view.check) {
    box.append(checkBlock(view.check));
    return;
  }
  if (view.check_due) {
    box.append(el("div", { class: "check-line" }, badgeWithout("checking…", `Checking at ${view.granularity} units…`)));
    askForView(view);
    return;
  }
  box.append(
    el(
      "div",
      { class: "check-line" },
      badgeWithout("not checked", "This result was explained without its faithfulness check."),
      el(
        "button",
        { type: "button", id: "check-now", class: "ghost", onclick: () => askAgain(view) },
        "Check it",
      ),
    ),
  );
}

function askAgain(view) {
  clear($("check-result")).append(el("div", { class: "check-line" }, badgeWithout("checking…", "Checking…")));
  askForView(view);
}

// ----- one heatmap row's check ------------------------------------------------------------------
let shownRow = null; // the key of the row check drawn under the heatmap

// A new result, or other units: the row check drawn for the last one goes.
export function keepRowCheck(view) {
  if (shownRow && !shownRow.startsWith(`${view.explanation_id}|${view.granularity}|`)) {
    shownRow = null;
    clear($("row-check")).hidden = true;
  }
}

// Check heatmap row `token` (one output token) against that token's probability.
export async function checkRow(view, token, label) {
  const box = clear($("row-check"));
  const key = keyOf(view, token);
  shownRow = key;
  box.hidden = false;
  const heading = `Output token ${token} “${label}”:`;
  box.append(el("div", { class: "check-line" }, el("span", { class: "check-heading" }, heading), badgeWithout("checking…", "Checking this row…")));
  try {
    const result = await ask(view, token);
    if (shownRow !== key || !stillShown(view)) return;
    clear(box).append(checkBlock(result.check, heading));
  } catch (err) {
    if (shownRow !== key) return;
    clear(box).append(
      el("div", { class: "check-line" }, el("span", { class: "check-heading" }, heading), badgeWithout("not checked", err.message)),
      el("p", { class: "check-figures check-error" }, err.message),
    );
  }
}
