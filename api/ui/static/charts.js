// Live line charts over epochs: uPlot, fed point by point, redrawn at most once per frame.
"use strict";

const TFCharts = (() => {
  // At most this many x positions are drawn: a 10,000-epoch run is thinned to each bucket's extremes,
  // so its shape (spikes included) survives and a redraw stays a few milliseconds.
  const MAX_DRAWN = 1500;
  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

  // Keep, per bucket of consecutive x, the first index and the min and max of every series.
  function decimate(data, limit = MAX_DRAWN) {
    const n = data[0].length;
    const k = Math.max(1, data.length - 1);
    if (n <= limit) return data;
    const buckets = Math.max(1, Math.floor(limit / (1 + 2 * k)));
    const size = n / buckets;
    const keep = new Set([0, n - 1]);
    for (let b = 0; b < buckets; b++) {
      const start = Math.floor(b * size);
      const end = Math.min(n, Math.floor((b + 1) * size));
      keep.add(start);
      for (let s = 1; s < data.length; s++) {
        const ys = data[s];
        let lo = -1, hi = -1;
        for (let i = start; i < end; i++) {
          const y = ys[i];
          if (y === null || y === undefined) continue;
          if (lo < 0 || y < ys[lo]) lo = i;
          if (hi < 0 || y > ys[hi]) hi = i;
        }
        if (lo >= 0) keep.add(lo);
        if (hi >= 0) keep.add(hi);
      }
    }
    const index = Array.from(keep).sort((a, b) => a - b);
    return data.map((column) => index.map((i) => column[i]));
  }

  class MetricChart {
    constructor(container, options = {}) {
      this.container = container;
      this.xLabel = options.xLabel || "epoch";
      this.x = [];
      this.series = new Map();
      this.plot = null;
      this.stale = true;
      this.pending = false;
      this.onDraw = options.onDraw || null;
      window.addEventListener("resize", () => { this.stale = true; this.schedule(); });
    }

    // Add (or replace) the values at `x`; names not seen before become new series.
    add(x, values) {
      for (const name of Object.keys(values)) {
        if (typeof values[name] !== "number" || this.series.has(name)) continue;
        this.series.set(name, new Array(this.x.length).fill(null));
        this.stale = true;
      }
      let at = this.x.length;
      if (at && x <= this.x[at - 1]) {
        at = this.x.findIndex((value) => value >= x);
        if (this.x[at] !== x) {
          this.x.splice(at, 0, x);
          for (const ys of this.series.values()) ys.splice(at, 0, null);
        }
      } else {
        this.x.push(x);
        for (const ys of this.series.values()) ys.push(null);
      }
      for (const [name, ys] of this.series) {
        if (typeof values[name] === "number") ys[at] = values[name];
      }
      this.schedule();
    }

    get points() { return this.x.length; }

    schedule() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.draw(); });
    }

    draw() {
      if (!this.x.length) return;
      const data = decimate([this.x, ...this.series.values()]);
      if (this.stale || !this.plot) {
        if (this.plot) this.plot.destroy();
        this.plot = new uPlot(this.options(), data, this.container);
        this.stale = false;
      } else {
        this.plot.setData(data);
      }
      this.container.dataset.points = String(this.x.length);
      if (this.onDraw) this.onDraw(this);
    }

    options() {
      const names = Array.from(this.series.keys());
      return {
        width: Math.max(260, this.container.clientWidth || 360),
        height: 220,
        scales: { x: { time: false } },
        axes: [{ label: this.xLabel }, { size: 60 }],
        series: [
          { label: this.xLabel },
          ...names.map((name, i) => ({
            label: name, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
            points: { show: this.x.length <= 60 },
          })),
        ],
      };
    }
  }

  return { MetricChart, decimate };
})();
