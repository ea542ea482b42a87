// kiln dashboard: one page, no dependencies. It asks /api/sweeps every second; when the
// shown sweep's version grows it fetches only the trials changed since (?since=) and redraws.
"use strict";

const POLL_MS = 1000;
const MAX_DOTS = 3000; // past this a chart draws the best 500 and an even sample of the rest
const TABLE_ROWS = 15; // rows shown before "show all" (the plots follow the table)
const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

const page = {
  sweeps: [], // /api/sweeps
  sweep: null, // index shown
  detail: null, // /api/sweep of the shown sweep
  trials: new Map(), // trial number -> row
  pareto: new Map(), // trial number -> Pareto front, with several objectives
  order: [], // trial numbers, leaderboard order then running
  version: -1,
  generation: -1,
  chosen: null, // trial numbers whose curves are drawn (null: the default)
  curves: new Map(), // trial number -> epochs
  curveMetric: null,
  sort: null, // {key, descending}
  filter: "all",
  showAll: false,
  lastOk: 0,
  detailAt: 0,
};

// ---- numbers -------------------------------------------------------------------------

/** A number to 4 significant digits, exponent form when very small or large. */
function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(4)));
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

/** Ticks at 1, 2 or 5 times a power of ten, about `count` of them. */
function niceTicks(low, high, count, integer) {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * power).find((st) => st >= raw);
  if (integer) step = Math.max(1, Math.round(step));
  const ticks = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

// ---- scales --------------------------------------------------------------------------

/** A linear, log or categorical scale from values to [0, 1], with its ticks and labels. */
function scale(kind, values, options = {}) {
  if (kind === "choice") {
    const names = options.choices && options.choices.length ? options.choices : [...new Set(values.map(String))];
    const at = (v) => (names.indexOf(String(v)) + 0.5) / names.length;
    return { at, ticks: names.map((n) => ({ at: at(n), label: n })) };
  }
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v) && (kind !== "log" || v > 0));
  let low = options.low ?? Math.min(...finite);
  let high = options.high ?? Math.max(...finite);
  if (!finite.length && options.low === undefined) [low, high] = [0, 1];
  if (kind === "log") {
    let [a, b] = [Math.log10(low), Math.log10(high)];
    if (!(b > a)) [a, b] = [a - 0.5, b + 0.5];
    const at = (v) => (Math.log10(v) - a) / (b - a);
    const ticks = [];
    for (let e = Math.ceil(a - 1e-9); e <= b + 1e-9; e++) ticks.push({ at: at(10 ** e), label: "1e" + e });
    if (ticks.length < 3) {
      for (let e = Math.floor(a); e <= b; e++)
        for (const m of [2, 5]) {
          const v = m * 10 ** e;
          if (Math.log10(v) >= a && Math.log10(v) <= b) ticks.push({ at: at(v), label: fmt(v) });
        }
    }
    return { at, ticks, log: true };
  }
  if (!(high > low)) {
    const pad = Math.abs(low) * 0.1 || 1;
    [low, high] = [low - pad, high + pad];
  } else if (!options.exact) {
    const pad = (high - low) * 0.04;
    [low, high] = [low - pad, high + pad];
  }
  const at = (v) => (v - low) / (high - low);
  const ticks = niceTicks(low, high, options.ticks ?? 6, kind === "int").map((t) => ({ at: at(t), label: fmt(t) }));
  return { at, ticks };
}

/** The values a scale should span: without far outliers (diverged trials), judged in log
 * space when `log`. */
function robust(values, log = false) {
  const to = log ? Math.log10 : (v) => v;
  const from = log ? (v) => 10 ** v : (v) => v;
  const sorted = values.filter((v) => Number.isFinite(v) && (!log || v > 0)).map(to).sort((a, b) => a - b);
  if (sorted.length < 8) return { low: from(sorted[0]), high: from(sorted[sorted.length - 1]) };
  const q = (p) => sorted[Math.floor(p * (sorted.length - 1))];
  const spread = q(0.75) - q(0.25) || Math.abs(q(0.5)) * 0.1 || 1;
  const low = Math.max(sorted[0], q(0.25) - 4 * spread);
  const high = Math.min(sorted[sorted.length - 1], q(0.75) + 4 * spread);
  return { low: from(low), high: from(high) };
}

/** Whether values are better read on a log axis: all positive, spread over decades. */
function spreadOverDecades(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length < 3 || sorted[0] <= 0) return false;
  const q = (p) => sorted[Math.floor(p * (sorted.length - 1))];
  return q(0.9) / q(0.1) > 100;
}

/** The objective's axis for `values`: log when they span decades, robust either way. */
function objectiveScale(values) {
  const log = spreadOverDecades(values);
  const span = robust(values, log);
  const s = scale(log ? "log" : "float", [span.low ?? 0, span.high ?? 1]);
  return { ...s, span, outside: values.filter((v) => v < span.low || v > span.high).length };
}

// ---- charts --------------------------------------------------------------------------

function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

/** An empty chart: axes of `x` and `y` scales with titles; returns {svg, px, py, plot}. */
function axes(x, y, xTitle, yTitle, { width = 560, height = 300, rotate = false, left = 64 } = {}) {
  const m = { left, right: 14, top: 10, bottom: rotate ? 70 : 42 };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const px = (u) => m.left + u * w;
  const py = (u) => m.top + (1 - u) * h;
  const grid = el("g", { class: "grid" }, svg);
  const axis = el("g", { class: "axis" }, svg);
  el("path", { d: `M${m.left},${m.top}V${m.top + h}H${m.left + w}`, fill: "none" }, axis);
  for (const t of x.ticks) {
    if (t.at < -1e-9 || t.at > 1 + 1e-9) continue;
    el("line", { x1: px(t.at), x2: px(t.at), y1: m.top + h, y2: m.top + h + 4 }, axis);
    const label = el("text", rotate
      ? { x: px(t.at), y: m.top + h + 8, "text-anchor": "end", transform: `rotate(-35 ${px(t.at)} ${m.top + h + 8})` }
      : { x: px(t.at), y: m.top + h + 16, "text-anchor": "middle" }, axis);
    label.textContent = t.label;
  }
  for (const t of y.ticks) {
    if (t.at < -1e-9 || t.at > 1 + 1e-9) continue;
    el("line", { x1: m.left, x2: m.left + w, y1: py(t.at), y2: py(t.at) }, grid);
    el("line", { x1: m.left - 4, x2: m.left, y1: py(t.at), y2: py(t.at) }, axis);
    const label = el("text", { x: m.left - 6, y: py(t.at) + 4, "text-anchor": "end" }, axis);
    label.textContent = t.label;
  }
  const xt = el("text", { x: m.left + w / 2, y: height - 4, "text-anchor": "middle" }, svg);
  xt.textContent = xTitle;
  const yt = el("text", { x: 12, y: m.top + h / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${m.top + h / 2})` }, svg);
  yt.textContent = yTitle;
  const plot = el("g", {}, svg);
  return { svg, px, py, plot, clamp: (u) => Math.min(1, Math.max(0, u)) };
}

/** A dot for trial `row` at unit coordinates (u, v); clipped ones sit on the edge, hollow. */
function dot(chart, row, u, v, colour) {
  const clipped = v < 0 || v > 1;
  return el("circle", {
    class: "dot",
    cx: chart.px(chart.clamp(u)),
    cy: chart.py(chart.clamp(v)),
    r: 3.5,
    fill: clipped ? "#fff" : colour,
    stroke: clipped ? colour : "none",
    "data-trial": row.trial,
  }, chart.plot);
}

function card(title, caption = "") {
  const node = document.createElement("div");
  node.className = "card";
  node.innerHTML = `<h3>${escapeHtml(title)}</h3>`;
  if (caption) node.insertAdjacentHTML("beforeend", `<div class="caption">${escapeHtml(caption)}</div>`);
  return node;
}

/** Colour of a trial whose objective sits at `u` on its axis: dark blue (best) to pale. */
function shade(u, maximize) {
  const g = Math.min(1, Math.max(0, maximize ? u : 1 - u));
  const mix = (a, b) => Math.round(a + (b - a) * g);
  return `rgb(${mix(230, 8)},${mix(200, 48)},${mix(120, 107)})`;
}

/** The legend of lines coloured by rank: `sorted` runs from the worst trial to the best. */
function colourBar(parent, sorted, metric) {
  const wrap = document.createElement("div");
  wrap.className = "caption";
  if (!sorted.length) return;
  const [worst, best] = [sorted[0].objective, sorted[sorted.length - 1].objective];
  wrap.innerHTML = `colour: rank by ${escapeHtml(metric)}, from the worst (${fmt(worst)}) <span style="display:inline-block;width:120px;height:10px;vertical-align:middle;background:linear-gradient(90deg,${shade(0, true)},${shade(0.5, true)},${shade(1, true)})"></span> to the best (${fmt(best)})`;
  parent.appendChild(wrap);
}

// ---- data ----------------------------------------------------------------------------

async function get(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function current() {
  return page.sweeps[page.sweep];
}

function rows() {
  return page.order.map((n) => page.trials.get(n)).filter(Boolean);
}

function objectiveRows() {
  return rows().filter((r) => r.state !== "failed" && typeof r.objective === "number");
}

/** The rows a chart draws: all, or past MAX_DOTS the best 500 and an even sample. */
function thinned(list) {
  if (list.length <= MAX_DOTS) return { list, note: "" };
  const keep = new Set(list.filter((r) => r.rank && r.rank <= 500).map((r) => r.trial));
  const stride = Math.ceil(list.length / (MAX_DOTS - 500));
  list.forEach((r, i) => { if (i % stride === 0) keep.add(r.trial); });
  const kept = list.filter((r) => keep.has(r.trial));
  return { list: kept, note: ` (${kept.length} of ${list.length}: the best 500 and every ${stride}th)` };
}

async function loadTrials(full) {
  const since = full ? "" : `&since=${page.version}`;
  const answer = await get(`/api/trials?sweep=${page.sweep}${since}`);
  if (full) page.trials.clear();
  for (const row of answer.trials) page.trials.set(row.trial, row);
  page.order = answer.order;
  page.pareto = new Map((answer.pareto_rank || []).map((r, i) => [answer.order[i], r]));
  page.version = answer.version;
  page.generation = answer.generation;
  return answer.trials.map((r) => r.trial);
}

function chosenTrials() {
  if (page.chosen) return [...page.chosen];
  const best = page.order.filter((n) => { const r = page.trials.get(n); return r && r.rank; }).slice(0, 5);
  const running = rows().filter((r) => r.state === "running").map((r) => r.trial).slice(0, 5);
  return [...new Set([...best, ...running])];
}

async function loadCurves(changed) {
  const chosen = chosenTrials();
  const missing = chosen.filter((n) => !page.curves.has(n) || changed.includes(n));
  if (!missing.length) return;
  const answer = await get(`/api/curves?sweep=${page.sweep}&trials=${missing.join(",")}`);
  for (const c of answer.curves) page.curves.set(c.trial, c.epochs);
}

// ---- the sweep page ------------------------------------------------------------------

function renderSweep() {
  const s = current();
  const d = page.detail;
  const main = document.getElementById("main");
  if (!s || !d) return;
  const maximize = s.direction === "maximize";
  const all = rows();
  const running = all.filter((r) => r.state === "running");
  main.innerHTML = "";
  main.insertAdjacentHTML("beforeend", `<h1>${escapeHtml(s.name)}</h1>
    <div class="summary quiet"><span>${escapeHtml(s.source)}</span><span>${s.objectives.map((o) => `${o.direction} ${escapeHtml(o.metric)}`).join(", ")}</span>
    <span>${s.trials} of ${s.budget ?? "?"} trials: ${s.complete} complete, ${s.pruned} pruned, ${s.failed} failed, ${s.running} running</span>
    <span>${s.best ? `best ${fmt(s.best.value)} (<a href="#/s/${page.sweep}/t/${s.best.trial}">trial ${s.best.trial}</a>)` : "no result yet"}</span></div>
    ${s.error ? `<p class="error">${escapeHtml(s.error)}</p>` : ""}`);
  if (running.length) {
    const items = running.map((r) => `<li><a href="#/s/${page.sweep}/t/${r.trial}">trial ${r.trial}</a>: epoch ${r.epochs}${r.latest && s.metric in r.latest ? `, ${escapeHtml(s.metric)} ${fmt(r.latest[s.metric])}` : ""}</li>`).join("");
    main.insertAdjacentHTML("beforeend", `<h2>Running</h2><ul class="running-list" id="running">${items}</ul>`);
  }
  main.insertAdjacentHTML("beforeend", `<h2>Leaderboard</h2>`);
  main.appendChild(leaderboard(all, d));
  main.insertAdjacentHTML("beforeend", `<h2>Plots</h2>`);
  const cards = document.createElement("div");
  cards.className = "cards";
  main.appendChild(cards);
  if (s.objectives.length > 1) cards.appendChild(paretoCard(s));
  cards.appendChild(history(s, maximize));
  cards.appendChild(curvesCard(s, d));
  if (d.importance.length) cards.appendChild(importance(d));
  if (d.params.length) cards.appendChild(parallel(s, d, maximize));
  for (const p of d.params) cards.appendChild(slice(s, p, maximize));
}

function leaderboard(all, d) {
  const wrap = document.createElement("div");
  const columns = [
    { key: "rank", label: "rank" }, { key: "trial", label: "trial" }, { key: "state", label: "state", text: true },
    ...(page.pareto.size ? [{ key: "pareto_rank", label: "pareto_rank" }] : []),
    { key: "objective", label: "objective" }, { key: "best_epoch", label: "best_epoch" }, { key: "epochs", label: "epochs" },
    ...d.params.map((p) => ({ key: "p:" + p.name, label: p.name, param: true, text: p.kind === "choice" })),
    ...d.metrics.map((m) => ({ key: "m:" + m, label: m })),
    { key: "duration_s", label: "duration_s" }, { key: "n_params", label: "n_params" }, { key: "note", label: "note", text: true },
  ];
  const value = (row, key) => key === "pareto_rank" ? page.pareto.get(row.trial)
    : key.startsWith("p:") ? row.params[key.slice(2)]
    : key.startsWith("m:") ? (row.metrics || {})[key.slice(2)] : row[key];
  let list = all.filter((r) => page.filter === "all" || r.state === page.filter);
  if (page.sort) {
    const { key, descending } = page.sort;
    list = [...list].sort((a, b) => {
      const [x, y] = [value(a, key), value(b, key)];
      if (x === undefined || x === null) return 1;
      if (y === undefined || y === null) return -1;
      const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return descending ? -order : order;
    });
  }
  const shown = page.showAll ? list : list.slice(0, TABLE_ROWS);
  const counts = ["complete", "pruned", "failed", "running"].map((st) => `<option value="${st}" ${page.filter === st ? "selected" : ""}>${st}</option>`).join("");
  wrap.innerHTML = `<div class="controls"><label>State <select id="filter"><option value="all">all</option>${counts}</select></label>
    <span class="quiet">${list.length} trials${shown.length < list.length ? `, the first ${shown.length} shown <a href="#" id="show-all">show all</a>` : ""}; click a column to sort, a row to open the trial</span></div>`;
  const scroll = document.createElement("div");
  scroll.className = "scroll";
  const arrow = (key) => page.sort && page.sort.key === key ? (page.sort.descending ? " ▼" : " ▲") : "";
  const head = columns.map((c) => `<th data-key="${escapeHtml(c.key)}" class="${c.param ? "param" : ""} ${c.text ? "text" : ""}">${escapeHtml(c.label)}${arrow(c.key)}</th>`).join("");
  const body = shown.map((r) => `<tr class="${r.state}" data-trial="${r.trial}">${columns.map((c) => `<td class="${c.text ? "text" : ""}">${escapeHtml(fmt(value(r, c.key)))}</td>`).join("")}</tr>`).join("");
  scroll.innerHTML = `<table id="leaderboard"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
  wrap.appendChild(scroll);
  wrap.querySelector("#filter").onchange = (e) => { page.filter = e.target.value; renderSweep(); };
  const more = wrap.querySelector("#show-all");
  if (more) more.onclick = (e) => { e.preventDefault(); page.showAll = true; renderSweep(); };
  scroll.querySelectorAll("th").forEach((th) => th.onclick = () => {
    const key = th.dataset.key;
    page.sort = page.sort && page.sort.key === key ? { key, descending: !page.sort.descending } : { key, descending: false };
    renderSweep();
  });
  scroll.querySelectorAll("tbody tr").forEach((tr) => tr.onclick = () => { location.hash = `#/s/${page.sweep}/t/${tr.dataset.trial}`; });
  return wrap;
}

/** A dot's colour by its trial's state; the captions' legend names them. */
const STATE_COLOUR = { complete: "#1f77b4", pruned: "#aaa", running: "#2ca02c" };
const LEGEND = "blue: complete; grey: pruned; green: running (its best epoch so far)";

function history(s, maximize) {
  const withValue = objectiveRows();
  const { list, note } = thinned(withValue);
  const box = card(`Optimisation history: ${s.metric}`, `each trial's ${s.metric} at its best epoch; line: best so far; ${LEGEND}${note}`);
  if (!withValue.length) { box.insertAdjacentHTML("beforeend", `<p class="quiet">No trial has a result yet.</p>`); return box; }
  const x = scale("int", withValue.map((r) => r.trial));
  const y = objectiveScale(withValue.map((r) => r.objective));
  const chart = axes(x, y, "trial", s.metric + (y.log ? " (log axis)" : ""));
  const complete = withValue.filter((r) => r.state === "complete").sort((a, b) => a.trial - b.trial);
  let best = null;
  let path = "";
  for (const r of complete) {
    if (best === null || (maximize ? r.objective > best : r.objective < best)) {
      const yb = chart.py(chart.clamp(y.at(r.objective)));
      path += best === null ? `M${chart.px(x.at(r.trial))},${yb}` : `H${chart.px(x.at(r.trial))}V${yb}`;
      best = r.objective;
    }
  }
  if (path) el("path", { d: path + `H${chart.px(1)}`, fill: "none", stroke: "#ff7f0e", "stroke-width": 2 }, chart.plot);
  for (const r of list) dot(chart, r, x.at(r.trial), y.at(r.objective), STATE_COLOUR[r.state]);
  const out = y.outside;
  box.appendChild(chart.svg);
  const failed = current().failed;
  box.insertAdjacentHTML("beforeend", `<div class="caption">${out ? `${out} far-off ${out === 1 ? "value" : "values"} drawn hollow on the edge. ` : ""}${failed ? `${failed} failed ${failed === 1 ? "trial" : "trials"} not drawn.` : ""}</div>`);
  return box;
}

/** A trial's value of objective `metric` at its best epoch (its size for n_params). */
function goalValue(row, metric) {
  return metric === "n_params" ? row.n_params : (row.metrics || {})[metric];
}

/** With several objectives, the first two against each other: the front in orange, joined by
 * its staircase; the others blue. */
function paretoCard(s) {
  const [gx, gy] = s.objectives;
  const more = s.objectives.length > 2 ? `; the first 2 of ${s.objectives.length} objectives` : "";
  const complete = rows().filter((r) => r.state === "complete" && typeof goalValue(r, gx.metric) === "number" && typeof goalValue(r, gy.metric) === "number");
  const { list, note } = thinned(complete);
  const front = complete.filter((r) => page.pareto.get(r.trial) === 1);
  const box = card(`Pareto front: ${gx.metric} and ${gy.metric}`, `${front.length} of ${complete.length} complete trials on the front (orange): no other trial is better on every objective${more}${note}`);
  if (!complete.length) { box.insertAdjacentHTML("beforeend", `<p class="quiet">No trial has a result yet.</p>`); return box; }
  const x = objectiveScale(complete.map((r) => goalValue(r, gx.metric)));
  const y = objectiveScale(complete.map((r) => goalValue(r, gy.metric)));
  const chart = axes(x, y, `${gx.metric} (${gx.direction})`, `${gy.metric} (${gy.direction})`);
  const at = (r) => [x.at(goalValue(r, gx.metric)), y.at(goalValue(r, gy.metric))];
  const loss = (r) => (gx.direction === "maximize" ? -1 : 1) * goalValue(r, gx.metric);
  const steps = [...front].sort((a, b) => loss(a) - loss(b)).map(at);
  let path = "";
  steps.forEach(([u, v], i) => {
    const [px, py] = [chart.px(chart.clamp(u)), chart.py(chart.clamp(v))];
    path += i === 0 ? `M${px},${py}` : `H${px}V${py}`;
  });
  for (const r of list.filter((r) => page.pareto.get(r.trial) !== 1)) dot(chart, r, ...at(r), "#1f77b4");
  if (path) el("path", { d: path, fill: "none", stroke: "#ff7f0e", "stroke-width": 2 }, chart.plot);
  for (const r of front) dot(chart, r, ...at(r), "#ff7f0e");
  box.appendChild(chart.svg);
  return box;
}

function curvesCard(s, d) {
  const metric = page.curveMetric || s.metric;
  const chosen = chosenTrials();
  const box = card("Learning curves", page.chosen ? "the trials you chose" : "the best 5 and the running trials; choose others on a trial's page");
  const options = d.curve_metrics.map((m) => `<option ${m === metric ? "selected" : ""}>${escapeHtml(m)}</option>`).join("");
  box.insertAdjacentHTML("beforeend", `<div class="controls"><label>Metric <select class="curve-metric">${options}</select></label>${page.chosen ? `<a href="#" class="reset-curves">the default trials</a>` : ""}</div>`);
  box.querySelector(".curve-metric").onchange = (e) => { page.curveMetric = e.target.value; renderSweep(); };
  const reset = box.querySelector(".reset-curves");
  if (reset) reset.onclick = (e) => { e.preventDefault(); page.chosen = null; refresh(true); };
  box.appendChild(curveChart(chosen.map((n) => ({ trial: n, epochs: page.curves.get(n) || [] })), metric));
  return box;
}

/** Lines of `metric` against epoch, one per curve, with a legend. */
function curveChart(curves, metric, dashedMetric = null) {
  const points = curves.flatMap((c) => c.epochs.map((e) => e.metrics[metric]).concat(dashedMetric ? c.epochs.map((e) => e.metrics[dashedMetric]) : []));
  const x = scale("int", curves.flatMap((c) => c.epochs.map((e) => e.epoch)).concat([1]));
  const y = objectiveScale(points.filter((v) => v !== undefined));
  const chart = axes(x, y, "epoch", dashedMetric ? `${metric} (solid), ${dashedMetric} (dashed)` : metric);
  curves.forEach((c, i) => {
    const colour = PALETTE[i % PALETTE.length];
    for (const [m, dash] of [[metric, ""], [dashedMetric, "4 3"]]) {
      if (!m) continue;
      const pts = c.epochs.filter((e) => m in e.metrics).map((e) => `${chart.px(x.at(e.epoch))},${chart.py(chart.clamp(y.at(e.metrics[m])))}`);
      if (pts.length === 1) {
        const [cx, cy] = pts[0].split(",");
        el("circle", { cx, cy, r: 3.5, fill: colour, class: "dot", "data-trial": c.trial }, chart.plot);
      } else if (pts.length) el("polyline", { points: pts.join(" "), fill: "none", stroke: colour, "stroke-width": 2, "stroke-dasharray": dash, "data-trial": c.trial, class: "dot" }, chart.plot);
    }
    const label = el("text", { x: chart.px(1) - 4, y: 22 + 14 * i, "text-anchor": "end", fill: colour, class: "dot", "data-trial": c.trial }, chart.plot);
    label.textContent = `trial ${c.trial}`;
    label.style.fill = colour;
  });
  return chart.svg;
}

function slice(s, p, maximize) {
  const withValue = objectiveRows().filter((r) => p.name in r.params);
  const { list, note } = thinned(withValue);
  const box = card(`${s.metric} against ${p.name}`, `${p.kind === "choice" ? "one column per choice" : p.log ? "log axis" : p.kind}; ${LEGEND}${note}`);
  const x = p.kind === "choice" ? scale("choice", [], { choices: p.choices }) : scale(p.log ? "log" : p.kind, [], { low: p.low, high: p.high, exact: p.log });
  const y = objectiveScale(withValue.map((r) => r.objective));
  const chart = axes(x, y, p.name, s.metric + (y.log ? " (log axis)" : ""), { rotate: p.kind === "choice" && p.choices.join("").length > 40 });
  const jitter = (trial) => p.kind === "choice" ? ((trial * 0.618) % 1 - 0.5) * 0.5 / p.choices.length : 0;
  for (const r of list) dot(chart, r, x.at(r.params[p.name]) + jitter(r.trial), y.at(r.objective), STATE_COLOUR[r.state]);
  box.appendChild(chart.svg);
  return box;
}

function parallel(s, d, maximize) {
  const withValue = objectiveRows().filter((r) => r.state === "complete");
  const { list, note } = thinned(withValue);
  const box = card("Parallel coordinates", `one line per complete trial, the best drawn last${note}`);
  const objective = objectiveScale(withValue.map((r) => r.objective));
  const width = Math.max(560, 120 * (d.params.length + 1));
  const height = 320;
  const m = { left: 50, right: 60, top: 24, bottom: 40 };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}` });
  const columns = [...d.params.map((p) => ({
    name: p.name,
    scale: p.kind === "choice" ? scale("choice", [], { choices: p.choices }) : scale(p.log ? "log" : p.kind, [], { low: p.low, high: p.high, exact: true }),
    value: (r) => r.params[p.name],
  })), { name: s.metric, scale: objective, value: (r) => r.objective }];
  const step = (width - m.left - m.right) / Math.max(1, columns.length - 1);
  const cx = (i) => m.left + i * step;
  const cy = (u) => m.top + (1 - Math.min(1, Math.max(0, u))) * (height - m.top - m.bottom);
  const sorted = [...list].sort((a, b) => (maximize ? a.objective - b.objective : b.objective - a.objective));
  const lines = el("g", {}, svg);
  // Coloured by rank, not by value: a few far-off values would leave every other line alike.
  for (const [i, r] of sorted.entries()) {
    const pts = columns.map((c, k) => { const v = c.value(r); return v === undefined ? null : `${cx(k)},${cy(c.scale.at(v))}`; });
    // A parameter the trial's branch left out breaks its line there.
    let piece = [];
    for (const p of [...pts, null]) {
      if (p !== null) { piece.push(p); continue; }
      if (piece.length > 1) el("polyline", { points: piece.join(" "), fill: "none", stroke: shade(i / Math.max(1, sorted.length - 1), true), "stroke-width": 1.4, "stroke-opacity": 0.8, class: "dot", "data-trial": r.trial }, lines);
      piece = [];
    }
  }
  columns.forEach((c, i) => {
    const g = el("g", { class: "axis" }, svg);
    el("line", { x1: cx(i), x2: cx(i), y1: cy(0), y2: cy(1), stroke: "#666" }, g);
    const title = el("text", { x: cx(i), y: height - 16, "text-anchor": "middle" }, g);
    title.textContent = c.name;
    title.style.fontWeight = "600";
    const ticks = c.scale.ticks.filter((t) => t.at >= -1e-9 && t.at <= 1 + 1e-9);
    const every = Math.ceil(ticks.length / 8);
    ticks.filter((_, k) => k % every === 0).forEach((t) => {
      const label = el("text", { x: cx(i) + 4, y: cy(t.at) + 4 }, g);
      label.textContent = t.label;
      label.style.paintOrder = "stroke";
      label.style.stroke = "#fff";
      label.style.strokeWidth = "3px";
    });
  });
  box.appendChild(svg);
  colourBar(box, sorted, s.metric);
  return box;
}

function importance(d) {
  const box = card("Parameter importance (PED-ANOVA)", "how much each parameter's values differ between the best trials and all trials");
  const bars = d.importance;
  const x = scale("float", [0, Math.max(...bars.map((b) => b[1]), 1e-9)], { exact: true });
  const y = scale("choice", [], { choices: bars.map((b) => b[0]).reverse() });
  const left = 16 + 7 * Math.max(...bars.map((b) => b[0].length));
  const chart = axes(x, y, "importance", "", { height: Math.max(120, 60 + 28 * bars.length), left });
  const band = 1 / bars.length;
  for (const [name, value] of bars) {
    const v = y.at(name);
    el("rect", { x: chart.px(0), y: chart.py(v + band * 0.35), width: chart.px(x.at(value)) - chart.px(0), height: chart.py(v - band * 0.35) - chart.py(v + band * 0.35), fill: "#1f77b4" }, chart.plot);
  }
  box.appendChild(chart.svg);
  return box;
}

// ---- the trial page ------------------------------------------------------------------

async function renderTrial(number) {
  const main = document.getElementById("main");
  let t;
  try {
    t = await get(`/api/trial?sweep=${page.sweep}&trial=${number}`);
  } catch (e) {
    main.innerHTML = `<p class="error">${escapeHtml(e.message)}</p>`;
    return;
  }
  const s = current();
  const chosen = new Set(chosenTrials());
  const kv = (object) => Object.entries(object || {}).map(([k, v]) => `<tr><th class="text">${escapeHtml(k)}</th><td>${escapeHtml(fmt(v))}</td></tr>`).join("");
  main.innerHTML = `<p><a href="#/s/${page.sweep}">← ${escapeHtml(s.name)}</a></p>
    <h1>Trial ${t.trial} <span class="quiet">${t.state}${t.rank ? `, rank ${t.rank}` : ""}</span></h1>
    ${t.note ? `<p>${escapeHtml(t.note)}</p>` : ""}
    <div class="controls"><label><input type="checkbox" id="choose" ${chosen.has(t.trial) ? "checked" : ""}> in the sweep's learning curves</label></div>
    <div class="cards">
      <div class="card"><h3>Parameters</h3><table class="kv">${kv(t.params)}<tr><th class="text">seed</th><td>${t.seed}</td></tr></table></div>
      <div class="card"><h3>At the best epoch (${t.best_epoch ?? "none"} of ${t.epochs})</h3><table class="kv">${kv(t.metrics)}<tr><th class="text">duration_s</th><td>${fmt(t.duration_s)}</td></tr><tr><th class="text">n_params</th><td>${t.n_params ?? ""}</td></tr></table></div>
    </div><h2>Curves</h2><div class="cards" id="trial-curves"></div><h2>Log</h2><pre class="log">${escapeHtml(t.log || "(no log lines for this trial)")}</pre>`;
  const curves = document.getElementById("trial-curves");
  const one = [{ trial: t.trial, epochs: t.curve }];
  const objective = card(s.metric);
  objective.appendChild(curveChart(one, s.metric));
  curves.appendChild(objective);
  const names = Object.keys(t.curve.length ? t.curve[t.curve.length - 1].metrics : {});
  if (names.includes("val_loss") && names.includes("train_loss")) {
    const losses = card("Loss");
    losses.appendChild(curveChart(one, "val_loss", "train_loss"));
    curves.appendChild(losses);
  }
  document.getElementById("choose").onchange = (e) => {
    const set = new Set(chosenTrials());
    if (e.target.checked) set.add(t.trial); else set.delete(t.trial);
    page.chosen = [...set];
  };
}

// ---- tooltips, navigation, polling ---------------------------------------------------

document.addEventListener("mouseover", (e) => {
  const tip = document.getElementById("tip");
  const target = e.target.closest && e.target.closest("[data-trial]");
  if (!target || target.tagName === "TR") { tip.hidden = true; return; }
  const r = page.trials.get(Number(target.dataset.trial));
  if (!r) return;
  const params = Object.entries(r.params).map(([k, v]) => `${k} = ${fmt(v)}`).join("\n");
  tip.textContent = `trial ${r.trial} (${r.state})\n${current().metric} ${fmt(r.objective)}\n${params}`;
  tip.hidden = false;
});
document.addEventListener("mousemove", (e) => {
  const tip = document.getElementById("tip");
  tip.style.left = `${e.clientX + 14}px`;
  tip.style.top = `${e.clientY + 14}px`;
});
document.addEventListener("click", (e) => {
  const target = e.target.closest && e.target.closest("svg [data-trial]");
  if (target) location.hash = `#/s/${page.sweep}/t/${target.dataset.trial}`;
});

function route() {
  const m = location.hash.match(/^#\/s\/(\d+)(?:\/t\/(\d+))?/);
  return { sweep: m ? Number(m[1]) : 0, trial: m && m[2] !== undefined ? Number(m[2]) : null };
}

function renderNav() {
  const nav = document.getElementById("sweeps");
  nav.innerHTML = page.sweeps.map((s) => `<a href="#/s/${s.id}" class="${s.id === page.sweep ? "current" : ""}">${escapeHtml(s.name)} <span class="quiet">${s.trials}</span></a>`).join("");
}

let busy = false;
async function refresh(force = false) {
  if (busy) return;
  busy = true;
  const live = document.getElementById("live");
  try {
    page.sweeps = (await get("/api/sweeps")).sweeps;
    const { sweep, trial } = route();
    const s = page.sweeps[sweep];
    if (!s) throw new Error(`no sweep ${sweep}`);
    const switched = sweep !== page.sweep || s.generation !== page.generation;
    if (switched) { page.sweep = sweep; page.version = -1; page.chosen = null; page.curves.clear(); page.sort = null; page.showAll = false; }
    let changed = [];
    if (switched || s.version !== page.version) {
      changed = await loadTrials(switched);
      if (switched || Date.now() - page.detailAt > 5000) {
        page.detail = await get(`/api/sweep?sweep=${sweep}`);
        page.detailAt = Date.now();
      }
    }
    renderNav();
    if (trial !== null) {
      if (switched || force || changed.includes(trial) || page.shownTrial !== trial) await renderTrial(trial);
      page.shownTrial = trial;
    } else {
      if (switched || force || changed.length || page.shownTrial !== null) {
        await loadCurves(changed);
        renderSweep();
      }
      page.shownTrial = null;
    }
    page.lastOk = Date.now();
    live.textContent = `live: ${s.running ? `${s.running} running` : "nothing running"}, updated ${new Date().toLocaleTimeString()}`;
    live.className = "";
  } catch (e) {
    live.textContent = `cannot reach the dashboard: ${e.message}`;
    live.className = "stale";
  } finally {
    busy = false;
  }
}

window.addEventListener("hashchange", () => refresh(true));
refresh(true);
setInterval(refresh, POLL_MS);
