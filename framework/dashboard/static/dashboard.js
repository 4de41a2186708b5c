// execlab dashboard: draws what the server pushes (hello, then a snapshot, then deltas).
// Plain JavaScript and SVG, no library, nothing from the network but this page's websocket.
"use strict";

const S = { hello: null, session: {}, symbols: {}, at: null, dirty: false, updates: 0 };
const BAND_MACHINES_MAX = 6;
const CHART_WINDOW_NS = 30 * 60 * 1e9;  // the charts show at most the last 30 minutes

// ------------------------------------------------------------------ small helpers

function esc(v) {
  return String(v === null || v === undefined ? "" : v)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
function num(v, digits) {
  if (v === null || v === undefined || typeof v !== "number" || !isFinite(v)) return "-";
  if (digits !== undefined) return v.toFixed(digits);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(2);
  if (a >= 1) return v.toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
  if (a === 0) return "0";
  return v.toPrecision(4);
}
function clock(ns) {
  if (ns === null || ns === undefined) return "-";
  return new Date(ns / 1e6).toISOString().slice(11, 23);
}
function fullTime(ns) {
  if (ns === null || ns === undefined) return "-";
  return new Date(ns / 1e6).toISOString().replace("T", " ").slice(0, 23) + "Z";
}
function kv(obj) {
  const keys = Object.keys(obj || {});
  if (!keys.length) return "-";
  return keys.map(k => esc(k) + "=" + esc(typeof obj[k] === "number" ? num(obj[k]) : obj[k])).join(", ");
}
function el(id) { return document.getElementById(id); }
function nowNs() {  // the time the page is showing: the slider's, or the latest event
  return S.at !== null ? S.at : (S.session.event_ns || null);
}
function stateColour(machine, state) {
  const m = (S.hello.machines || []).find(x => x.name === machine);
  return (m && m.states[state]) || "#777";
}

// ------------------------------------------------------------------ the websocket

let socket = null;
let retry = 500;

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(scheme + location.host + "/ws" + location.search);
  socket.onopen = () => { retry = 500; setConnection(true); };
  socket.onclose = () => {
    setConnection(false);
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  };
  socket.onmessage = ev => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "hello") onHello(msg);
    else if (msg.type === "snapshot") onBoard(msg, true);
    else if (msg.type === "delta") onBoard(msg, false);
    S.updates += 1;
    schedule();
  };
}

function setConnection(up) {
  const c = el("connection");
  c.textContent = up ? "connected" : (S.session.ended ? "session ended" : "disconnected");
  c.className = "badge " + (up ? "on" : "off");
}

function onHello(msg) {
  S.hello = msg;
  S.symbols = {};
  document.querySelectorAll("section.symbol").forEach(n => n.remove());
  el("mode").textContent = { live: "LIVE", replay: "REPLAY", run: "FINISHED RUN" }[msg.mode] || msg.mode;
  if (msg.mode === "run") setupSlider(msg);
}

function onBoard(msg, full) {
  S.session = msg.session || S.session;
  if (msg.at_ns !== undefined) S.at = msg.at_ns;
  const limits = (S.hello && S.hello.limits) || {};
  if (full) S.symbols = {};
  for (const [sym, data] of Object.entries(msg.symbols || {})) {
    let cur = S.symbols[sym];
    if (!cur) cur = S.symbols[sym] = { lists: {} };
    for (const [name, items] of Object.entries(data.append || {})) {
      const list = full ? items.slice() : (cur.lists[name] || []).concat(items);
      const cap = limits[name] || 1000;
      cur.lists[name] = list.length > cap ? list.slice(list.length - cap) : list;
    }
    for (const [k, v] of Object.entries(data)) if (k !== "append") cur[k] = v;
  }
}

function schedule() {
  if (S.dirty) return;
  S.dirty = true;
  requestAnimationFrame(() => { S.dirty = false; render(); });
}

// ------------------------------------------------------------------ the time slider (finished runs)

let sliderTimer = null;

function setupSlider(hello) {
  // The slider counts milliseconds after the start (a JavaScript number cannot hold
  // nanoseconds since the epoch exactly); the server turns them back into event time.
  const bar = el("slider-bar"), slider = el("slider");
  bar.hidden = false;
  const span = Math.max(1, Math.ceil((hello.end_ns - hello.start_ns) / 1e6));
  slider.max = String(span);
  slider.value = String(span);
  const marks = hello.marks_ms || [];
  const send = () => {
    const ms = Number(slider.value);
    el("slider-time").textContent = fullTime(hello.start_ns + ms * 1e6) + "  (+" + (ms / 1000).toFixed(3) + " s)";
    if (socket && socket.readyState === 1) socket.send(JSON.stringify({ offset_ms: ms }));
  };
  slider.oninput = () => {
    if (sliderTimer) return;
    sliderTimer = setTimeout(() => { sliderTimer = null; send(); }, 80);
  };
  slider.onchange = send;
  const jump = dir => {
    const ms = Number(slider.value);
    let target = null;
    if (dir > 0) target = marks.find(m => Math.ceil(m) > ms);
    else for (const m of marks) { if (Math.ceil(m) < ms) target = m; else break; }
    if (target === null || target === undefined) return;
    slider.value = String(Math.ceil(target));
    send();
  };
  el("prev-transition").onclick = () => jump(-1);
  el("next-transition").onclick = () => jump(1);
  el("slider-time").textContent = fullTime(hello.end_ns);
}

// ------------------------------------------------------------------ rendering

function render() {
  if (!S.hello) return;
  const s = S.session;
  el("session-name").textContent = s.name || "";
  el("event-time").textContent = fullTime(nowNs());
  el("records").textContent = String(s.records || 0);
  el("ended").textContent = s.ended ? "ended: " + (s.end_reason || "") : "";
  const rel = s.reloads || [];
  el("reloads").textContent = rel.length ? "config reloads: " + rel.length + " (last " + (rel[rel.length - 1].accepted ? "accepted" : "refused") + ")" : "";
  const waiting = el("waiting");
  if (waiting && Object.keys(S.symbols).length) waiting.remove();
  document.querySelectorAll("section.symbol").forEach(n => { if (!S.symbols[n.dataset.symbol]) n.remove(); });
  for (const sym of (s.symbols && s.symbols.length ? s.symbols : Object.keys(S.symbols))) {
    if (S.symbols[sym]) renderSymbol(sym, S.symbols[sym]);
  }
  document.body.dataset.updates = String(S.updates);
  document.body.dataset.ready = "1";
}

function symbolSection(sym) {
  const id = "sym-" + sym.replace(/[^A-Za-z0-9_-]/g, "_");
  let sec = el(id);
  if (sec) return sec;
  sec = document.createElement("section");
  sec.className = "symbol";
  sec.id = id;
  sec.dataset.symbol = sym;
  const machines = S.hello.machines.map(m => `
    <div class="card machine" data-machine="${esc(m.name)}">
      <h3>${esc(m.name)}</h3>
      <span class="state"></span><span class="since"></span>
      <div class="diagram">${m.svg || ""}</div>
    </div>`).join("");
  sec.innerHTML = `
    <h2>${esc(sym)}</h2>
    <div class="row machines">${machines}</div>
    <div class="card"><h3>mid, spread and the metrics the guards read</h3>
      <div class="legend">bands: each machine's state &middot; &#9650; buy fill &middot; &#9660; sell fill &middot; &#10005; refused intent &middot; dashed: guard thresholds</div>
      <div class="charts"></div></div>
    <div class="card transitions" style="margin-top:12px"><h3>latest transitions and why</h3>
      <div class="scroll"><table><thead><tr><th>time</th><th>machine</th><th>from &rarr; to</th><th>rule</th><th>guard</th><th>values read</th><th>params</th></tr></thead><tbody></tbody></table></div></div>
    <div class="row money" style="margin-top:12px">
      <div class="card decision"><h3>decision in force</h3><div class="body"></div></div>
      <div class="card pnl"><h3>position and PnL</h3><div class="body"></div></div>
      <div class="card feed"><h3>feed</h3><div class="body"></div></div>
      <div class="card alerts"><h3>alerts</h3><div class="body"></div></div>
    </div>
    <div class="card orders"><h3>orders</h3>
      <div class="scroll"><table><thead><tr><th>time</th><th>order</th><th>side</th><th>style</th><th>qty</th><th>notional</th><th>limit</th><th>status</th><th>filled</th><th>avg price</th><th>reason</th></tr></thead><tbody></tbody></table></div></div>
    <div class="card refusals" style="margin-top:12px"><h3>refused intents</h3><div class="scroll body"></div></div>`;
  // a diagram is small in its card: a click widens the card to the whole row, and back
  sec.querySelectorAll(".machine .diagram").forEach(d => d.addEventListener("click", () => d.parentElement.classList.toggle("zoomed")));
  el("symbols").appendChild(sec);
  return sec;
}

function renderSymbol(sym, d) {
  const sec = symbolSection(sym);
  const now = nowNs();
  const transitions = d.lists.transitions || [];
  for (const m of S.hello.machines) {
    const card = sec.querySelector(`.machine[data-machine="${CSS.escape(m.name)}"]`);
    const st = (d.states || {})[m.name];
    const pill = card.querySelector(".state");
    const state = st ? st.state : null;
    pill.textContent = state || "-";
    pill.style.background = stateColour(m.name, state);
    card.dataset.state = state || "";
    card.querySelector(".since").textContent = st && now ? "for " + ((now - st.since_ns) / 1e9).toFixed(1) + " s" : "";
    const last = [...transitions].reverse().find(t => t.machine === m.name);
    lightDiagram(card.querySelector(".diagram"), state, last);
  }
  renderDecision(sec.querySelector(".decision .body"), d.decision || {}, now);
  renderCharts(sec.querySelector(".charts"), d, now);
  renderTransitions(sec.querySelector(".transitions tbody"), transitions);
  renderPnl(sec.querySelector(".pnl .body"), d.pnl || {}, d.mid);
  renderFeed(sec.querySelector(".feed .body"), d.feed || {}, d.lists.feed || [], now);
  renderAlerts(sec.querySelector(".alerts .body"), d.tripped || {}, d.lists.alerts || []);
  renderOrders(sec.querySelector(".orders tbody"), d.orders || []);
  renderRefusals(sec.querySelector(".refusals .body"), d.lists.refusals || []);
}

function lightDiagram(box, state, last) {
  if (!box || !box.firstElementChild) return;
  if (box.dataset.lit === (state || "") + "|" + (last ? last.seq : "")) return;
  box.dataset.lit = (state || "") + "|" + (last ? last.seq : "");
  box.querySelectorAll("g.node").forEach(g => {
    const title = (g.querySelector("title") || {}).textContent;
    if (title === "__start") return;
    g.classList.toggle("lit", title === state);
    g.classList.toggle("dim", title !== state);
  });
  box.querySelectorAll("g.edge").forEach(g => {
    const title = ((g.querySelector("title") || {}).textContent || "").replace(/\s/g, "");
    g.classList.toggle("last", !!last && title === last.from + "->" + last.to);
  });
}

function renderDecision(box, dec, now) {
  const yes = !!dec.eligible;
  box.innerHTML = `<div class="verdict ${yes ? "yes" : "no"}">${yes ? "eligible to trade" : "not eligible"}</div>
    <dl class="facts"><dt>rule</dt><dd>${esc(dec.rule)}</dd>
    <dt>aggressiveness</dt><dd>${esc(dec.aggressiveness)}</dd>
    <dt>risk budget</dt><dd>${num(dec.risk_budget)}</dd>
    <dt>since</dt><dd>${clock(dec.since_ns)}${now && dec.since_ns ? " (" + ((now - dec.since_ns) / 1e9).toFixed(1) + " s)" : ""}</dd></dl>`;
}

function renderTransitions(tbody, list) {
  const rows = list.slice(-25).reverse();
  const key = rows.length ? rows[0].seq + ":" + rows.length : "0";
  if (tbody.dataset.key === key) return;
  tbody.dataset.key = key;
  tbody.innerHTML = rows.map(t => `<tr class="transition" data-machine="${esc(t.machine)}">
      <td>${clock(t.ts_ns)}</td><td>${esc(t.machine)}</td>
      <td><span class="state" style="font-size:11px;background:${esc(stateColour(t.machine, t.from))}">${esc(t.from)}</span> &rarr;
          <span class="state" style="font-size:11px;background:${esc(stateColour(t.machine, t.to))}">${esc(t.to)}</span></td>
      <td>#${esc(t.rule)}</td><td class="guard">${esc(t.guard || "(always)")}${causes(t, list)}</td>
      <td class="kv">${kv(t.inputs)}</td><td class="kv">${kv(t.params)}</td></tr>`).join("")
    || `<tr><td colspan="7" class="muted">no transition yet</td></tr>`;
}

function causes(t, list) {
  // As explain does: a rule that read another machine's state cites the transition that put
  // that machine there.
  const out = [];
  for (const [name, value] of Object.entries(t.inputs || {})) {
    if (!name.endsWith(".state")) continue;
    const machine = name.slice(0, -6);
    let cause = null;
    for (const u of list) {
      if (u.seq >= t.seq) break;
      if (u.machine === machine) cause = u;
    }
    if (cause && cause.to === value) {
      out.push(`<div class="muted">because ${esc(machine)} went ${esc(cause.from)} &rarr; ${esc(cause.to)} at ${clock(cause.ts_ns)} (rule #${esc(cause.rule)})</div>`);
    }
  }
  return out.join("");
}

function renderPnl(box, p, mid) {
  const cls = v => (typeof v === "number" && v < 0 ? "bad" : "ok");
  box.innerHTML = `<dl class="facts">
    <dt>position</dt><dd>${num(p.position)}</dd>
    <dt>average price</dt><dd>${num(p.avg_price)}</dd>
    <dt>mid</dt><dd>${num(mid)}</dd>
    <dt>realized</dt><dd class="${cls(p.realized_usd)}">${num(p.realized_usd, 4)} USD</dd>
    <dt>unrealized</dt><dd class="${cls(p.unrealized_usd)}">${num(p.unrealized_usd, 4)} USD</dd>
    <dt>fees</dt><dd>${num(p.fees_usd, 4)} USD</dd>
    <dt>net</dt><dd class="${cls(p.net_usd)}"><b>${num(p.net_usd, 4)} USD</b></dd>
    <dt>orders / fills / refused</dt><dd>${p.orders || 0} / ${p.fills || 0} / ${p.refused || 0}</dd></dl>`;
}

function renderFeed(box, f, events, now) {
  const live = S.hello.mode === "live";
  const lag = live && S.session.event_ns ? (Date.now() - S.session.event_ns / 1e6) / 1000 : null;
  const conn = f.connection === "unknown" && !live ? "recorded input" : (f.connection || "unknown");
  const recent = events.slice(-5).reverse().map(e => `<div>${clock(e.ts_ns)} ${esc(e.event)}${e.gap_ms !== null && e.gap_ms !== undefined ? " " + num(e.gap_ms) + " ms" : ""}${e.detail ? " <span class='muted'>" + esc(e.detail) + "</span>" : ""}</div>`).join("");
  box.innerHTML = `<dl class="facts">
    <dt>connection</dt><dd class="${["connected", "unknown", "recorded input"].includes(conn) ? "" : "bad"}">${esc(conn)}</dd>
    <dt>quote age</dt><dd>${f.quote_age_ms === null || f.quote_age_ms === undefined ? "-" : num(f.quote_age_ms) + " ms"}</dd>
    ${lag !== null ? `<dt>last event</dt><dd>${lag.toFixed(1)} s ago</dd>` : ""}
    <dt>gaps</dt><dd>${f.gaps || 0}${f.max_gap_ms ? " (longest " + num(f.max_gap_ms) + " ms)" : ""}</dd>
    <dt>last feed event</dt><dd>${esc(f.last_event || "-")} ${f.last_event_ns ? clock(f.last_event_ns) : ""}</dd></dl>
    <div class="muted" style="margin-top:4px">${recent}</div>`;
}

function renderAlerts(box, tripped, alerts) {
  const on = Object.values(tripped);
  const head = on.length
    ? on.map(a => `<div class="bad"><b>${esc(a.guard)}</b> tripped at ${clock(a.ts_ns)} (value ${num(a.value)}, limit ${num(a.limit)})</div>`).join("")
    : `<div class="ok">no risk guard tripped</div>`;
  const list = alerts.slice(-8).reverse().map(a => `<div class="muted">${clock(a.ts_ns)} ${esc(a.guard)} ${esc(a.state)}${a.reason ? " - " + esc(a.reason) : ""}</div>`).join("");
  box.innerHTML = head + list;
}

function renderOrders(tbody, orders) {
  tbody.innerHTML = orders.slice().reverse().map(o => `<tr>
    <td>${clock(o.ts_ns)}</td><td>${esc(o.order_id)}</td><td class="${o.side === "buy" ? "ok" : "bad"}">${esc(o.side)}</td>
    <td>${esc(o.style)}</td><td class="num">${num(o.qty)}</td><td class="num">${num(o.notional_usd, 2)}</td>
    <td class="num">${num(o.limit_price)}</td><td>${esc(o.status)}</td><td class="num">${num(o.filled_qty)}</td>
    <td class="num">${num(o.avg_fill_price)}</td><td>${esc(o.reason || "")}</td></tr>`).join("")
    || `<tr><td colspan="11" class="muted">no order yet</td></tr>`;
}

function renderRefusals(box, list) {
  const rows = list.slice(-15).reverse();
  box.innerHTML = rows.length ? `<table><tr><th>time</th><th>intent</th><th>stage</th><th>rule</th><th>reason</th></tr>` +
    rows.map(r => `<tr><td>${clock(r.ts_ns)}</td><td>${esc(r.intent_id)}</td><td>${esc(r.stage)}</td><td>${esc(r.rule)}</td><td>${esc(r.reason)}</td></tr>`).join("") +
    `</table><div class="muted">${list.length} kept</div>` : `<span class="muted">none</span>`;
}

// ------------------------------------------------------------------ charts (SVG written here)

function renderCharts(box, d, now) {
  const charted = S.hello.charted || [];
  const points = d.lists.points || [];
  if (!points.length) { box.innerHTML = `<span class="muted">no metric sample yet (one per second of event time)</span>`; return; }
  const t1 = Math.max(now || 0, points[points.length - 1][0]);
  const t0 = Math.max(points[0][0], t1 - CHART_WINDOW_NS);
  const key = points.length + ":" + points[points.length - 1][0] + ":" + t1 + ":" + (d.lists.fills || []).length + ":" + (d.lists.refusals || []).length + ":" + box.clientWidth;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const full = Math.max(400, box.clientWidth || 900), half = Math.max(300, Math.floor(full / 2) - 4);
  let html = "";
  charted.forEach((name, i) => {
    const series = points.filter(p => p[0] >= t0).map(p => [p[0], p[i + 1]]);
    const opts = { name, series, t0, t1, width: name === "mid" ? full : half, thresholds: (S.hello.thresholds || {})[name] || [] };
    if (name === "mid") {
      opts.height = 190;
      opts.bands = bands(d.lists.changes || [], t0, t1);
      opts.fills = (d.lists.fills || []).filter(f => f.ts_ns >= t0 && f.ts_ns <= t1);
      opts.refusals = (d.lists.refusals || []).filter(r => r.ts_ns >= t0 && r.ts_ns <= t1 && r.price !== null);
    } else opts.height = 100;
    html += `<div class="chart${name === "mid" ? " wide" : ""}" data-metric="${esc(name)}">${chart(opts)}</div>`;
  });
  box.innerHTML = html;
}

function bands(changes, t0, t1) {
  // machine -> [[start, end, state]], from the state changes (the last one before t0 included)
  const per = {};
  for (const [ts, machine, state] of changes) (per[machine] = per[machine] || []).push([ts, state]);
  const out = [];
  for (const m of S.hello.machines.slice(0, BAND_MACHINES_MAX)) {
    const ch = per[m.name] || [];
    const spans = [];
    ch.forEach(([ts, state], i) => {
      const end = i + 1 < ch.length ? ch[i + 1][0] : t1;
      if (end >= t0 && ts <= t1) spans.push([Math.max(ts, t0), Math.min(end, t1), state]);
    });
    out.push({ machine: m.name, spans });
  }
  return out;
}

function chart(o) {
  const padL = 64, padR = 120, padT = 16;
  const bandH = o.bands ? 12 : 0, bandsH = o.bands ? o.bands.length * (bandH + 2) + 4 : 0;
  const plotH = o.height - padT - 16 - bandsH;
  const w = o.width - padL - padR;
  const vals = o.series.map(p => p[1]).filter(v => v !== null && v !== undefined);
  (o.fills || []).forEach(f => { if (f.price !== null) vals.push(f.price); });
  let lo = vals.length ? Math.min(...vals) : 0, hi = vals.length ? Math.max(...vals) : 1;
  const span0 = hi - lo || Math.abs(hi) * 1e-4 || 1;
  // a threshold joins the scale when it is near the data; otherwise it is marked off scale
  for (const th of o.thresholds) if (th.value >= lo - 2 * span0 && th.value <= hi + 2 * span0) { lo = Math.min(lo, th.value); hi = Math.max(hi, th.value); }
  if (hi === lo) { hi += Math.abs(hi) * 1e-4 || 1; lo -= Math.abs(lo) * 1e-4 || 1; }
  const pad = (hi - lo) * 0.06;
  lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;  // a quantity that cannot be negative keeps 0 as its floor
  hi += pad;
  const X = t => padL + (o.t1 === o.t0 ? w : (t - o.t0) / (o.t1 - o.t0) * w);
  const Y = v => padT + (1 - (v - lo) / (hi - lo)) * plotH;
  let s = `<svg viewBox="0 0 ${o.width} ${o.height}" height="${o.height}" role="img" aria-label="${esc(o.name)}">`;
  s += `<rect x="${padL}" y="${padT}" width="${w}" height="${plotH}" fill="#fbfcfd" stroke="#e3e6ea"/>`;
  s += `<text class="title" x="${padL}" y="${padT - 4}">${esc(o.name)}</text>`;
  s += `<text x="${padL - 4}" y="${padT + 8}" text-anchor="end">${esc(num(hi))}</text>`;
  s += `<text x="${padL - 4}" y="${padT + plotH}" text-anchor="end">${esc(num(lo))}</text>`;
  // thresholds
  let off = 0;
  const labelYs = [];
  for (const th of o.thresholds) {
    const label = th.op + " " + num(th.value);
    const title = `<title>${esc(th.labels.join("\n"))}</title>`;
    if (th.value < lo || th.value > hi) {
      const up = th.value > hi;
      s += `<text x="${padL + w + 6}" y="${padT + 10 + 11 * off++}" fill="#b03a2e">${up ? "&#8593;" : "&#8595;"} ${esc(label)} (off scale)${title}</text>`;
      continue;
    }
    const y = Y(th.value);
    s += `<g class="threshold"><line x1="${padL}" x2="${padL + w}" y1="${y}" y2="${y}" stroke="#b03a2e" stroke-dasharray="5,4" stroke-width="1.2"/>${title}</g>`;
    let ly = y + 3;  // labels of close lines are stacked, not drawn over each other
    while (labelYs.some(u => Math.abs(u - ly) < 10)) ly += 10;
    labelYs.push(ly);
    s += `<text x="${padL + w + 6}" y="${ly}" fill="#b03a2e">${esc(label)}${title}</text>`;
  }
  // the series: a path broken where a value is missing
  let path = "", pen = false;
  for (const [t, v] of o.series) {
    if (v === null || v === undefined) { pen = false; continue; }
    path += (pen ? "L" : "M") + X(t).toFixed(1) + "," + Y(v).toFixed(1);
    pen = true;
  }
  s += `<path d="${path}" fill="none" stroke="#2c3e50" stroke-width="1.3"/>`;
  const last = [...o.series].reverse().find(p => p[1] !== null && p[1] !== undefined);
  if (last) s += `<text x="${padL + w + 6}" y="${padT + plotH}" fill="#2c3e50">now ${esc(num(last[1]))}</text>`;
  for (const f of o.fills || []) {
    if (f.price === null) continue;
    const x = X(f.ts_ns), y = Y(f.price), buy = f.side === "buy";
    const pts = buy ? `${x},${y - 6} ${x - 5},${y + 4} ${x + 5},${y + 4}` : `${x},${y + 6} ${x - 5},${y - 4} ${x + 5},${y - 4}`;
    s += `<polygon class="fill-mark" points="${pts}" fill="${buy ? "#1a9850" : "#d73027"}" stroke="#111" stroke-width=".6"><title>${esc(f.side + " " + num(f.qty) + " @ " + num(f.price) + " (" + (f.liquidity || "") + ", " + (f.how || "") + ") " + clock(f.ts_ns))}</title></polygon>`;
  }
  for (const r of o.refusals || []) {
    const x = X(r.ts_ns), y = Y(r.price);
    s += `<g class="refusal-mark" stroke="#e67e22" stroke-width="2"><line x1="${x - 4}" y1="${y - 4}" x2="${x + 4}" y2="${y + 4}"/><line x1="${x - 4}" y1="${y + 4}" x2="${x + 4}" y2="${y - 4}"/><title>${esc("refused at " + r.stage + " by " + r.rule + ": " + r.reason + " " + clock(r.ts_ns))}</title></g>`;
  }
  // state bands
  if (o.bands) {
    let y = padT + plotH + 6;
    for (const b of o.bands) {
      s += `<text x="${padL - 4}" y="${y + bandH - 2}" text-anchor="end">${esc(b.machine)}</text>`;
      for (const [a, e, state] of b.spans) {
        s += `<rect class="band" x="${X(a).toFixed(1)}" y="${y}" width="${Math.max(1, X(e) - X(a)).toFixed(1)}" height="${bandH}" fill="${esc(stateColour(b.machine, state))}"><title>${esc(b.machine + " " + state + " " + clock(a) + " - " + clock(e))}</title></rect>`;
      }
      y += bandH + 2;
    }
  }
  s += `<text x="${padL}" y="${o.height - 2}">${esc(clock(o.t0))}</text><text x="${padL + w}" y="${o.height - 2}" text-anchor="end">${esc(clock(o.t1))}</text>`;
  return s + "</svg>";
}

connect();
