// The heatmap tab: output tokens (or words, sentences, lines) × prompt units, grouped
// and coloured by the server; the page only places the cells.

import { checkRow, keepRowCheck } from "./check.js";
import { $, clear, el, fmtScore, paletteBar } from "./dom.js";

function visible(token) {
  return token.replace(/\n/g, "⏎").replace(/ /g, "·") || "∅";
}

const ROW_NAMES = { token: "output tokens", word: "output words", sentence: "output sentences", line: "output lines" };

// The heatmap as the server grouped and coloured it: rows (tokens, or output words,
// sentences, lines) come with their text, cells with their stop index. Header row and
// first column stay in view while the table scrolls (position: sticky in style.css);
// hovering a cell names its row, its column and its score.
export function renderHeatmap(view) {
  const table = clear($("heatmap"));
  const note = $("heatmap-note");
  keepRowCheck(view);
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
    " (the largest cell, its own scale). Hover a cell for its row, column and score." +
      (rows.by === "token"
        ? " Click a row's token to check that row against the token's probability."
        : " Group the rows by output tokens to check one row."),
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
    // Token rows check themselves on a click: the row's scores against its token's p.
    const label = rows.by === "token"
      ? el("th", { class: "rowhead checkable", title: text, dataset: { row: String(r) }, onclick: () => checkRow(view, r, shown) }, shown)
      : el("th", { class: "rowhead", title: text }, shown);
    const tr = el("tr", {}, label);
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
