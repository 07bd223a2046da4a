// A context_cite result keeps its ablations: when the user picks another span of the same
// output, that span is re-explained from them at once (POST /api/retarget, no forward
// pass) instead of leaving the old result marked out of date until Explain is pressed.

import { api } from "./api.js";
import { $, showError, showNotice } from "./dom.js";
import { renderView } from "./result.js";
import { state } from "./state.js";

// Whether the shown result can answer `span` without the model: it kept its ablations
// (the server says so in its metadata), it is of the run on screen, it is not a contrast,
// and the form still asks for its method and units.
export function canRetarget(span, view = state.view) {
  const kept = view && view.metadata ? view.metadata.kept_ablations : null;
  if (!kept || !kept.retargetable || !span || !state.run || state.job) return false;
  const settings = view.settings || {};
  return (
    view.run_id === state.run.id &&
    !settings.contrast &&
    $("contrast").value === "" &&
    $("method").value === view.method &&
    $("granularity").value === view.granularity
  );
}

// Re-explain `span` from the shown result's kept ablations; its check follows as for a
// regrouped result (the view comes back with check_due).
export async function retarget(span) {
  const from = state.view;
  try {
    const view = await api("POST", "/api/retarget", { explanation_id: from.explanation_id, span });
    if (JSON.stringify(state.span) !== JSON.stringify(span)) return; // the user moved on
    renderView(view);
    showNotice("Re-explained from the kept ablations of the last result: no forward pass.");
  } catch (err) {
    showError(err.message);
  }
}
