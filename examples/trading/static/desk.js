// The desk page: shows what the server sends on the user's channel (through
// tether's browser client), draws each symbol's price line, and sends orders.
"use strict";

const config = document.body.dataset;
const money = new Intl.NumberFormat("en-US", { style: "currency", currency: config.currency });
const plain = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const HISTORY = Number(config.history);
const prices = {};  // symbol -> [[time, price], ...], oldest first
window.received = [];

const $ = (selector) => document.querySelector(selector);

function flash(element) {
  element.classList.remove("flash");
  void element.offsetWidth;  // restart the animation
  element.classList.add("flash");
}

function signed(element, value) {
  element.classList.toggle("negative", value < 0);
  element.classList.toggle("positive", value > 0);
}

function setMoney(element, value, sign) {
  const text = money.format(value);
  if (element.textContent === text) return;
  element.textContent = text;
  if (sign) signed(element, value);
  flash(element);
}

const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString("en-GB", { hour12: false }) : "");

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// Replace a table's rows, flashing the new rows and the changed cells.
function setRows(body, items, columns, build, empty) {
  const old = new Map(Array.from(body.rows, (row) => [row.dataset.key, Array.from(row.cells, (c) => c.textContent)]));
  const rows = items.map((item) => {
    const row = build(item);
    row.dataset.key = String(item.id ?? item.symbol);
    return row;
  });
  if (!rows.length) {
    const row = document.createElement("tr");
    row.className = "empty";
    row.append(cell(empty));
    row.firstChild.colSpan = columns;
    rows.push(row);
  }
  body.replaceChildren(...rows);
  for (const row of rows) {
    const before = old.get(row.dataset.key);
    if (!row.dataset.key) continue;
    if (!before) flash(row);
    else Array.from(row.cells).forEach((c, i) => { if (before[i] !== c.textContent) flash(c); });
  }
}

function positionRow(p) {
  const row = document.createElement("tr");
  const pnl = cell(plain.format(p.unrealized), "num");
  const percent = cell(p.avg_cost ? ((p.price / p.avg_cost - 1) * 100).toFixed(2) + "%" : "", "num");
  signed(pnl, p.unrealized);
  signed(percent, p.unrealized);
  row.append(cell(p.symbol), cell(p.quantity, "num"), cell(plain.format(p.avg_cost), "num"),
    cell(plain.format(p.price), "num"), cell(plain.format(p.market_value), "num"), pnl, percent);
  return row;
}

function orderRow(o) {
  const row = document.createElement("tr");
  const placed = cell(clock(o.placed_at));
  placed.title = o.placed_at;
  const closed = cell(clock(o.closed_at));
  closed.title = o.closed_at || "";
  const status = cell(o.status, `status ${o.status}`);
  const action = document.createElement("td");
  if (o.status === "open") {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "cancel";
    button.dataset.cancel = o.id;
    button.textContent = "Cancel";
    action.append(button);
  }
  row.append(cell(o.id, "num"), placed, cell(o.symbol), cell(o.side, o.side), cell(o.type),
    cell(o.quantity, "num"), cell(o.limit_price == null ? "" : plain.format(o.limit_price), "num"), status,
    cell(o.fill_price == null ? "" : plain.format(o.fill_price), "num"), closed, action);
  return row;
}

// The symbol's price line: an SVG polyline scaled to its own low and high.
function draw(symbol) {
  const tile = document.querySelector(`.tile[data-symbol="${symbol}"]`);
  const points = prices[symbol] || [];
  if (!tile || !points.length) return;
  const values = points.map(([, price]) => price);
  const low = Math.min(...values);
  const span = Math.max(...values) - low || 1;
  const step = values.length > 1 ? 100 / (values.length - 1) : 0;
  const line = values.map((v, i) => `${(i * step).toFixed(2)},${(28 - ((v - low) / span) * 26).toFixed(2)}`);
  tile.querySelector("polyline").setAttribute("points", line.join(" "));
  const first = values[0];
  const last = values[values.length - 1];
  tile.querySelector(".last").textContent = plain.format(last);
  tile.querySelector(".change").textContent = `${last >= first ? "+" : ""}${((last / first - 1) * 100).toFixed(2)}%`;
  tile.classList.toggle("down", last < first);
  tile.title = `${symbol}: ${money.format(last)} at ${clock(points[points.length - 1][0])}`;
}

// New points are appended once (a snapshot and an update may overlap), keeping the last HISTORY.
function addPrices(data) {
  for (const [symbol, points] of Object.entries(data)) {
    const list = (prices[symbol] ||= []);
    for (const point of points) {
      if (!list.length || point[0] > list[list.length - 1][0]) list.push(point);
    }
    list.splice(0, Math.max(0, list.length - HISTORY));
    draw(symbol);
  }
  estimate();
}

function show(message) {
  window.received.push(message);
  $("#count").textContent = window.received.length;
  const data = message.data;
  if (message.kind === "balance") setMoney($("#balance"), data, false);
  if (message.kind === "pnl") setMoney($("#pnl"), data, true);
  if (message.kind === "prices") addPrices(data);
  if (message.kind === "positions") {
    setRows($("#positions"), data, 7, positionRow, "No positions yet: buy something.");
    setMoney($("#value"), data.reduce((sum, p) => sum + p.market_value, 0), false);
  }
  if (message.kind === "orders") setRows($("#orders"), data, 11, orderRow, "No orders yet.");
}

// The order ticket.
const ticket = $("#ticket");

function estimate() {
  const points = prices[ticket.symbol.value] || [];
  const price = points.length ? points[points.length - 1][1] : null;
  $("#ticket-price").textContent = price == null ? "…" : money.format(price);
  const limit = ticket.type.value === "limit" ? Number(ticket.limit_price.value) : price;
  const quantity = Number(ticket.quantity.value);
  $("#estimate").textContent = limit && quantity > 0 ? money.format(limit * quantity) : "…";
  $("#submit").textContent = `${ticket.side.value === "buy" ? "Buy" : "Sell"} ${ticket.symbol.value}`;
  $("#submit").className = ticket.side.value;
}

const number = (text) => (text.trim() === "" ? null : Number(text));

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  let data;
  try { data = await response.json(); } catch { data = { error: `${response.status} ${response.statusText}` }; }
  return { ok: response.ok, data };
}

function describe(order) {
  const what = `#${order.id}: ${order.side} ${order.quantity} ${order.symbol}`;
  if (order.status === "filled") return `${what} filled at ${money.format(order.fill_price)}.`;
  return `${what} ${order.status}${order.status === "open" ? `, limit ${money.format(order.limit_price)}` : ""}.`;
}

ticket.addEventListener("input", () => {
  ticket.limit_price.disabled = ticket.type.value !== "limit";
  estimate();
});

ticket.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#ticket-error").textContent = "";
  $("#ticket-note").textContent = "";
  const body = { symbol: ticket.symbol.value, side: ticket.side.value, type: ticket.type.value,
    quantity: number(ticket.quantity.value) };
  if (body.type === "limit") body.limit_price = number(ticket.limit_price.value);
  $("#submit").disabled = true;
  try {
    const { ok, data } = await post(config.orders, body);
    $(ok ? "#ticket-note" : "#ticket-error").textContent = ok ? describe(data.order) : data.error;
  } catch (error) {
    $("#ticket-error").textContent = `Not sent: ${error.message}`;
  } finally {
    $("#submit").disabled = false;
  }
});

$("#orders").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-cancel]");
  if (!button) return;
  button.disabled = true;
  $("#orders-error").textContent = "";
  try {
    const { ok, data } = await post(`${config.orders}/${button.dataset.cancel}/cancel`, {});
    if (!ok) $("#orders-error").textContent = data.error;
  } catch (error) {
    $("#orders-error").textContent = `Not sent: ${error.message}`;
  }
  button.disabled = false;
});

document.querySelector(".tiles").addEventListener("click", (event) => {
  const tile = event.target.closest(".tile");
  if (!tile) return;
  ticket.symbol.value = tile.dataset.symbol;
  for (const other of document.querySelectorAll(".tile")) other.classList.toggle("selected", other === tile);
  estimate();
});

// The live connection: tether's client (TetherLive) on the user's channel, over a
// WebSocket, else server-sent events (also with ?sse in the address). The page
// shows the state, then joins from the state's last id: nothing published after
// it is missed, and the client resumes from the last id it saw after a drop.
async function load() {
  const state = await (await fetch(config.state)).json();
  $("#worker").textContent = state.worker;
  state.messages.forEach(show);
  return state;
}

estimate();
const live = new TetherLive(config.live.replace(/\/client\.js$/, ""), {
  transport: location.search.includes("sse") ? "sse" : "auto",
});
live.on("open", (o) => { $("#transport").textContent = o.transport === "sse" ? "server-sent events" : "WebSocket"; });
live.on("message", (d) => show(d.data));
live.on("gap", load);  // missed more than the history holds: the state again
load().then((state) => live.join(state.channel, state.last_id));
