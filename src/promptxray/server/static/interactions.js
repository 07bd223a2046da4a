// A joint method's strongest pairwise interactions (the server's `interactions`): a short list
// "needed together: A + B" / "either suffices: C / D" with the numbers, and, while a
// unit of a listed pair is hovered in the text or the list, its partners highlighted.

import { $, clear, el } from "./dom.js";

// The partners of each unit of the result shown ({index: [indices]}); empty without pairs.
let partners = {};

function units(indices) {
  return indices.flatMap((index) => [...document.querySelectorAll(`#text-view .unit[data-index="${index}"]`)]);
}

function highlight(indices, on) {
  for (const node of units(indices)) node.classList.toggle("partner", on);
}

// Hovering a unit of the text highlights the units it interacts with (delegated once, since
// the text is redrawn for every result).
let listening = false;
function listen() {
  if (listening) return;
  listening = true;
  const box = $("text-view");
  const hover = (on) => (event) => {
    const node = event.target.closest && event.target.closest(".unit");
    const found = node && partners[node.dataset.index];
    if (found) highlight(found, on);
  };
  box.addEventListener("mouseover", hover(true));
  box.addEventListener("mouseout", hover(false));
}

export function renderInteractions(view) {
  const box = clear($("interactions"));
  const found = view.interactions;
  partners = (found && found.partners) || {};
  box.hidden = !found;
  if (!found) return;
  listen();
  box.append(el("h3", {}, "Units that act together"), el("p", { class: "hint" }, found.note));
  const list = el("ul", { class: "interaction-list" });
  for (const pair of found.pairs) {
    const [a, b] = pair.texts.map((t) => t.trim() || t);
    list.append(
      el(
        "li",
        {
          class: pair.together ? "together" : "either",
          title: pair.detail,
          dataset: { units: pair.units.join(" "), value: String(pair.value) },
          onmouseenter: () => highlight(pair.units, true),
          onmouseleave: () => highlight(pair.units, false),
        },
        el("span", { class: "interaction-label" }, `${pair.label}: `),
        el("code", {}, a),
        pair.together ? " + " : " / ",
        el("code", {}, b),
        el("span", { class: "interaction-value" }, ` ${pair.value >= 0 ? "+" : "−"}${Math.abs(pair.value).toFixed(2)} nats`),
      ),
    );
  }
  box.append(list);
}
