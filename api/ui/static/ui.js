// Shared helpers of the dashboard pages (no build step, no dependencies).
"use strict";

const TF = (() => {
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

  // The CSRF token of this session: the API asks it of every state-changing request signed in by cookie.
  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Call the public v1 API as the signed-in browser; resolve to {ok, status, body}.
  async function api(path, options = {}) {
    const opts = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
    const method = (opts.method || "GET").toUpperCase();
    if (!["GET", "HEAD"].includes(method)) opts.headers["X-CSRF-Token"] = csrf();
    const response = await fetch(path, opts);
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    return { ok: response.ok, status: response.status, body };
  }

  // Make an element; text is always set as text (never parsed as HTML).
  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds) || seconds < 0) return "–";
    const s = Math.round(seconds);
    if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
    return `${s}s`;
  }

  function metric(value) {
    return typeof value === "number" ? Number(value.toPrecision(4)).toString() : "–";
  }

  // Seconds elapsed and left, extrapolating the fraction of epochs (and batches) done so far.
  function timing(job, now = Date.now()) {
    if (!job.started_at) return { elapsed: null, eta: null };
    const end = job.finished_at ? Date.parse(job.finished_at) : now;
    const elapsed = (end - Date.parse(job.started_at)) / 1000;
    if (job.finished_at) return { elapsed, eta: null };
    const progress = job.progress || {};
    const epochs = job.epochs || progress.epochs;
    let done = job.epoch || 0;
    if (progress.batches && progress.epoch === done + 1) done += Math.min(1, (progress.batch || 0) / progress.batches);
    return { elapsed, eta: epochs && done > 0 ? (elapsed * (epochs - done)) / done : null };
  }

  function statusBadge(status) {
    return el("span", { class: `status status-${status}` }, status);
  }

  return { TERMINAL, api, csrf, el, duration, metric, timing, statusBadge };
})();
