// What drove a score, on the dashboard: for the machine selected (click its row, or ?machine=ID in the address),
// its latest explained score (GET /v1/machines/{id}/explanation) drawn as inline SVG. A tabular model: one bar per
// top feature (its share of the total) beside the feature's normal range (5th-95th percentile of the normal
// training data, shaded) with its value marked. An autoencoder: the log-mel (grey, bands × time) with the
// reconstruction error over it in red, and the worst time span outlined. dashboard.js calls
// `vibrasenseExplanation.onMachines(machines)` after each poll; a new score of the selected machine is fetched.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  let selected = new URLSearchParams(window.location.search).get("machine");
  let latestSeen = null; // scored_at of the selected machine's latest score when its explanation was fetched

  const section = document.createElement("section");
  section.id = "explanation";
  const heading = document.createElement("h2");
  heading.append("What drove the score ");
  const machineLabel = document.createElement("span");
  machineLabel.className = "muted";
  heading.appendChild(machineLabel);
  const status = document.createElement("p");
  status.id = "explanation-status";
  status.className = "muted";
  status.textContent = "Select a machine to see what drove its latest score.";
  const picture = document.createElement("div");
  picture.id = "explanation-picture";
  section.append(heading, status, picture);
  document.querySelector("main").appendChild(section);

  function node(tag, attributes, content) {
    const element = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
    if (content !== undefined) element.textContent = content;
    return element;
  }

  function number(value) {
    if (value === null) return "missing";
    return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-2)
      ? value.toExponential(2)
      : value.toPrecision(4);
  }

  // One row per contribution: name, share bar, normal range with the value, numbers.
  function contributionChart(contributions) {
    const rowHeight = 22;
    const width = 760;
    const nameWidth = 200;
    const barWidth = 160;
    const rangeX = nameWidth + barWidth + 20;
    const rangeWidth = 180;
    const svg = node("svg", {
      class: "explanation-chart contributions",
      width,
      height: rowHeight * contributions.length + 4,
      role: "img",
    });
    const largest = Math.max(...contributions.map((c) => Math.abs(c.share)), 1e-12);
    contributions.forEach((c, i) => {
      const y = i * rowHeight + 2;
      svg.appendChild(node("text", { x: 0, y: y + 15, "font-size": 12 }, c.feature));
      const length = Math.max(1, (Math.abs(c.share) / largest) * barWidth);
      const bar = node("rect", {
        class: "contribution-bar",
        x: nameWidth,
        y: y + 3,
        width: length,
        height: rowHeight - 8,
        fill: c.share >= 0 ? "#c62828" : "#2f6fd6",
      });
      bar.appendChild(node("title", {}, `${c.feature}: ${(100 * c.share).toFixed(1)} % of the total`));
      svg.appendChild(bar);
      const points = [c.normal_low, c.normal_high].concat(c.value === null ? [] : [c.value]);
      const low = Math.min(...points);
      const span = Math.max(...points) - low || 1;
      const x = (v) => rangeX + ((v - low) / span) * rangeWidth;
      const range = node("rect", {
        class: "normal-range",
        x: x(c.normal_low),
        y: y + 5,
        width: Math.max(1, x(c.normal_high) - x(c.normal_low)),
        height: rowHeight - 12,
        fill: "#17693a",
        "fill-opacity": 0.25,
      });
      range.appendChild(node("title", {}, `normal ${number(c.normal_low)} to ${number(c.normal_high)}`));
      svg.appendChild(range);
      if (c.value !== null) {
        svg.appendChild(node("circle", { class: "feature-value", cx: x(c.value), cy: y + rowHeight / 2, r: 4 }));
      }
      const detail = `${number(c.value)} (normal ${number(c.normal_low)}–${number(c.normal_high)}) · ` +
        `${(100 * c.share).toFixed(0)} %`;
      svg.appendChild(node("text", { x: rangeX + rangeWidth + 12, y: y + 15, "font-size": 12 }, detail));
    });
    return svg;
  }

  // The log-mel as grey cells, lowest band at the bottom, the error over it in red, the worst span outlined.
  function spectrogram(explanation) {
    const map = explanation.error_map;
    const rows = map.error.length;
    const columns = rows ? map.error[0].length : 0;
    const cell = {
      width: Math.max(4, Math.floor(640 / Math.max(columns, 1))),
      height: Math.max(4, Math.floor(256 / Math.max(rows, 1))),
    };
    const svg = node("svg", {
      class: "explanation-chart spectrogram",
      width: cell.width * columns,
      height: cell.height * rows,
      role: "img",
    });
    const levels = map.logmel_db.flat();
    const lowDb = Math.min(...levels);
    const spanDb = Math.max(...levels) - lowDb || 1;
    const worst = Math.max(...map.error.flat(), 1e-12);
    for (let r = 0; r < rows; r++) {
      const y = (rows - 1 - r) * cell.height;
      for (let c = 0; c < columns; c++) {
        const grey = Math.round(30 + (200 * (map.logmel_db[r][c] - lowDb)) / spanDb);
        const attributes = { x: c * cell.width, y, width: cell.width, height: cell.height };
        svg.appendChild(node("rect", { class: "logmel-cell", ...attributes, fill: `rgb(${grey},${grey},${grey})` }));
        const error = node("rect", {
          class: "error-cell",
          ...attributes,
          fill: "#e53935",
          "fill-opacity": (0.85 * map.error[r][c]) / worst,
        });
        const where = `${Math.round(map.band_low_hz[r])}–${Math.round(map.band_high_hz[r])} Hz, ` +
          `${map.time_edges_s[c].toFixed(2)}–${map.time_edges_s[c + 1].toFixed(2)} s`;
        error.appendChild(node("title", {}, `${where}: error ${number(map.error[r][c])}`));
        svg.appendChild(error);
      }
    }
    const span = explanation.time_span;
    const total = map.time_edges_s[columns] || 1;
    const x0 = (span.start_s / total) * cell.width * columns;
    const x1 = (span.end_s / total) * cell.width * columns;
    svg.appendChild(node("rect", {
      class: "time-span",
      x: x0,
      y: 0,
      width: Math.max(1, x1 - x0),
      height: cell.height * rows,
      fill: "none",
      stroke: "#ffd54f",
      "stroke-width": 2,
    }));
    return svg;
  }

  function bandList(bands) {
    const list = document.createElement("ul");
    list.className = "worst-bands muted";
    for (const band of bands) {
      const item = document.createElement("li");
      item.textContent = `${Math.round(band.low_hz)}–${Math.round(band.high_hz)} Hz (mel band ${band.band}): ` +
        `${(100 * band.share).toFixed(0)} % of the error`;
      list.appendChild(item);
    }
    return list;
  }

  function draw(answer) {
    const explanation = answer.explanation;
    picture.replaceChildren();
    picture.dataset.kind = explanation.kind;
    picture.dataset.scoreId = answer.score_id || "";
    status.textContent = `${explanation.summary} — score ${number(answer.score)} (threshold ` +
      `${number(answer.threshold)}), ${new Date(answer.scored_at).toLocaleString()}, ` +
      `${answer.model.name} v${answer.model.version}, ${explanation.method}`;
    if (explanation.kind === "features") {
      picture.appendChild(contributionChart(explanation.contributions));
      return;
    }
    if (explanation.error_map) picture.appendChild(spectrogram(explanation));
    picture.appendChild(bandList(explanation.bands));
  }

  async function load(machineId) {
    machineLabel.textContent = `(${machineId})`;
    try {
      const response = await fetch(`/v1/machines/${encodeURIComponent(machineId)}/explanation`, { cache: "no-store" });
      const answer = await response.json().catch(() => ({}));
      if (machineId !== selected) return; // another machine was selected meanwhile
      if (!response.ok) {
        picture.replaceChildren();
        delete picture.dataset.kind;
        status.textContent = `No explanation: ${answer.detail || `HTTP ${response.status}`}`;
        return;
      }
      draw(answer);
    } catch (error) {
      status.textContent = `Explanation unavailable: ${error.message}`;
    }
  }

  function markSelected() {
    for (const row of document.querySelectorAll("#machines tbody tr[data-machine-id]")) {
      row.classList.toggle("selected", row.dataset.machineId === selected);
      row.style.cursor = "pointer";
    }
  }

  document.addEventListener("click", (event) => {
    const row = event.target.closest("#machines tbody tr[data-machine-id]");
    if (!row) return;
    selected = row.dataset.machineId;
    latestSeen = null;
    markSelected();
    load(selected);
  });

  // After each poll of the dashboard: keep the selection marked, fetch again when the machine has a new score.
  function onMachines(machines) {
    markSelected();
    if (!selected) return;
    const machine = machines.find((m) => m.machine_id === selected);
    const latest = machine ? machine.scored_at : null;
    if (latest === latestSeen) return;
    latestSeen = latest;
    load(selected);
  }

  window.vibrasenseExplanation = { onMachines };
})();
