// Small SVG line charts for an instance's CPU and memory over the last
// minutes. A chart keeps its element and is redrawn with each poll; its
// data-points and data-last attributes say what it shows (and let a test
// see it move).
import { s, replace } from "./dom.js";

const W = 300, H = 64, TOP = 4, BOTTOM = 2;

// The y axis' top: the limit when known, else a round number above the peak.
function niceMax(peak) {
  if (!(peak > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(peak));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= peak) return m * p;
  return 10 * p;
}

// points: [[unix time, value]] oldest first; opts: {window, now, limit,
// floor, format, kind}
export function renderChart(svg, points, opts) {
  const { window: span, now, format } = opts;
  const t0 = now - span;
  const shown = points.filter(([t]) => t >= t0);
  const peak = Math.max(0, ...shown.map(([, v]) => v));
  // scaled to what it used: a limit far above would flatten the line (the
  // limit is drawn when it is in view, and said in the card's text)
  const top = niceMax(Math.max(peak * 1.15, opts.floor || 0));
  const x = (t) => ((t - t0) / span) * W;
  const y = (v) => TOP + (1 - v / top) * (H - TOP - BOTTOM);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", `chart ${opts.kind}`);
  svg.dataset.points = String(shown.length);
  svg.dataset.last = shown.length ? String(shown[shown.length - 1][0]) : "0";
  const grid = [0.25, 0.5, 0.75].map((f) =>
    s("line", { class: "grid", x1: 0, x2: W, y1: y(top * f), y2: y(top * f) }));
  const parts = [...grid];
  if (shown.length) {
    const line = shown.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const first = x(shown[0][0]).toFixed(1), last = x(shown[shown.length - 1][0]).toFixed(1);
    parts.push(s("polygon", { class: "area", points: `${first},${H} ${line} ${last},${H}` }));
    parts.push(s("polyline", { class: "line", points: line }));
  }
  if (opts.limit && opts.limit <= top) parts.push(s("line", { class: "limit", x1: 0, x2: W, y1: y(opts.limit), y2: y(opts.limit) }));
  parts.push(s("title", {}, `${opts.kind}: peak ${format(peak)} of ${format(top)} in the last ${span / 60} min`));
  replace(svg, ...parts);
  return { peak, top };
}
