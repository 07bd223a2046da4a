// What the page holds (the open run, the shown result, picks, the job it waits on) and
// which action buttons that state enables. Every view reads and writes this one object.

import { $ } from "./dom.js";

export const state = {
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
  stale: false, // the shown result is of another request than the form's (freshness.js)
};

// ----- the action buttons --------------------------------------------------------------
const busyButtons = ["generate", "use-response", "explain", "mask-top", "mask-picked"];

// While this page waits on a job its action buttons rest (the server would queue more).
export function setBusy(busy) {
  if (busy) {
    for (const id of busyButtons) $(id).disabled = true;
  } else {
    $("generate").disabled = false;
    $("use-response").disabled = false;
    $("explain").disabled = !state.run;
    $("mask-top").disabled = !state.view || state.stale;
    updatePicked();
  }
}

// The mask buttons follow the picks (and rest while a job runs).
export function updatePicked() {
  const n = state.picked.size;
  $("mask-picked").textContent = `Remove picked (${n})`;
  $("mask-picked").disabled = n === 0 || !!state.job || state.stale;
  $("clear-picked").disabled = n === 0;
}
