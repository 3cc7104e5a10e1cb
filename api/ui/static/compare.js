// The compare page: one metric of several jobs overlaid, each job's epochs streamed over SSE.
"use strict";

(() => {
  const list = document.getElementById("compare-jobs");
  if (!list) return;
  const select = document.getElementById("metric");
  const box = document.querySelector('[data-testid="metric-chart"]');
  const PREFERRED = ["metrics/mAP50-95(B)", "metrics/accuracy_top1"];
  const jobs = Array.from(list.querySelectorAll("li")).map((li) => ({
    id: li.dataset.jobId, label: li.querySelector("a").textContent, epochs: new Map(),
  }));
  const keys = new Set();
  let chart = null;

  function flat(data) {
    const out = {};
    for (const group of [data.losses, data.metrics, data.lr]) {
      for (const [key, value] of Object.entries(group || {})) if (typeof value === "number") out[key] = value;
    }
    return out;
  }

  function redraw() {
    box.replaceChildren();
    chart = new TFCharts.MetricChart(box);
    const metric = select.value;
    const epochs = new Set();
    for (const job of jobs) for (const e of job.epochs.keys()) epochs.add(e);
    for (const e of Array.from(epochs).sort((a, b) => a - b)) {
      const values = {};
      for (const job of jobs) {
        const row = job.epochs.get(e);
        if (row && typeof row[metric] === "number") values[job.label] = row[metric];
      }
      chart.add(e, values);
    }
  }

  function addKeys(row) {
    let added = false;
    for (const key of Object.keys(row)) {
      if (keys.has(key)) continue;
      keys.add(key);
      select.append(TF.el("option", { value: key }, key));
      added = true;
    }
    if (added && !select.dataset.chosen) {
      const preferred = PREFERRED.find((key) => keys.has(key));
      if (preferred) select.value = preferred;
    }
  }

  select.addEventListener("change", () => { select.dataset.chosen = "1"; redraw(); });

  // Each job's stream resumes by itself after a cut or the server's stream lifetime (Last-Event-ID);
  // one refused with 429 (too many streams open) is started again after the last seq seen.
  function subscribe(job, after) {
    let last = after;
    let ended = false;
    const source = new EventSource(`/v1/jobs/${encodeURIComponent(job.id)}/events${last ? `?after=${last}` : ""}`);
    source.addEventListener("on_fit_epoch_end", (message) => {
      const event = JSON.parse(message.data);
      if (event.seq <= last) return;
      last = event.seq;
      const row = flat(event.data || {});
      job.epochs.set(event.data.epoch, row);
      addKeys(row);
      const metric = select.value;
      if (!chart) redraw();
      else if (typeof row[metric] === "number") chart.add(event.data.epoch, { [job.label]: row[metric] });
    });
    for (const type of ["job.succeeded", "job.failed", "job.cancelled"]) {
      source.addEventListener(type, () => { ended = true; source.close(); });
    }
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED && !ended) setTimeout(() => subscribe(job, last), 5000);
    });
  }

  for (const job of jobs) subscribe(job, 0);
})();
