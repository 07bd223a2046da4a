// The explain form's method part: the method's description and one field per declared
// parameter, generated from /api/info, read into a request and set from a saved one.

import { $, clear, el } from "./dom.js";
import { state } from "./state.js";

// Parameters that change only time or memory use, not the result, are not offered:
// batch sizes, and grad_x_input's unit_heatmap (the same heatmap numbers, computed at
// the units where that is cheaper), so the Heatmap checkbox is the one heatmap control.
export const HIDDEN_PARAMS = new Set(["batch_size", "unit_heatmap"]);

export function methodSpec(name) {
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
export function readParams(method) {
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
export function setParams(params) {
  for (const [name, value] of Object.entries(params)) {
    const node = $(`param-${name}`);
    if (!node) continue;
    if (node.type === "checkbox") node.checked = !!value;
    else node.value = value === null || value === undefined ? "" : String(value);
  }
}

// A method chosen: its parameter fields and its help, all in the server's words (the
// method's description and how its results regroup, from /api/info).
export function onMethodChange() {
  const method = $("method").value;
  renderParams(method);
  const spec = methodSpec(method);
  $("method-help").textContent = spec ? [spec.description, spec.regrouping].filter(Boolean).join(" ") : "";
}

// The method menu, from the served specs: every registered method, its summary on hover.
export function fillMethods(select, methods) {
  for (const m of methods) select.append(el("option", { value: m.name, title: m.summary || m.description }, m.name));
}
