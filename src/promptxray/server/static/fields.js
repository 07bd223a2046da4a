// Errors about one input, in the user's words, under that input: the server names the
// request field a 4xx is about (`field`); this maps it to the page's input and its label,
// so "max_new_tokens: must be at most 2048" reads "Max new tokens must be at most 2048".

import { $, el } from "./dom.js";

// Request fields by the input that sets them (a method parameter: params.NAME → #param-NAME).
const INPUTS = {
  max_new_tokens: "max-new",
  prompt: "prompt",
  system_prompt: "system",
  response: "response",
  contrast: "contrast",
  check_k: "check-k",
  top_k: "mask-k",
  k: "check-k",
};

function inputFor(field) {
  if (!field) return null;
  const param = /^params\.(\w+)/.exec(field);
  const node = $(param ? `param-${param[1]}` : INPUTS[field] || "");
  return node && node.offsetParent !== null ? node : null;
}

// The words a person reads next to the input: its label's own text.
function labelOf(node) {
  const label = node.closest("label") || document.querySelector(`label[for="${node.id}"]`);
  if (!label) return node.getAttribute("aria-label") || node.id;
  const own = [...label.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join(" ");
  return own.replace(/\s+/g, " ").trim() || label.textContent.trim();
}

// "max_new_tokens: must be at most 2048" → "Max new tokens must be at most 2048".
function inWords(field, message, label) {
  const prefix = `${field}: `;
  if (!message.startsWith(prefix)) return message;
  const rest = message.slice(prefix.length);
  const name = label.charAt(0).toUpperCase() + label.slice(1);
  return `${name} ${rest}`;
}

// Put `err` under the input it is about; false when it names none the page shows.
export function showFieldError(err) {
  const node = inputFor(err.field);
  if (!node) return false;
  clearFieldErrors();
  const text = inWords(err.field, err.message, labelOf(node));
  node.setAttribute("aria-invalid", "true");
  const note = el("span", { class: "field-error", role: "alert", dataset: { field: err.field } }, text);
  const label = node.closest("label");
  if (label) {
    label.classList.add("has-field-error");
    label.append(note);
  } else {
    node.after(note);
  }
  node.addEventListener("input", clearFieldErrors, { once: true });
  return true;
}

export function clearFieldErrors() {
  for (const note of document.querySelectorAll(".field-error")) note.remove();
  for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  for (const node of document.querySelectorAll(".has-field-error")) node.classList.remove("has-field-error");
}
