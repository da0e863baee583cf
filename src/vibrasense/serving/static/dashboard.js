// The vibrasense dashboard: polls /v1/dashboard and draws each machine's score history as inline SVG.
// No external scripts or fonts: the page works on an isolated plant network.
"use strict";

const params = new URLSearchParams(window.location.search);
const REFRESH_S = Math.max(0.5, Number(params.get("refresh")) || 5);
const HISTORY = Number(params.get("history")) || 100;
const SVG_NS = "http://www.w3.org/2000/svg";

function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

function formatTime(iso) {
  return new Date(iso).toLocaleString();
}

function formatScore(value) {
  return Math.abs(value) >= 1000 || (value !== 0 && Math.abs(value) < 0.01)
    ? value.toExponential(3)
    : value.toFixed(3);
}

function chart(history, width = 260, height = 48) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  if (history.length === 0) return svg;
  const values = history.flatMap(([, score, threshold]) => [score, threshold]);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const pad = 3;
  const x = (i) => pad + (history.length === 1 ? 0 : (i * (width - 2 * pad)) / (history.length - 1));
  const y = (v) => height - pad - ((v - low) * (height - 2 * pad)) / span;
  const threshold = history[history.length - 1][2];
  const line = document.createElementNS(SVG_NS, "line");
  line.setAttribute("class", "threshold");
  line.setAttribute("x1", pad);
  line.setAttribute("x2", width - pad);
  line.setAttribute("y1", y(threshold));
  line.setAttribute("y2", y(threshold));
  svg.appendChild(line);
  const path = document.createElementNS(SVG_NS, "polyline");
  path.setAttribute("class", "score");
  path.setAttribute("points", history.map(([, score], i) => `${x(i)},${y(score)}`).join(" "));
  svg.appendChild(path);
  history.forEach(([, score, limit], i) => {
    if (score <= limit) return;
    const dot = document.createElementNS(SVG_NS, "circle");
    dot.setAttribute("class", "anomaly");
    dot.setAttribute("cx", x(i));
    dot.setAttribute("cy", y(score));
    dot.setAttribute("r", 2.5);
    svg.appendChild(dot);
  });
  const title = document.createElementNS(SVG_NS, "title");
  title.textContent = `${history.length} scores; dashed line: threshold`;
  svg.appendChild(title);
  return svg;
}

function renderMachines(machines) {
  const body = document.querySelector("#machines tbody");
  body.replaceChildren();
  document.getElementById("no-machines").hidden = machines.length > 0;
  document.getElementById("machine-count").textContent = `(${machines.length})`;
  for (const machine of machines) {
    const row = document.createElement("tr");
    row.dataset.machineId = machine.machine_id;
    row.dataset.status = machine.status;
    row.appendChild(text("td", machine.machine_id, "machine-id"));
    const status = document.createElement("td");
    status.appendChild(text("span", machine.status, `badge status ${machine.status}`));
    row.appendChild(status);
    row.appendChild(text("td", formatScore(machine.score), "num score"));
    row.appendChild(text("td", formatScore(machine.threshold), "num threshold"));
    row.appendChild(text("td", formatTime(machine.scored_at), "time"));
    const cell = document.createElement("td");
    cell.appendChild(chart(machine.history));
    row.appendChild(cell);
    body.appendChild(row);
  }
}

function renderAlarms(alarms) {
  const list = document.getElementById("alarms");
  list.replaceChildren();
  document.getElementById("no-alarms").hidden = alarms.length > 0;
  for (const alarm of alarms) {
    const item = text(
      "li",
      `${formatTime(alarm.scored_at)} — ${alarm.machine_id}: score ${formatScore(alarm.score)} ` +
        `above threshold ${formatScore(alarm.threshold)} (${alarm.model_name} v${alarm.model_version})`,
      "alarm",
    );
    item.dataset.machineId = alarm.machine_id;
    list.appendChild(item);
  }
}

function setConnection(ok, message) {
  const badge = document.getElementById("connection");
  badge.textContent = ok ? "live" : `offline: ${message}`;
  badge.className = `badge ${ok ? "ok" : "alarm"}`;
  badge.dataset.state = ok ? "ok" : "error";
}

async function refresh() {
  try {
    const response = await fetch(`/v1/dashboard?history=${HISTORY}`, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    renderMachines(data.machines);
    renderAlarms(data.alarms);
    document.getElementById("model").textContent = data.model
      ? `model: ${data.model.name} v${data.model.version}`
      : "model: none loaded";
    document.getElementById("updated").textContent = `updated ${formatTime(data.generated_at)}`;
    setConnection(true);
  } catch (error) {
    setConnection(false, error.message);
  } finally {
    window.setTimeout(refresh, REFRESH_S * 1000);
  }
}

document.getElementById("interval").textContent = REFRESH_S;
refresh();
