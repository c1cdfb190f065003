"use strict";
// Keyward web UI: a thin client of the /v1/ API. The token stays in
// sessionStorage and is sent as X-Vault-Token; nothing else is stored.
const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem("keyward-token") || "";

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (token()) opts.headers["X-Vault-Token"] = token();
  if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const res = await fetch("/v1/" + path, opts);
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error((json && json.errors && json.errors.join("\n")) || res.status + " " + res.statusText);
  return json;
}

function show(id, on) { $(id).hidden = !on; }
function fail(e) { $("error").textContent = e.message || String(e); }
function clearError() { $("error").textContent = ""; }

async function refresh() {
  clearError();
  const st = await api("GET", "sys/seal-status");
  $("status").textContent = !st.initialized ? "not initialized" : st.sealed ? "sealed" : "unsealed · " + st.version;
  show("unseal", st.initialized && st.sealed);
  $("unseal-progress").textContent = "Keys provided: " + st.progress + " of " + st.t;
  if (st.sealed) { show("login", false); show("browse", false); show("secrets", false); return; }
  if (!token()) { show("login", true); show("browse", false); show("secrets", false); return; }
  try {
    await api("GET", "auth/token/lookup-self");
  } catch (e) {
    sessionStorage.removeItem("keyward-token");
    show("login", true); show("browse", false); fail(e); return;
  }
  show("login", false); show("browse", true);
  const mounts = await api("GET", "sys/internal/ui/mounts");
  const body = $("mounts").querySelector("tbody");
  body.replaceChildren();
  for (const [path, m] of Object.entries(mounts.data.secret || {})) {
    const tr = document.createElement("tr");
    const a = document.createElement("a");
    a.textContent = path;
    a.onclick = () => browse(path, "", m).catch(fail);
    const cells = [a, document.createTextNode(m.type), document.createTextNode(m.description || "")];
    for (const c of cells) { const td = document.createElement("td"); td.appendChild(c); tr.appendChild(td); }
    body.appendChild(tr);
  }
}

async function browse(mount, prefix, info) {
  clearError();
  const v2 = info.options && info.options.version === "2";
  show("secrets", true);
  $("secrets-title").textContent = mount + prefix;
  $("secret").textContent = "";
  const body = $("keys").querySelector("tbody");
  body.replaceChildren();
  let keys = [];
  try {
    const res = await api("LIST", mount + (v2 ? "metadata/" : "") + prefix);
    keys = res.data.keys;
  } catch (e) { if (!/404/.test(e.message) && e.message !== "") fail(e); }
  for (const k of keys) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    const a = document.createElement("a");
    a.textContent = k;
    a.onclick = () => (k.endsWith("/") ? browse(mount, prefix + k, info) : read(mount, prefix + k, v2)).catch(fail);
    td.appendChild(a); tr.appendChild(td); body.appendChild(tr);
  }
}

async function read(mount, path, v2) {
  clearError();
  const res = await api("GET", mount + (v2 ? "data/" : "") + path);
  const data = v2 ? res.data.data : res.data;
  $("secret").textContent = JSON.stringify(data, null, 2);
}

$("login-btn").onclick = () => { sessionStorage.setItem("keyward-token", $("token").value.trim()); $("token").value = ""; refresh().catch(fail); };
$("logout-btn").onclick = () => { sessionStorage.removeItem("keyward-token"); refresh().catch(fail); };
$("unseal-btn").onclick = () => { api("PUT", "sys/unseal", { key: $("unseal-key").value.trim() }).then(() => { $("unseal-key").value = ""; return refresh(); }).catch(fail); };
refresh().catch(fail);
