// Shared DOM helpers of the prompt debugger: no imports, nothing that knows the page's state.
// Every text that came from a user or the model is put in the page with textContent
// (via el()/text nodes), never parsed as HTML, so a prompt like <img onerror=...> is just text.

export const $ = (id) => document.getElementById(id);

// An element with its props (class, dataset, style, on… listeners, attributes) and children
// (nodes, or values that become text nodes).
export function el(tag, props = {}, ...children) {
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

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return x.toExponential(2);
  return x.toFixed(digits);
}

// Neutral notices (a cancelled job, a result that could not be saved): not errors.
export function showNotice(message) {
  const box = $("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

// `action` ({label, onclick}) adds one button after the message, e.g. "Recompute at token".
export function showError(message, action) {
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

// ----- colours ------------------------------------------------------------------------
// The page has no colour scale of its own. Units arrive with their colour (unit.color),
// heatmap cells with the index of their stop (view.matrix_stops) in the server's
// palette ({signed, peak, stops, legend, caption, gamma, floor}): the rule from a value
// to a colour, near-zero cut and intensity included, is promptxray/render/palette.py's.
export function paletteBar(palette) {
  return el("span", {
    class: "legend-bar",
    style: { background: `linear-gradient(to right, ${palette.stops.join(", ")})` },
  });
}

// Signed methods show the sign of every score, unsigned ones the plain magnitude.
export function fmtScore(x, signed, digits = 3) {
  return (signed && x > 0 ? "+" : "") + fmt(x, digits);
}

// A history or compare entry's time, short.
export function when(seconds) {
  const d = new Date(seconds * 1000);
  return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
