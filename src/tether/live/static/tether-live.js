// tether live client: channels over a WebSocket, Server-Sent Events as the fallback.
// Served by app.live() at url_for("live.client"); plain JavaScript, no build step.
//
//   const live = new TetherLive("/live");
//   live.on("chat", (d) => show(d.channel, d.data));   // messages published with event="chat"
//   live.on("gap", (g) => reload(g.channel));           // history lost while away
//   live.join("room:lobby");
//   live.on("members", (m) => showWho(m.channel, m.members));  // where the app's presence= puts us
//
// It reconnects with exponential backoff and jitter, and resumes every joined
// channel from the id of the last message it handed over: nothing is lost
// while the server's history holds it, nothing comes twice.
"use strict";

/**
 * One message of a channel.
 * @typedef {{channel: string, id: string, event: string, data: *}} Delivery
 */

/**
 * Who is in a channel the connection is present in (app.live(..., presence=who)):
 * member id -> meta, earliest first. Kept from the "joined" event and the
 * channel's "presence" events ({presence: "join"|"leave", member, meta}).
 * @typedef {Map<string, *>} Members
 */

/**
 * @typedef {Object} LiveOptions
 * @property {"auto"|"websocket"|"sse"} [transport] "auto": WebSocket, SSE when it cannot open.
 * @property {number} [minDelay] First reconnect delay, ms (default 250).
 * @property {number} [maxDelay] Longest reconnect delay, ms (default 10000).
 */

/** @param {string} id @returns {number[]|null} */
function idKey(id) {
  const m = /^(\d+)-(\d+)$/.exec(id || "");
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** Whether id `a` comes after `b` (an id that cannot be read is taken as new). */
function newer(a, b) {
  const ka = idKey(a), kb = idKey(b);
  if (!ka || !kb) return true;
  return ka[0] > kb[0] || (ka[0] === kb[0] && ka[1] > kb[1]);
}

/** The channel -> last id mapping of a multi-channel SSE id. @param {string} text */
function decodeLastIds(text) {
  const ids = {};
  for (const pair of (text || "").split("&")) {
    const at = pair.indexOf("=");
    if (at < 0) continue;
    try { ids[decodeURIComponent(pair.slice(0, at))] = decodeURIComponent(pair.slice(at + 1)); } catch (e) { /* not UTF-8 */ }
  }
  return ids;
}

/** @param {Object<string, string>} ids */
function encodeLastIds(ids) {
  return Object.entries(ids).map(([c, id]) => encodeURIComponent(c) + "=" + encodeURIComponent(id)).join("&");
}

class TetherLive {
  /** @param {string} base The endpoint's prefix ("/live"). @param {LiveOptions} [options] */
  constructor(base, options = {}) {
    this.base = base.replace(/\/$/, "");
    this.transport = options.transport || "auto";
    this.minDelay = options.minDelay || 250;
    this.maxDelay = options.maxDelay || 10000;
    /** @type {Map<string, string|null>} joined channel -> id of the last message handed over */
    this.channels = new Map();
    /** @type {Map<string, Members>} present channel -> who is there */
    this.present = new Map();
    /** @type {Map<string, Delivery[]>} joining channel -> presence events that came before "joined" */
    this.pending = new Map();
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map();
    this.attempt = 0;
    this.socket = null;
    this.source = null;
    /** @type {EventSource[]} SSE streams replaced, closed once their successor is open */
    this.retiring = [];
    this.timer = null;
    this.closed = false;
    /** @type {"websocket"|"sse"|null} the transport in use */
    this.using = null;
    this._connect();
  }

  /**
   * Call `fn` for each event named `event`: a message's event name ("message"
   * when it has none), or "gap", "refused", "joined", "left", "presence", "open", "close",
   * "members" ({channel, members}: who is in a channel this connection is present in, changed).
   * @param {string} event @param {function(*): void} fn @param {string} [channel] Only this channel's.
   */
  on(event, fn, channel) {
    const key = channel === undefined ? event : event + "\u0000" + channel;
    if (!this.handlers.has(key)) this.handlers.set(key, new Set());
    this.handlers.get(key).add(fn);
    this._listen(event);
    return () => this.handlers.get(key).delete(fn);
  }

  /** Follow `channel`, from `lastId` if given (else from now). @param {string} channel @param {string} [lastId] */
  join(channel, lastId) {
    if (this.channels.has(channel)) return;
    this.channels.set(channel, lastId || null);
    if (this.using === "websocket" && this.socket.readyState === 1) this._sendJoin(channel);
    else if (this.using === "sse") this._reopen();
  }

  /** Stop following `channel` (and being present there). @param {string} channel */
  leave(channel) {
    if (!this.channels.delete(channel)) return;
    this.present.delete(channel);
    this.pending.delete(channel);
    if (this.using === "websocket" && this.socket.readyState === 1) this.socket.send(JSON.stringify({ leave: channel }));
    else if (this.using === "sse") this._reopen();
  }

  /**
   * Who is in `channel`, where the app made this connection present; else undefined.
   * @param {string} channel @returns {Members|undefined}
   */
  members(channel) {
    return this.present.get(channel);
  }

  /** Close for good. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
    if (this.source) this.source.close();
    for (const old of this.retiring.splice(0)) old.close();
  }

  _emit(event, payload) {
    for (const key of [event, event + "\u0000" + (payload && payload.channel)]) {
      for (const fn of this.handlers.get(key) || []) {
        try { fn(payload); } catch (e) { setTimeout(() => { throw e; }); }
      }
    }
  }

  /** Hand a message over once: not if its id is not newer than its channel's last. @param {Delivery} d */
  _deliver(d) {
    if (!this.channels.has(d.channel)) return;
    const last = this.channels.get(d.channel);
    if (last && !newer(d.id, last)) return;
    this.channels.set(d.channel, d.id);
    if (d.event === "presence" && d.data) {
      const pending = this.pending.get(d.channel);
      if (pending) pending.push(d);
      else if (this._count(d.channel, d)) this._emit("members", { channel: d.channel, members: this.present.get(d.channel) });
    }
    this._emit(d.event || "message", d);
  }

  /** Apply a presence event to a present channel's members; whether it was one. */
  _count(channel, d) {
    const members = this.present.get(channel);
    if (!members) return false;
    if (d.data.presence === "join") members.set(d.data.member, d.data.meta);
    else if (d.data.presence === "leave") members.delete(d.data.member);
    return true;
  }

  /** A joined channel's members (if present there), then what came before the reply, in order. */
  _joined(item) {
    const pending = this.pending.get(item.channel) || [];
    this.pending.delete(item.channel);
    if (!item.members || !this.channels.has(item.channel)) { this.present.delete(item.channel); return; }
    this.present.set(item.channel, new Map(item.members.map((m) => [m.member, m.meta])));
    for (const d of pending) this._count(item.channel, d);
    this._emit("members", { channel: item.channel, members: this.present.get(item.channel) });
  }

  /** A control event or a message, from either transport. */
  _received(item) {
    if (item.event === "joined") {
      if (this.channels.has(item.channel) && !this.channels.get(item.channel) && item.position) {
        this.channels.set(item.channel, item.position);
      }
      this._joined(item);
      this._emit("joined", item);
    } else if (item.event === "gap" || item.event === "refused" || item.event === "left" || item.event === "error") {
      if (item.event === "refused") { this.channels.delete(item.channel); this.pending.delete(item.channel); }
      this._emit(item.event, item);
    } else if (item.id !== undefined) {
      this._deliver(item);
    }
  }

  _connect() {
    if (this.closed) return;
    if (this.transport === "sse" || (this.transport === "auto" && this.using === "sse") || !window.WebSocket) {
      this._openSse();
    } else {
      this._openSocket();
    }
  }

  _retry() {
    if (this.closed || this.timer) return;
    const ceiling = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    this.attempt += 1;
    const delay = ceiling / 2 + Math.random() * ceiling / 2;  // jitter: reconnects spread out
    this._emit("close", { delay });
    this.timer = setTimeout(() => { this.timer = null; this._connect(); }, delay);
  }

  _sendJoin(channel) {
    this.pending.set(channel, []);
    const message = { join: channel };
    const last = this.channels.get(channel);
    if (last) message.last_id = last;
    this.socket.send(JSON.stringify(message));
  }

  _openSocket() {
    const url = new URL(this.base + "/ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = this.socket = new WebSocket(url);
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.using = "websocket";
      this.attempt = 0;
      for (const channel of this.channels.keys()) this._sendJoin(channel);
      this._emit("open", { transport: "websocket" });
    };
    socket.onmessage = (e) => { this._received(JSON.parse(e.data)); };
    socket.onclose = () => {
      if (socket !== this.socket) return;
      // Never opened, and allowed to: the SSE fallback (a proxy without WebSockets).
      if (!opened && this.transport === "auto" && this.using !== "websocket") this.using = "sse";
      this._retry();
    };
  }

  _sseUrl() {
    const url = new URL(this.base + "/events", location.href);
    const ids = {};
    for (const [channel, last] of this.channels) {
      url.searchParams.append("channels", channel);
      if (last) ids[channel] = last;
    }
    url.searchParams.set("last_ids", encodeLastIds(ids));
    return url;
  }

  _reopen() {
    // An open stream closes once the new one is open: a connection present in a
    // channel stays there (no leave and join again) while its set changes. One
    // still connecting closes now: a browser opens few connections to a host.
    const old = this.source;
    if (old && old.readyState === 1) this.retiring.push(old);
    else if (old) old.close();
    this._openSse();
  }

  _openSse() {
    // Reconnects are ours, not the browser's: the new URL carries every channel's last id.
    const source = this.source = new EventSource(this._sseUrl());
    for (const channel of this.channels.keys()) this.pending.set(channel, []);
    this.using = "sse";
    source.onopen = () => {
      if (source !== this.source) return;  // replaced already: its successor closes it
      this.attempt = 0;
      for (const old of this.retiring.splice(0)) old.close();
      this._emit("open", { transport: "sse" });
    };
    source.onerror = () => {
      source.close();
      if (source === this.source) this._retry();
    };
    // A replaced stream only keeps its presence until its successor opens: what it
    // sends, the successor sends again (it resumes from the ids of its opening).
    const control = (name) => source.addEventListener(name, (e) => {
      if (source === this.source) this._received({ event: name, ...JSON.parse(e.data) });
    });
    ["joined", "refused", "gap"].forEach(control);
    const message = (e) => {
      if (source !== this.source) return;
      const body = JSON.parse(e.data);
      const ids = decodeLastIds(e.lastEventId);
      if (body.channel === undefined || ids[body.channel] === undefined) return;
      this._deliver({ channel: body.channel, id: ids[body.channel], event: e.type, data: body.data });
    };
    source.onmessage = message;
    this._sseMessage = message;
    source.addEventListener("presence", message);  // kept in members() even when the app does not listen
    for (const key of this.handlers.keys()) this._listen(key.split("\u0000")[0]);
  }

  /** SSE delivers named events only to listeners of that name. */
  _listen(event) {
    if (!this.source || ["message", "joined", "refused", "gap", "open", "close", "left", "error", "members"].includes(event)) return;
    this.source.addEventListener(event, this._sseMessage);
  }
}

window.TetherLive = TetherLive;
