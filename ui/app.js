// The cloud's dashboard: everything comes from the cloud's /api/v1 with the
// browser's own login (the page never sees a password). Fast-changing
// things (nodes, instances, usage) are polled every 2 s, the rest every
// 5 s; events arrive as Server-Sent Events, or by polling when a stream
// cannot be held open.
import { h, s as svg, replace, bytes, age, clock } from "./dom.js";
import { renderTopology, nodeState } from "./topology.js";
import { renderChart } from "./charts.js";

const FAST_MS = 2000, SLOW_MS = 5000, WINDOW_S = 300, FEED_MAX = 200;
const $ = (id) => document.getElementById(id);

const state = {
  nodes: [], instances: [], samples: [], newest: 0, services: [], catalog: [], tasks: [],
  violations: [], recalls: [], events: new Map(), lastEvent: 0, skew: 0,
};

// -------------------------------------------------------------- the API

class HttpError extends Error {}

// From the origin: a page opened as https://user:pass@host/ui/ would hand
// its user:pass to relative URLs, which fetch refuses. The browser adds
// the login it holds for the realm by itself.
const at = (path) => new URL(path, location.origin).href;

async function api(path) {
  const resp = await fetch(at(path), { headers: { Accept: "application/json" }, cache: "no-store" });
  const date = Date.parse(resp.headers.get("Date") || "");
  if (!Number.isNaN(date)) state.skew = (date - Date.now()) / 1000;
  if (!resp.ok) throw new HttpError(`${path}: HTTP ${resp.status}`);
  return resp.json();
}

// The cloud's clock (its Date header), as the samples' times are.
const now = () => Date.now() / 1000 + state.skew;

function setLive(kind, text) {
  $("live-dot").className = `dot ${kind}`;
  $("live").textContent = text;
}

// ------------------------------------------------------------ rendering

function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

function chips(list, cls) {
  return list.map((t) => h("span", { class: `chip ${cls || ""}` }, t));
}

function instancesPerNode() {
  const counts = new Map();
  for (const i of state.instances)
    if (i.state === "running") counts.set(i.node, (counts.get(i.node) || 0) + 1);
  return counts;
}

function renderSummary() {
  const up = state.nodes.filter((n) => ["up", "healthy"].includes(nodeState(n))).length;
  const running = state.instances.filter((i) => i.state === "running").length;
  replace($("summary"),
    h("span", {}, h("b", {}, `${up}/${state.nodes.length}`), " nodes up"),
    h("span", {}, h("b", {}, String(running)), " running"),
    h("span", {}, h("b", {}, String(state.catalog.length)), " services"),
    h("span", { class: state.violations.length ? "warn" : "" }, h("b", {}, String(state.violations.length)), " violations"),
    h("span", { class: state.recalls.length ? "warn" : "" }, h("b", {}, String(state.recalls.length)), " recalls"));
}

function renderNodes() {
  const t = now();
  const counts = instancesPerNode();
  const order = { cloud: 0, fog: 1, edge: 2 };
  const nodes = [...state.nodes].sort((a, b) => (order[a.role] ?? 3) - (order[b.role] ?? 3) || a.id.localeCompare(b.id));
  replace($("nodes").tBodies[0], nodes.map((n) => {
    const st = nodeState(n);
    const used = n.capacity ? n.used / n.capacity : null;
    return h("tr", { "data-node": n.id, "data-role": n.role, "data-state": st },
      h("td", { class: "id", title: n.url || "" }, n.id),
      h("td", {}, badge(n.role, `role-${n.role}`)),
      h("td", { class: "dim" }, n.parent || "–"),
      h("td", {}, badge(st)),
      h("td", { class: "num" }, n.role === "cloud" ? "–" : n.last_seen ? age(t - n.last_seen) : "never"),
      h("td", { class: "num" }, used === null ? "–" : h("span", { class: "meter", title: `${bytes(n.used)} of ${bytes(n.capacity)}` },
        h("progress", { max: 100, value: Math.round(used * 100) }), `${Math.round(used * 100)}%`)),
      h("td", { class: "num" }, String(counts.get(n.id) || 0)));
  }));
  renderTopology($("topology"), state.nodes, counts, t);
  const down = state.nodes.filter((n) => ["suspect", "dead"].includes(nodeState(n)));
  $("topo-note").textContent = down.length ? `${down.length} not answering` : "every node answering";
}

// One card per instance, kept across polls so that its charts are redrawn
// in place.
const cards = new Map();

// cgroup v2 reports "no limit" as a huge number
function memoryLimit(inst) {
  const lim = inst.usage?.memory_limit;
  return lim && lim < 2 ** 46 ? lim : null;
}

function renderInstances() {
  const t = now();
  const series = new Map();
  for (const sm of state.samples) {
    const k = `${sm.service}@${sm.node}`;
    if (!series.has(k)) series.set(k, []);
    series.get(k).push(sm);
  }
  const defs = new Map(state.services.map((d) => [d.name, d]));
  const list = [...state.instances].sort((a, b) => a.service.localeCompare(b.service) || a.node.localeCompare(b.node));
  const keep = new Set();
  const box = $("instances");
  for (const inst of list) {
    const k = `${inst.service}@${inst.node}`;
    keep.add(k);
    let c = cards.get(k);
    if (!c) {
      c = {
        head: h("div", { class: "card-head" }),
        cpu: svg("svg"),
        mem: svg("svg"),
        cpuText: h("span", { class: "val" }),
        memText: h("span", { class: "val" }),
      };
      c.el = h("article", { class: "card", "data-instance": k },
        c.head,
        h("div", { class: "metric" }, h("span", { class: "label" }, "CPU"), c.cpuText), c.cpu,
        h("div", { class: "metric" }, h("span", { class: "label" }, "memory"), c.memText), c.mem);
      cards.set(k, c);
    }
    const def = defs.get(inst.service);
    replace(c.head,
      h("span", { class: "svc" }, inst.service),
      h("span", { class: "on" }, "on ", h("b", {}, inst.node)),
      badge(inst.state),
      inst.restarts ? h("span", { class: "dim", title: "restarts" }, `↻${inst.restarts}`) : null);
    const pts = series.get(k) || [];
    const cpuLimit = def && def.cpus ? def.cpus * 100 : null;
    const cpu = renderChart(c.cpu, pts.map((p) => [p.t, (p.cpu || 0) * 100]),
      { window: WINDOW_S, now: t, limit: cpuLimit, floor: 1, kind: "cpu", format: (v) => `${v.toFixed(1)}%` });
    const memLimit = memoryLimit(inst);
    renderChart(c.mem, pts.map((p) => [p.t, p.memory || 0]),
      { window: WINDOW_S, now: t, limit: memLimit, floor: 1 << 20, kind: "mem", format: bytes });
    const u = inst.usage || {};
    c.cpuText.textContent = u.cpu !== undefined && u.cpu !== null
      ? `${(u.cpu * 100).toFixed(1)}%${cpuLimit ? ` of ${cpuLimit.toFixed(0)}%` : ""} · peak ${cpu.peak.toFixed(1)}%` : "–";
    c.memText.textContent = u.memory !== undefined
      ? `${bytes(u.memory)}${memLimit ? ` of ${bytes(memLimit)}` : ""} · ${u.pids ?? "–"} pids` : "–";
    c.el.dataset.state = inst.state;
  }
  for (const [k, c] of cards) if (!keep.has(k)) { c.el.remove(); cards.delete(k); }
  const order = list.map((i) => cards.get(`${i.service}@${i.node}`).el);
  if (order.some((el, i) => box.children[i] !== el)) replace(box, order);
  if (!list.length && !box.querySelector(".empty"))
    replace(box, h("p", { class: "empty" }, "No service instances: `fogport service create` places one."));
}

function repoOf(image) {
  const pinned = image.indexOf("@");
  const ref = pinned >= 0 ? image.slice(0, pinned) : image;
  const slash = ref.lastIndexOf("/"), colon = ref.lastIndexOf(":");
  return colon > slash ? ref.slice(0, colon) : ref;
}

function renderCatalog() {
  const byRepo = new Map();
  for (const task of state.tasks) {
    if (!byRepo.has(task.repo)) byRepo.set(task.repo, []);
    byRepo.get(task.repo).push(task);
  }
  const running = new Map();
  for (const i of state.instances) {
    if (!i.image) continue;
    const r = repoOf(i.image);
    if (!running.has(r)) running.set(r, new Set());
    running.get(r).add(i.node);
  }
  const rows = state.catalog.map((repo) => {
    const tasks = byRepo.get(repo.name) || [];
    const holders = new Set(["cloud"]);
    for (const task of tasks) if (task.state === "done") holders.add(task.node);
    for (const n of running.get(repo.name) || []) holders.add(n);
    const done = tasks.filter((x) => x.state === "done").length;
    const failed = tasks.filter((x) => x.state === "failed");
    const moved = tasks.reduce((a, x) => a + (x.bytes || 0), 0);
    const pct = tasks.length ? Math.round((done / tasks.length) * 100) : null;
    const recalled = state.recalls.filter((x) => x.repo === repo.name);
    return h("tr", { "data-service": repo.name },
      h("td", { class: "id" }, repo.name, recalled.length ? [" ", h("span", { class: "badge recalled",
        title: recalled.map((x) => `${x.ref}: ${x.reason || "no reason given"}`).join("\n") }, "recalled")] : null),
      h("td", {}, chips(repo.tags.length ? repo.tags : ["(untagged)"], "tag")),
      h("td", {}, chips([...holders].sort((a, b) => (a === "cloud" ? -1 : b === "cloud" ? 1 : a.localeCompare(b))), "node")),
      h("td", { class: "repl" }, pct === null ? h("span", { class: "dim" }, "no rules") : [
        h("progress", { max: 100, value: pct, class: failed.length ? "bad" : "" }),
        ` ${done}/${tasks.length}`,
        failed.length ? h("span", { class: "err", title: failed.map((f) => `${f.node}: ${f.error}`).join("\n") }, ` ${failed.length} failed`) : null,
        h("span", { class: "dim" }, ` · ${bytes(moved)}`)]));
  });
  replace($("catalog").tBodies[0], rows.length ? rows : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "Nothing pushed yet.")));
}

function renderDeployments() {
  const rows = [...state.services].sort((a, b) => a.name.localeCompare(b.name)).map((d) => {
    const where = d.node ? `node ${d.node}` : `role ${d.role}${d.replicas ? ` ×${d.replicas}` : ""}`;
    const limits = [d.memory ? bytes(d.memory) : null, d.cpus ? `${d.cpus} CPU` : null, d.pids ? `${d.pids} pids` : null].filter(Boolean);
    const pol = [d.max_cpu ? `cpu ≤ ${d.max_cpu}` : null, d.max_memory ? `mem ≤ ${bytes(d.max_memory)}` : null,
      d.max_pids ? `pids ≤ ${d.max_pids}` : null].filter(Boolean);
    return h("tr", { "data-deployment": d.name },
      h("td", { class: "id" }, d.name),
      h("td", { class: "mono", title: d.digest || "" }, d.image),
      h("td", {}, where, d.always_on ? h("span", { class: "chip" }, "always-on") : null),
      h("td", { class: "dim" }, limits.join(" · ") || "–"),
      h("td", { class: "dim" }, pol.join(" · ") || "–"));
  });
  replace($("deployments").tBodies[0], rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No deployments.")));
}

// ------------------------------------------------------------ the feed

const EVENT_KIND = {
  started: "ok", handover: "warn", exited: "dim", failed: "bad", backoff: "warn", oom_killed: "bad",
  violated: "bad", recalled: "bad", gone: "warn", violation: "bad", recall: "bad", placed: "ok",
  node_up: "ok", node_suspect: "warn", node_down: "bad", node: "warn",
};

function addFeed(key, time, kind, text, node) {
  if (state.events.has(key)) return;
  state.events.set(key, { key, time, kind, text, node });
}

function onEvent(e) {
  state.lastEvent = Math.max(state.lastEvent, e.id || 0);
  let text;
  if (e.event === "handover") text = `${e.service} handed over from ${e.from} to ${e.node}`;
  else if (e.event === "violation") text = `${e.service} on ${e.node} stopped by its policy`;
  else if (e.event === "started") text = `${e.service} started on ${e.node}${e.restarts ? ` (restart ${e.restarts})` : ""}`;
  else {
    text = `${e.service} on ${e.node}: ${e.event.replace("_", " ")}`;
    if (e.from) text += ` (was ${e.from})`;
    if (e.exit_code !== undefined) text += `, exit code ${e.exit_code}`;
  }
  addFeed(`e${e.id}`, e.time, e.event, text, e.node);
}

// The cloud keeps no node up/down events: the page notes the changes it
// sees between two polls of the directory.
function noteNodeChanges(fresh) {
  if (!state.nodes.length) return;
  const before = new Map(state.nodes.map((n) => [n.id, nodeState(n)]));
  const t = Math.floor(now());
  let changed = false;
  for (const n of fresh) {
    const was = before.get(n.id), is = nodeState(n);
    if (was === is) continue;
    const kind = { healthy: "node_up", suspect: "node_suspect", dead: "node_down" }[is] || "node";
    addFeed(`n${n.id}/${t}/${is}`, t, kind, was ? `node ${n.id}: ${was} → ${is}` : `node ${n.id} joined (${is})`, n.id);
    changed = true;
  }
  if (changed) renderFeed();
}

function feedFromLists() {
  for (const v of state.violations)
    addFeed(`v${v.node}/${v.service}/${v.id}`, v.recorded || v.time, "violation",
      `policy violation: ${v.service} on ${v.node}: ${v.message || v.kind}${v.action ? ` (${v.action})` : ""}`, v.node);
  for (const r of state.recalls)
    addFeed(`r${r.digest}`, r.time, "recall", `recalled ${r.ref || r.repo} by ${r.user}${r.reason ? `: ${r.reason}` : ""}`);
}

function renderFeed() {
  const items = [...state.events.values()].sort((a, b) => b.time - a.time || (a.key < b.key ? 1 : -1));
  for (const old of items.slice(FEED_MAX)) state.events.delete(old.key);
  replace($("events"), items.slice(0, FEED_MAX).map((e) =>
    h("li", { class: `ev ${EVENT_KIND[e.kind] || ""}`, "data-kind": e.kind },
      h("time", { datetime: new Date(e.time * 1000).toISOString() }, clock(e.time)),
      h("span", { class: "kind" }, e.kind.replace("_", " ")),
      h("span", { class: "text" }, e.text))));
  if (!items.length) replace($("events"), h("li", { class: "empty" }, "No events yet."));
}

async function pollEvents() {
  const r = await api(`/api/v1/events?after=${state.lastEvent}`);
  for (const e of r.events) onEvent(e);
  state.lastEvent = Math.max(state.lastEvent, r.last || 0);
}

let polling = null;

function fallBackToPolling(why) {
  if (polling) return;
  setLive("poll", `polling events (${why})`);
  $("events-note").textContent = "polled";
  polling = setInterval(() => pollEvents().then(renderFeed).catch(() => {}), FAST_MS);
}

function follow() {
  if (typeof EventSource !== "function") return fallBackToPolling("no EventSource");
  const es = new EventSource(at(`/api/v1/events?follow=1&after=${state.lastEvent}`));
  let failures = 0;
  es.onopen = () => { failures = 0; setLive("live", "live"); $("events-note").textContent = "live stream"; };
  es.onmessage = (m) => {
    try { onEvent(JSON.parse(m.data)); renderFeed(); } catch { /* a partial message: the next one comes */ }
  };
  es.onerror = () => {
    // the browser retries by itself; one that keeps failing is given up
    if (es.readyState === EventSource.CLOSED || ++failures >= 3) {
      es.close();
      fallBackToPolling("no stream");
    } else setLive("poll", "reconnecting…");
  };
}

// ------------------------------------------------------------ polling

// The window's samples: the whole window once, then only what is new (a
// few seconds back, for reports that arrived late), merged by identity.
function mergeSamples(fresh) {
  const key = (x) => `${x.t}/${x.node}/${x.service}`;
  const have = new Set(state.samples.map(key));
  const t0 = now() - WINDOW_S;
  state.samples = state.samples.concat(fresh.filter((x) => !have.has(key(x))))
    .filter((x) => x.t >= t0).sort((a, b) => a.t - b.t);
  state.newest = state.samples.reduce((m, x) => Math.max(m, x.t), 0);
}

async function fast() {
  const since = Math.floor(state.newest ? state.newest - 10 : now() - WINDOW_S);
  const [nodes, inst, usage] = await Promise.all([
    api("/api/v1/nodes"), api("/api/v1/instances"), api(`/api/v1/usage?since=${since}`)]);
  noteNodeChanges(nodes.nodes);
  state.nodes = nodes.nodes;
  state.instances = inst.instances;
  mergeSamples(usage.samples);
  renderNodes();
  renderInstances();
  renderCatalog(); // who holds what follows the instances too
  renderSummary();
}

async function slow() {
  const [services, catalog, repl, viol, recalls] = await Promise.all([
    api("/api/v1/services"), api("/api/v1/catalog"), api("/api/v1/replication"),
    api("/api/v1/violations"), api("/api/v1/recalls")]);
  state.services = services.services;
  state.catalog = catalog.repositories;
  state.tasks = repl.tasks;
  state.violations = viol.violations;
  state.recalls = recalls.recalls;
  feedFromLists();
  renderCatalog();
  renderDeployments();
  renderFeed();
  renderSummary();
}

function loop(fn, ms) {
  const run = async () => {
    try {
      await fn();
      $("updated").textContent = `updated ${clock(now())}`;
      document.body.classList.remove("stale");
    } catch (e) {
      document.body.classList.add("stale");
      $("updated").textContent = e instanceof HttpError ? e.message : "cloud unreachable";
    }
    setTimeout(run, ms);
  };
  return run();
}

async function start() {
  await loop(slow, SLOW_MS);
  await loop(fast, FAST_MS);
  try { await pollEvents(); } catch { /* the stream or the poll brings them */ }
  renderFeed();
  follow();
}

start();
