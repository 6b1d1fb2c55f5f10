// fledge dashboard: the application list, and one application's charts with
// its decisions marked on the time axis. Served by `fledge dashboard`.
"use strict";
const readOnly = document.body.dataset.readonly === "true";
const colors = { stable: "#1f6feb", canary: "#e8730c", weight: "#6b7280" };
const decisionColors = { RolledBack: "#b3261e", Promoted: "#1a7f37", StepUp: "#1a7f37", Paused: "#9a6700", Resumed: "#9a6700", AnalysisStarted: "#6b7280" };
let selected = null, plots = [], lastDetail = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v; }
  for (const c of children) e.append(c);
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

async function refreshApps() {
  const status = document.getElementById("status");
  try {
    const apps = await getJSON("/api/apps");
    const tbody = document.querySelector("#app-table tbody");
    tbody.replaceChildren(...apps.map(a => {
      const key = a.namespace + "/" + a.name;
      const tr = el("tr", { "data-app": key, class: key === selected ? "selected" : "" },
        el("td", {}, a.namespace), el("td", {}, a.name), el("td", {}, a.host || "-"), el("td", {}, a.stable || "-"),
        el("td", {}, a.canary || "-"), el("td", {}, a.effectiveWeight + "%"), el("td", {}, a.phase || "-"),
        el("td", {}, a.step), el("td", {}, a.verdict || "-"));
      tr.onclick = () => { location.hash = key; };
      return tr;
    }));
    status.textContent = apps.length + " applications, " + new Date().toLocaleTimeString();
    status.className = "";
  } catch (e) { status.textContent = e.message; status.className = "error"; }
}

// markDecisions draws each decision as a vertical line with its reason.
function markDecisions(decisions) {
  return u => {
    const ctx = u.ctx, top = u.bbox.top, bottom = u.bbox.top + u.bbox.height;
    ctx.save();
    ctx.font = (11 * devicePixelRatio) + "px sans-serif";
    for (const d of decisions) {
      const x = u.valToPos(d.t, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = ctx.fillStyle = decisionColors[d.reason] || "#333";
      ctx.setLineDash([4, 3]); ctx.lineWidth = devicePixelRatio;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      // Labels read rightwards from their line, leftwards near the right edge.
      const right = x > u.bbox.left + u.bbox.width - 100 * devicePixelRatio;
      ctx.textAlign = right ? "right" : "left";
      ctx.fillText(d.reason, x + (right ? -3 : 3) * devicePixelRatio, top + 12 * devicePixelRatio);
    }
    ctx.restore();
  };
}

function chart(title, unit, series, points, decisions, fmt) {
  const box = el("div", { class: "chart" }, el("h4", {}, title));
  const width = Math.max(320, Math.floor((document.getElementById("charts").clientWidth || 900) / 2) - 24);
  const data = [points.map(p => p.t), ...series.map(s => points.map(p => p[s.key]))];
  const opts = {
    width, height: 200,
    scales: { x: { time: true } },
    axes: [{}, { values: (u, vals) => vals.map(v => v == null ? "" : fmt(v)), size: 60 }],
    series: [{}, ...series.map(s => ({ label: s.label, stroke: s.color, width: 2, spanGaps: false, value: (u, v) => v == null ? "-" : fmt(v) + unit }))],
    hooks: { draw: [markDecisions(decisions)] },
  };
  plots.push(new uPlot(opts, data, box));
  return box;
}

async function act(action) {
  const [ns, name] = selected.split("/");
  if (!confirm(action + " " + name + " in namespace " + ns + "? This acts with your own credentials.")) return;
  const r = await fetch("/api/apps/" + encodeURIComponent(ns) + "/" + encodeURIComponent(name) + "/" + action,
    { method: "POST", headers: { "X-Fledge-Confirm": action } });
  const body = await r.json();
  alert(r.ok ? body.result : "refused: " + body.error);
  refreshDetail();
}

async function refreshDetail() {
  const detail = document.getElementById("detail");
  if (!selected) { detail.hidden = true; return; }
  let d;
  try { d = await getJSON("/api/apps/" + selected); } catch (e) {
    detail.hidden = false; document.getElementById("detail-title").textContent = selected;
    document.getElementById("detail-summary").textContent = e.message; return;
  }
  lastDetail = d;
  detail.hidden = false;
  const a = d.app;
  document.getElementById("detail-title").textContent = a.namespace + "/" + a.name;
  document.getElementById("detail-summary").textContent =
    `host ${a.host || "-"} · stable ${a.stable || "-"} ${100 - a.effectiveWeight}% · canary ${a.canary || "-"} ${a.effectiveWeight}% (desired ${a.desiredWeight}%) · ${a.phase} · step ${a.step}`;
  document.getElementById("evidence").textContent = a.verdict ? "last verdict: " + a.verdict + ": " + a.evidence : "";
  const actions = document.getElementById("actions");
  actions.replaceChildren();
  if (!readOnly && a.automated) {
    for (const action of ["promote", "abort", "pause", "resume"]) {
      const b = el("button", { "data-action": action }, action);
      b.onclick = () => act(action);
      actions.append(b);
    }
  }
  const pts = d.points;
  const pct = v => (100 * v).toFixed(1);
  pts.forEach(p => { p.canaryShare = (p.stableRate != null && p.canaryRate != null && p.stableRate + p.canaryRate > 0) ? p.canaryRate / (p.stableRate + p.canaryRate) : null; p.weightRatio = p.weight / 100; });
  plots.forEach(p => p.destroy()); plots = [];
  const charts = document.getElementById("charts");
  charts.replaceChildren(
    chart("Traffic share to the canary", "%", [{ key: "weightRatio", label: "weight", color: colors.weight }, { key: "canaryShare", label: "canary share of requests", color: colors.canary }], pts, d.decisions, pct),
    chart("Requests per second", "/s", [{ key: "stableRate", label: "stable " + (a.stable || ""), color: colors.stable }, { key: "canaryRate", label: "canary " + (a.canary || ""), color: colors.canary }], pts, d.decisions, v => v.toFixed(1)),
    chart("Error rate", "%", [{ key: "stableErrorRatio", label: "stable", color: colors.stable }, { key: "canaryErrorRatio", label: "canary", color: colors.canary }], pts, d.decisions, pct),
    chart("Latency p50 / p99", " ms", [{ key: "stableP50", label: "stable p50", color: colors.stable }, { key: "stableP99", label: "stable p99", color: "#7aa7f0" }, { key: "canaryP50", label: "canary p50", color: colors.canary }, { key: "canaryP99", label: "canary p99", color: "#f2b27a" }], pts, d.decisions, v => (1000 * v).toFixed(1)),
  );
  charts.dataset.points = pts.length;
  const last = pts[pts.length - 1];
  charts.dataset.canaryRequests = last ? last.canaryRequests : 0;
  charts.dataset.canaryErrors = last ? last.canaryErrors : 0;
  document.getElementById("decisions").replaceChildren(...d.decisions.map(x =>
    el("li", { class: "decision " + x.type, "data-reason": x.reason, title: x.note },
      new Date(x.t * 1000).toLocaleTimeString() + " " + x.reason + ": " + x.note)));
}

function route() {
  selected = decodeURIComponent(location.hash.slice(1)) || null;
  refreshApps(); refreshDetail();
}
window.addEventListener("hashchange", route);
route();
setInterval(() => { refreshApps(); refreshDetail(); }, 2000);
