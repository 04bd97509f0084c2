// The dashboard in a real browser: Debian's headless chromium, driven by
// playwright-core, logs in to the cloud's /ui/ with HTTP Basic and checks
// what an operator would look at. Run from tests/e2e/test_ui.py:
//   node tests/ui/dashboard.mjs URL USER PASS OUTDIR [--nodes id:role,...]
//        [--service NAME:TAG] [--charts] [--event KIND]...
// Prints one JSON line with what it saw; exits 1 with the reasons when an
// assertion fails. OUTDIR/ui-dashboard.png is the screenshot.
import { chromium } from "playwright-core";
import path from "node:path";
import fs from "node:fs";

const [url, user, pass, outdir, ...rest] = process.argv.slice(2);
if (!outdir) {
  console.error("usage: dashboard.mjs URL USER PASS OUTDIR [--nodes id:role,...] [--service NAME:TAG] [--charts] [--event KIND]...");
  process.exit(2);
}
const opt = { nodes: [], service: null, charts: false, events: [] };
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === "--nodes") opt.nodes = rest[++i].split(",").map((p) => p.split(":"));
  else if (rest[i] === "--service") opt.service = rest[++i].split(":");
  else if (rest[i] === "--charts") opt.charts = true;
  else if (rest[i] === "--event") opt.events.push(rest[++i]);
  else { console.error(`unknown argument ${rest[i]}`); process.exit(2); }
}

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); return ok; };
const seen = {};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // root has no user namespace sandbox for chromium
  args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
});
const consoleErrors = [];
try {
  const context = await browser.newContext({
    // the sandbox's own CA signed the cloud's certificate
    ignoreHTTPSErrors: true,
    viewport: { width: 1440, height: 900 },
  });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message}`));

  // The login as a person gives it: the browser keeps it for the realm and
  // answers the API's Basic challenges with it by itself (no test hook
  // answers them), so the page's own fetches and event stream show that
  // the dashboard works with a plain browser login.
  const login = new URL(`${url}/ui/`);
  login.username = user;
  login.password = pass;
  const resp = await page.goto(login.href, { waitUntil: "load" });
  check(resp && resp.status() === 200, `GET /ui/: ${resp && resp.status()}`);

  // every node, with its role and an up state, in the table and the graph
  await page.waitForSelector("#nodes tbody tr[data-node]", { timeout: 15000 });
  if (opt.nodes.length) {
    await page.waitForFunction((n) => document.querySelectorAll("#nodes tbody tr[data-node]").length >= n,
      opt.nodes.length, { timeout: 15000 }).catch(() => {});
    // a node that has not sent its first heartbeat yet shows "unseen"
    await page.waitForFunction(() => [...document.querySelectorAll("#nodes tbody tr[data-node]")]
      .every((r) => ["up", "healthy"].includes(r.dataset.state)), null, { timeout: 15000 }).catch(() => {});
    const rows = await page.$$eval("#nodes tbody tr[data-node]", (rs) => rs.map((r) => ({
      id: r.dataset.node, role: r.dataset.role, state: r.dataset.state, text: r.innerText })));
    const graph = await page.$$eval("#topology g.node", (gs) => gs.map((g) => ({
      id: g.dataset.node, role: g.dataset.role, state: g.dataset.state, text: g.textContent })));
    const links = await page.$$eval("#topology path.link", (ls) => ls.map((l) => `${l.dataset.parent}>${l.dataset.child}`));
    seen.nodes = rows;
    seen.links = links;
    check(rows.length === opt.nodes.length, `nodes table has ${rows.length} rows, expected ${opt.nodes.length}`);
    for (const [id, role] of opt.nodes) {
      const r = rows.find((x) => x.id === id);
      const g = graph.find((x) => x.id === id);
      if (!check(r, `node ${id} not in the table`)) continue;
      check(r.role === role && r.text.includes(role), `node ${id}: role ${r.role}, expected ${role}`);
      check(["up", "healthy"].includes(r.state) && r.text.includes(r.state), `node ${id}: state ${r.state}`);
      check(g && g.role === role && g.text.includes(id) && g.text.includes(r.state), `node ${id} not drawn as ${role}/${r.state}`);
    }
    const parents = opt.nodes.filter(([, role]) => role !== "cloud").length;
    check(links.length === parents, `topology draws ${links.length} links, expected ${parents}`);
  }

  if (opt.service) {
    const [name, tag] = opt.service;
    const sel = `#catalog tr[data-service="${name}"]`;
    const row = await page.waitForSelector(sel, { timeout: 15000 }).catch(() => null);
    if (check(row, `service ${name} not listed`)) {
      const tags = await page.$$eval(`${sel} .chip.tag`, (cs) => cs.map((c) => c.textContent));
      const holders = await page.$$eval(`${sel} .chip.node`, (cs) => cs.map((c) => c.textContent));
      seen.service = { name, tags, holders };
      check(tags.includes(tag), `service ${name}: tags ${tags}, expected ${tag}`);
      check(holders.includes("cloud"), `service ${name}: held by ${holders}`);
    }
  }

  if (opt.charts) {
    // a running instance's CPU chart gets new samples (agents report every 2 s)
    const chart = "#instances .card[data-state=running] svg.chart.cpu";
    await page.waitForFunction((s) => [...document.querySelectorAll(s)].some((c) => +c.dataset.points > 0),
      chart, { timeout: 30000 }).catch(() => {});
    const read = () => page.$$eval(chart, (cs) => cs.map((c) => ({
      id: c.closest(".card").dataset.instance, points: +c.dataset.points, last: +c.dataset.last,
      drawn: c.querySelectorAll("polyline").length })));
    const before = await read();
    await page.waitForTimeout(5000);
    const after = await read();
    seen.charts = { before, after };
    check(before.length > 0 && before.some((c) => c.points > 0 && c.drawn === 1), "no running instance with a drawn chart");
    check(after.some((a) => { const b = before.find((x) => x.id === a.id); return b && a.last > b.last; }),
      "no chart got newer samples within 5 s");
  }

  for (const kind of opt.events) {
    const ok = await page.waitForSelector(`#events li.ev[data-kind="${kind}"]`, { timeout: 20000 }).catch(() => null);
    check(ok, `no ${kind} event in the feed`);
  }
  seen.events = await page.$$eval("#events li.ev", (ls) => ls.slice(0, 10).map((l) => l.innerText.replace(/\s+/g, " ")));
  // the event stream is open (not the polling fallback)
  await page.waitForFunction(() => document.getElementById("live").textContent === "live", null,
    { timeout: 10000 }).catch(() => {});
  seen.live = await page.$eval("#live", (e) => e.textContent);

  fs.mkdirSync(outdir, { recursive: true });
  await page.screenshot({ path: path.join(outdir, "ui-dashboard.png"), fullPage: true });
  await context.close();
} catch (e) {
  failures.push(`browser: ${e.message}`);
} finally {
  await browser.close();
}
check(consoleErrors.length === 0, `console errors: ${consoleErrors.join(" | ")}`);
console.log(JSON.stringify({ ok: failures.length === 0, failures, seen }));
process.exit(failures.length ? 1 : 0);
