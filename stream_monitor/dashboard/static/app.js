// stream-monitor dashboard. Strings from events only ever reach the page as text
// (textContent, setAttribute on data-* attributes) or as escaped plotly labels.
"use strict";

const state = { models: [], selected: null, detail: null, statistic: null, timer: null, range: "" };

function node(tag, text, attrs) {
  const element = document.createElement(tag);
  if (text !== undefined && text !== null) element.textContent = String(text);
  for (const [key, value] of Object.entries(attrs || {})) element.setAttribute(key, String(value));
  return element;
}

// plotly reads a few HTML-like tags and entities in labels: escape so labels show as typed.
function label(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function when(ms) {
  return new Date(Number(ms));
}

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function loadModels() {
  state.models = await api("/api/models");
  renderModels();
  if (state.selected === null && state.models.length > 0) await select(state.models[0].model_id);
}

function renderModels() {
  document.getElementById("no-models").hidden = state.models.length > 0;
  const items = state.models.map((model) => {
    const button = node("button", undefined, {
      type: "button",
      "data-model": model.model_id,
      "aria-current": model.model_id === state.selected ? "true" : "false",
    });
    button.append(
      node("span", model.model_id, { class: "name" }),
      node("span", model.status, { class: "badge", "data-status": model.status }),
      node(
        "span",
        model.last_window
          ? `window ${model.last_window.window_index} · ${when(model.last_window.window_end).toLocaleString()} · ${model.firing} firing`
          : "no window yet",
        { class: "muted" },
      ),
    );
    button.addEventListener("click", () => select(model.model_id));
    const item = node("li", undefined, { class: "model", "data-status": model.status });
    item.append(button);
    return item;
  });
  document.getElementById("models").replaceChildren(...items);
}

async function select(modelId) {
  state.selected = modelId;
  // A time range asks for the windows that ended in it (from the history store when there is one).
  const query = state.range ? `?since=${Date.now() - Number(state.range)}` : "";
  state.detail = await api(`/api/models/${encodeURIComponent(modelId)}${query}`);
  renderModels();
  renderDetail();
}

function keysOf(windows, pick) {
  const keys = new Set();
  for (const window of windows) for (const key of Object.keys(pick(window) || {})) keys.add(key);
  return [...keys].sort();
}

function series(windows, names, value) {
  const x = windows.map((w) => when(w.window_end));
  return names.map((name) => ({
    type: "scatter",
    mode: "lines+markers",
    name: label(name),
    x,
    y: windows.map((w) => {
      const v = value(w, name);
      return v === undefined ? null : v;
    }),
  }));
}

const LAYOUT = {
  margin: { l: 50, r: 10, t: 10, b: 40 },
  legend: { orientation: "h", y: -0.25 },
  xaxis: { type: "date" },
};
const CONFIG = { displaylogo: false, responsive: true };

function plot(id, traces, extra) {
  Plotly.react(id, traces, { ...LAYOUT, ...(extra || {}) }, CONFIG);
}

function renderDetail() {
  const detail = state.detail;
  if (!detail) return;
  document.getElementById("detail").hidden = false;
  document.getElementById("model-title").textContent = detail.model_id;
  const badge = document.getElementById("model-status");
  badge.textContent = detail.status;
  badge.setAttribute("data-status", detail.status);
  const windows = detail.windows;
  document.getElementById("model-windows").textContent = `${windows.length} windows`;

  const statistics = new Set();
  for (const w of windows) for (const stats of Object.values(w.drift || {})) for (const s of Object.keys(stats)) statistics.add(s);
  const choices = [...statistics].sort();
  if (!choices.includes(state.statistic)) state.statistic = choices.includes("psi") ? "psi" : choices[0] || null;
  const select = document.getElementById("statistic");
  select.replaceChildren(...choices.map((s) => node("option", s, { value: s })));
  if (state.statistic) select.value = state.statistic;

  const features = keysOf(windows, (w) => w.drift);
  const drift = series(windows, features, (w, f) => (w.drift[f] || {})[state.statistic]);
  if (windows.some((w) => w.prediction_drift && state.statistic in w.prediction_drift)) {
    drift.push(...series(windows, ["prediction"], (w) => (w.prediction_drift || {})[state.statistic]));
  }
  plot("drift-chart", drift, { yaxis: { title: { text: label(state.statistic || "") } } });

  const metrics = keysOf(windows, (w) => w.performance);
  document.getElementById("performance-empty").hidden = metrics.length > 0;
  plot("performance-chart", series(windows, metrics, (w, m) => w.performance[m]));

  const quality = keysOf(windows, (w) => w.quality);
  plot("quality-chart", series(windows, quality, (w, f) => (w.quality[f] || {}).missing_rate));

  renderAlerts(detail.alerts);
}

function renderAlerts(alerts) {
  const colour = { firing: "#c62828", resolved: "#2e7d32" };
  const traces = ["firing", "resolved"].map((status) => {
    const chosen = alerts.filter((a) => a.status === status);
    return {
      type: "scatter",
      mode: "markers",
      name: status,
      x: chosen.map((a) => when(a.window_end)),
      y: chosen.map((a) => label(a.feature ? `${a.rule} · ${a.feature}` : a.rule)),
      text: chosen.map((a) => label(a.summary)),
      hoverinfo: "x+text",
      marker: { color: colour[status], size: 10, symbol: status === "firing" ? "triangle-up" : "circle" },
    };
  });
  plot("timeline-chart", traces, { yaxis: { type: "category", automargin: true } });
  const rows = alerts.map((a) => {
    const row = node("tr", undefined, { "data-alert-id": a.alert_id, "data-status": a.status });
    row.append(
      node("td", when(a.window_end).toLocaleString()),
      node("td", a.status),
      node("td", a.severity),
      node("td", a.rule),
      node("td", a.feature || ""),
      node("td", a.summary),
    );
    return row;
  });
  document.querySelector("#alerts tbody").replaceChildren(...rows);
}

function refreshSoon() {
  if (state.timer !== null) return;
  state.timer = setTimeout(async () => {
    state.timer = null;
    await loadModels();
    if (state.selected !== null) await select(state.selected);
  }, 500);
}

function connect() {
  const indicator = document.getElementById("connection");
  const events = new EventSource("/api/events");
  events.onopen = () => {
    indicator.textContent = "live";
    indicator.setAttribute("data-state", "live");
    refreshSoon(); // catch up on what happened while disconnected
  };
  events.onerror = () => {
    indicator.textContent = "reconnecting";
    indicator.setAttribute("data-state", "lost");
  };
  events.addEventListener("summary", refreshSoon);
  events.addEventListener("alert", refreshSoon);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("statistic").addEventListener("change", (event) => {
    state.statistic = event.target.value;
    renderDetail();
  });
  document.getElementById("range").addEventListener("change", (event) => {
    state.range = event.target.value;
    if (state.selected !== null) select(state.selected).catch((error) => console.error(error));
  });
  loadModels().catch((error) => console.error(error));
  connect();
});
