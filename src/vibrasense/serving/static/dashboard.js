// The vibrasense dashboard: polls /v1/dashboard and shows each machine's managed state (not_running, ok, warning,
// alarm), its sensors' states and ISO 10816 zones, its score history as inline SVG, for a machine with a prognosis
// (GET /v1/machines/{id}/health) its health index, alarm and remaining life, and its drift at the latest drift check;
// then the alarms (open, then the latest cleared) with an Acknowledge button (POST /v1/alarms/{id}/ack, with the API
// key and the engineer's name, asked once and kept in sessionStorage for the tab).
// No external scripts or fonts: the page works on an isolated plant network.
"use strict";

const params = new URLSearchParams(window.location.search);
const REFRESH_S = Math.max(0.5, Number(params.get("refresh")) || 5);
const HISTORY = Number(params.get("history")) || 100;
const SVG_NS = "http://www.w3.org/2000/svg";
// A prognosis changes only when `vibrasense prognose` runs: each machine's is fetched at most this often.
const HEALTH_REFRESH_S = Math.max(REFRESH_S, Number(params.get("health_refresh")) || 30);
const health = new Map(); // machine_id -> { fetched (ms), data (the health answer or null), error }

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
  if (value === null || value === undefined) return "—";
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
  history = history.filter(([, score]) => score !== null); // not running: no score
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

function svgNode(tag, attributes) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

// The smoothed health index on a log scale (it grows by orders of magnitude), the alarm threshold dashed and
// the periods in alarm shaded.
function healthChart(data, width = 260, height = 48) {
  const svg = svgNode("svg", { class: "chart health-chart", width, height, role: "img" });
  const { smoothed, alarm } = data.series;
  const threshold = data.latest.threshold;
  const level = (v) => Math.log10(Math.max(v, 1e-6));
  const values = smoothed.filter((v) => v !== null);
  if (threshold !== null) values.push(threshold);
  if (values.length === 0) return svg;
  const low = Math.min(...values.map(level));
  const high = Math.max(...values.map(level));
  const span = high - low || 1;
  const pad = 3;
  const x = (i) => pad + (smoothed.length === 1 ? 0 : (i * (width - 2 * pad)) / (smoothed.length - 1));
  const y = (v) => height - pad - ((level(v) - low) * (height - 2 * pad)) / span;
  let start = null;
  alarm.forEach((on, i) => {
    if (on && start === null) start = i;
    if (start === null || (on && i < alarm.length - 1)) return;
    const end = on ? i : i - 1;
    const rectWidth = Math.max(x(end) - x(start), 1.5);
    svg.appendChild(svgNode("rect", { class: "alarm-span", x: x(start), y: 0, width: rectWidth, height }));
    start = null;
  });
  if (threshold !== null) {
    const y0 = y(threshold);
    svg.appendChild(svgNode("line", { class: "threshold", x1: pad, x2: width - pad, y1: y0, y2: y0 }));
  }
  const points = smoothed.flatMap((v, i) => (v === null ? [] : [`${x(i)},${y(v)}`]));
  svg.appendChild(svgNode("polyline", { class: "score health-index", points: points.join(" ") }));
  const title = document.createElementNS(SVG_NS, "title");
  title.textContent =
    `health index (smoothed, log scale) over ${smoothed.length} points; dashed line: alarm threshold` +
    (threshold === null ? " (not recorded)" : ` ${formatScore(threshold)}`) +
    "; shaded: alarm";
  svg.appendChild(title);
  return svg;
}

function formatHours(value) {
  return value === null ? "∞" : `${value.toFixed(1)}`;
}

function healthCell(entry) {
  const cell = document.createElement("td");
  cell.className = "health";
  if (entry && entry.error) {
    cell.appendChild(text("span", `health unavailable: ${entry.error}`, "muted health-error"));
    return cell;
  }
  if (!entry || !entry.data) return cell; // no prognosis for this machine: nothing to show
  const data = entry.data;
  const latest = data.latest;
  const state = latest.alarm ? "alarm" : "ok";
  cell.dataset.alarm = state;
  cell.appendChild(text("span", latest.alarm ? "health alarm" : "healthy", `badge health-status ${state}`));
  cell.appendChild(healthChart(data));
  const rul =
    latest.rul_hours === null
      ? `RUL not estimated (${latest.rul_method})`
      : `RUL ${formatHours(latest.rul_hours)} h (${formatHours(latest.rul_low_hours)}–` +
        `${formatHours(latest.rul_high_hours)} h)`;
  const since = data.first_alarm ? ` · alarm since ${formatTime(data.first_alarm)}` : "";
  const fault = data.sensor_fault_now ? " · sensor fault now" : "";
  cell.appendChild(text("span", `${rul}${since}${fault} · as of ${formatTime(latest.event_timestamp)}`, "muted rul"));
  return cell;
}

async function fetchHealth(machineId) {
  const entry = { fetched: Date.now(), data: null, error: null };
  try {
    const response = await fetch(`/v1/machines/${encodeURIComponent(machineId)}/health`, { cache: "no-store" });
    if (response.ok) {
      entry.data = await response.json();
    } else if (response.status !== 404) {
      const problem = await response.json().catch(() => ({}));
      entry.error = problem.detail || `HTTP ${response.status}`;
    }
  } catch (error) {
    entry.error = error.message;
  }
  health.set(machineId, entry);
}

async function refreshHealth(machines) {
  const now = Date.now();
  const stale = machines.filter((machine) => {
    const entry = health.get(machine.machine_id);
    return !entry || now - entry.fetched >= HEALTH_REFRESH_S * 1000;
  });
  await Promise.all(stale.map((machine) => fetchHealth(machine.machine_id)));
}

// The machine's verdict at the latest drift check (`vibrasense drift`): drifted or not, the score shift in reference
// SDs, the sensor faults named, and the reasons in the cell's tooltip.
function driftCell(drift) {
  const cell = document.createElement("td");
  cell.className = "drift";
  if (!drift) {
    cell.appendChild(text("span", "not checked", "muted"));
    return cell;
  }
  const state = drift.drifted ? "warning" : "ok";
  cell.dataset.drifted = String(drift.drifted);
  cell.appendChild(text("span", drift.drifted ? "drifted" : "no drift", `badge drift-status ${state}`));
  const shift = drift.score_shift === null ? "score shift —" : `score shift ${drift.score_shift.toFixed(2)} SD`;
  const faults = drift.sensor_faults.length ? ` · ${drift.sensor_faults.join(", ")}` : "";
  const features = drift.drifted_features ? ` · ${drift.drifted_features} features` : "";
  cell.appendChild(text("span", ` ${shift}${features}${faults}`, "muted drift-detail"));
  cell.title = drift.reasons.join("\n");
  return cell;
}

// Each row's key and what it showed when built: a row is rebuilt only when what it shows changed, so the row or the
// button under the engineer's pointer stays the same element from one poll to the next and no click is lost.
const rowState = new WeakMap(); // row -> { key, shown }

function updateRows(body, items, key, shown, build) {
  const existing = new Map();
  for (const row of body.rows) existing.set(rowState.get(row)?.key, row);
  items.forEach((item, index) => {
    const id = key(item);
    const content = shown(item);
    let row = existing.get(id);
    existing.delete(id);
    if (!row || rowState.get(row).shown !== content) {
      const fresh = build(item);
      rowState.set(fresh, { key: id, shown: content });
      if (row) row.replaceWith(fresh);
      row = fresh;
    }
    if (body.rows[index] !== row) body.insertBefore(row, body.rows[index] || null);
  });
  for (const gone of existing.values()) gone.remove();
}

function renderMachines(machines) {
  const body = document.querySelector("#machines tbody");
  document.getElementById("no-machines").hidden = machines.length > 0;
  document.getElementById("machine-count").textContent = `(${machines.length})`;
  updateRows(
    body,
    machines,
    (machine) => machine.machine_id,
    (machine) => {
      const known = health.get(machine.machine_id);
      return JSON.stringify([machine, known?.data ?? null, known?.error ?? null]);
    },
    machineRow,
  );
}

function machineRow(machine) {
  const row = document.createElement("tr");
  row.dataset.machineId = machine.machine_id;
  row.dataset.status = machine.status;
  row.appendChild(text("td", machine.machine_id, "machine-id"));
  const status = document.createElement("td");
  status.appendChild(text("span", machine.status, `badge status ${machine.status}`));
  row.appendChild(status);
  row.appendChild(sensorsCell(machine.sensors));
  row.appendChild(text("td", formatScore(machine.score), "num score"));
  row.appendChild(text("td", formatScore(machine.threshold), "num threshold"));
  row.appendChild(text("td", formatTime(machine.scored_at), "time"));
  const cell = document.createElement("td");
  cell.appendChild(chart(machine.history));
  row.appendChild(cell);
  row.appendChild(healthCell(health.get(machine.machine_id)));
  row.appendChild(driftCell(machine.drift));
  return row;
}

function sensorsCell(sensors) {
  const cell = document.createElement("td");
  cell.className = "sensors";
  for (const sensor of sensors) {
    const item = document.createElement("span");
    item.className = "sensor";
    item.dataset.sensor = sensor.sensor;
    item.dataset.state = sensor.state;
    item.appendChild(text("span", `${sensor.sensor}: ${sensor.state.replace("_", " ")}`, `badge ${sensor.state}`));
    if (sensor.zone) {
      item.dataset.zone = sensor.zone.zone;
      const zone = text(
        "span",
        `zone ${sensor.zone.zone} · ${sensor.zone.velocity_rms_mm_s.toFixed(2)} mm/s`,
        `zone ${sensor.zone.zone}`,
      );
      zone.title = `ISO 10816-1 class ${sensor.zone.machine_class}, velocity RMS 10–1000 Hz`;
      item.appendChild(zone);
    }
    cell.appendChild(item);
  }
  return cell;
}

const CONDITIONS = { score: "score level", rate: "score rising", zone: "ISO zone", domain: "unknown domain" };

function renderAlarms(alarms) {
  const table = document.getElementById("alarms");
  document.getElementById("no-alarms").hidden = alarms.length > 0;
  table.hidden = alarms.length === 0;
  updateRows(table.querySelector("tbody"), alarms, (alarm) => alarm.alarm_id, JSON.stringify, alarmRow);
}

function alarmRow(alarm) {
  const row = document.createElement("tr");
  row.dataset.alarmId = alarm.alarm_id;
  row.dataset.machineId = alarm.machine_id;
  row.dataset.status = alarm.status;
  row.appendChild(text("td", formatTime(alarm.raised_at), "time"));
  row.appendChild(text("td", alarm.machine_id, "machine-id"));
  row.appendChild(text("td", alarm.sensor, "sensor"));
  row.appendChild(text("td", CONDITIONS[alarm.condition] || alarm.condition, "condition"));
  const severity = document.createElement("td");
  severity.appendChild(text("span", alarm.severity, `badge severity ${alarm.severity}`));
  row.appendChild(severity);
  row.appendChild(text("td", alarm.status, "alarm-status"));
  row.appendChild(text("td", formatScore(alarm.value), "num value"));
  const acked = alarm.acknowledged_by ? `${alarm.acknowledged_by}, ${formatTime(alarm.acknowledged_at)}` : "—";
  row.appendChild(text("td", acked, "acknowledged"));
  row.appendChild(text("td", alarm.cleared_at ? formatTime(alarm.cleared_at) : "—", "cleared"));
  const action = document.createElement("td");
  if (alarm.status === "active") {
    const button = text("button", "Acknowledge", "ack");
    button.type = "button";
    button.addEventListener("click", () => acknowledge(alarm.alarm_id, button));
    action.appendChild(button);
  }
  row.appendChild(action);
  return row;
}

const CREDENTIALS_KEY = "vibrasense.credentials"; // {by, key}, for this tab only

function credentials() {
  const stored = sessionStorage.getItem(CREDENTIALS_KEY);
  if (stored) return Promise.resolve(JSON.parse(stored));
  const dialog = document.getElementById("credentials");
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        const by = document.getElementById("engineer").value.trim();
        const key = document.getElementById("api-key").value;
        if (dialog.returnValue !== "ok" || !by || !key) return resolve(null);
        const found = { by, key };
        sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(found));
        resolve(found);
      },
      { once: true },
    );
    dialog.showModal();
  });
}

function showAlarmError(message) {
  const error = document.getElementById("alarm-error");
  error.textContent = message || "";
  error.hidden = !message;
}

async function acknowledge(alarmId, button) {
  const found = await credentials();
  if (!found) return;
  button.disabled = true;
  try {
    const response = await fetch(`/v1/alarms/${encodeURIComponent(alarmId)}/ack`, {
      method: "POST",
      headers: { "content-type": "application/json", "X-API-Key": found.key },
      body: JSON.stringify({ by: found.by }),
    });
    if (response.status === 401 || response.status === 403) sessionStorage.removeItem(CREDENTIALS_KEY);
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      showAlarmError(`cannot acknowledge: ${problem.detail || `HTTP ${response.status}`}`);
      return;
    }
    showAlarmError(null);
    const updated = await response.json();
    latestAlarms = latestAlarms.map((alarm) => (alarm.alarm_id === alarmId ? updated : alarm));
    renderAlarms(latestAlarms);
  } catch (error) {
    showAlarmError(`cannot acknowledge: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

let latestAlarms = [];

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
    await refreshHealth(data.machines);
    renderMachines(data.machines);
    window.vibrasenseExplanation?.onMachines(data.machines); // explanation.js
    latestAlarms = data.alarms;
    renderAlarms(data.alarms);
    document.getElementById("model").textContent = data.model
      ? `model: ${data.model.name} v${data.model.version}`
      : "model: none loaded";
    document.getElementById("updated").textContent = `updated ${formatTime(data.generated_at)}`;
    document.getElementById("drift-checked").textContent = data.drift_checked_at
      ? `drift checked ${formatTime(data.drift_checked_at)}`
      : "no drift check yet";
    setConnection(true);
  } catch (error) {
    setConnection(false, error.message);
  } finally {
    window.setTimeout(refresh, REFRESH_S * 1000);
  }
}

document.getElementById("interval").textContent = REFRESH_S;
refresh();
