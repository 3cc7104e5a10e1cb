// The jobs page: refresh the list from GET /v1/jobs every 2 s with the page's filters.
"use strict";

(() => {
  const body = document.getElementById("job-rows");
  if (!body) return;
  const POLL_MS = 2000;

  function query() {
    const params = new URLSearchParams();
    for (const s of (body.dataset.status || "").split(",").filter(Boolean)) params.append("status", s);
    for (const t of (body.dataset.tag || "").split(/[\s,]+/).filter(Boolean)) params.append("tag", t);
    params.set("limit", "50");
    return params;
  }

  function row(job) {
    const tr = TF.el("tr", { "data-testid": "job-row", "data-job-id": job.id });
    const link = TF.el("a", { href: `/ui/jobs/${encodeURIComponent(job.id)}` }, job.name || job.id.slice(0, 8));
    const cells = [link, TF.statusBadge(job.status), job.trainer];
    const progress = TF.el("td", { class: "progress-cell" });
    progress.append(TF.el("progress", { max: job.epochs || 1, value: job.epoch || 0 }), " ",
      TF.el("span", {}, `${job.epoch || 0}/${job.epochs || "?"}`));
    const best = job.best ? [job.best.metric, job.best.value] : null;
    const tags = TF.el("td");
    for (const t of job.tags || []) tags.append(TF.el("span", { class: "tag" }, t), " ");
    for (const cell of cells) {
      const td = TF.el("td");
      td.append(cell);
      tr.append(td);
    }
    tr.append(progress, TF.el("td", {}, TF.duration(TF.timing(job).eta)),
      TF.el("td", {}, best ? `${best[0]} ${TF.metric(best[1])}` : "–"), tags,
      TF.el("td", {}, (job.created_at || "").replace("T", " ").slice(0, 19)));
    return tr;
  }

  async function refresh() {
    try {
      const answer = await TF.api(`/v1/jobs?${query()}`);
      if (answer.ok) {
        const rows = answer.body.data.map(row);
        if (!rows.length) {
          const empty = TF.el("tr", { class: "empty" });
          empty.append(TF.el("td", { colspan: 8 }, "No jobs yet: submit one below."));
          rows.push(empty);
        }
        body.replaceChildren(...rows);
      }
    } catch (_) {
      // The server is restarting or the network dropped: keep the last list, try again.
    }
    setTimeout(refresh, POLL_MS);
  }
  setTimeout(refresh, POLL_MS);
})();
