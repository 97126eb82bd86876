// The chat page: rooms and who is in them over tether's browser client
// (TetherLive, /live: one connection), messages sent with fetch.
"use strict";

const config = document.body.dataset;
const me = config.user;
const offered = JSON.parse(config.rooms);  // [{name, private}]
const $ = (selector) => document.querySelector(selector);
const store = {
  get: (key, fallback) => { try { return JSON.parse(localStorage.getItem(`chat:${me}:${key}`)) ?? fallback; } catch { return fallback; } },
  set: (key, value) => localStorage.setItem(`chat:${me}:${key}`, JSON.stringify(value)),
};

/** What the page knows; window.chat, for people poking around (and for tests). */
const chat = window.chat = {
  joined: new Set(store.get("joined", ["lobby"])),
  active: null,
  messages: new Map(),  // room -> [{id, author, text, time, kind}]
  members: new Map(),   // room -> [name]
  unread: new Map(),    // room -> count
  seen: store.get("seen", {}),  // room -> id of the newest message read
  refused: [],
  mentions: [],
};

/** Whether message id `a` comes after `b` ("<ms>-<seq>"). */
function newer(a, b) {
  if (!b) return true;
  const [am, as] = a.split("-").map(Number), [bm, bs] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

function colour(name) {
  let hash = 0;
  for (const c of name) hash = (hash * 31 + c.codePointAt(0)) % 360;
  return `hsl(${hash} 55% 45%)`;
}

function avatar(element, name) {
  element.textContent = name.slice(0, 1).toUpperCase();
  element.style.background = colour(name);
  element.title = name;
}

const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const day = (iso) => new Date(iso).toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" });

function toast(text) {
  const note = document.createElement("div");
  note.className = "toast";
  note.textContent = text;
  $("#toasts").append(note);
  setTimeout(() => note.remove(), 6000);
}

// The sidebar: joined rooms (with unread counts), and the others on offer.

function roomItem(room, joined) {
  const li = document.createElement("li");
  li.dataset.room = room;
  const button = document.createElement("button");
  button.type = "button";
  const isPrivate = offered.some((r) => r.name === room && r.private);
  button.textContent = `# ${room}`;
  button.className = "room-link" + (room === chat.active ? " active" : "");
  if (isPrivate) {
    const tag = document.createElement("small");
    tag.className = "private";
    tag.textContent = "private";
    button.append(" ", tag);
  }
  button.onclick = () => (joined ? show(room) : join(room, true));
  li.append(button);
  const unread = chat.unread.get(room) || 0;
  if (joined && unread) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = unread > 99 ? "99+" : unread;
    li.append(badge);
  }
  return li;
}

function drawRooms() {
  $("#joined").replaceChildren(...[...chat.joined].sort().map((room) => roomItem(room, true)));
  const others = offered.map((r) => r.name).filter((room) => !chat.joined.has(room));
  $("#others").replaceChildren(...others.map((room) => roomItem(room, false)));
  const total = [...chat.unread.values()].reduce((a, b) => a + b, 0);
  document.title = `${total ? `(${total}) ` : ""}Chat · ${me}`;
}

// The messages of the room on screen.

function messageItem(m, previous) {
  const li = document.createElement("li");
  li.className = `message ${m.kind}` + (m.author === me ? " mine" : "");
  li.dataset.id = m.id;
  if (m.text.includes(`@${me}`) && m.author !== me) li.classList.add("mentions-me");
  const grouped = previous && previous.author === m.author && previous.kind === m.kind
    && new Date(m.time) - new Date(previous.time) < 5 * 60_000;
  if (!grouped) {
    li.classList.add("first");
    const face = document.createElement("span");
    face.className = "avatar";
    avatar(face, m.author);
    const head = document.createElement("div");
    head.className = "head";
    const who = document.createElement("b");
    who.textContent = m.author;
    const when = document.createElement("time");
    when.dateTime = m.time;
    when.textContent = clock(m.time);
    when.title = `${day(m.time)} ${clock(m.time)}`;
    head.append(who, " ", when);
    li.append(face, head);
  }
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = m.text;
  li.append(text);
  return li;
}

function drawMessages() {
  const list = $("#messages");
  const messages = chat.messages.get(chat.active) || [];
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...messages.map((m, i) => messageItem(m, messages[i - 1])));
  if (!messages.length && chat.active) {
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.textContent = `Nothing said in #${chat.active} yet. Say hello!`;
    list.append(empty);
  }
  if (atBottom || list.dataset.room !== chat.active) list.scrollTop = list.scrollHeight;
  list.dataset.room = chat.active || "";
}

function drawMembers() {
  const names = chat.members.get(chat.active) || [];
  $("#here-count").textContent = chat.active ? names.length : "";
  $("#room-count").textContent = chat.active ? `${names.length} here` : "";
  $("#members").replaceChildren(...names.map((name) => {
    const li = document.createElement("li");
    const face = document.createElement("span");
    face.className = "avatar";
    avatar(face, name);
    li.append(face, ` ${name}${name === me ? " (you)" : ""}`);
    return li;
  }));
}

function markRead(room) {
  const messages = chat.messages.get(room) || [];
  if (messages.length) chat.seen[room] = messages[messages.length - 1].id;
  store.set("seen", chat.seen);
  chat.unread.delete(room);
}

function show(room) {
  chat.active = room;
  store.set("active", room);
  $("#room-title").textContent = room ? `# ${room}` : "Pick a room";
  $("#compose").hidden = $("#leave").hidden = !room;
  markRead(room);
  drawRooms();
  drawMessages();
  drawMembers();
  if (room) $("#compose").text.focus();
}

// Joining and leaving: the room's channel from "0-0" (its history first), and
// its presence channel, where joining puts this tab in the room (the server's
// presence= says so) and whose "joined" reply says who is there.

// ?sse in the address: the client's Server-Sent Events fallback, as behind a proxy without WebSockets.
const live = new TetherLive(config.live.replace(/\/client\.js$/, ""), {
  transport: new URLSearchParams(location.search).has("sse") ? "sse" : "auto",
});

function join(room, focus) {
  if (!chat.messages.has(room)) chat.messages.set(room, []);
  chat.joined.add(room);
  store.set("joined", [...chat.joined]);
  live.join(`room:${room}`, "0-0");
  live.join(`here:${room}`);
  if (focus || !chat.active) show(room);
  else drawRooms();
}

function leave(room) {
  chat.joined.delete(room);
  store.set("joined", [...chat.joined]);
  live.leave(`room:${room}`);
  live.leave(`here:${room}`);
  chat.messages.delete(room);
  chat.members.delete(room);
  chat.unread.delete(room);
  show(chat.active === room ? [...chat.joined][0] || null : chat.active);
}

live.on("chat", (d) => {
  const room = d.channel.slice("room:".length);
  const messages = chat.messages.get(room);
  if (!messages) return;
  messages.push({ id: d.id, ...d.data });
  if (room === chat.active && !document.hidden) markRead(room);
  else if (newer(d.id, chat.seen[room])) chat.unread.set(room, (chat.unread.get(room) || 0) + 1);
  if (room === chat.active) drawMessages();
  drawRooms();
});

live.on("mention", (d) => {
  chat.mentions.push(d.data);
  if (d.data.room !== chat.active || document.hidden) toast(`${d.data.author} mentioned you in #${d.data.room}: ${d.data.text}`);
});

// Who is here: the client keeps each presence channel's members (the "joined"
// reply's list, then join and leave events), once per person however many tabs.
live.on("members", (m) => {
  const room = m.channel.slice("here:".length);
  if (!m.channel.startsWith("here:") || !chat.joined.has(room)) return;
  chat.members.set(room, [...m.members.values()].map((meta) => meta.name).sort());
  if (room === chat.active) drawMembers();
});
live.on("gap", (g) => {
  if (g.channel.startsWith("room:")) toast(`Some older messages of #${g.channel.slice(5)} are no longer kept.`);
});
live.on("refused", (r) => {
  const [kind, name] = r.channel.split(/:(.*)/s);
  chat.refused.push(r.channel);
  if (kind !== "room") return;
  toast(`You may not enter #${name}.`);
  if (chat.joined.has(name)) leave(name);
});
live.on("open", (o) => { $("#status").textContent = `live over ${o.transport === "sse" ? "server-sent events" : "WebSocket"}`; });
live.on("close", () => { $("#status").textContent = "reconnecting…"; });
live.join(`user:${me}`);

// Sending.

$("#compose").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = event.target.text;
  const text = input.value.trim();
  if (!text || !chat.active) return;
  $("#error").textContent = "";
  try {
    const response = await fetch(`${config.api}${encodeURIComponent(chat.active)}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
    });
    const body = await response.json();
    if (!response.ok) { $("#error").textContent = body.error; return; }
    if (body.reminder !== undefined) toast(`Reminder set: in ${body.reminder} s.`);
    input.value = "";
  } catch (error) {
    $("#error").textContent = `Not sent: ${error.message}`;
  }
});

$("#open-room").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = event.target.room.value.trim().toLowerCase();
  if (!/^[a-z0-9-]{1,32}$/.test(room)) { toast("A room name is 1 to 32 of a-z, 0-9 and -."); return; }
  event.target.reset();
  if (chat.joined.has(room)) show(room); else join(room, true);
});

$("#leave").addEventListener("click", () => { if (chat.active) leave(chat.active); });
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && chat.active) { markRead(chat.active); drawRooms(); }
});

avatar($("#me-avatar"), me);
const wanted = store.get("active", null);
for (const room of chat.joined) join(room, false);
show(chat.joined.has(wanted) ? wanted : [...chat.joined][0] || null);
