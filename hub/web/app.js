// Sluice data-sharing hub page. Everything the gateway sends (dataset
// names, purposes, reasons, justifications, subjects) was typed by someone
// else and is rendered with textContent, never as HTML, so that none of it
// can script this page. The token is kept in this tab's session storage
// and sent only in the Authorization header, never in a URL. Which views
// show is read from the token's roles for display only: the gateway
// decides every action, and the page shows its refusals as they come.
"use strict";

const KEY = "sluice.hub.token";
const LANG_KEY = "sluice.hub.lang";
const $ = (sel) => document.querySelector(sel);

// TREATMENTS are what a steward may name for a field; "types" limits one
// to the field types it applies to. The policy holds each to the field's
// level's ceiling, whatever is chosen here.
const TREATMENTS = [
  { id: "ceiling", value: "ceiling", label: ["ceiling: the most its level allows", "上限：该级别允许的最大范围"] },
  { id: "keep", value: "keep", label: ["keep", "原样提供"] },
  { id: "pseudonymize", value: "pseudonymize", label: ["pseudonymize", "假名化"] },
  { id: "redact", value: "redact", label: ["redact", "遮蔽"] },
  { id: "drop", value: "drop", label: ["drop", "不提供"] },
  { id: "month", value: { op: "generalize", to: "month" }, types: ["date"], label: ["month only", "仅到月"] },
  { id: "quarter", value: { op: "generalize", to: "quarter" }, types: ["date"], label: ["quarter only", "仅到季度"] },
  { id: "year", value: { op: "generalize", to: "year" }, types: ["date"], label: ["year only", "仅到年"] },
  { id: "bucket", value: { op: "generalize", to: "bucket", width: 1000 }, types: ["integer", "number"], label: ["bands of 1,000", "按 1000 分段"] },
  { id: "prefix", value: { op: "generalize", to: "prefix", length: 3 }, types: ["icd10"], label: ["category (3 characters)", "类目（前 3 位）"] },
  { id: "mask_id_cn", value: "mask_id_cn", types: ["id_cn"], label: ["mask the ID number", "身份证号掩码"] },
  { id: "mask_phone_cn", value: "mask_phone_cn", types: ["phone_cn"], label: ["mask the phone number", "手机号掩码"] },
  { id: "mask_name_cn", value: "mask_name_cn", types: ["name_cn"], label: ["mask the name", "姓名掩码"] },
  { id: "mask_address", value: "mask_address", types: ["address_cn"], label: ["mask the address", "地址掩码"] },
];

const view = {
  lang: "en",
  who: { sub: "", dept: "", roles: [], purpose: "" },
  catalog: [],
  requests: [],
  grants: [],
  preview: null,       // the last preview shown: {fields, note, limits}
  previewGen: 0,       // a newer preview discards an older one's late answer
  previewTimer: 0,
  decideFor: null,     // the request the decision dialog is open on
  act: null,           // what the action dialog does: {path, body, done}
  notice: null,        // the last notice: [key, ...args]
};

// lang, t, token, APIError, api, el, button, breakable and switchLang are kit.js's
// (internal/webkit), loaded before this script.
const word = (v) => NAMES[v] ? NAMES[v][lang()] : String(v == null ? "" : v);

const pad = (n) => String(n).padStart(2, "0");
// when is a time in the browser's own zone: "2026-04-12 18:00".
function when(iso) {
  const d = new Date(iso);
  if (!iso || isNaN(d) || d.getUTCFullYear() < 2) return "—";
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
}
const dateOf = (iso) => when(iso).slice(0, 10);

function duration(ms) {
  const m = Math.floor(ms / 60000), h = Math.floor(m / 60), d = Math.floor(h / 24);
  if (d > 0) return t("days", d, h % 24);
  if (h > 0) return t("hours", h, m % 60);
  return t("minutes", m);
}

const waiting = (r) => r.state === "submitted" || r.state === "escalated";
const overdue = (r) => waiting(r) && Date.parse(r.due) <= Date.now();

// timeLeft says how long an answer has, or how late it is.
function timeLeft(r) {
  if (r.state === "needs_info") return t("paused", r.remaining_days || 0);
  if (!waiting(r)) return "—";
  const ms = Date.parse(r.due) - Date.now();
  return ms > 0 ? t("left", duration(ms)) : t("overdue", duration(-ms));
}

// rule is a treatment as text: "keep", "generalize (to: month)".
function rule(v) {
  if (v == null) return "—";
  if (typeof v === "string") return v;
  const params = Object.assign({}, v.params || {});
  for (const [k, x] of Object.entries(v)) if (k !== "op" && k !== "params") params[k] = x;
  const p = Object.entries(params).map(([k, x]) => k + ": " + (typeof x === "object" ? JSON.stringify(x) : x));
  return (v.op || JSON.stringify(v)) + (p.length ? " (" + p.join(", ") + ")" : "");
}

function value(v) {
  if (v === undefined) return t("notReleased");
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

const person = (p) => p ? (p.subject || "—") + (p.dept ? " · " + p.dept : "") : "—";
const stateBadge = (s) => el("span", { class: "state s-" + s }, word(s));

// table renders rows into a table from one list of columns, header and
// cells alike; on a narrow screen each row is a card whose cells carry
// their column's name.
function table(sel, columns, rows, emptyKey, rowClass) {
  const tbl = $(sel);
  tbl.tHead.replaceChildren(el("tr", {}, ...columns.map((c) => el("th", { scope: "col", class: "c-" + c.key }, t(c.key)))));
  const body = tbl.tBodies[0];
  body.replaceChildren(...rows.map((r) => {
    const tr = el("tr", { class: "item " + (rowClass ? rowClass(r) : ""), "data-id": r.id || null });
    for (const c of columns) {
      const cell = el(c.head ? "th" : "td", { class: "c-" + c.key, "data-label": t(c.key), scope: c.head ? "row" : null }, c.cell(r));
      tr.append(cell);
    }
    return tr;
  }));
  if (!rows.length) body.append(el("tr", { class: "none" }, el("td", { colspan: String(columns.length) }, t(emptyKey))));
}

// --- sign in -------------------------------------------------------------

// claims reads the token's payload. It is not verified here: the page
// uses it only to choose views and to greet; the gateway checks it.
function claims(tok) {
  try {
    const p = tok.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(p.padEnd(Math.ceil(p.length / 4) * 4, "="));
    const c = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (ch) => ch.charCodeAt(0))));
    return { sub: String(c.sub || ""), dept: String(c.dept || ""), purpose: String(c.purpose || ""),
      roles: Array.isArray(c.roles) ? c.roles.map(String) : [] };
  } catch (e) {
    return { sub: "", dept: "", purpose: "", roles: [] };
  }
}

const has = (role) => view.who.roles.includes(role);
const mayRequest = () => view.catalog.some((d) => d.request);

function signOut(msg) {
  sessionStorage.removeItem(KEY);
  Object.assign(view, { who: claims(""), catalog: [], requests: [], grants: [], preview: null, notice: null });
  view.previewGen++;
  for (const d of ["#decide", "#act"]) if ($(d).open) $(d).close();
  $("#app").hidden = true;
  $("#who").hidden = true;
  $("#signout").hidden = true;
  $("#refresh").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = msg || "";
  $("#token").focus();
}

async function signIn(tok) {
  $("#signin-error").textContent = "";
  sessionStorage.setItem(KEY, tok.trim());
  view.who = claims(token());
  try {
    await loadCatalog();
  } catch (e) {
    if (e.status !== 401) signOut(t("signinFailed", e.message));
    return;
  }
  $("#token").value = "";
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  $("#refresh").hidden = false;
  renderWho();
  showViews();
  renderCatalog();
  resetForm();
  await loadLists();
}

function renderWho() {
  const w = view.who;
  const box = $("#who");
  box.hidden = !w.sub;
  box.replaceChildren(el("strong", {}, w.sub), w.dept ? " · " + w.dept : "", w.roles.length ? " · " + t("asRole", w.roles.join(", ")) : "");
}

// VIEWS are the page's sections and whom each is for.
const VIEWS = [
  { id: "view-queue", key: "queue", shown: () => has("steward") },
  { id: "view-escalated", key: "escalated", shown: () => has("coordinator") },
  { id: "view-grants", key: "grants", shown: () => has("steward") || has("coordinator") },
  { id: "view-catalog", key: "catalog", shown: () => true },
  { id: "view-request", key: "newRequest", shown: mayRequest },
  { id: "view-mine", key: "mine", shown: mayRequest },
];

function showViews() {
  const links = [];
  for (const v of VIEWS) {
    const on = v.shown();
    document.getElementById(v.id).hidden = !on;
    if (on) links.push(el("a", { href: "#" + v.id }, t(v.key)));
  }
  $("#views").replaceChildren(...links);
}

// refresh reloads what every shown view lists.
async function refresh() {
  try {
    await loadCatalog();
  } catch (e) {
    $("#catalog-error").textContent = e.message;
  }
  renderCatalog();
  showViews();
  await loadLists();
}

// loadLists loads the requests and grants the shown views list.
async function loadLists() {
  const jobs = [];
  if (mayRequest() || has("steward") || has("coordinator")) jobs.push(loadRequests());
  if (has("steward") || has("coordinator")) jobs.push(loadGrants());
  await Promise.all(jobs);
}

function notify(key, ...args) {
  view.notice = [key, ...args];
  $("#notice").textContent = t(key, ...args);
}

// --- catalogue -----------------------------------------------------------

async function loadCatalog() {
  const r = await api("GET", "/v1/catalog");
  view.catalog = r.datasets || [];
  $("#catalog-error").textContent = "";
}

const dsName = (d) => d.source + "/" + d.dataset;

function renderCatalog() {
  const list = $("#catalog");
  list.replaceChildren(...view.catalog.map((d) => {
    const facts = el("dl", { class: "facts" },
      el("dt", {}, t("sharing")), el("dd", {}, el("span", { class: "sharing sh-" + d.sharing }, word(d.sharing))),
      el("dt", {}, t("owner")), el("dd", {}, d.owner || "—"),
      d.classification ? el("dt", {}, t("classification")) : null, d.classification ? el("dd", {}, d.classification) : null,
      d.basis ? el("dt", {}, t("basis")) : null, d.basis ? el("dd", { class: "basis" }, d.basis) : null);
    const fields = el("p", { class: "field-names" }, t("fields") + (lang() ? "：" : ": "),
      ...(d.fields || []).flatMap((f, i) => [i ? ", " : "", el("span", { class: "fname" }, f.name), f.level ? " (" + f.level + ")" : ""]));
    let act = null;
    if (d.sharing === "none") act = el("p", { class: "scope" }, t("notShared"));
    else if (d.request) act = button(t("requestThis"), () => startRequest(dsName(d)), { "data-dataset": dsName(d), class: "request-this" });
    return el("li", { class: "card", "data-dataset": dsName(d) }, el("h3", {}, breakable(dsName(d))), facts, fields, act);
  }));
  if (!view.catalog.length) list.append(el("li", { class: "none" }, t("noCatalog")));
  renderDatasetChoice();
}

// --- the request form ----------------------------------------------------

const requestable = () => view.catalog.filter((d) => d.request);
const chosenDataset = () => view.catalog.find((d) => dsName(d) === $("#rq-dataset").value);

function renderDatasetChoice() {
  const sel = $("#rq-dataset");
  const was = sel.value;
  sel.replaceChildren(...requestable().map((d) => el("option", { value: dsName(d) }, dsName(d) + " — " + word(d.sharing))));
  if (requestable().some((d) => dsName(d) === was)) sel.value = was;
  renderFieldChoice();
}

function renderFieldChoice() {
  const d = chosenDataset();
  const box = $("#rq-field-list");
  const checked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  const same = box.dataset.dataset === (d ? dsName(d) : "");
  box.dataset.dataset = d ? dsName(d) : "";
  box.replaceChildren(...(d ? d.fields : []).map((f) => {
    const input = el("input", { type: "checkbox", name: "field", value: f.name });
    input.checked = same && checked.has(f.name);
    return el("label", { class: "check" }, input, " ", el("span", { class: "fname" }, f.name),
      el("span", { class: "meta" }, [f.level, f.type].filter(Boolean).join(" · ")));
  }));
  $("#rq-sharing").textContent = !d ? "" : d.sharing === "unconditional" ? t("atOnce") : t("byOwner", d.owner);
  schedulePreview();
}

function startRequest(ds) {
  $("#rq-dataset").value = ds;
  renderFieldChoice();
  $("#view-request").scrollIntoView({ block: "start" });
  const first = $("#rq-field-list input");
  (first || $("#rq-dataset")).focus();
}

function resetForm() {
  $("#request-form").reset();
  delete $("#rq-field-list").dataset.dataset;
  $("#rq-purpose").value = view.who.purpose;
  const d = new Date();
  d.setDate(d.getDate() + 1);
  $("#rq-until").min = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  renderDatasetChoice();
}

const pickedFields = () => [...$("#rq-field-list").querySelectorAll("input:checked")].map((i) => i.value);

// endOfDay is the last second of a date picked in the browser's zone.
function endOfDay(date) {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(y, m - 1, d, 23, 59, 59).toISOString();
}

function schedulePreview() {
  clearTimeout(view.previewTimer);
  view.previewTimer = setTimeout(loadPreview, 250);
}

// loadPreview asks the gateway what a grant of the request as filled in
// would release. A gateway without the preview route (404 or 405) gets
// the catalogue's treatments for the caller instead, said as such.
async function loadPreview() {
  const gen = ++view.previewGen;
  const d = chosenDataset(), fields = pickedFields();
  if (!d || !fields.length) {
    view.preview = null;
    return renderPreview();
  }
  $("#preview-status").textContent = t("previewWait");
  const body = { dataset: dsName(d), fields };
  const purpose = $("#rq-purpose").value.trim();
  if (purpose) body.purpose = purpose;
  let p;
  try {
    const r = await api("POST", "/v1/requests/preview", body);
    p = r.allowed === false ? { denied: r.reason || "" } : { fields: r.fields || [], maxRows: r.max_rows, minK: r.min_k };
  } catch (e) {
    if (e.status === 404 || e.status === 405) {
      const byName = new Map(d.fields.map((f) => [f.name, f]));
      p = { fallback: true, fields: fields.map((n) => ({ name: n, level: (byName.get(n) || {}).level, treatment: (byName.get(n) || {}).treatment })) };
    } else {
      p = { error: e.message };
    }
  }
  if (gen !== view.previewGen) return;
  view.preview = p;
  renderPreview();
}

function renderPreview() {
  const p = view.preview, status = $("#preview-status"), tbl = $("#preview-table");
  tbl.hidden = true;
  if (!p) { status.textContent = t("previewPick"); return; }
  if (p.error) { status.textContent = p.error; return; }
  if (p.denied != null) { status.textContent = t("previewDenied", p.denied); return; }
  const notes = [];
  if (p.fallback) notes.push(t("previewFallback"));
  if (p.maxRows) notes.push(t("previewLimits", p.maxRows));
  if (p.minK) notes.push(t("previewK", p.minK));
  status.textContent = notes.join(" ");
  const cols = [
    { key: "field", head: true, cell: (f) => f.name },
    { key: "level", cell: (f) => f.level || "—" },
    { key: "treatment", cell: (f) => rule(f.treatment) },
  ];
  if (!p.fallback) cols.push({ key: "example", cell: (f) => f.example ? el("span", { class: "example" }, value(f.example.raw), " → ", value(f.example.released)) : "—" });
  table("#preview-table", cols, p.fields, "none");
  tbl.hidden = false;
}

async function submitRequest(e) {
  e.preventDefault();
  const err = $("#request-error");
  err.textContent = "";
  const d = chosenDataset(), fields = pickedFields();
  const missing = [["#rq-purpose", "purpose"], ["#rq-basis", "legalBasis"], ["#rq-until", "validUntil"]]
    .filter(([sel]) => !$(sel).value.trim()).map(([, key]) => t(key));
  if (!fields.length) { err.textContent = t("fieldsNeeded"); $("#rq-field-list input")?.focus(); return; }
  if (missing.length) { err.textContent = t("fillRequired", missing.join(", ")); return; }
  const body = { dataset: dsName(d), fields, purpose: $("#rq-purpose").value.trim(), legal_basis: $("#rq-basis").value.trim(),
    justification: $("#rq-why").value.trim(), valid_until: endOfDay($("#rq-until").value) };
  $("#rq-submit").disabled = true;
  try {
    const r = await api("POST", "/v1/requests", body);
    notify("submitted", r.id, when(r.due));
    resetForm();
    await loadRequests();
  } catch (ex) {
    err.textContent = ex.message;
  } finally {
    $("#rq-submit").disabled = false;
  }
}

// --- requests ------------------------------------------------------------

async function loadRequests() {
  try {
    const r = await api("GET", "/v1/requests");
    view.requests = r.requests || [];
    for (const s of ["#queue-error", "#escalated-error", "#mine-error"]) $(s).textContent = "";
  } catch (e) {
    for (const s of ["#queue-error", "#escalated-error", "#mine-error"]) $(s).textContent = e.message;
  }
  renderRequests();
}

const byDue = (a, b) => Date.parse(a.due) - Date.parse(b.due);
const newest = (a, b) => Date.parse(b.created) - Date.parse(a.created);
const mine = (r) => r.requester && r.requester.dept === view.who.dept && (!view.who.sub || r.requester.subject === view.who.sub);
// The clock reads the due time of an open request; one that needs
// information waits on its requester and sorts after the waiting ones.
const isOpen = (r) => waiting(r) || r.state === "needs_info";
const dueOrder = (a, b) => (a.state === "needs_info") - (b.state === "needs_info") || byDue(a, b);

const fieldList = (r) => (r.fields || []).join(", ");

function renderRequests() {
  const openCol = { key: "actions", cell: (r) => button(t("open"), () => openDecide(r), { class: "open", "aria-label": t("openRequest", r.id) }) };
  const common = [
    { key: "id", head: true, cell: (r) => breakable(r.id) },
    { key: "dataset", cell: (r) => breakable(r.dataset) },
  ];
  const clock = [
    { key: "state", cell: (r) => stateBadge(r.state) },
    { key: "due", cell: (r) => when(r.due) },
    { key: "timeLeft", cell: (r) => el("span", { class: "clock" + (overdue(r) ? " late" : ""), "data-request": r.id }, timeLeft(r)) },
  ];
  const rowClass = (r) => overdue(r) ? "overdue" : "";
  if (has("steward")) {
    const q = view.requests.filter((r) => r.owner === view.who.dept && isOpen(r) && r.requester.subject !== view.who.sub).sort(dueOrder);
    table("#queue", [...common, { key: "requester", cell: (r) => person(r.requester) }, { key: "purpose", cell: (r) => r.purpose },
      { key: "fields", cell: (r) => fieldList(r) }, ...clock, openCol], q, "noQueue", rowClass);
  }
  if (has("coordinator")) {
    const q = view.requests.filter((r) => r.state === "escalated").sort(byDue);
    table("#escalated", [...common, { key: "requester", cell: (r) => person(r.requester) }, { key: "owner", cell: (r) => r.owner },
      { key: "purpose", cell: (r) => r.purpose }, ...clock, openCol], q, "noEscalated", rowClass);
  }
  if (mayRequest()) {
    const q = view.requests.filter(mine).sort(newest);
    table("#mine", [...common, { key: "fields", cell: (r) => fieldList(r) }, { key: "purpose", cell: (r) => r.purpose }, ...clock,
      { key: "actions", cell: mineActions }], q, "noMine", rowClass);
  }
}

// tick moves the clocks on without redrawing the lists, so that the
// keyboard's focus stays where it is.
function tick() {
  const byID = new Map(view.requests.map((r) => [r.id, r]));
  for (const c of document.querySelectorAll(".clock[data-request]")) {
    const r = byID.get(c.dataset.request);
    if (!r) continue;
    c.textContent = timeLeft(r);
    c.classList.toggle("late", overdue(r));
    c.closest("tr")?.classList.toggle("overdue", overdue(r));
  }
}

// question is what the steward last asked of a request that needs
// information.
function question(r) {
  const h = (r.history || []).filter((x) => x.to === "needs_info");
  return h.length ? h[h.length - 1].reason || "" : "";
}

function mineActions(r) {
  const box = el("div", { class: "actions" });
  if (r.state === "needs_info") {
    box.append(el("p", { class: "quote" }, t("question", question(r))));
    box.append(button(t("reply"), () => openAct({ title: t("replyTitle", r.id), context: t("question", question(r)),
      label: "answerRequired", required: true, submit: t("reply"), path: "/v1/requests/" + r.id + "/reply",
      done: (x) => notify("decided", x.id, word(x.state)), reload: loadRequests }), { class: "reply" }));
  }
  if (isOpen(r)) {
    box.append(button(t("withdraw"), () => openAct({ title: t("withdrawTitle", r.id), context: "", label: "reasonOptional",
      required: false, submit: t("withdraw"), path: "/v1/requests/" + r.id + "/withdraw",
      done: (x) => notify("decided", x.id, word(x.state)), reload: loadRequests }), { class: "withdraw" }));
  }
  if (r.grant) box.append(el("span", { class: "mono" }, t("grant") + " " + r.grant));
  if (!box.children.length) box.append("—");
  return box;
}

// --- deciding ------------------------------------------------------------

function treatmentsFor(type) {
  return TREATMENTS.filter((x) => !x.types || x.types.includes(type));
}

function openDecide(r) {
  view.decideFor = r;
  $("#decide-h").textContent = t("decideTitle", r.id);
  const facts = [
    ["dataset", r.dataset], ["requester", person(r.requester)], ["purpose", r.purpose], ["legalBasis", r.legal_basis],
    ["justification", r.justification], ["fields", fieldList(r)], ["validUntil", when(r.valid_until)],
    ["created", when(r.created)], ["due", when(r.due) + " · " + timeLeft(r)], ["state", word(r.state)],
  ];
  $("#decide-facts").replaceChildren(...facts.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, v)]));
  $("#decide-history").replaceChildren(...(r.history || []).map((h) => el("li", {},
    t("historyLine", when(h.at), word(h.action), person(h.by), h.from ? word(h.from) : "—", word(h.to)),
    h.reason ? el("span", { class: "quote" }, " " + h.reason) : null)));
  const decidable = waiting(r);
  $("#decide-form").hidden = !decidable;
  $("#decide-waiting").hidden = decidable;
  $("#decide-waiting").textContent = r.state === "needs_info" ? t("waitingReply") : "";
  $("#decide-needinfo").hidden = r.state !== "submitted";
  $("#decide-form").reset();
  $("#decide-error").textContent = "";
  const ds = view.catalog.find((d) => dsName(d) === r.dataset);
  const meta = new Map(((ds && ds.fields) || []).map((f) => [f.name, f]));
  table("#terms-fields", [
    { key: "field", head: true, cell: (f) => f },
    { key: "level", cell: (f) => (meta.get(f) || {}).level || "—" },
    { key: "treatment", cell: (f) => {
      const sel = el("select", { "data-field": f, "aria-label": t("treatment") + ": " + f },
        ...treatmentsFor((meta.get(f) || {}).type).map((x) => el("option", { value: x.id }, x.label[lang()])));
      sel.value = "ceiling";
      return sel;
    } },
  ], r.fields || [], "none");
  $("#dc-until").value = dateOf(r.valid_until);
  $("#dc-until").max = dateOf(r.valid_until);
  decisionChanged();
  $("#decide").showModal();
}

const decisionChosen = () => ($("#decide-form").querySelector("input[name=decision]:checked") || {}).value || "approve";

function decisionChanged() {
  const d = decisionChosen();
  $("#terms").hidden = d !== "approve";
  $("#dc-reason-label").textContent = t(d === "approve" ? "reasonOptional" : d === "need_info" ? "questionRequired" : "reasonRequired");
  $("#dc-reason").required = d !== "approve";
}

async function submitDecision(e) {
  e.preventDefault();
  const r = view.decideFor, err = $("#decide-error");
  err.textContent = "";
  const decision = decisionChosen(), reason = $("#dc-reason").value.trim();
  if (decision !== "approve" && !reason) { err.textContent = t("reasonNeeded"); $("#dc-reason").focus(); return; }
  const body = { decision };
  if (reason) body.reason = reason;
  if (decision === "approve") {
    const c = { fields: {} };
    for (const sel of $("#terms-fields").querySelectorAll("select[data-field]")) {
      c.fields[sel.dataset.field] = TREATMENTS.find((x) => x.id === sel.value).value;
    }
    const until = $("#dc-until").value;
    // The request's own end stands unless an earlier day is picked.
    if (until && until !== dateOf(r.valid_until)) {
      const end = endOfDay(until);
      c.valid_until = Date.parse(end) < Date.parse(r.valid_until) ? end : r.valid_until;
    }
    const rows = parseInt($("#dc-rows").value, 10), k = parseInt($("#dc-k").value, 10);
    if (rows > 0) c.max_rows = rows;
    if (k > 0) c.min_k = k;
    body.conditions = c;
  }
  $("#decide-submit").disabled = true;
  try {
    const out = await api("POST", "/v1/requests/" + r.id + "/decision", body);
    $("#decide").close();
    notify("decided", out.id, word(out.state));
    await Promise.all([loadRequests(), has("steward") || has("coordinator") ? loadGrants() : null]);
  } catch (ex) {
    err.textContent = ex.message;
  } finally {
    $("#decide-submit").disabled = false;
  }
}

// --- actions with a reason: withdraw, reply, suspend, resume, revoke ----

function openAct(a) {
  view.act = a;
  $("#act-h").textContent = a.title;
  $("#act-context").textContent = a.context || "";
  $("#act-context").hidden = !a.context;
  $("#act-reason-label").textContent = t(a.label);
  $("#act-reason").value = "";
  $("#act-reason").required = a.required;
  $("#act-submit").textContent = a.submit;
  $("#act-error").textContent = "";
  $("#act").showModal();
}

async function submitAct(e) {
  e.preventDefault();
  const a = view.act, reason = $("#act-reason").value.trim();
  if (a.required && !reason) { $("#act-error").textContent = t("reasonNeeded"); $("#act-reason").focus(); return; }
  $("#act-submit").disabled = true;
  try {
    const out = await api("POST", a.path, reason ? { reason } : {});
    $("#act").close();
    a.done(out);
    await a.reload();
  } catch (ex) {
    $("#act-error").textContent = ex.message;
  } finally {
    $("#act-submit").disabled = false;
  }
}

// --- grants --------------------------------------------------------------

async function loadGrants() {
  try {
    const r = await api("GET", "/v1/grants");
    view.grants = r.grants || [];
    $("#grants-error").textContent = "";
  } catch (e) {
    $("#grants-error").textContent = e.message;
  }
  renderGrants();
}

const GRANT_ACTIONS = { active: ["suspend", "revoke"], suspended: ["resume", "revoke"] };

function renderGrants() {
  if (!has("steward") && !has("coordinator")) return;
  $("#grants-scope").textContent = t(has("coordinator") ? "grantsAll" : "grantsOwner");
  const gs = view.grants.filter((g) => has("coordinator") || g.owner === view.who.dept)
    .sort((a, b) => (a.state !== "active") - (b.state !== "active") || Date.parse(b.valid_from) - Date.parse(a.valid_from));
  table("#grants", [
    { key: "id", head: true, cell: (g) => breakable(g.id) },
    { key: "dataset", cell: (g) => breakable(g.dataset) },
    { key: "dept", cell: (g) => g.dept },
    { key: "purpose", cell: (g) => g.purpose },
    { key: "fields", cell: (g) => el("ul", { class: "terms" }, ...Object.keys(g.fields || {}).sort().map((f) =>
      el("li", {}, el("span", { class: "fname" }, f), ": " + rule(g.fields[f]))),
      g.max_rows ? el("li", {}, t("rows", g.max_rows)) : null, g.min_k ? el("li", {}, t("kMin", g.min_k)) : null) },
    { key: "validUntil", cell: (g) => when(g.valid_until) },
    { key: "state", cell: (g) => stateBadge(g.state) },
    { key: "actions", cell: (g) => el("div", { class: "actions" }, ...(GRANT_ACTIONS[g.state] || []).map((a) =>
      button(t(a), () => openAct({ title: t("grantActTitle", t(a), g.id), context: "", label: "reasonRequired", required: true,
        submit: t(a), path: "/v1/grants/" + g.id + "/" + a, done: (x) => notify("grantDone", x.id, word(x.state)), reload: loadGrants }),
      { class: a }))) },
  ], gs, "noGrants", (g) => "g-" + g.state);
}

// --- language ------------------------------------------------------------

function setLang(l) {
  switchLang(l);
  if (!$("#app").hidden) {
    renderWho();
    showViews();
    renderCatalog();
    renderPreview();
    renderRequests();
    renderGrants();
  }
  if ($("#decide").open) $("#decide").close();
  if ($("#act").open) $("#act").close();
}

// --- wiring --------------------------------------------------------------

$("#signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token").value); });
$("#signout").addEventListener("click", () => signOut(t("signedOut")));
$("#refresh").addEventListener("click", refresh);
$("#lang").addEventListener("click", () => setLang(view.lang === "zh" ? "en" : "zh"));
$("#rq-dataset").addEventListener("change", renderFieldChoice);
$("#rq-field-list").addEventListener("change", schedulePreview);
$("#rq-purpose").addEventListener("input", schedulePreview);
$("#request-form").addEventListener("submit", submitRequest);
$("#decide-form").addEventListener("submit", submitDecision);
$("#decide-form").addEventListener("change", (e) => { if (e.target.name === "decision") decisionChanged(); });
$("#decide-close").addEventListener("click", () => $("#decide").close());
$("#act-form").addEventListener("submit", submitAct);
$("#act-close").addEventListener("click", () => $("#act").close());
setInterval(tick, 30000);
setLang(localStorage.getItem(LANG_KEY) || (navigator.language.startsWith("zh") ? "zh" : "en"));
if (token()) signIn(token()); else $("#token").focus();
