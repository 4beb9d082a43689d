// The building blocks of Sluice's pages (/hub/ and /me/): the language
// and words, the token, the gateway's API and elements made without HTML.
// A classic script, served as kit.js beside each page's files and loaded
// before its words.js and app.js, which define what these read when
// called: KEY (the page's session-storage key for its token), view.lang,
// T (words.js), signOut, LANG_KEY (where the language is kept), $ and
// view.notice. Everything is rendered as text, never as HTML.
"use strict";

const lang = () => view.lang === "zh" ? 1 : 0;
function t(key, ...args) {
  const w = T[key] ? T[key][lang()] : key;
  return w.replace(/\{(\d)\}/g, (_, i) => args[+i] == null ? "" : String(args[+i]));
}
// --- API -----------------------------------------------------------------

function token() { return sessionStorage.getItem(KEY) || ""; }

class APIError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error.message + " (" + body.error.code + ")" : "HTTP " + status);
    this.status = status;
  }
}

// api sends a request to the gateway with the token and returns the
// decoded answer; a 401 signs out.
async function api(method, path, body) {
  const init = { method, headers: { Authorization: "Bearer " + token() }, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  let out = null;
  try { out = await resp.json(); } catch (e) { /* not JSON */ }
  if (resp.status === 401) {
    const err = new APIError(401, out);
    signOut(t("refused", err.message));
    throw err;
  }
  if (!resp.ok) throw new APIError(resp.status, out);
  return out;
}

// --- building blocks -----------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k === "class") e.className = v; else if (v === true) e.setAttribute(k, ""); else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function button(label, onClick, attrs) {
  const b = el("button", Object.assign({ type: "button" }, attrs || {}), label);
  b.addEventListener("click", onClick);
  return b;
}

// breakable lets an id wrap after each slash, underscore or dash.
function breakable(text) {
  const f = document.createDocumentFragment();
  String(text).split(/(?<=[/_-])/).forEach((part, i) => { if (i) f.append(el("wbr")); f.append(part); });
  return f;
}

// switchLang puts the page in language l ("zh" or English), keeps the
// choice, and relabels what words.js names: the title, [data-i18n] text,
// [data-i18n-label] labels, the #lang switch and the #notice shown.
function switchLang(l) {
  view.lang = l === "zh" ? "zh" : "en";
  localStorage.setItem(LANG_KEY, view.lang);
  document.documentElement.lang = view.lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-label]")) e.setAttribute("aria-label", t(e.dataset.i18nLabel));
  const other = view.lang === "zh" ? ["English", "en", "English (切换为英文)"] : ["中文", "zh", "中文 (switch the page to Chinese)"];
  $("#lang").textContent = other[0];
  $("#lang").lang = other[1];
  $("#lang").setAttribute("aria-label", other[2]);
  if (view.notice) $("#notice").textContent = t(...view.notice);
}
