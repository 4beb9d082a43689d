// Sluice auditor page. Everything the trail holds is rendered with
// textContent or SVG text nodes, never as HTML: subjects, reasons and
// paths come from callers and must not be able to script this page.
"use strict";

const KEY = "sluice.audit.token";
const SVG = "http://www.w3.org/2000/svg";
const $ = (sel) => document.querySelector(sel);
let cursor = "";

function token() { return sessionStorage.getItem(KEY) || ""; }

async function api(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== "" && v != null) q.set(k, v);
  const url = path + (q.toString() ? "?" + q : "");
  const resp = await fetch(url, { headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (resp.status === 401) { signOut("Your token was refused: " + errText(body)); throw new Error("unauthenticated"); }
  if (!resp.ok) throw new Error(errText(body) || ("HTTP " + resp.status));
  return body;
}

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

// --- sign in -------------------------------------------------------------

function signOut(msg) {
  sessionStorage.removeItem(KEY);
  $("#app").hidden = true;
  $("#signout").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = msg || "";
  $("#chain").textContent = "chain: not checked";
  $("#chain").className = "badge";
  $("#token").focus();
}

async function signIn(tok) {
  $("#signin-error").textContent = "";
  sessionStorage.setItem(KEY, tok.trim());
  try {
    await api("/audit/v1/verify");
  } catch (e) {
    if (e.message !== "unauthenticated") signOut("Sign-in failed: " + e.message);
    return;
  }
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  $("#token").value = "";
  refresh();
}

// --- chain status --------------------------------------------------------

async function loadChain() {
  const badge = $("#chain");
  try {
    const r = await api("/audit/v1/verify");
    if (r.ok) {
      badge.className = "badge ok";
      badge.textContent = "chain intact · " + r.records + " records · head " + String(r.head || "").slice(0, 12);
    } else {
      badge.className = "badge bad";
      const b = r.bad || {};
      badge.textContent = "chain BROKEN at " + (b.segment || "?") + " line " + (b.line || "?") + ": " + (b.reason || "");
    }
  } catch (e) {
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

async function search(reset) {
  const tbody = $("#events tbody");
  $("#events-error").textContent = "";
  if (reset) { tbody.replaceChildren(); cursor = ""; }
  try {
    const params = Object.assign(filterParams(), { limit: 100 });
    if (cursor) params.cursor = cursor;
    const r = await api("/audit/v1/events", params);
    for (const ev of r.events || []) tbody.append(eventRow(ev));
    cursor = r.next_cursor || "";
    $("#more").hidden = !cursor;
    if (!tbody.children.length) tbody.append(el("tr", {}, el("td", { colspan: "9" }, "No events match.")));
  } catch (e) {
    $("#events-error").textContent = "Search failed: " + e.message;
  }
}

// A release has two records with one request id: the decision, durable
// before the department was asked (no status yet), and its outcome.
const decided = (ev) => ev.phase === "decision";

function eventRow(ev) {
  const ds = ev.source ? ev.source + "/" + ev.dataset : "";
  const tr = el("tr", { tabindex: "0", "aria-label": "event " + ev.seq },
    el("td", {}, ev.seq),
    el("td", {}, (ev.time || "").replace("T", " ").replace(/\.\d+Z$/, "Z")),
    el("td", {}, ev.subject || "—"),
    el("td", {}, ev.action),
    el("td", {}, ds),
    el("td", { class: ev.decision }, ev.decision),
    el("td", {}, decided(ev) ? "decided" : ev.status),
    el("td", {}, decided(ev) ? "—" : ev.rows),
    el("td", { class: "mono" }, ev.request_id));
  const open = () => showDetail(ev);
  tr.addEventListener("click", open);
  tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
  return tr;
}

function showDetail(ev) {
  const dl = $("#detail-fields");
  dl.replaceChildren();
  const rows = [
    ["Request id", ev.request_id], ["Sequence", ev.seq], ["Time", ev.time], ["Subject", ev.subject],
    ["Roles", (ev.roles || []).join(", ")], ["Purpose", ev.purpose], ["Client", ev.client],
    ["Action", ev.action], ["Dataset", ev.source ? ev.source + "/" + ev.dataset : ""],
    ["Request", ev.method + " " + ev.path], ["Decision", ev.decision], ["Reason", ev.reason],
    ["Record", decided(ev) ? "decision, before the department was asked (the outcome follows)" : ev.phase === "outcome" ? "outcome" : ""],
    ...(decided(ev) ? [] : [["Status", ev.status + (ev.code ? " " + ev.code : "")], ["Rows released", ev.rows], ["Bytes", ev.bytes],
      ["Duration", ev.duration_ms + " ms"]]),
    ["Policy revision", ev.policy_revision],
  ];
  for (const [k, v] of rows) {
    if (v === undefined || v === "" || v === null) continue;
    dl.append(el("dt", {}, k), el("dd", { class: k === "Request id" ? "mono" : "" }, v));
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
  if (!ob.children.length) ob.append(el("tr", {}, el("td", {}, "none")));
  $("#detail-raw").textContent = JSON.stringify(ev, null, 2);
  $("#detail").showModal();
}

// --- charts --------------------------------------------------------------

const COLORS = { allow: "#1a7f37", deny: "#cf222e", error: "#9a6700" };

function empty(box, msg) { box.replaceChildren(el("p", { class: "empty" }, msg)); }

function chartHours(box, hours) {
  if (!hours || !hours.length) return empty(box, "No accesses in this period.");
  const W = 480, H = 180, pad = 28, bw = Math.min(40, Math.max(2, (W - pad) / hours.length - 2));
  const max = Math.max(1, ...hours.map((h) => (h.allow || 0) + (h.deny || 0) + (h.error || 0)));
  const s = svg("svg", { viewBox: `0 0 ${W} ${H + 20}`, role: "img", "aria-label": "accesses per hour, stacked by decision" });
  s.append(svg("text", { x: 0, y: 12, "font-size": 10 }, max));
  hours.forEach((h, i) => {
    let y = H;
    const x = pad + i * (bw + 2);
    for (const k of ["allow", "deny", "error"]) {
      const v = h[k] || 0;
      if (!v) continue;
      const bh = (v / max) * (H - 16);
      y -= bh;
      const r = svg("rect", { x, y, width: bw, height: bh, fill: COLORS[k] });
      r.append(svg("title", {}, `${h.hour}: ${v} ${k}`));
      s.append(r);
    }
  });
  s.append(svg("text", { x: pad, y: H + 14, "font-size": 10 }, (hours[0].hour || "").slice(0, 13)));
  s.append(svg("text", { x: W, y: H + 14, "font-size": 10, "text-anchor": "end" }, (hours[hours.length - 1].hour || "").slice(0, 13)));
  let lx = W - 150;
  for (const k of ["allow", "deny", "error"]) {
    s.append(svg("rect", { x: lx, y: 2, width: 10, height: 10, fill: COLORS[k] }));
    s.append(svg("text", { x: lx + 13, y: 11, "font-size": 10 }, k));
    lx += 50;
  }
  box.replaceChildren(s);
}

function chartBars(box, items, label, value, cap, color) {
  if (!items || !items.length) return empty(box, "Nothing to show.");
  const rowH = 22, W = 480, left = 150, H = items.length * rowH + 4;
  const max = Math.max(1e-9, ...items.map((d) => Math.max(value(d), cap ? cap(d) || 0 : 0)));
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": box.parentElement.querySelector("figcaption").textContent });
  items.forEach((d, i) => {
    const y = i * rowH + 2, w = (value(d) / max) * (W - left - 60);
    s.append(svg("text", { x: left - 6, y: y + 14, "font-size": 11, "text-anchor": "end" }, label(d)));
    const r = svg("rect", { x: left, y, width: Math.max(1, w), height: rowH - 6, fill: color });
    r.append(svg("title", {}, `${label(d)}: ${value(d)}` + (cap ? ` of ${cap(d)}` : "")));
    s.append(r);
    if (cap && cap(d)) {
      const cx = left + (cap(d) / max) * (W - left - 60);
      s.append(svg("line", { x1: cx, x2: cx, y1: y - 1, y2: y + rowH - 5, stroke: "#1b1f24", "stroke-width": 2 }));
    }
    s.append(svg("text", { x: left + w + 4, y: y + 13, "font-size": 10 }, cap ? `${fmt(value(d))} / ${fmt(cap(d))}` : value(d)));
  });
  box.replaceChildren(s);
}

function fmt(n) { return Number.isFinite(n) ? (Math.round(n * 100) / 100).toString() : "—"; }

async function loadSummary() {
  try {
    const r = await api("/audit/v1/summary", { since: filterParams().since, until: filterParams().until });
    chartHours($("#chart-hours"), r.hours);
    chartBars($("#chart-epsilon"), r.epsilon, (d) => d.subject + " · " + d.dataset, (d) => d.spent, (d) => d.cap, "#0969da");
    chartBars($("#chart-denied"), (r.denied || []).slice(0, 10), (d) => d.subject || "(unauthenticated)", (d) => d.count, null, COLORS.deny);
  } catch (e) {
    for (const id of ["#chart-hours", "#chart-epsilon", "#chart-denied"]) empty($(id), "Summary unavailable: " + e.message);
  }
}

function refresh() { loadChain(); loadSummary(); search(true); }

// --- wiring --------------------------------------------------------------

$("#signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token").value); });
$("#signout").addEventListener("click", () => signOut("Signed out."));
$("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadSummary(); search(true); });
$("#filters").addEventListener("reset", () => setTimeout(() => { loadSummary(); search(true); }, 0));
$("#more").addEventListener("click", () => search(false));
if (token()) signIn(token()); else $("#token").focus();
