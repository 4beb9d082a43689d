// Sluice citizen page: who used my data, and my objections. Everything
// the gateway sends (departments, purposes, legal bases, claims, reasons)
// was typed by someone else and is rendered with textContent, never as
// HTML, so that none of it can script this page. The token is kept in
// this tab's session storage and sent only in the Authorization header,
// never in a URL. The page decides nothing: the gateway answers only for
// the person the token names, and the page shows its refusals as they
// come.
"use strict";

const KEY = "sluice.me.token";
const LANG_KEY = "sluice.me.lang";
const $ = (sel) => document.querySelector(sel);

const view = {
  lang: "en",
  who: { sub: "", id: "", roles: [] },
  usage: null,        // the last GET /v1/me/usage answer
  objections: [],
  period: { since: "", until: "" }, // the dates picked, "" for open
  objectFor: null,    // the release the objection dialog is open on
  whyFor: null,       // the release the question dialog is open on
  notice: null,       // the last notice: [key, ...args]
};

// lang, t, token, APIError, api, el, button, breakable and switchLang are kit.js's
// (internal/webkit), loaded before this script.

// named is a value's name from one of words.js's tables, or the value.
const named = (table, v) => table[v] ? table[v][lang()] : String(v == null ? "" : v);
const word = (v) => named(NAMES, v);
const datasetName = (d) => named(DATASETS, d);
const deptName = (d) => d ? named(DEPTS, d) : t("none");
const fieldName = (f) => named(FIELDS, f);
const treatment = (op) => named(TREATMENTS, op);

// locale is the browser's own locale for the page's language, so that
// dates read as the reader is used to.
function locale() {
  const prefix = view.lang === "zh" ? "zh" : "en";
  return (navigator.languages || [navigator.language]).find((l) => l && l.toLowerCase().startsWith(prefix)) || (prefix === "zh" ? "zh-CN" : "en");
}
const valid = (iso) => { const d = new Date(iso); return iso && !isNaN(d) && d.getUTCFullYear() > 1 ? d : null; };
function fmt(iso, opts) {
  const d = valid(iso);
  return d ? d.toLocaleString(locale(), opts) : t("none");
}
const dayLong = (iso) => fmt(iso, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
const dayShort = (iso) => fmt(iso, { year: "numeric", month: "short", day: "numeric" });
const clock = (iso) => fmt(iso, { hour: "2-digit", minute: "2-digit" });
const when = (iso) => fmt(iso, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

const pad = (n) => String(n).padStart(2, "0");
// dayKey is a time's date in the browser's zone, 2026-04-12.
const dayKey = (d) => d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());

// masked shows an ID number by its first 6 and last 4 characters.
const masked = (id) => id.length > 10 ? id.slice(0, 6) + "*".repeat(id.length - 10) + id.slice(-4) : id;

const stateBadge = (s) => el("span", { class: "state s-" + s }, word(s));

// --- sign in -------------------------------------------------------------

// claims reads the token's payload. It is not verified here: the page
// uses it only to greet; the gateway checks it.
function claims(tok) {
  try {
    const p = tok.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(p.padEnd(Math.ceil(p.length / 4) * 4, "="));
    const c = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (ch) => ch.charCodeAt(0))));
    return { sub: String(c.sub || ""), id: String(c.id_number || ""), roles: Array.isArray(c.roles) ? c.roles.map(String) : [] };
  } catch (e) {
    return { sub: "", id: "", roles: [] };
  }
}

function signOut(msg) {
  sessionStorage.removeItem(KEY);
  Object.assign(view, { who: claims(""), usage: null, objections: [], notice: null, objectFor: null, whyFor: null });
  for (const d of ["#object", "#why"]) if ($(d).open) $(d).close();
  $("#app").hidden = true;
  $("#who").hidden = true;
  $("#signout").hidden = true;
  $("#refresh").hidden = true;
  $("#signin").hidden = false;
  $("#notice").textContent = "";
  $("#signin-error").textContent = msg || "";
  $("#token").focus();
}

async function signIn(tok) {
  $("#signin-error").textContent = "";
  sessionStorage.setItem(KEY, tok.trim());
  view.who = claims(token());
  let first;
  try {
    first = await fetchUsage();
  } catch (e) {
    if (e.status === 401) return;
    // A token that names no person is refused here; any other failure
    // (the index unavailable) is the page's to show.
    if (e.status === 400 || e.status === 403) { signOut(t("signinFailed", e.message)); return; }
    first = e;
  }
  $("#token").value = "";
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  $("#refresh").hidden = false;
  renderWho();
  showUsage(first);
  await loadObjections();
}

function renderWho() {
  const box = $("#who");
  box.hidden = !view.who.id;
  box.textContent = view.who.id ? t("whoIs", masked(view.who.id)) : "";
}

// refresh reloads the usage and the objections.
async function refresh() {
  await Promise.all([loadUsage(), loadObjections()]);
}

function notify(key, ...args) {
  view.notice = [key, ...args];
  $("#notice").textContent = t(key, ...args);
}

// --- usage ---------------------------------------------------------------

// localStart is the first instant of a date picked in the browser's zone,
// as RFC 3339.
function localStart(date, plusDays) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(y, m - 1, d + (plusDays || 0)).toISOString().replace(/\.\d+Z$/, "Z");
}

function usagePath() {
  const q = new URLSearchParams();
  if (view.period.since) q.set("since", localStart(view.period.since));
  if (view.period.until) q.set("until", localStart(view.period.until, 1)); // the whole last day
  const s = q.toString();
  return "/v1/me/usage" + (s ? "?" + s : "");
}

async function fetchUsage() {
  return api("GET", usagePath());
}

// showUsage shows an answer of fetchUsage, or the error it failed with.
function showUsage(r) {
  if (r instanceof Error) {
    view.usage = null;
    $("#usage-error").textContent = r.message;
  } else {
    view.usage = r;
    $("#usage-error").textContent = "";
  }
  renderUsage();
}

async function loadUsage() {
  try {
    showUsage(await fetchUsage());
  } catch (e) {
    if (e.status !== 401) showUsage(e);
  }
}

function renderTrail() {
  const box = $("#trail"), u = view.usage;
  box.hidden = !u;
  box.removeAttribute("role");
  if (!u) { box.replaceChildren(); return; }
  const tr = u.trail || {};
  const ok = tr.verified === true;
  box.className = "trail " + (ok ? "trail-ok" : "trail-bad");
  box.dataset.verified = String(ok);
  const badge = el("span", { class: "badge " + (ok ? "ok" : "bad") },
    el("span", { "aria-hidden": "true" }, ok ? "✓ " : "⚠ "), t(ok ? "trailOK" : "trailBad"));
  const text = ok ? t("trailOKText", Number(tr.records || 0).toLocaleString(locale()), when(tr.checked))
    : t("trailBadText", tr.problem || t("trailBadUnknown"));
  box.replaceChildren(badge, el("p", {}, text));
  if (tr.replica) box.append(el("p", { class: "scope" }, t("trailReplica", tr.replica)));
  // A trail that did not verify is said at once, not only shown.
  if (!ok) box.setAttribute("role", "alert");
}

function renderPeriod() {
  const u = view.usage;
  $("#period").textContent = !u ? "" : u.since ? t("periodFrom", when(u.since), when(u.until)) : t("periodAll", when(u.until));
}

// releases are the usage answer's releases, newest first.
const releases = () => ((view.usage && view.usage.releases) || []).slice().sort((a, b) => Date.parse(b.time) - Date.parse(a.time));

// askedAbout are the objections that ask about a release, by request id.
function askedAbout() {
  const m = new Map();
  for (const o of view.objections) if (o.release) m.set(o.release, (m.get(o.release) || []).concat(o));
  return m;
}

function renderUsage() {
  renderTrail();
  renderPeriod();
  const list = $("#timeline"), rels = releases();
  if (!view.usage) { list.replaceChildren(); $("#usage-count").textContent = ""; return; }
  $("#usage-count").textContent = rels.length === 1 ? t("countOne") : t("count", rels.length.toLocaleString(locale()));
  const asked = askedAbout();
  const days = [];
  for (const r of rels) {
    const d = valid(r.time), key = d ? dayKey(d) : "";
    if (!days.length || days[days.length - 1].key !== key) days.push({ key, time: r.time, items: [] });
    days[days.length - 1].items.push(r);
  }
  let n = 0;
  list.replaceChildren(...days.map((day) => el("li", { class: "day", "data-day": day.key },
    el("h3", {}, el("time", { datetime: day.key }, dayLong(day.time))),
    el("ol", { class: "releases" }, ...day.items.map((r) => renderRelease(r, "rel-" + n++, asked.get(r.request_id) || []))))));
  if (!rels.length) list.append(el("li", { class: "none" }, t("noUsage")));
}

function renderRelease(r, hid, asked) {
  const facts = [];
  const fact = (key, value, cls) => { if (value) facts.push(el("dt", {}, t(key)), el("dd", { class: cls || null }, value)); };
  fact("dept", capital(deptName(r.dept)));
  fact("roles", (r.roles || []).map((x) => named(ROLES, x)).join(", "));
  fact("purpose", r.purpose ? named(PURPOSES, r.purpose) : "");
  fact("legalBasis", r.legal_basis);
  fact("grant", r.grant ? el("span", { class: "mono" }, breakable(r.grant)) : "");
  fact("basis", r.basis);
  fact("dataset", datasetName(r.dataset) + (DATASETS[r.dataset] ? " (" + r.dataset + ")" : ""));
  const fields = Object.keys(r.fields || {}).sort((a, b) => fieldName(a).localeCompare(fieldName(b), locale()));
  fact("fields", fields.length ? el("ul", { class: "fields" }, ...fields.map((f) => el("li", { "data-field": f, "data-treatment": r.fields[f] },
    el("span", { class: "fname" }, fieldName(f)), " — ", treatment(r.fields[f])))) : "");
  fact("requestID", el("span", { class: "mono" }, breakable(r.request_id)));
  fact("replica", r.replica);
  const what = datasetName(r.dataset);
  return el("li", { class: "release", "data-request-id": r.request_id, "data-dataset": r.dataset },
    el("article", { "aria-labelledby": hid },
      el("div", { class: "rel-head" },
        el("time", { class: "rel-time", datetime: r.time }, clock(r.time)),
        el("h4", { id: hid }, t("usedBy", capital(deptName(r.dept)), what))),
      el("dl", { class: "facts" }, ...facts),
      asked.length ? el("p", { class: "asked" }, ...asked.flatMap((o, i) => [i ? " · " : "", t("asked", ""), stateBadge(o.state)])) : null,
      el("div", { class: "actions" },
        button(t("askWhy"), () => openWhy(r), { class: "ask-why", "aria-label": t("askWhyLabel", deptName(r.dept), r.request_id) }),
        button(t("objectRecord"), () => openObject(r), { class: "object-record", "aria-label": t("objectRecordLabel", what, r.request_id) }))));
}

const capital = (s) => s ? s.charAt(0).toLocaleUpperCase(locale()) + s.slice(1) : s;

function periodChosen(e) {
  e.preventDefault();
  const since = $("#since").value, until = $("#until").value;
  if (since && until && since > until) { $("#usage-error").textContent = t("badPeriod"); $("#since").focus(); return; }
  view.period = { since, until };
  loadUsage();
}

function periodAll() {
  $("#since").value = "";
  $("#until").value = "";
  view.period = { since: "", until: "" };
  loadUsage();
}

// --- objections ----------------------------------------------------------

async function loadObjections() {
  try {
    const r = await api("GET", "/v1/objections");
    view.objections = (r && r.objections) || [];
    $("#objections-error").textContent = "";
  } catch (e) {
    if (e.status === 401) return;
    $("#objections-error").textContent = e.message;
  }
  renderObjections();
  renderUsage(); // the releases asked about say so
}

const pending = (o) => o.state === "filed" || o.state === "accepted" || o.state === "escalated";

function renderObjections() {
  const list = $("#objection-list");
  const obs = view.objections.slice().sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
  const rels = new Map(((view.usage && view.usage.releases) || []).map((r) => [r.request_id, r]));
  list.replaceChildren(...obs.map((o) => {
    let title;
    if (o.release) {
      const r = rels.get(o.release);
      title = t("aboutRelease", deptName(r ? r.dept : o.owner), o.release);
    } else {
      title = t("aboutRecord", o.record_id || t("none"), datasetName(o.dataset)) + (o.field ? " · " + t("aboutField", fieldName(o.field)) : "");
    }
    const late = pending(o) && o.state !== "escalated" && Date.parse(o.due) < Date.now();
    const facts = [
      ["state", el("span", {}, stateBadge(o.state), " ", el("span", { class: "scope" }, named(STATE_HELP, o.state)))],
      ["claim", o.claim ? el("span", { class: "quote" }, o.claim) : null],
      ["answeredBy", capital(deptName(o.owner))],
      ["created", when(o.created)],
      ["due", pending(o) ? el("span", { class: late ? "late" : null }, late ? t("overdue", when(o.due)) : when(o.due)) : null],
    ];
    const history = (o.history || []).map((h) => el("li", {},
      t("historyLine", when(h.at), word(h.action), h.from ? word(h.from) : t("none"), word(h.to)),
      h.reason ? el("span", { class: "quote" }, " " + h.reason) : null));
    const acks = new Map((o.acks || []).map((a) => [a.dept, a]));
    const told = (o.recipients || []).length ? el("p", { class: "scope" }, t("notified", o.recipients.map((d) =>
      deptName(d) + (acks.has(d) ? " (" + t("acked", when(acks.get(d).at)) + ")" : "")).join(", "))) : null;
    return el("li", { class: "card objection", "data-id": o.id, "data-state": o.state, "data-release": o.release || null },
      el("h3", {}, title),
      el("dl", { class: "facts" }, ...facts.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, v)])),
      told,
      history.length ? el("details", {}, el("summary", {}, t("history")), el("ol", { class: "history" }, ...history)) : null,
      el("p", { class: "mono id" }, breakable(o.id)));
  }));
  if (!obs.length) list.append(el("li", { class: "none" }, t("noObjections")));
}

// filed says an objection was filed and takes the keyboard to it in the
// list: the button that opened the dialog is drawn anew.
async function filed(o) {
  notify("filed", o.id, when(o.due));
  await loadObjections();
  const card = [...document.querySelectorAll("#objection-list li[data-id]")].find((c) => c.dataset.id === o.id);
  if (card) { card.tabIndex = -1; card.focus(); }
}

// --- object to a record --------------------------------------------------

function openObject(r) {
  view.objectFor = r;
  $("#object-context").textContent = t("objectContext", dayShort(r.time), datasetName(r.dataset), deptName(r.dept), deptName(ownerOf(r.dataset)));
  $("#ob-dataset").textContent = datasetName(r.dataset) + (DATASETS[r.dataset] ? " (" + r.dataset + ")" : "");
  $("#ob-record").value = "";
  $("#ob-record-hint").textContent = named(RECORD_IDS, r.dataset) || "";
  if (!RECORD_IDS[r.dataset]) $("#ob-record-hint").textContent = RECORD_ID_ANY[lang()];
  const fields = Object.keys(r.fields || {}).sort((a, b) => fieldName(a).localeCompare(fieldName(b), locale()));
  $("#ob-field").replaceChildren(el("option", { value: "" }, t("wholeRecord")),
    ...fields.map((f) => el("option", { value: f }, fieldName(f) + (FIELDS[f] ? " (" + f + ")" : ""))));
  $("#ob-claim").value = "";
  $("#object-error").textContent = "";
  $("#object").showModal();
  $("#ob-record").focus();
}

// ownerOf is the department that keeps a dataset: its source's name.
const ownerOf = (dataset) => String(dataset || "").split("/")[0];

async function submitObject(e) {
  e.preventDefault();
  const r = view.objectFor, err = $("#object-error");
  const record = $("#ob-record").value.trim(), claim = $("#ob-claim").value.trim(), field = $("#ob-field").value;
  const missing = [];
  if (!record) missing.push(["#ob-record", "recordNeeded"]);
  if (!claim) missing.push(["#ob-claim", "claimNeeded"]);
  $("#ob-record").toggleAttribute("aria-invalid", !record);
  $("#ob-claim").toggleAttribute("aria-invalid", !claim);
  if (missing.length) {
    err.textContent = missing.map(([, k]) => t(k)).join(" ");
    $(missing[0][0]).focus();
    return;
  }
  err.textContent = "";
  const body = { dataset: r.dataset, record_id: record, claim };
  if (field) body.field = field;
  $("#object-submit").disabled = true;
  try {
    const o = await api("POST", "/v1/objections", body);
    $("#object").close();
    await filed(o);
  } catch (ex) {
    err.textContent = ex.message;
  } finally {
    $("#object-submit").disabled = false;
  }
}

// --- ask why -------------------------------------------------------------

function openWhy(r) {
  view.whyFor = r;
  $("#why-context").textContent = t("whyContext", when(r.time), capital(deptName(r.dept)), datasetName(r.dataset));
  $("#why-claim").value = t("whyDefault");
  $("#why-error").textContent = "";
  $("#why").showModal();
  $("#why-claim").focus();
}

async function submitWhy(e) {
  e.preventDefault();
  const r = view.whyFor, err = $("#why-error"), claim = $("#why-claim").value.trim();
  $("#why-claim").toggleAttribute("aria-invalid", !claim);
  if (!claim) { err.textContent = t("questionNeeded"); $("#why-claim").focus(); return; }
  err.textContent = "";
  $("#why-submit").disabled = true;
  try {
    const o = await api("POST", "/v1/objections", { release: r.request_id, claim });
    $("#why").close();
    await filed(o);
  } catch (ex) {
    err.textContent = ex.message;
  } finally {
    $("#why-submit").disabled = false;
  }
}

// --- language ------------------------------------------------------------

function setLang(l) {
  switchLang(l);
  if (!$("#app").hidden) {
    renderWho();
    renderUsage();
    renderObjections();
  }
  for (const d of ["#object", "#why"]) if ($(d).open) $(d).close();
}

// --- wiring --------------------------------------------------------------

$("#signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token").value); });
$("#signout").addEventListener("click", () => signOut(t("signedOut")));
$("#refresh").addEventListener("click", refresh);
$("#lang").addEventListener("click", () => setLang(view.lang === "zh" ? "en" : "zh"));
$("#period-form").addEventListener("submit", periodChosen);
$("#period-all").addEventListener("click", periodAll);
$("#object-form").addEventListener("submit", submitObject);
$("#object-close").addEventListener("click", () => $("#object").close());
$("#why-form").addEventListener("submit", submitWhy);
$("#why-close").addEventListener("click", () => $("#why").close());
setLang(localStorage.getItem(LANG_KEY) || ((navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en"));
if (token()) signIn(token()); else $("#token").focus();
