"use strict";
// learntolearn's page: three tabs over the JSON API of `ltl serve` (learntolearn/web/app.py).

const $ = (selector) => document.querySelector(selector);

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function call(url, options = {}) {
  const response = await fetch(url, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  showError("");
  return body;
}

function postJSON(url, value) {
  return call(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(value) });
}

// ---- tabs
for (const tab of document.querySelectorAll("nav [role=tab]")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll("nav [role=tab]")) {
      other.setAttribute("aria-selected", String(other === tab));
      document.getElementById(other.dataset.panel).hidden = other !== tab;
    }
  });
}

// ---- drawing pads
function makePad(canvas, onStroke) {
  const context = canvas.getContext("2d");
  const pad = { canvas, drawn: false };
  pad.clear = () => {
    context.fillStyle = "white";
    context.fillRect(0, 0, canvas.width, canvas.height);
    pad.drawn = false;
  };
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  let last = null;
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    context.beginPath();
    context.fillStyle = "black";
    context.arc(last[0], last[1], 3, 0, 2 * Math.PI);
    context.fill();
    pad.drawn = true;
  });
  canvas.addEventListener("pointermove", (event) => {
    if (last === null) return;
    const next = point(event);
    context.strokeStyle = "black";
    context.lineWidth = 7;
    context.lineCap = "round";
    context.beginPath();
    context.moveTo(last[0], last[1]);
    context.lineTo(next[0], next[1]);
    context.stroke();
    last = next;
  });
  const end = () => {
    if (last === null) return;
    last = null;
    onStroke();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  pad.clear();
  return pad;
}

// ---- Draw tab
const draw = { classes: [], query: null };

function buildClasses() {
  const ways = Math.max(2, Math.min(20, Number($("#draw-ways").value) || 2));
  $("#draw-ways").value = ways;
  if (draw.classes.length === ways) return; // nothing changed: keep the drawings
  const holder = $("#draw-classes");
  holder.replaceChildren();
  draw.classes = [];
  for (let i = 0; i < ways; i++) {
    const card = document.createElement("div");
    card.className = "class-card";
    const name = document.createElement("input");
    name.value = `class ${i + 1}`;
    name.className = "class-name";
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 140;
    canvas.className = "pad";
    canvas.id = `draw-class-${i}`;
    canvas.setAttribute("aria-label", `examples of class ${i + 1}`);
    const add = document.createElement("button");
    add.type = "button";
    add.textContent = "+ example";
    const clear = document.createElement("button");
    clear.type = "button";
    clear.textContent = "Clear";
    const thumbs = document.createElement("div");
    thumbs.className = "thumbs";
    const entry = { name, examples: [], pad: makePad(canvas, predict), thumbs };
    add.addEventListener("click", () => {
      if (!entry.pad.drawn) return;
      const url = canvas.toDataURL("image/png");
      entry.examples.push(url);
      const image = document.createElement("img");
      image.src = url;
      image.alt = "example";
      thumbs.append(image);
      entry.pad.clear();
    });
    clear.addEventListener("click", () => {
      entry.examples = [];
      thumbs.replaceChildren();
      entry.pad.clear();
      predict();
    });
    card.append(name, canvas, add, clear, thumbs);
    holder.append(card);
    draw.classes.push(entry);
  }
  predict();
}

function examplesOf(entry) {
  return entry.pad.drawn ? [...entry.examples, entry.pad.canvas.toDataURL("image/png")] : entry.examples;
}

async function predict() {
  const result = $("#draw-result");
  if (!draw.query || !draw.query.drawn || draw.classes.some((entry) => examplesOf(entry).length === 0)) {
    result.replaceChildren();
    return;
  }
  const classes = draw.classes.map((entry) => ({ name: entry.name.value, examples: examplesOf(entry) }));
  try {
    const answer = await postJSON("/api/draw/predict", { classes, query: draw.query.canvas.toDataURL("image/png") });
    result.replaceChildren();
    result.dataset.predicted = answer.predicted;
    answer.classes.forEach((name, i) => {
      const row = document.createElement("div");
      row.className = "bar" + (name === answer.predicted ? " best" : "");
      const label = document.createElement("span");
      label.className = "name";
      label.textContent = name;
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = `${Math.round(answer.probabilities[i] * 200)}px`;
      const value = document.createElement("span");
      value.textContent = answer.probabilities[i].toFixed(3);
      row.append(label, fill, value);
      result.append(row);
    });
  } catch (error) {
    showError(error.message);
  }
}

// ---- Photos tab
function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    onFiles([...event.dataTransfer.files]);
  });
}

function chips(holder, counts) {
  holder.replaceChildren(
    ...Object.entries(counts).map(([name, count]) => {
      const chip = document.createElement("span");
      chip.textContent = `${name}: ${count}`;
      return chip;
    }),
  );
}

async function addPhotoExamples(files) {
  const name = $("#photo-class").value.trim();
  if (!name) return showError("name the class first");
  if (!files.length) return;
  const form = new FormData();
  form.append("class", name);
  for (const file of files) form.append("files", file, file.name);
  try {
    chips($("#photo-classes"), (await call("/api/photos/examples", { method: "POST", body: form })).classes);
  } catch (error) {
    showError(error.message);
  }
}

async function labelPhotos(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  try {
    const method = $("#photo-method").value;
    const answer = await call(`/api/photos/label?method=${method}`, { method: "POST", body: form });
    const body = $("#photo-results tbody");
    body.replaceChildren(
      ...answer.predictions.map((p) => {
        const row = document.createElement("tr");
        for (const text of [p.file, p.predicted_class, p.confidence.toFixed(3), p.top.map((t) => `${t[0]} ${t[1].toFixed(3)}`).join("; ")]) {
          const cell = document.createElement("td");
          cell.textContent = text;
          row.append(cell);
        }
        return row;
      }),
    );
    $("#photo-csv").hidden = false;
  } catch (error) {
    showError(error.message);
  }
}

// ---- Texts tab
let textPredictions = [];

function renderTexts() {
  const threshold = Number($("#text-threshold").value);
  $("#text-threshold-value").textContent = threshold.toFixed(2);
  $("#text-results tbody").replaceChildren(
    ...textPredictions.map((p) => {
      const row = document.createElement("tr");
      const label = p.confidence < threshold ? "out_of_scope" : p.predicted_class;
      for (const text of [p.text, label, p.confidence.toFixed(3)]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }),
  );
}

const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);

async function start() {
  const status = await call("/api/status");
  $("#draw-model").textContent = status.draw ? `Model: ${status.draw_model}.` : "No model is served: start `ltl serve MODEL`.";
  $("#photos-model").textContent = status.photos ? `Encoder: ${status.photos}.` : "No photo encoder: pip install 'learntolearn[vision]'.";
  draw.query = makePad($("#draw-query"), predict);
  $("#draw-ways").addEventListener("change", buildClasses);
  $("#draw-clear-query").addEventListener("click", () => {
    draw.query.clear();
    predict();
  });
  buildClasses();

  const takeFiles = (handler) => (event) => {
    const files = [...event.target.files];
    event.target.value = ""; // the next choice starts afresh (and may pick the same files again)
    handler(files);
  };
  $("#photo-examples").addEventListener("change", takeFiles(addPhotoExamples));
  $("#photo-queries").addEventListener("change", takeFiles(labelPhotos));
  dropZone($("#photo-drop-examples"), addPhotoExamples);
  dropZone($("#photo-drop-queries"), labelPhotos);
  $("#photo-reset").addEventListener("click", async () => {
    chips($("#photo-classes"), (await call("/api/photos/examples", { method: "DELETE" })).classes);
  });

  $("#text-add").addEventListener("click", async () => {
    try {
      const answer = await postJSON("/api/texts/examples", { intent: $("#text-intent").value, texts: lines($("#text-examples").value) });
      chips($("#text-intents"), answer.intents);
      $("#text-examples").value = "";
    } catch (error) {
      showError(error.message);
    }
  });
  $("#text-reset").addEventListener("click", async () => {
    chips($("#text-intents"), (await call("/api/texts/examples", { method: "DELETE" })).intents);
  });
  $("#text-label").addEventListener("click", async () => {
    try {
      const answer = await postJSON("/api/texts/label", { texts: lines($("#text-queries").value), method: $("#text-method").value });
      textPredictions = answer.predictions;
      renderTexts();
    } catch (error) {
      showError(error.message);
    }
  });
  $("#text-threshold").addEventListener("input", renderTexts);
}

start().catch((error) => showError(error.message));
