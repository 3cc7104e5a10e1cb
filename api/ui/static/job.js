// The job page: live charts from the SSE event stream, the status from polling, the log followed.
"use strict";

(() => {
  const root = document.getElementById("job");
  if (!root) return;
  const jobId = root.dataset.jobId;
  const base = `/v1/jobs/${encodeURIComponent(jobId)}`;
  const $ = (selector) => document.querySelector(selector);
  const POLL_MS = 2000;
  const LOG_LINES = 1000;
  const RESUBSCRIBE_MS = 5000;
  // The headline metrics, in the server's order of preference, and the job's best so far: new
  // epochs are compared against it, so the page agrees with the API's `best`.
  const PRIMARY = root.dataset.primaryMetrics.split(",");

  const job = { id: jobId, status: root.dataset.status, started_at: root.dataset.startedAt || null,
    finished_at: root.dataset.finishedAt || null, epoch: 0, epochs: null, progress: null };
  const progressBox = $('[data-testid="epoch-progress"]');
  job.epoch = Number(progressBox.dataset.epoch) || 0;
  job.epochs = Number(progressBox.dataset.epochs) || null;
  const best = root.dataset.bestMetric === undefined ? { name: null, value: null, epoch: null }
    : { name: root.dataset.bestMetric, value: Number(root.dataset.bestValue), epoch: Number(root.dataset.bestEpoch) };

  const charts = {};
  for (const box of document.querySelectorAll('[data-testid="metric-chart"]')) {
    charts[box.dataset.chart] = new TFCharts.MetricChart(box);
  }

  // --- header --------------------------------------------------------------------------------------

  function setStatus(status) {
    if (!status || status === job.status && $('[data-testid="job-status"]').textContent === status) return;
    job.status = status;
    const badge = $('[data-testid="job-status"]');
    badge.textContent = status;
    badge.className = `status status-${status}`;
    if (TF.TERMINAL.has(status) || status === "cancelling") {
      const form = $("#cancel-form");
      if (form) form.remove();
    }
  }

  function setEpoch(epoch, epochs) {
    if (typeof epochs === "number") job.epochs = epochs;
    if (typeof epoch === "number" && epoch >= job.epoch) job.epoch = epoch;
    progressBox.dataset.epoch = String(job.epoch);
    progressBox.dataset.epochs = job.epochs ? String(job.epochs) : "";
    const bar = $("#epoch-bar");
    bar.max = job.epochs || 1;
    bar.value = job.epoch;
    $("#epoch-text").textContent = `${job.epoch}/${job.epochs || "?"}`;
  }

  function tick() {
    const t = TF.timing(job);
    $("#elapsed").textContent = TF.duration(t.elapsed);
    $("#eta").textContent = TF.TERMINAL.has(job.status) ? "–" : TF.duration(t.eta);
  }
  setInterval(tick, 1000);

  function showBest() {
    if (best.value === null) return;
    $("#best").textContent = `${best.name} ${TF.metric(best.value)} (epoch ${best.epoch})`;
  }

  // --- events: charts, epochs, lifecycle ----------------------------------------------------------

  function pick(values, test) {
    const out = {};
    for (const [key, value] of Object.entries(values || {})) if (test(key) && typeof value === "number") out[key] = value;
    return out;
  }

  function onEpoch(data) {
    const epoch = data.epoch;
    if (typeof epoch !== "number") return;
    const metrics = data.metrics || {};
    charts.loss.add(epoch, { ...pick(data.losses, () => true), ...pick(metrics, (k) => k.startsWith("val/")) });
    charts.metrics.add(epoch, pick(metrics, (k) => k.startsWith("metrics/")));
    charts.lr.add(epoch, pick(data.lr, () => true));
    setEpoch(epoch, data.epochs);
    for (const key of PRIMARY) {
      const value = metrics[key];
      if (typeof value !== "number") continue;
      const name = key.replace("metrics/", "");
      if (best.name !== name || value >= best.value) Object.assign(best, { name, value, epoch });
      showBest();
      break;
    }
  }

  let artifactTimer = null;
  function refreshArtifactsSoon() {
    clearTimeout(artifactTimer);
    artifactTimer = setTimeout(loadArtifacts, 1000);
  }

  const handlers = {
    on_fit_epoch_end: onEpoch,
    on_train_epoch_start: (data) => setEpoch(undefined, data.epochs),
    on_model_save: refreshArtifactsSoon,
    "job.started": (data) => {
      setStatus("running");
      if (data.attempt) $("#attempt").textContent = String(data.attempt);
      if (data.worker) $("#worker").textContent = data.worker;
    },
    "job.retrying": () => setStatus("retrying"),
    "job.succeeded": () => finished("succeeded"),
    "job.failed": (data) => { finished("failed"); if (data.error) showError(data.error); },
    "job.cancelled": () => finished("cancelled"),
  };

  function showError(message) {
    const box = $("#job-error");
    box.textContent = message;
    box.hidden = false;
  }

  let source = null;
  function finished(status) {
    setStatus(status);
    if (source) source.close();
    refreshArtifactsSoon();
    setTimeout(loadDeliveries, 1500);
  }

  function dispatch(event) {
    const handle = handlers[event.type];
    if (handle) handle(event.data || {}, event);
  }

  // The history comes first as JSON pages: a thousand events per request cost far less than
  // replaying them one by one over the stream. Returns the seq of the last event read.
  // Only the types that change the page: batch and save events of past epochs show nothing new.
  const HISTORY_PAGE = 1000;
  const HISTORY_TYPES = ["on_fit_epoch_end", "job.started", "job.retrying", "job.succeeded", "job.failed",
    "job.cancelled"].map((type) => `type=${encodeURIComponent(type)}`).join("&");
  async function replayHistory() {
    let after = 0;
    for (;;) {
      const answer = await TF.api(`${base}/events?after=${after}&limit=${HISTORY_PAGE}&${HISTORY_TYPES}`);
      if (!answer.ok) return after;
      for (const event of answer.body.data) {
        dispatch(event);
        after = event.seq;
      }
      if (answer.body.next_cursor === null || answer.body.next_cursor === undefined) return after;
    }
  }

  // The stream starts after the history; on a drop the browser resumes by itself, sending
  // Last-Event-ID, and the server replays from there (it also ends every stream after its lifetime,
  // and the browser comes back the same way). A refused reconnect (429: the tenant has too many
  // streams open) closes the EventSource for good: then a new one starts after the last seq seen,
  // a few seconds later.
  let lastSeq = 0;
  function subscribe(after) {
    lastSeq = Math.max(lastSeq, after);
    source = new EventSource(`${base}/events?after=${lastSeq}`);
    for (const type of Object.keys(handlers)) {
      source.addEventListener(type, (message) => {
        let event;
        try { event = JSON.parse(message.data); } catch (_) { return; }
        if (typeof event.seq === "number") {
          if (event.seq <= lastSeq) return;
          lastSeq = event.seq;
        }
        dispatch(event);
      });
    }
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED && !TF.TERMINAL.has(job.status)) {
        setTimeout(() => subscribe(lastSeq), RESUBSCRIBE_MS);
      }
    });
  }

  async function follow() {
    const after = await replayHistory();
    if (!TF.TERMINAL.has(job.status)) subscribe(after);
  }

  // --- polling the job: status, batch progress, pending reason ------------------------------------

  async function poll() {
    try {
      const answer = await TF.api(base);
      if (answer.ok) {
        const j = answer.body;
        Object.assign(job, { started_at: j.started_at, finished_at: j.finished_at, progress: j.progress });
        setStatus(j.status);
        setEpoch(j.epoch ?? undefined, j.epochs ?? undefined);
        $("#attempt").textContent = String(j.attempt);
        if (j.worker) $("#worker").textContent = j.worker;
        const reason = j.pending_reason || (j.placement && j.placement.reason) || "";
        $("#pending-reason").textContent = reason;
        $("#pending-box").hidden = !reason || !["queued", "retrying"].includes(j.status);
        if (j.error) showError(j.error);
        tick();
      }
    } catch (_) {
      // Keep the last state; the next poll tries again.
    }
    if (!TF.TERMINAL.has(job.status)) setTimeout(poll, POLL_MS);
  }

  // --- the log, followed ---------------------------------------------------------------------------

  // The server ends a followed log when the job ends, or earlier when the stream's lifetime is over;
  // then the page follows again from the byte it reached, until a stream that began after the end.
  const logState = { lines: [], partial: "", offset: null, decoder: new TextDecoder() };
  async function followLog() {
    const box = $('[data-testid="log-tail"]');
    const endedBefore = logState.offset !== null && TF.TERMINAL.has(job.status);
    let lines = logState.lines;
    let partial = logState.partial;
    const decoder = logState.decoder;
    try {
      const from = logState.offset === null ? "" : `&offset=${logState.offset}`;
      const response = await fetch(`${base}/logs?follow=true${from}`, { credentials: "same-origin" });
      if (!response.ok || !response.body) {
        if (response.status === 429) setTimeout(followLog, RESUBSCRIBE_MS);
        return;
      }
      logState.offset = Number(response.headers.get("X-Log-Offset") || logState.offset || 0);
      const reader = response.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        logState.offset += value.length;
        const text = partial + decoder.decode(value, { stream: true });
        const parts = text.split("\n");
        partial = parts.pop();
        // A carriage return redraws a line on a terminal; here only its last state is worth keeping.
        lines = lines.concat(parts.map((line) => line.split("\r").pop())).slice(-LOG_LINES);
        const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
        box.textContent = lines.join("\n") + (partial ? `\n${partial.split("\r").pop()}` : "");
        box.dataset.lines = String(lines.length);
        if (atBottom) box.scrollTop = box.scrollHeight;
        Object.assign(logState, { lines, partial });
      }
      if (!endedBefore) {
        setTimeout(followLog, 1000);
        return;
      }
      if (partial) {
        box.textContent = lines.concat([partial]).slice(-LOG_LINES).join("\n");
        box.dataset.lines = String(lines.length + 1);
      }
    } catch (_) {
      // The stream broke (server restart): keep what the page shows and follow again from there.
      if (!TF.TERMINAL.has(job.status)) setTimeout(followLog, RESUBSCRIBE_MS);
    }
  }

  // --- artifacts and plots -------------------------------------------------------------------------

  async function loadArtifacts() {
    const answer = await TF.api(`${base}/artifacts`);
    if (!answer.ok) return;
    const list = $('[data-testid="artifact-list"]');
    const plots = $("#plots");
    const items = [];
    const images = [];
    for (const file of answer.body.data) {
      const li = TF.el("li");
      li.append(TF.el("a", { href: file.url, download: file.name.split("/").pop() }, file.name), ` ${sizeText(file.size)}`);
      items.push(li);
      if (/\.(png|jpe?g)$/i.test(file.name)) {
        const figure = TF.el("figure");
        figure.append(TF.el("img", { src: `${file.url}?size=${file.size}`, alt: file.name, loading: "lazy" }),
          TF.el("figcaption", {}, file.name));
        images.push(figure);
      }
    }
    if (!items.length) items.push(TF.el("li", { class: "empty" }, "No files yet."));
    list.replaceChildren(...items);
    plots.replaceChildren(...images);
  }

  function sizeText(n) {
    if (n < 1024) return `${n} B`;
    return n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
  }

  // --- webhook deliveries --------------------------------------------------------------------------

  async function loadDeliveries() {
    const answer = await TF.api(`${base}/deliveries`);
    if (!answer.ok) return;
    const body = document.querySelector('[data-testid="deliveries"] tbody');
    const rows = answer.body.data.map((d) => {
      const tr = TF.el("tr", { "data-delivery-id": d.id });
      const last = d.last_status_code ? `HTTP ${d.last_status_code}` : (d.last_error || "–");
      tr.append(TF.el("td", {}, d.event_type), TF.el("td", {}, d.url || "–"), TF.el("td", {}, d.status),
        TF.el("td", {}, String(d.attempts.length)), TF.el("td", {}, last));
      const cell = TF.el("td");
      if (d.status !== "pending") {
        const button = TF.el("button", { type: "button", class: "small" }, "Redeliver");
        button.addEventListener("click", () => redeliver(d.id, cell));
        cell.append(button);
      }
      tr.append(cell);
      return tr;
    });
    if (!rows.length) {
      const empty = TF.el("tr", { class: "empty" });
      empty.append(TF.el("td", { colspan: 6 }, "No deliveries."));
      rows.push(empty);
    }
    body.replaceChildren(...rows);
  }

  async function redeliver(id, cell) {
    const answer = await TF.api(`/v1/deliveries/${encodeURIComponent(id)}/redeliver`, { method: "POST" });
    if (!answer.ok) {
      cell.replaceChildren(TF.el("span", { class: "error" }, (answer.body && answer.body.detail) || `error ${answer.status}`));
      return;
    }
    loadDeliveries();
  }

  // --- cancel ---------------------------------------------------------------------------------------

  const cancelForm = $("#cancel-form");
  if (cancelForm) {
    cancelForm.addEventListener("submit", (event) => {
      if (!window.confirm("Cancel this job? A running job stops at the next batch and keeps last.pt.")) event.preventDefault();
    });
  }

  // The charts' history first: the log, artifacts and deliveries wait for it, so on a busy server
  // its request does not queue behind theirs (it is the largest answer, and the charts the reason
  // the page is open).
  follow().finally(() => {
    followLog();
    loadArtifacts();
    loadDeliveries();
  });
  poll();
  tick();
})();
