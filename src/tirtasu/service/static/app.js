// tirtasu operations dashboard: plain JS + SVG; Plotly (served by us) for charts.
"use strict";
(function () {
  const API = "/api/v1";
  const LANGS = ["en", "id", "tr"];
  const $ = (s) => document.querySelector(s);
  const NS = "http://www.w3.org/2000/svg";
  let T = JSON.parse($("#catalogue").textContent);
  let lang = document.documentElement.lang || "en";
  const state = { me: null, net: null, sensors: [], alarms: [], dmas: [], period: null, view: null };
  const DMA_COLOURS = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f"];

  // -- i18n --------------------------------------------------------------------------------
  function t(key, vars) {
    let s = T[key];
    if (s === undefined) { console.warn("missing translation", key); s = key; }
    if (vars) for (const k in vars) s = s.replace("{" + k + "}", vars[k]);
    return s;
  }
  const nf = (d) => new Intl.NumberFormat(lang, { maximumFractionDigits: d, minimumFractionDigits: d });
  function num(v, d = 1) { return v === null || v === undefined || !isFinite(v) ? t("common.none") : nf(d).format(v); }
  function dt(iso, withTime = true) {
    if (!iso) return t("common.none");
    const o = withTime ? { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" } : { dateStyle: "medium", timeZone: "UTC" };
    return new Intl.DateTimeFormat(lang, o).format(new Date(iso));
  }
  const UNIT = { "m3/h": "unit.m3h", m: "unit.m", "L/h": "unit.Lh", m3: "unit.m3", "m3/day": "unit.m3d", "%": "unit.pct" };
  const unit = (u) => (UNIT[u] ? t(UNIT[u]) : u || "");
  function applyI18n(root = document) {
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.title = t("app.title");
  }
  async function setLang(l) {
    if (!LANGS.includes(l)) return;
    if (l !== lang) {
      const r = await fetch("/i18n/" + l + ".json");
      T = await r.json();
      lang = l;
    }
    document.documentElement.lang = lang;
    document.cookie = "tirtasu_lang=" + lang + "; path=/; max-age=31536000; samesite=strict";
    try { localStorage.setItem("tirtasu_lang", lang); } catch (e) { /* private mode */ }
    const u = new URL(location.href); u.searchParams.set("lang", lang); history.replaceState(null, "", u);
    $("#lang").value = lang;
    applyI18n();
    if (state.me) render(true);
  }

  // -- API -------------------------------------------------------------------------------------
  const token = () => sessionStorage.getItem("tirtasu_token");
  async function api(path, opts = {}) {
    const r = await fetch(API + path, { ...opts, headers: { Authorization: "Bearer " + token(), "Content-Type": "application/json", ...(opts.headers || {}) } });
    if (r.status === 401) { logout(); throw new Error("401"); }
    if (!r.ok) { let d = r.status + ""; try { d += ": " + JSON.stringify((await r.json()).detail); } catch (e) { /* */ } const err = new Error(d); err.status = r.status; throw err; }
    return r.json();
  }

  // -- login -----------------------------------------------------------------------------------
  async function login(tok) {
    sessionStorage.setItem("tirtasu_token", tok);
    try { state.me = await api("/dashboard/me"); }
    catch (e) { sessionStorage.removeItem("tirtasu_token"); state.me = null; return false; }
    document.body.dataset.role = state.me.role;
    $("#who").textContent = state.me.name + " (" + t("role." + state.me.role) + ")";
    $("#logout").hidden = false; $("#login").hidden = true;
    return true;
  }
  function logout() {
    sessionStorage.removeItem("tirtasu_token"); state.me = null; delete document.body.dataset.role;
    $("#who").textContent = ""; $("#logout").hidden = true;
    document.querySelectorAll(".view").forEach((v) => (v.hidden = true)); $("#login").hidden = false;
  }
  const canAct = () => state.me && (state.me.role === "operator" || state.me.role === "admin");

  // -- routing ---------------------------------------------------------------------------------
  function route() { const v = (location.hash || "#map").slice(1).split("?")[0]; return ["map", "alarms", "series", "nrw"].includes(v) ? v : "map"; }
  async function render(relabel) {
    const v = route();
    document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === v));
    document.querySelectorAll(".view").forEach((s) => (s.hidden = s.id !== "view-" + v));
    state.view = v;
    try {
      if (v === "map") await showMap(relabel);
      else if (v === "alarms") await showAlarms();
      else if (v === "series") await showSeries();
      else if (v === "nrw") await showNRW();
    } catch (e) { if (e.message !== "401") console.error(e); }
  }

  // -- map -------------------------------------------------------------------------------------
  let view0 = null;
  async function loadBase() {
    if (!state.net) {
      const [net, sensors, alarms, dmas] = await Promise.all([api("/network"), api("/sensors"), api("/alarms"), api("/dmas")]);
      state.net = net; state.sensors = sensors; state.alarms = alarms; state.dmas = dmas;
    }
  }
  function dmaColour(d) { const i = state.dmas.findIndex((x) => x.dma === d); return i < 0 ? "#999" : DMA_COLOURS[i % DMA_COLOURS.length]; }
  function el(tag, attrs, parent) { const e = document.createElementNS(NS, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); if (parent) parent.appendChild(e); return e; }
  async function showMap(relabel) {
    const svg = $("#map");
    if (!state.net) { $("#map-summary").textContent = t("common.loading"); await loadBase(); svg.textContent = ""; }
    else if (svg.childNodes.length && !relabel) { state.alarms = await api("/alarms"); drawAlarms(); summary(); return; }
    if (svg.childNodes.length) { legend(); summary(); return; }
    const feats = state.net.features;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    const nodes = {};
    for (const f of feats) if (f.geometry.type === "Point") {
      const [x, y] = f.geometry.coordinates; nodes[f.id] = f;
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    const pad = 0.03 * Math.max(x1 - x0, y1 - y0);
    view0 = [x0 - pad, -(y1 + pad), x1 - x0 + 2 * pad, y1 - y0 + 2 * pad];
    svg.setAttribute("viewBox", view0.join(" "));
    const gPipes = el("g", { id: "pipes" }, svg);
    const links = {};
    const P = (c) => c[0] + "," + -c[1];
    const byColour = {};
    for (const f of feats) if (f.geometry.type === "LineString") {
      const p = f.properties; links[f.id] = f;
      const d = "M" + f.geometry.coordinates.map(P).join("L");
      const w = p.type === "Pipe" ? Math.max(1, Math.min(4, (p.diameter_m || 0.1) * 10)) : 3;
      const e = el("path", { d, class: "pipe" + (p.boundary ? " boundary" : ""), stroke: p.boundary ? "#222" : dmaColour(p.dma), "stroke-width": w, "data-id": f.id, "data-type": p.type }, gPipes);
      const tt = el("title", {}, e); tt.textContent = p.type + " " + f.id + (p.dma ? " · " + p.dma : "");
      byColour[p.dma] = (byColour[p.dma] || 0) + 1;
    }
    state.links = links; state.nodes = nodes;
    el("g", { id: "cands" }, svg);
    const gAssets = el("g", { id: "assets" }, svg);
    const s = view0[2] / 150; // symbol size in model units
    for (const f of feats) {
      const p = f.properties;
      if (p.type === "Tank") { const [x, y] = f.geometry.coordinates; el("rect", { x: x - s, y: -y - s, width: 2 * s, height: 2 * s, fill: "#0b6fa4", class: "tank", "data-id": f.id }, gAssets).appendChild(titleOf(t("map.tank") + " " + f.id)); }
      if (p.type === "Reservoir") { const [x, y] = f.geometry.coordinates; el("path", { d: `M${x},${-y - 1.4 * s}L${x + 1.3 * s},${-y + s}L${x - 1.3 * s},${-y + s}Z`, fill: "#004c8c", class: "reservoir", "data-id": f.id }, gAssets).appendChild(titleOf(t("map.reservoir") + " " + f.id)); }
      if (p.type === "Pump" || p.type === "Valve") {
        const c = f.geometry.coordinates, m = c[Math.floor(c.length / 2)], a = c[0], b = c[c.length - 1];
        const x = (a[0] + b[0]) / 2, y = (a[1] + b[1]) / 2;
        if (p.type === "Pump") el("circle", { cx: x, cy: -y, r: s, fill: "#fff", stroke: "#d35400", "stroke-width": s / 2, class: "pump", "data-id": f.id }, gAssets).appendChild(titleOf(t("map.pump") + " " + f.id));
        else el("path", { d: `M${x - s},${-y - s}L${x + s},${-y + s}L${x + s},${-y - s}L${x - s},${-y + s}Z`, fill: "#6d4c41", class: "valve", "data-id": f.id }, gAssets).appendChild(titleOf(t("map.valve") + " " + f.id));
        void m;
      }
    }
    const gSensors = el("g", { id: "sensors" }, svg);
    const SC = { pressure: "#f39c12", flow: "#8e44ad", level: "#16a085", demand: "#95a5a6" };
    for (const sn of state.sensors) {
      let xy = null;
      if (sn.node_id && nodes[sn.node_id]) xy = nodes[sn.node_id].geometry.coordinates;
      else if (sn.link_id && links[sn.link_id]) { const c = links[sn.link_id].geometry.coordinates; const a = c[0], b = c[c.length - 1]; xy = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]; }
      if (!xy) continue;
      const r = sn.kind === "demand" ? s * 0.45 : s * 0.9;
      const c = el("circle", { cx: xy[0], cy: -xy[1], r, fill: SC[sn.kind] || "#555", class: "sensor", "data-id": sn.sensor_id, "stroke-width": 1 }, gSensors);
      c.appendChild(titleOf(sn.sensor_id));
      c.addEventListener("click", (ev) => { ev.stopPropagation(); sensorPopup(sn); });
    }
    drawAlarms(); legend(); summary(); panZoom(svg);
    svg.dataset.ready = "1";
  }
  function titleOf(text) { const e = document.createElementNS(NS, "title"); e.textContent = text; return e; }
  function drawAlarms() {
    const g = $("#cands"); if (!g) return; g.textContent = "";
    for (const a of state.alarms.filter((a) => a.status !== "repaired")) {
      a.candidates.forEach((id, i) => {
        const f = state.links[id]; if (!f) return;
        const d = "M" + f.geometry.coordinates.map((c) => c[0] + "," + -c[1]).join("L");
        const e = el("path", { d, class: "cand", "stroke-width": i === 0 ? 9 : 6, opacity: Math.max(0.25, 0.9 - i * 0.12), "data-alarm": a.alarm_id, "data-id": id }, g);
        e.appendChild(titleOf(t("alarms.title") + " " + a.alarm_id + " · " + id + " · " + num(a.flow_m3h, 1) + " " + t("unit.m3h")));
        e.addEventListener("click", () => { location.hash = "#alarms"; });
      });
    }
  }
  function summary() {
    const pipes = state.net.features.filter((f) => f.properties.type === "Pipe").length;
    $("#map-summary").textContent = t("map.summary", { pipes: num(pipes, 0), dmas: num(state.dmas.length, 0), sensors: num(state.sensors.length, 0), alarms: num(state.alarms.filter((a) => a.status !== "repaired").length, 0) });
    $("#map-summary").dataset.pipes = pipes;
  }
  function legend() {
    const L = $("#legend"); L.textContent = "";
    const add = (colour, label, h = 4) => { const d = document.createElement("div"); const i = document.createElement("i"); i.style.background = colour; i.style.height = h + "px"; d.append(i, document.createTextNode(label)); L.appendChild(d); };
    state.dmas.forEach((d) => add(dmaColour(d.dma), d.dma + " — " + t("map.pipes")));
    add("#222", t("map.boundary")); add("#0b6fa4", t("map.tank"), 10); add("#004c8c", t("map.reservoir"), 10); add("#d35400", t("map.pump"), 10);
    add("#f39c12", t("map.sensor") + " (" + t("sensor.kind.pressure") + ")", 10); add("#8e44ad", t("map.sensor") + " (" + t("sensor.kind.flow") + ")", 10);
    add("#e00", t("map.alarm"), 6);
  }
  function panZoom(svg) {
    let vb = view0.slice(), drag = null;
    const set = () => svg.setAttribute("viewBox", vb.join(" "));
    svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = svg.getBoundingClientRect(), k = e.deltaY > 0 ? 1.2 : 1 / 1.2;
      const fx = (e.clientX - r.left) / r.width, fy = (e.clientY - r.top) / r.height;
      const nw = vb[2] * k, nh = vb[3] * k; vb = [vb[0] + (vb[2] - nw) * fx, vb[1] + (vb[3] - nh) * fy, nw, nh]; set();
    }, { passive: false });
    svg.addEventListener("pointerdown", (e) => { drag = [e.clientX, e.clientY, vb[0], vb[1]]; });
    svg.addEventListener("pointermove", (e) => { if (!drag) return; const r = svg.getBoundingClientRect(), s = Math.max(vb[2] / r.width, vb[3] / r.height); vb[0] = drag[2] - (e.clientX - drag[0]) * s; vb[1] = drag[3] - (e.clientY - drag[1]) * s; set(); });
    svg.addEventListener("pointerup", () => { drag = null; });
    svg.addEventListener("pointerleave", () => { drag = null; });
    $("#map-reset").onclick = () => { vb = view0.slice(); set(); };
    svg.addEventListener("click", () => { $("#popup").hidden = true; });
  }
  async function sensorPopup(sn) {
    const P = $("#popup"); P.hidden = false; P.textContent = t("common.loading");
    await period();
    const end = state.period && state.period.last ? new Date(state.period.last) : new Date();
    const from = new Date(end.getTime() - 2 * 86400e3).toISOString().slice(0, 19);
    const r = await api("/readings?sensor=" + encodeURIComponent(sn.sensor_id) + "&from=" + from + "&resample=1h&how=mean");
    const s = r.series[0];
    P.textContent = "";
    const h = document.createElement("strong"); h.textContent = sn.sensor_id + " · " + t("sensor.kind." + sn.kind) + (sn.dma ? " · " + sn.dma : ""); P.appendChild(h);
    const p = document.createElement("div");
    if (s && s.value.length) {
      const last = s.value[s.value.length - 1];
      p.innerHTML = "";
      p.append(t("sensor.last") + ": ");
      const b = document.createElement("b"); b.className = "last"; b.textContent = num(last, 2) + " " + unit(s.unit); p.appendChild(b);
      p.append(" " + t("sensor.at") + " " + dt(s.time[s.time.length - 1]));
      P.appendChild(p);
      P.appendChild(sparkline(s.value));
    } else { p.textContent = t("common.none"); P.appendChild(p); }
    const a = document.createElement("a"); a.href = "#series?sensor=" + encodeURIComponent(sn.sensor_id); a.textContent = t("sensor.series"); a.className = "series-link";
    P.appendChild(a);
  }
  function sparkline(vals) {
    const w = 250, h = 50, v = vals.filter((x) => x !== null && isFinite(x));
    const lo = Math.min(...v), hi = Math.max(...v), sp = hi - lo || 1;
    const svg = el("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: "spark" });
    const pts = vals.map((x, i) => (x === null ? null : [(i / Math.max(1, vals.length - 1)) * w, h - 3 - ((x - lo) / sp) * (h - 6)])).filter(Boolean);
    el("polyline", { points: pts.map((p) => p.join(",")).join(" "), fill: "none", stroke: "#0f3d5e", "stroke-width": 1.5 }, svg);
    return svg;
  }

  // -- alarms ----------------------------------------------------------------------------------
  async function showAlarms() {
    const st = $("#alarm-filter").value;
    state.alarms = await api("/alarms");
    const list = st ? state.alarms.filter((a) => a.status === st) : state.alarms;
    $("#alarms-readonly").hidden = canAct();
    const T_ = $("#alarms-table"); T_.textContent = "";
    if (!list.length) { const r = T_.insertRow(); r.insertCell().textContent = t("alarms.none"); return; }
    const head = T_.createTHead().insertRow();
    [["alarms.id", "num"], ["alarms.status"], ["alarms.flow", "num"], ["alarms.start"], ["alarms.detected"], ["alarms.dma"], ["alarms.candidates"], ["alarms.assigned"], ["alarms.history"], ["alarms.actions"]].forEach(([k, c]) => {
      const th = document.createElement("th"); th.textContent = k === "alarms.flow" ? t(k) + " [" + t("unit.m3h") + "]" : t(k); if (c) th.className = c; head.appendChild(th);
    });
    const body = T_.createTBody();
    for (const a of list) {
      const r = body.insertRow(); r.dataset.alarm = a.alarm_id; r.dataset.status = a.status;
      const c = (text, cls) => { const td = r.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; };
      c(num(a.alarm_id, 0), "num");
      const s = r.insertCell(); const b = document.createElement("span"); b.className = "badge " + a.status; b.textContent = t("status." + a.status); s.appendChild(b);
      c(num(a.flow_m3h, 1), "num flow"); c(dt(a.start_time)); c(dt(a.detected_at)); c(a.dma || t("common.none"));
      c(a.candidates.length ? a.candidates.slice(0, 6).join(", ") + (a.candidates.length > 6 ? " …" : "") : t("alarms.unplaced"));
      c(a.assigned_to || t("common.none"));
      const hist = r.insertCell(); const det = document.createElement("details"); const sum = document.createElement("summary"); sum.textContent = num(a.history.length, 0); det.appendChild(sum);
      const ul = document.createElement("ul"); for (const h of a.history) { const li = document.createElement("li"); li.textContent = dt(h.at) + " · " + h.by + " · " + h.action + (h.note ? " · " + h.note : ""); ul.appendChild(li); } det.appendChild(ul); hist.appendChild(det);
      const act = r.insertCell();
      if (canAct()) {
        const btn = (key, cls, fn) => { const x = document.createElement("button"); x.textContent = t(key); x.className = cls; x.onclick = fn; act.appendChild(x); };
        if (a.status === "open") btn("alarms.acknowledge", "ack", () => act_(a, "acknowledge", {}));
        if (a.status !== "repaired") {
          btn("alarms.assign", "assign", () => { const who = prompt(t("alarms.assign.prompt"), a.assigned_to || ""); if (who !== null) act_(a, "assign", { assigned_to: who || null }); });
          btn("alarms.repaired", "repair", () => { const note = prompt(t("alarms.note.prompt"), ""); if (note !== null) act_(a, "repaired", { note: note || null }); });
        }
      }
    }
  }
  async function act_(a, action, body) {
    const E = $("#alarm-error"); E.hidden = true;
    try { await api("/alarms/" + a.alarm_id + "/" + action, { method: "POST", body: JSON.stringify(body) }); }
    catch (e) { E.textContent = t("alarms.refused") + " (" + e.message + ")"; E.hidden = false; }
    await showAlarms();
    if (state.net) drawAlarms();
  }

  // -- time series -----------------------------------------------------------------------------
  async function period() { if (!state.period) state.period = await api("/dashboard/period"); return state.period; }
  function hashParams() { const q = location.hash.split("?")[1]; return new URLSearchParams(q || ""); }
  async function showSeries() {
    await period(); await loadBase();
    const sel = $("#series-what");
    const want = hashParams().get("sensor") ? "s:" + hashParams().get("sensor") : hashParams().get("dma") ? "d:" + hashParams().get("dma") : sel.value || "d:" + (state.dmas[0] || {}).dma;
    sel.textContent = "";
    const og1 = document.createElement("optgroup"); og1.label = t("series.dma");
    state.dmas.forEach((d) => { const o = new Option(t("series.dma") + " " + d.dma, "d:" + d.dma); og1.appendChild(o); });
    const og2 = document.createElement("optgroup"); og2.label = t("series.sensor");
    state.sensors.filter((s) => s.kind !== "demand").concat(state.sensors.filter((s) => s.kind === "demand")).forEach((s) => og2.appendChild(new Option(s.sensor_id + " (" + t("sensor.kind." + s.kind) + ")", "s:" + s.sensor_id)));
    sel.append(og1, og2); sel.value = want;
    const last = new Date(state.period.last);
    if (!$("#series-to").value) { $("#series-to").value = new Date(last.getTime() + 86400e3).toISOString().slice(0, 10); $("#series-from").value = new Date(last.getTime() - 13 * 86400e3).toISOString().slice(0, 10); }
    await drawSeries();
  }
  async function drawSeries() {
    const what = $("#series-what").value, from = $("#series-from").value, to = $("#series-to").value, rs = $("#series-resample").value;
    const traces = [], shapes = [], ann = [];
    let yUnit = "", n = 0, mnf = [], onsets = [];
    if (what.startsWith("d:")) {
      const d = await api(`/dashboard/inflow?dma=${encodeURIComponent(what.slice(2))}&from=${from}&to=${to}&resample=${rs || "15min"}`);
      traces.push({ x: d.time, y: d.value, name: t("series.dma") + " " + d.dma, type: "scattergl", mode: "lines", line: { width: 1.2, color: "#0f3d5e" } });
      yUnit = unit(d.unit); n = d.time.length; mnf = d.mnf.map((m) => ({ x: m.at, y: m.mnf_m3h })); onsets = d.onsets;
    } else {
      const id = what.slice(2);
      const q = `/readings?sensor=${encodeURIComponent(id)}&from=${from}&to=${to}` + (rs ? `&resample=${rs}&how=mean` : "");
      const [r, m] = await Promise.all([api(q), api(`/dashboard/mnf?sensor=${encodeURIComponent(id)}&from=${from}&to=${to}`)]);
      const s = r.series[0] || { time: [], value: [], unit: "" };
      traces.push({ x: s.time, y: s.value, name: id, type: "scattergl", mode: "lines", line: { width: 1.2, color: "#0f3d5e" } });
      yUnit = unit(s.unit); n = s.time.length; onsets = m.onsets;
      const sn = state.sensors.find((x) => x.sensor_id === id);
      if (sn && sn.kind === "flow") mnf = m.mnf.map((p) => ({ x: p.at, y: p.value }));
    }
    if (mnf.length) traces.push({ x: mnf.map((p) => p.x), y: mnf.map((p) => p.y), name: t("series.mnf"), mode: "markers", type: "scatter", marker: { color: "#c0392b", size: 7, symbol: "diamond" } });
    for (const o of onsets) {
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: o.start_time, x1: o.start_time, y0: 0, y1: 1, line: { color: "#e00", dash: "dot", width: 2 } });
      ann.push({ x: o.start_time, y: 1, yref: "paper", text: t("series.onset") + " · " + (o.link_id || t((o.candidates || []).length ? "alarms.nopipe" : "alarms.unplaced")), showarrow: false, xanchor: "left", font: { color: "#e00" } });
    }
    $("#series-count").textContent = t("series.count", { n: num(n, 0) });
    await plot("series-chart", traces, { shapes, annotations: ann, yaxis: { title: { text: t("series.value") + " [" + yUnit + "]" } } });
  }
  function plotlyLocale() {
    // month and day names, decimal and thousands separators from Intl: no Plotly locale files needed
    const m = (o) => Array.from({ length: 12 }, (_, i) => new Intl.DateTimeFormat(lang, { month: o, timeZone: "UTC" }).format(new Date(Date.UTC(2025, i, 1))));
    const d = (o) => Array.from({ length: 7 }, (_, i) => new Intl.DateTimeFormat(lang, { weekday: o, timeZone: "UTC" }).format(new Date(Date.UTC(2025, 5, 1 + i))));
    const parts = new Intl.NumberFormat(lang).formatToParts(12345.6);
    const dec = (parts.find((p) => p.type === "decimal") || { value: "." }).value, grp = (parts.find((p) => p.type === "group") || { value: "," }).value;
    window.Plotly.register({ moduleType: "locale", name: "tirtasu-" + lang, dictionary: {}, format: { months: m("long"), shortMonths: m("short"), days: d("long"), shortDays: d("short"), decimal: dec, thousands: grp, date: lang === "en" ? "%m/%d/%Y" : "%d.%m.%Y" } });
    return { separators: dec + grp, locale: "tirtasu-" + lang };
  }
  async function plot(id, traces, layout) {
    await ensurePlotly();
    const loc = plotlyLocale();
    const L = { margin: { l: 60, r: 20, t: 20, b: 40 }, legend: { orientation: "h", y: -0.15 }, separators: loc.separators, ...layout };
    window.Plotly.react(id, traces, L, { displaylogo: false, responsive: true, locale: loc.locale });
  }
  let plotlyLoading = null;
  function ensurePlotly() {
    if (window.Plotly) return Promise.resolve();
    if (!plotlyLoading) plotlyLoading = new Promise((ok, bad) => { const s = document.createElement("script"); s.src = "/static/vendor/plotly.min.js"; s.onload = ok; s.onerror = bad; document.head.appendChild(s); });
    return plotlyLoading;
  }

  // -- NRW -------------------------------------------------------------------------------------
  async function showNRW() {
    const p = await period();
    if (!$("#nrw-to").value) {
      const last = new Date(p.last), first = new Date(p.first);
      $("#nrw-to").value = new Date(last.getTime() + 86400e3).toISOString().slice(0, 10);
      $("#nrw-from").value = first.toISOString().slice(0, 10);
    }
    const from = $("#nrw-from").value, to = $("#nrw-to").value;
    $("#wb").textContent = t("common.loading");
    const [wb, trend, rank] = await Promise.all([
      api(`/nrw?from=${from}&to=${to}`).catch((e) => ({ error: e.message })),
      api(`/dashboard/nrw-trend?from=${from}&to=${to}`).catch((e) => ({ error: e.message, points: [] })),
      api(`/dashboard/ranking?from=${from}&to=${to}`).catch((e) => ({ error: e.message, ranking: [] })),
    ]);
    drawBalance(wb); await drawTrend(trend); drawRanking(rank);
  }
  function drawBalance(wb) {
    const W = $("#wb"); W.textContent = "";
    if (wb.error) { W.textContent = t("common.error") + ": " + wb.error; return; }
    const C = wb.components, box = (key, cls, col, row, span) => {
      const c = C[key]; if (!c) return;
      const d = document.createElement("div"); d.className = cls; d.style.gridColumn = col; d.style.gridRow = row + " / span " + span; d.dataset.key = key;
      const b = document.createElement("b"); b.textContent = t("wb." + key); d.appendChild(b);
      d.append(num(c.value, 0) + " " + t("unit.m3"));
      if (c.cl95_abs !== null && c.cl95_abs !== undefined) d.append(" ± " + num(c.cl95_abs, 0));
      W.appendChild(d);
    };
    W.className = "wb";
    box("system_input_volume", "", 1, 1, 4);
    box("authorized_consumption", "", 2, 1, 2); box("water_losses", "loss", 2, 3, 2);
    box("billed_authorized", "rev", 3, 1, 1); box("unbilled_authorized", "nrw", 3, 2, 1); box("apparent_losses", "nrw", 3, 3, 1); box("real_losses", "nrw", 3, 4, 1);
    box("revenue_water", "rev", 4, 1, 1); box("non_revenue_water", "nrw", 4, 2, 3);
    const I = $("#ili"); I.className = "ili"; I.textContent = "";
    const ili = (wb.indicators || {}).ili, pct = (wb.indicators || {}).nrw_pct_siv || C.nrw_pct_siv;
    const band = (wb.wbi_bands || {})[wb.country_group || "developing"] || Object.values(wb.wbi_bands || {})[0];
    const line = (label, v, d, u) => { const p = document.createElement("div"); p.append(label + ": "); const b = document.createElement("b"); b.textContent = num(v.value, d) + (v.cl95_abs != null ? " ± " + num(v.cl95_abs, d) : "") + (u ? " " + u : ""); p.appendChild(b); I.appendChild(p); return p; };
    if (pct) line(t("wb.nrw_pct_siv"), pct, 1, t("unit.pct"));
    if (ili) { const p = line(t("nrw.ili"), ili, 2, ""); if (band) p.append(" · " + t("nrw.band") + " " + band.band); p.id = "ili-line"; }
  }
  async function drawTrend(tr) {
    const pts = tr.points || [];
    const x = pts.map((p) => p.end);
    const traces = [{ x, y: pts.map((p) => p.nrw_pct), name: t("nrw.actual"), mode: "lines+markers", type: "scatter", line: { color: "#c0392b" } }];
    if (tr.target) traces.push({ x, y: pts.map((p) => p.target_pct), name: t("nrw.target"), mode: "lines", type: "scatter", line: { color: "#2e7d32", dash: "dash" } });
    await plot("trend", traces, { yaxis: { title: { text: "%" }, rangemode: "tozero" } });
    const last = pts[pts.length - 1];
    $("#trend-note").textContent = (last ? (last.on_track ? t("nrw.ontrack") : t("nrw.offtrack")) + " · " : "") + (tr.target && tr.target.source === "default" ? t("nrw.target.default") : "");
  }
  function drawRanking(rk) {
    const T_ = $("#ranking"); T_.textContent = "";
    const h = T_.createTHead().insertRow();
    [["nrw.rank", "num"], ["alarms.dma"], ["nrw.recoverable", "num"], ["nrw.real_losses", "num"], ["nrw.uarl", "num"], ["nrw.ili", "num"], ["nrw.nights", "num"]].forEach(([k, c]) => {
      const th = document.createElement("th"); th.textContent = t(k) + (["nrw.recoverable", "nrw.real_losses", "nrw.uarl"].includes(k) ? " [" + t("unit.m3d") + "]" : ""); th.className = c || ""; h.appendChild(th);
    });
    const b = T_.createTBody();
    for (const r of rk.ranking || []) {
      const row = b.insertRow();
      const c = (v, cls) => { const td = row.insertCell(); td.textContent = v; td.className = cls || ""; };
      c(num(r.rank, 0), "num"); c(r.dma); c(num(r.recoverable_m3d, 1), "num"); c(num(r.real_losses_m3d, 1) + " ± " + num(r.cl95_m3d, 1), "num"); c(num(r.uarl_m3d, 1), "num"); c(num(r.ili, 2), "num"); c(num(r.nights, 0), "num");
    }
  }

  // -- start -----------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", async () => {
    const q = new URLSearchParams(location.search).get("lang");
    let stored = null; try { stored = localStorage.getItem("tirtasu_lang"); } catch (e) { /* */ }
    const want = LANGS.includes(q) ? q : LANGS.includes(stored) && stored !== lang && !q ? stored : lang;
    await setLang(want);
    $("#lang").onchange = (e) => setLang(e.target.value);
    $("#logout").onclick = logout;
    $("#login-form").onsubmit = async (e) => {
      e.preventDefault();
      const ok = await login($("#token").value.trim());
      $("#login-error").hidden = ok; if (ok) render();
    };
    $("#alarm-filter").onchange = showAlarms;
    $("#series-form").onsubmit = (e) => { e.preventDefault(); drawSeries(); };
    $("#nrw-form").onsubmit = (e) => { e.preventDefault(); showNRW(); };
    window.addEventListener("hashchange", () => { if (state.me) render(); });
    // a token handed over in the address's fragment (never sent to the server) is taken once
    const m = location.hash.match(/token=([A-Za-z0-9_\-]+)/);
    if (m) { sessionStorage.setItem("tirtasu_token", m[1]); history.replaceState(null, "", location.pathname + location.search + "#map"); }
    if (token() && (await login(token()))) { api("/dashboard/period").then((p) => (state.period = p)).catch(() => {}); render(); }
    else logout();
  });
})();
