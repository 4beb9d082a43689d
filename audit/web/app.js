// Sluice auditor page. Everything the trail holds is rendered with
// textContent or SVG text nodes, never as HTML: subjects, reasons and
// paths come from callers and must not be able to script this page.
"use strict";

const KEY = "sluice.audit.token";
const SVG = "http://www.w3.org/2000/svg";
const PAGE = 100;
const $ = (sel) => document.querySelector(sel);

// What the table shows and what its count states. The table lists only
// records the last verification covered (seq <= bound), so the count it
// states and the chain badge's count are of the same trail: unfiltered and
// fully loaded, "of the N records" is the badge's N.
const view = {
  me: "",          // the signed-in auditor's subject, as the trail records it
  bound: 0,        // the last verified seq; 0 when the chain did not verify
  params: {},      // the filters of the search the table shows
  records: [],     // the records loaded, newest first, own reads included
  cursor: "",      // continues the search; "" when it reached the trail's start
  newer: [],       // records the search met that were written after the verification
  generation: 0,   // a newer search discards an older one's late answers
};

function token() { return sessionStorage.getItem(KEY) || ""; }

// call asks the auditor API and returns the answer and its request id.
async function call(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== "" && v != null) q.set(k, v);
  const url = path + (q.toString() ? "?" + q : "");
  const resp = await fetch(url, { headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (resp.status === 401) { signOut("Your token was refused: " + errText(body)); throw new Error("unauthenticated"); }
  if (!resp.ok) throw new Error(errText(body) || ("HTTP " + resp.status));
  return { body, id: resp.headers.get("X-Request-Id") || "" };
}

async function api(path, params) { return (await call(path, params)).body; }

function errText(body) {
  return body && body.error ? body.error.message + " (" + body.error.code + ")" : "";
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = String(text);
  return e;
}

const plural = (n, one, many) => n + " " + (n === 1 ? one : (many || one + "s"));
// breakable lets a path or dataset wrap after each slash.
function breakable(text) {
  const f = document.createDocumentFragment();
  String(text).split(/(?<=\/)/).forEach((part, i) => { if (i) f.append(el("wbr")); f.append(part); });
  return f;
}

const utc = (t) => (t || "").replace("T", " ").replace(/(:\d\d)(\.\d+)?Z$/, "$1Z");

// --- sign in -------------------------------------------------------------

function signOut(msg) {
  sessionStorage.removeItem(KEY);
  view.me = "";
  view.generation++;
  $("#app").hidden = true;
  $("#signout").hidden = true;
  $("#reverify").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = msg || "";
  $("#chain").textContent = "chain: not checked";
  $("#chain").className = "badge";
  $("#token").focus();
}

// whoAmI learns the subject the gateway authenticated from the trail
// itself: every API call is audited before it is answered, so the record
// with the request id of a first call names its caller. The page needs no
// parsing of the token to tell the auditor's own reads apart.
async function whoAmI() {
  const { id } = await call("/audit/v1/events", { limit: 1 });
  const r = await api("/audit/v1/events", { request_id: id, limit: 1 });
  const ev = (r.events || [])[0];
  return ev ? ev.subject || "" : "";
}

async function signIn(tok) {
  $("#signin-error").textContent = "";
  sessionStorage.setItem(KEY, tok.trim());
  try {
    view.me = await whoAmI();
  } catch (e) {
    if (e.message !== "unauthenticated") signOut("Sign-in failed: " + e.message);
    return;
  }
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  $("#reverify").hidden = false;
  $("#token").value = "";
  refresh();
}

// --- chain status --------------------------------------------------------

async function loadChain() {
  const badge = $("#chain");
  badge.className = "badge";
  badge.textContent = "chain: verifying…";
  try {
    const r = await api("/audit/v1/verify");
    if (r.ok) {
      view.bound = r.records;
      badge.className = "badge ok";
      badge.textContent = "Chain intact · " + plural(r.records, "record") + " verified · head " + String(r.head || "").slice(0, 12);
    } else {
      view.bound = 0;
      badge.className = "badge bad";
      const b = r.bad || {};
      badge.textContent = "Chain BROKEN at " + (b.segment || "?") + " line " + (b.line || "?") + ": " + (b.reason || "");
    }
  } catch (e) {
    view.bound = 0;
    badge.className = "badge bad";
    badge.textContent = "chain: " + e.message;
  }
}

// --- events --------------------------------------------------------------

function filterParams() {
  const f = new FormData($("#filters"));
  const p = {};
  for (const [k, v] of f.entries()) {
    if (!v) continue;
    p[k] = (k === "since" || k === "until") ? new Date(v).toISOString() : v;
  }
  return p;
}

// An own read is a call of this page (or any other client) of the auditor
// API by the signed-in auditor: the page's own traffic, not the trail's.
const ownRead = (ev) => view.me !== "" && ev.action === "audit" && ev.subject === view.me;
const showOwn = () => $("#show-own").checked;
const visible = () => showOwn() ? view.records : view.records.filter((ev) => !ownRead(ev));

// search loads records into the table: from the newest when reset, else
// after the last loaded, until a page of them is visible or the trail ends.
async function search(reset) {
  const gen = reset ? ++view.generation : view.generation;
  if (reset) Object.assign(view, { params: filterParams(), records: [], cursor: "", newer: [] });
  $("#events-error").textContent = "";
  $("#more").disabled = true;
  const want = visible().length + PAGE;
  try {
    for (let pages = 0; pages < 5; pages++) {
      const params = Object.assign({}, view.params, { limit: PAGE });
      if (view.cursor) params.cursor = view.cursor;
      const r = await api("/audit/v1/events", params);
      if (gen !== view.generation) return;
      for (const ev of r.events || []) {
        (view.bound && ev.seq > view.bound ? view.newer : view.records).push(ev);
      }
      view.cursor = r.next_cursor || "";
      if (!view.cursor || visible().length >= want) break;
    }
  } catch (e) {
    if (gen === view.generation) $("#events-error").textContent = "Search failed: " + e.message;
  }
  if (gen === view.generation) render();
}

// A release has two records with one request id: the decision, durable
// before the department was asked (no status yet), and its outcome.
const decided = (ev) => ev.phase === "decision";

// COLUMNS are the table's columns, header and cells from one list; on a
// narrow screen each row is a card and the header text labels each cell.
const COLUMNS = [
  { key: "seq", label: "Seq", cell: (ev) => el("button", { type: "button", class: "open", "aria-label": "Open record " + ev.seq }, ev.seq) },
  { key: "time", label: "Time (UTC)", cell: (ev) => utc(ev.time) },
  { key: "subject", label: "Subject", cell: (ev) => (ev.subject || "—") + (ownRead(ev) ? " (you)" : "") },
  { key: "action", label: "Action", cell: (ev) => ev.action },
  { key: "dataset", label: "Dataset", cell: (ev) => ev.source ? breakable(ev.source + "/" + ev.dataset) : "—" },
  { key: "path", label: "Path", cell: (ev) => breakable((ev.method ? ev.method + " " : "") + (ev.path || "")) },
  { key: "decision", label: "Decision", cell: (ev) => ev.decision },
  { key: "reason", label: "Reason", cell: (ev) => ev.reason || "—" },
  { key: "status", label: "Status", cell: (ev) => decided(ev) ? "decided" : ev.status },
  { key: "rows", label: "Rows", cell: (ev) => decided(ev) ? "—" : ev.rows },
  { key: "request_id", label: "Request id", cell: (ev) => ev.request_id },
];

function tableHead() {
  $("#events thead").replaceChildren(el("tr", {},
    ...COLUMNS.map((c) => el("th", { scope: "col", class: "c-" + c.key }, c.label))));
}

function eventRow(ev) {
  const tr = el("tr", { class: "event" + (ownRead(ev) ? " own" : "") },
    ...COLUMNS.map((c) => el("td", { class: "c-" + c.key + (c.key === "decision" ? " d-" + ev.decision : ""), "data-label": c.label }, c.cell(ev))));
  // The seq button is the keyboard's way in; a click anywhere on the row
  // (the button's included, bubbling) opens the record.
  tr.addEventListener("click", () => showDetail(ev));
  return tr;
}

function render() {
  const rows = visible();
  const tbody = $("#events tbody");
  tbody.replaceChildren(...rows.map(eventRow));
  if (!rows.length) tbody.append(el("tr", { class: "none" }, el("td", { colspan: String(COLUMNS.length) }, "No records to show.")));
  $("#more").hidden = !view.cursor;
  $("#more").disabled = false;
  $("#events-count").textContent = countText(rows.length);
}

// countText says what the table's rows are a count of: the records loaded,
// of the verified trail, matching the filters, less the own reads hidden.
function countText(shown) {
  const loaded = view.records.length;
  const own = view.records.filter(ownRead).length;
  const filtered = Object.keys(view.params).length > 0;
  let s = "Showing " + shown + " of the " + plural(loaded, "record") +
    (filtered ? " that match the filters" : "") + (view.cursor ? " loaded so far" : "") +
    (view.bound ? " in the verified trail (seq 1–" + view.bound + ")" : "") + ".";
  if (own) s += showOwn() ? " " + own + " of them are your own reads of the audit API." : " Hidden: " + plural(own, "own read") + " of the audit API.";
  if (view.cursor) s += " Older records are not loaded yet.";
  // The page's own reads since the verification are news to no one.
  const newer = view.newer.filter((ev) => showOwn() || !ownRead(ev)).length;
  if (newer) s += " Not listed: " + plural(newer, "record") + " written after the verification; Verify again to include them.";
  return s;
}

function showDetail(ev) {
  const dl = $("#detail-fields");
  dl.replaceChildren();
  $("#detail-h").textContent = "Record " + ev.seq;
  const query = Object.entries(ev.query || {}).map(([k, v]) => k + "=" + v.join(",")).join(" ");
  const rows = [
    ["Request id", ev.request_id], ["Sequence", ev.seq], ["Time", ev.time], ["Subject", ev.subject],
    ["Roles", (ev.roles || []).join(", ")], ["Purpose", ev.purpose], ["Client", ev.client],
    ["Action", ev.action], ["Dataset", ev.source ? ev.source + "/" + ev.dataset : ""],
    ["Request", ev.method + " " + ev.path], ["Query", query], ["Decision", ev.decision], ["Reason", ev.reason],
    ["Record", decided(ev) ? "decision, before the department was asked (the outcome follows)" : ev.phase === "outcome" ? "outcome" : ""],
    ...(decided(ev) ? [] : [["Status", ev.status + (ev.code ? " " + ev.code : "")], ["Rows released", ev.rows], ["Bytes", ev.bytes],
      ["Duration", ev.duration_ms + " ms"]]),
    ["Flags", (ev.flags || []).join(", ")],
    ["Shadow policy", ev.shadow ? ev.shadow.revision + ": " + (ev.shadow.differences || []).join("; ") : ""],
    ["Policy revision", ev.policy_revision], ["Hash", ev.hash], ["Previous hash", ev.prev],
  ];
  for (const [k, v] of rows) {
    if (v === undefined || v === "" || v === null) continue;
    const mono = ["Request id", "Hash", "Previous hash", "Policy revision", "Query"].includes(k);
    dl.append(el("dt", {}, k), el("dd", { class: mono ? "mono" : "" }, v));
  }
  const ob = $("#detail-obligations tbody");
  ob.replaceChildren();
  const o = ev.obligations || {};
  for (const [field, op] of Object.entries(o.fields || {})) ob.append(el("tr", {}, el("th", { scope: "row" }, field), el("td", {}, op)));
  for (const f of o.dropped || []) ob.append(el("tr", {}, el("th", { scope: "row" }, f), el("td", {}, "drop")));
  for (const r of o.rows || []) ob.append(el("tr", {}, el("th", { scope: "row" }, "row filter"), el("td", {}, r)));
  for (const [k, v] of Object.entries(o)) {
    if (["fields", "dropped", "rows"].includes(k)) continue;
    ob.append(el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : v)));
  }
  if (!ob.children.length) ob.append(el("tr", {}, el("td", { colspan: "2" }, "none")));
  $("#detail-raw").textContent = JSON.stringify(ev, null, 2);
  $("#detail").showModal();
}

// --- charts --------------------------------------------------------------

const DECISIONS = [["allow", "allowed"], ["deny", "denied"], ["error", "failed"]];
const COLORS = { allow: "#1a7f37", deny: "#cf222e", error: "#9a6700" };

function empty(box, msg) { box.replaceChildren(el("p", { class: "empty" }, msg)); }

// hourSeries fills the hours without requests between the window's start
// (or the first busy hour) and the last busy hour, so the x axis is time;
// a window of more than 31 days keeps only the busy hours.
function hourSeries(hours, since) {
  const H = 3600e3;
  const busy = new Map(hours.map((h) => [Date.parse(h.hour), h]));
  const last = Math.max(...busy.keys());
  const first = Math.min(...busy.keys());
  const start = since ? Math.min(first, Math.floor(Date.parse(since) / H) * H) : first;
  if ((last - start) / H > 24 * 31) return hours;
  const out = [];
  for (let t = start; t <= last; t += H) out.push(busy.get(t) || { hour: new Date(t).toISOString() });
  return out;
}

// drawnHours is what the hours chart last drew, to redraw it at a new width.
let drawnHours = null;

const hourLabel = (iso) => iso.slice(5, 10) + " " + iso.slice(11, 13) + ":00";

// chartHours draws requests per hour at the box's own pixel width, so its
// text is always 12 px and its axis labels are spaced not to collide.
function chartHours(box, hours, since) {
  drawnHours = { hours, since, width: box.clientWidth };
  if (!hours || !hours.length) return empty(box, "No requests in this period.");
  const series = hourSeries(hours, since);
  const W = Math.max(240, Math.floor(box.clientWidth || 320)), H = 150, left = 36, bottom = 20, top = 8;
  const plotW = W - left - 4, plotH = H - top - bottom;
  const total = (h) => (h.allow || 0) + (h.deny || 0) + (h.error || 0);
  const max = Math.max(1, ...series.map(total));
  const step = plotW / series.length, bw = Math.max(1, Math.min(28, step - 2));
  const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `Requests per hour, ${series.length} hours from ${hourLabel(series[0].hour)} UTC, at most ${max} in an hour; the table below has the numbers` });
  s.append(svg("line", { x1: left, x2: W - 4, y1: top + plotH + 0.5, y2: top + plotH + 0.5, stroke: "#57606a" }));
  s.append(svg("line", { x1: left, x2: W - 4, y1: top + 0.5, y2: top + 0.5, stroke: "#d0d7de" }));
  s.append(svg("text", { x: left - 6, y: top + 4, "text-anchor": "end", class: "tick" }, max));
  s.append(svg("text", { x: left - 6, y: top + plotH + 4, "text-anchor": "end", class: "tick" }, 0));
  series.forEach((h, i) => {
    let y = top + plotH;
    const x = left + i * step + (step - bw) / 2;
    for (const [k, word] of DECISIONS) {
      const v = h[k] || 0;
      if (!v) continue;
      const bh = (v / max) * plotH;
      y -= bh;
      const r = svg("rect", { x, y, width: bw, height: bh, fill: COLORS[k] });
      r.append(svg("title", {}, `${hourLabel(h.hour)} UTC: ${v} ${word}`));
      s.append(r);
    }
  });
  // A label is about 70 px wide; one per 120 px, the first flush left and
  // the last flush right, cannot overlap.
  const n = Math.min(series.length, Math.max(1, Math.floor(plotW / 120)));
  for (let j = 0; j < n; j++) {
    const i = n === 1 ? 0 : Math.round(j * (series.length - 1) / (n - 1));
    const first = j === 0, last = j === n - 1 && n > 1;
    s.append(svg("text", { x: first ? left : last ? W - 4 : left + (i + 0.5) * step, y: H - 4,
      "text-anchor": first ? "start" : last ? "end" : "middle", class: "tick" }, hourLabel(series[i].hour)));
  }
  const legend = el("ul", { class: "legend" },
    ...DECISIONS.map(([k, word]) => el("li", {}, el("span", { class: "swatch d-" + k, "aria-hidden": "true" }), word)));
  const table = el("table", { class: "numbers" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Hour (UTC)"), ...DECISIONS.map(([, w]) => el("th", { scope: "col" }, w)))),
    el("tbody", {}, ...hours.map((h) => el("tr", {}, el("th", { scope: "row" }, hourLabel(h.hour)),
      ...DECISIONS.map(([k]) => el("td", {}, h[k] || 0))))));
  box.replaceChildren(legend, s, el("details", {}, el("summary", {}, "The numbers"), table));
}

// chartBars lists one bar per item as HTML: labels wrap instead of being
// cut, and the numbers are text a screen reader reads.
function chartBars(box, items, label, value, cap, valueText, kind) {
  if (!items || !items.length) return empty(box, "Nothing to show.");
  const max = Math.max(1e-9, ...items.map((d) => Math.max(value(d), cap ? cap(d) || 0 : 0)));
  const list = el("ol", { class: "bars" });
  for (const d of items) {
    const bar = el("span", { class: "bar " + kind });
    bar.style.width = (100 * value(d) / max) + "%";
    const track = el("span", { class: "bar-track", "aria-hidden": "true" }, bar);
    if (cap && cap(d)) {
      const mark = el("span", { class: "bar-cap" });
      mark.style.left = `calc(${100 * cap(d) / max}% - 1px)`;
      track.append(mark);
    }
    list.append(el("li", {}, el("span", { class: "bar-label" }, label(d)), el("span", { class: "bar-value" }, valueText(d)), track));
  }
  box.replaceChildren(list);
}

function fmt(n) { return Number.isFinite(n) ? (Math.round(n * 100) / 100).toString() : "—"; }

const setTime = (t) => t && !t.startsWith("0001-") ? utc(t).slice(0, -4) + " UTC" : "";

async function loadSummary() {
  const { since, until } = filterParams();
  const scope = $("#summary-scope");
  try {
    const r = await api("/audit/v1/summary", { since, until });
    const t = r.totals || {};
    const n = (t.allow || 0) + (t.deny || 0) + (t.error || 0);
    scope.textContent = `Requests by all callers from ${setTime(r.since) || "the start"} to ${setTime(r.until) || "now"}, ` +
      `your own reads included; a release's decision and outcome records count as one request. ` +
      `${plural(n, "request")}: ${t.allow || 0} allowed, ${t.deny || 0} denied, ${t.error || 0} failed.`;
    chartHours($("#chart-hours"), r.hours, r.since);
    chartBars($("#chart-epsilon"), r.epsilon, (d) => d.subject + " · " + d.dataset, (d) => d.spent, (d) => d.cap,
      (d) => "ε " + fmt(d.spent) + (d.cap ? " of " + fmt(d.cap) : ""), "epsilon");
    chartBars($("#chart-denied"), (r.denied || []).slice(0, 10), (d) => d.subject || "(unauthenticated)", (d) => d.count, null,
      (d) => plural(d.count, "denial"), "deny");
  } catch (e) {
    scope.textContent = "";
    for (const id of ["#chart-hours", "#chart-epsilon", "#chart-denied"]) empty($(id), "Summary unavailable: " + e.message);
  }
}

// refresh verifies the chain first: the table lists what it covered.
async function refresh() {
  await loadChain();
  loadSummary();
  search(true);
}

// --- wiring --------------------------------------------------------------

tableHead();
$("#signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token").value); });
$("#signout").addEventListener("click", () => signOut("Signed out."));
$("#reverify").addEventListener("click", refresh);
$("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadSummary(); search(true); });
$("#filters").addEventListener("reset", () => setTimeout(() => { loadSummary(); search(true); }, 0));
$("#more").addEventListener("click", () => search(false));
$("#show-own").addEventListener("change", render);
new ResizeObserver(() => {
  const box = $("#chart-hours");
  if (drawnHours && box.clientWidth && box.clientWidth !== drawnHours.width) chartHours(box, drawnHours.hours, drawnHours.since);
}).observe($("#chart-hours"));
if (token()) signIn(token()); else $("#token").focus();
