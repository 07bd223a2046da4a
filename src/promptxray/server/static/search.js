// A joint method's search detail (xprompt): where it started, what it spent, and its
// best log p(target) as it went, drawn as a small SVG line.

import { $, clear, el, fmt } from "./dom.js";

// A joint method's search, instead of a list of near-zero scores: where it started,
// what it spent, how far it pushed log p(target) down, and its best value as it went.
export function renderSearch(view) {
  const box = clear($("search-detail"));
  const search = view.search;
  box.hidden = !search;
  if (!search) return;
  box.append(el("h3", {}, `${view.method} search`));
  const facts = el("dl", { class: "facts" });
  const fact = (name, value) => facts.append(el("dt", {}, name), el("dd", {}, value));
  if (search.chosen) fact("chosen together", search.chosen.map((t) => t.trim()).join(" + ") || "–");
  if (search.start) fact("best start", search.start);
  // The budget counts prompts scored, each one forward pass; the result's count (meta line)
  // also has the passes outside the budget: the gradient's forward, shared prefixes.
  if (search.spent !== undefined) {
    const budget = search.budget !== undefined ? ` of a budget of ${search.budget}` : "";
    const total = (view.metadata || {}).forward_passes;
    const outside = total !== undefined && total > search.spent ? total - search.spent : 0;
    fact(
      "prompts scored",
      `${search.spent}${budget} (one forward pass each)` +
        (outside ? `; the ${total} forward passes of this result also count ${outside} outside the budget (the gradient's forward, shared prefixes)` : ""),
    );
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
