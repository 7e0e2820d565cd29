// stream-monitor dashboard. Strings from events only ever reach the page as text
// (textContent, setAttribute on data-* attributes) or as escaped plotly labels.
"use strict";

const state = {
  models: [],
  selected: null,
  detail: null,
  statistic: null,
  timer: null,
  range: "",
  // drill-down: the feature, the window (its window_index) and the segment ("" for all)
  feature: null,
  window: null,
  windowPinned: false, // chosen by the user: kept while new windows arrive
  segment: "",
  clickBound: false,
};
// The key of the prediction (or score) signal in summaries' detections and distributions.
const PREDICTION = "<prediction>";

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
  // The segment chosen ("" for all of the model's events) filters every chart.
  const segments = [...new Set(detail.windows.map((w) => w.segment).filter((s) => s))].sort();
  if (!segments.includes(state.segment)) state.segment = "";
  document.getElementById("segment-choice").hidden = segments.length === 0;
  fillSelect("segment", [["", "all"], ...segments.map((s) => [s, s])], state.segment);
  const windows = detail.windows.filter((w) => (w.segment || "") === state.segment);
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
  renderDrilldown();
}

// Options of a <select> from [value, text] pairs, keeping `chosen` selected.
function fillSelect(id, options, chosen) {
  const select = document.getElementById(id);
  select.replaceChildren(...options.map(([value, text]) => node("option", text, { value })));
  if (chosen !== null && chosen !== undefined) select.value = String(chosen);
}

// For one feature and window: its distribution beside the reference's, and the statistic over
// time with the rule's thresholds and the feature's alerts.
function renderDrilldown() {
  const detail = state.detail;
  const windows = detail.windows.filter((w) => (w.segment || "") === state.segment);

  const features = keysOf(windows, (w) => w.distributions);
  if (!features.includes(state.feature)) {
    const alerted = detail.alerts.find((a) => a.kind === "drift" && features.includes(a.feature));
    state.feature = alerted ? alerted.feature : features[0] || null;
  }
  fillSelect("feature", features.map((f) => [f, f === PREDICTION ? "prediction" : f]), state.feature);

  const measured = windows.filter((w) => (w.distributions || {})[state.feature]);
  document.getElementById("drilldown-empty").hidden = measured.length > 0;
  if (!state.windowPinned || !measured.some((w) => w.window_index === state.window)) {
    state.window = measured.length ? measured[measured.length - 1].window_index : null;
  }
  fillSelect(
    "window",
    measured
      .slice()
      .reverse()
      .map((w) => [w.window_index, `#${w.window_index} · ${when(w.window_end).toLocaleString()}`]),
    state.window,
  );
  const chosen = measured.find((w) => w.window_index === state.window) || null;
  renderDistribution(chosen);
  renderFeatureStatistic(windows, detail.alerts, detail.thresholds, chosen);
  if (!state.clickBound) {
    // A click on a window of the statistic's line shows that window's distribution.
    document.getElementById("feature-chart").on("plotly_click", (event) => {
      const index = event.points[0] && event.points[0].customdata;
      if (index === undefined || index === null) return;
      state.window = Number(index);
      state.windowPinned = true;
      renderDrilldown();
    });
    state.clickBound = true;
  }
}

// Bin labels: the categories, or the ranges between the decile edges.
function binLabels(distribution) {
  if (distribution.categories) return distribution.categories.map(label);
  const edges = distribution.edges.map((x) => Number(x).toPrecision(3));
  if (edges.length === 0) return ["all"];
  return distribution.reference.map((_, i) => {
    if (i === 0) return `< ${edges[0]}`;
    if (i === edges.length) return `≥ ${edges[i - 1]}`;
    return `${edges[i - 1]} – ${edges[i]}`;
  });
}

function renderDistribution(window) {
  const distribution = window ? window.distributions[state.feature] : null;
  if (!distribution) {
    plot("distribution-chart", [], { xaxis: { type: "category" } });
    return;
  }
  const bins = binLabels(distribution);
  const total = distribution.window.reduce((sum, count) => sum + count, 0);
  plot(
    "distribution-chart",
    [
      { type: "bar", name: "reference", x: bins, y: distribution.reference, marker: { color: "#9e9e9e" } },
      {
        type: "bar",
        name: `window #${window.window_index}`,
        x: bins,
        y: distribution.window.map((count) => (total ? count / total : 0)),
        marker: { color: "#1565c0" },
      },
    ],
    { barmode: "group", xaxis: { type: "category", automargin: true }, yaxis: { title: { text: "share" }, tickformat: ".0%" } },
  );
}

function renderFeatureStatistic(windows, alerts, thresholds, chosen) {
  const feature = state.feature;
  const statistic = state.statistic;
  const valueOf = (w) => {
    const stats = feature === PREDICTION ? w.prediction_drift : (w.drift || {})[feature];
    const v = (stats || {})[statistic];
    return v === undefined ? null : v;
  };
  const traces = [
    {
      type: "scatter",
      mode: "lines+markers",
      name: label(statistic || ""),
      x: windows.map((w) => when(w.window_end)),
      y: windows.map(valueOf),
      customdata: windows.map((w) => w.window_index),
      marker: { color: "#1565c0" },
    },
  ];
  const mine = alerts.filter((a) =>
    feature === PREDICTION ? a.kind === "prediction_drift" : a.feature === feature,
  );
  const colour = { firing: "#c62828", resolved: "#2e7d32" };
  for (const status of ["firing", "resolved"]) {
    const chosenAlerts = mine.filter((a) => a.status === status);
    if (chosenAlerts.length === 0) continue;
    traces.push({
      type: "scatter",
      mode: "markers",
      name: `${status} alerts`,
      x: chosenAlerts.map((a) => when(a.window_end)),
      y: chosenAlerts.map((a) => {
        if (a.statistic === statistic && a.value !== null && a.value !== undefined) return a.value;
        const w = windows.find((x) => Number(x.window_end) === Number(a.window_end));
        return (w && valueOf(w)) || 0;
      }),
      text: chosenAlerts.map((a) => label(`${a.rule}: ${a.summary}`)),
      hoverinfo: "x+text",
      marker: { color: colour[status], size: 12, symbol: status === "firing" ? "triangle-up" : "circle" },
    });
  }
  const shapes = [];
  const annotations = [];
  if (thresholds && thresholds.statistic === statistic) {
    for (const [name, colourOf] of [["warning", "#ed6c02"], ["critical", "#c62828"]]) {
      const y = thresholds[name];
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: { color: colourOf, dash: "dash", width: 1.5 } });
      annotations.push({ xref: "paper", x: 1, y, text: name, showarrow: false, xanchor: "right", yanchor: "bottom", font: { color: colourOf, size: 11 } });
    }
  }
  if (chosen) {
    const x = when(chosen.window_end);
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1, line: { color: "#1565c0", dash: "dot", width: 1 } });
  }
  plot("feature-chart", traces, {
    shapes,
    annotations,
    yaxis: { title: { text: label(`${statistic || ""} · ${feature === PREDICTION ? "prediction" : feature || ""}`) }, rangemode: "tozero" },
  });
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
      y: chosen.map((a) => label([a.rule, a.feature, a.segment].filter((p) => p).join(" · "))),
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
      node("td", a.segment || ""),
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
  for (const [id, apply] of [
    ["feature", (value) => { state.feature = value; state.windowPinned = false; }],
    ["window", (value) => { state.window = Number(value); state.windowPinned = true; }],
    ["segment", (value) => { state.segment = value; state.feature = null; state.windowPinned = false; }],
  ]) {
    document.getElementById(id).addEventListener("change", (event) => {
      apply(event.target.value);
      // a segment changes every chart; a feature or window only the drill-down
      if (state.detail) (id === "segment" ? renderDetail : renderDrilldown)();
    });
  }
  document.getElementById("range").addEventListener("change", (event) => {
    state.range = event.target.value;
    if (state.selected !== null) select(state.selected).catch((error) => console.error(error));
  });
  loadModels().catch((error) => console.error(error));
  connect();
});
