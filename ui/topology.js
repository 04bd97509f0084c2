// The deployment as a small tree: the cloud on top, its fogs, their edges;
// each node coloured by its health (heartbeat age), each link by whether
// the child is reachable.
import { s, replace, age } from "./dom.js";

const W = 132, H = 46, GAP_X = 16, GAP_Y = 46, PAD = 12;
const ROLE_DEPTH = { cloud: 0, fog: 1, edge: 2 };

export function nodeState(n) {
  if (n.revoked) return "revoked";
  if (n.role === "cloud") return "up";
  return n.health || "unseen";
}

// Place nodes: leaves left to right in depth-first order, a parent above
// the middle of its children.
function layout(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const kids = new Map(nodes.map((n) => [n.id, []]));
  const roots = [];
  for (const n of nodes) {
    if (n.parent && byId.has(n.parent) && n.parent !== n.id) kids.get(n.parent).push(n);
    else roots.push(n);
  }
  const order = (a, b) => (ROLE_DEPTH[a.role] ?? 3) - (ROLE_DEPTH[b.role] ?? 3) || a.id.localeCompare(b.id);
  roots.sort(order);
  const pos = new Map();
  let slot = 0;
  const seen = new Set();
  function place(n, depth) {
    if (seen.has(n.id)) return pos.get(n.id)?.x ?? 0;
    seen.add(n.id);
    const children = kids.get(n.id).sort(order);
    let x;
    if (children.length === 0) x = slot++;
    else {
      const xs = children.map((c) => place(c, depth + 1));
      x = (Math.min(...xs) + Math.max(...xs)) / 2;
    }
    pos.set(n.id, { x, depth: Math.max(depth, ROLE_DEPTH[n.role] ?? depth) });
    return x;
  }
  for (const r of roots) place(r, ROLE_DEPTH[r.role] ?? 0);
  return { pos, slots: Math.max(slot, 1) };
}

export function renderTopology(svg, nodes, counts, now) {
  const { pos, slots } = layout(nodes);
  const depth = Math.max(0, ...[...pos.values()].map((p) => p.depth)) + 1;
  const width = PAD * 2 + slots * W + (slots - 1) * GAP_X;
  const height = PAD * 2 + depth * H + (depth - 1) * GAP_Y;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  // shrunk to fit the panel, but not below readable: then the panel scrolls
  const room = svg.parentElement ? svg.parentElement.clientWidth : width;
  const scale = Math.max(0.65, Math.min(1, room / width));
  svg.setAttribute("width", String(Math.round(width * scale)));
  svg.setAttribute("height", String(Math.round(height * scale)));
  const at = (id) => {
    const p = pos.get(id);
    return { x: PAD + p.x * (W + GAP_X), y: PAD + p.depth * (H + GAP_Y) };
  };
  const links = [];
  const boxes = [];
  for (const n of nodes) {
    const st = nodeState(n);
    const p = at(n.id);
    if (n.parent && pos.has(n.parent)) {
      const q = at(n.parent);
      const x1 = q.x + W / 2, y1 = q.y + H, x2 = p.x + W / 2, y2 = p.y;
      const my = (y1 + y2) / 2;
      links.push(s("path", {
        class: `link ${st}`, "data-child": n.id, "data-parent": n.parent,
        d: `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`,
      }));
    }
    const seen = n.last_seen ? age(now - n.last_seen) : "never";
    const running = counts.get(n.id) || 0;
    boxes.push(s("g", { class: `node ${st}`, "data-node": n.id, "data-role": n.role, "data-state": st,
      transform: `translate(${p.x},${p.y})` },
      s("title", {}, `${n.id} (${n.role}) ${st}; heartbeat ${seen} ago`),
      s("rect", { class: "box", width: W, height: H, rx: 7 }),
      s("rect", { class: "stripe", width: 5, height: H, rx: 2 }),
      s("text", { class: "name", x: 14, y: 19 }, n.id),
      s("text", { class: "meta", x: 14, y: 36 }, `${n.role} · ${st}${n.role === "cloud" ? "" : " · " + seen}`),
      running ? s("g", { transform: `translate(${W - 24},8)` },
        s("rect", { class: "badge", width: 18, height: 15, rx: 7 }),
        s("text", { class: "badge-text", x: 9, y: 11.5, "text-anchor": "middle" }, String(running))) : null,
    ));
  }
  replace(svg, ...links, ...boxes);
}
