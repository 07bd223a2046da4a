// The prompt editor: system prompt, prompt, and the conversation's further turns, read
// into the body the API takes and filled back from a saved run.

import { $, clear, el } from "./dom.js";

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

export function renumberTurns() {
  const first = $("system").value.trim() ? 2 : 1;
  turnItems().forEach((item, i) => {
    item.querySelector(".turn-number").textContent = `turn ${first + i}`;
  });
}

export function addTurn(role, content = "") {
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

export function clearTurns() {
  clear($("turns"));
}

// The prompt as the API takes it: prompt (+ system prompt), or messages once turns exist.
export function promptBody() {
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
export function fillEditor(run) {
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
