// The page's only road to the server: the access token, JSON calls, and the jobs it
// submits, polls and cancels (the model work runs in the server's queue).

import { $, showError, showNotice } from "./dom.js";
import { clearFieldErrors, showFieldError } from "./fields.js";
import { setBusy, state } from "./state.js";

// ----- access token ------------------------------------------------------------------
// A server bound beyond localhost asks for the token it printed at start. The address
// it printed carries it as ?token=…; the page keeps it (per server origin) and sends it
// with every API call, then takes it out of the address bar.
const TOKEN_KEY = "promptxray-token";

export function adoptUrlToken() {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
}

function accessToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

// Export links are plain downloads: they carry the token in their query.
export function withToken(path) {
  const token = accessToken();
  return token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;
}

function askForToken(message) {
  const box = $("token-box");
  box.hidden = false;
  $("token-message").textContent = message;
  $("token-input").focus();
}

export function saveToken() {
  const token = $("token-input").value.trim();
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  location.reload();
}

export async function api(method, path, body) {
  const options = { method, headers: {} };
  const token = accessToken();
  if (token) options.headers["X-Promptxray-Token"] = token;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : `${response.status} ${response.statusText}`;
    const error = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    error.status = response.status;
    error.field = data && data.field ? data.field : null;
    if (response.status === 401) askForToken(error.message);
    throw error;
  }
  return data;
}

// ----- jobs: submit, poll, cancel -----------------------------------------------------
class JobCancelledError extends Error {}

export async function runJob(path, body, label, onPartial) {
  showError("");
  showNotice("");
  clearFieldErrors();
  setBusy(true);
  const box = $("job");
  const bar = $("job-progress");
  box.hidden = false;
  $("job-label").textContent = `${label}: starting…`;
  bar.removeAttribute("value");
  try {
    const ref = await api("POST", path, body);
    state.job = ref.job_id;
    // Poll fast at first (short jobs finish sooner on screen), then ease off.
    for (let polls = 0; ; polls += 1) {
      const job = await api("GET", `/api/jobs/${ref.job_id}`);
      if (job.status === "queued") {
        $("job-label").textContent = `${label}: queued behind ${job.queue_position} job(s)…`;
      } else if (job.status === "running") {
        const part = job.total ? ` ${job.done}/${job.total}` : "";
        $("job-label").textContent = `${label}…${part}`;
        if (job.total) {
          bar.max = job.total;
          bar.value = job.done;
        }
      }
      if (onPartial && job.partial) onPartial(job.partial);
      if (job.status === "done") {
        if (job.result && job.result.warning) showNotice(job.result.warning);
        return job.result;
      }
      if (job.status === "error") throw new Error(job.error);
      if (job.status === "cancelled") throw new JobCancelledError(`${label} was cancelled.`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, 40 + 10 * polls)));
    }
  } finally {
    state.job = null;
    box.hidden = true;
    setBusy(false);
  }
}

// A small job the page waits on quietly (a check): no progress bar, no busy buttons, so it
// never takes the place of the job the page shows.
export async function pollJob(path, body) {
  const ref = await api("POST", path, body);
  for (let polls = 0; ; polls += 1) {
    const job = await api("GET", `/api/jobs/${ref.job_id}`);
    if (job.status === "done") return job.result;
    if (job.status === "error") throw new Error(job.error);
    if (job.status === "cancelled") throw new Error("The check was cancelled.");
    await new Promise((resolve) => setTimeout(resolve, Math.min(400, 40 + 20 * polls)));
  }
}

// A cancelled job is the user's choice, not a failure: a neutral notice, not a red error.
// An error about one input goes under that input; any other in the page's error box.
export function reportFailure(err) {
  if (err instanceof JobCancelledError) showNotice(err.message);
  else if (!showFieldError(err)) showError(err.message);
}

export async function cancelJob() {
  if (!state.job) return;
  $("job-label").textContent = "Cancelling…";
  try {
    await api("POST", `/api/jobs/${state.job}/cancel`);
  } catch (err) {
    showError(err.message);
  }
}
