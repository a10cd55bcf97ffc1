// One WebSocket per client (docs/clients.md): hello first, then messages; reconnects
// by itself after a drop, except after 4409 (a newer connection of ours is live) and
// 4401 (the token is no good: reconnecting would not help).

const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_REPLACED = 4409;
const PING_EVERY_MS = 15000;
const PONG_WITHIN_MS = 10000;

export class Channel {
  constructor({ token, onMessage, onState }) {
    this.token = token;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.welcomed = false;
    this.stopped = false;
    this.attempt = 0;
    this.timers = new Set();
    this.pongDue = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    if (this.ws) this.ws.close(1000, "bye");
  }

  // Closes the socket as a network drop would, without stopping: the channel
  // reconnects as it does after any other drop.
  drop() {
    if (this.ws) this.ws.close(4000, "dropped");
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.welcomed) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  connect() {
    this.clearTimers();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
    this.ws = ws;
    this.welcomed = false;
    this.onState(this.attempt === 0 ? "connecting" : "reconnecting");
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "hello", token: this.token })));
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "welcome") {
        this.welcomed = true;
        this.attempt = 0;
        this.onState("connected");
        this.keepAlive();
      }
      if (message.type === "pong") {
        clearTimeout(this.pongDue);
        this.pongDue = null;
        return;
      }
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      this.welcomed = false;
      this.clearTimers();
      if (event.code === CLOSE_REPLACED) {
        this.stopped = true;
        this.onState("replaced");
        return;
      }
      if (event.code === CLOSE_UNAUTHORIZED) {
        this.stopped = true;
        this.onState("unauthorized");
        return;
      }
      if (this.stopped) {
        this.onState("closed");
        return;
      }
      this.attempt += 1;
      this.onState("reconnecting");
      const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt, 5));
      this.later(() => this.connect(), delay);
    });
  }

  // The browser may not notice a dead network for minutes; an unanswered ping
  // within PONG_WITHIN_MS counts as a drop.
  keepAlive() {
    this.later(() => {
      if (!this.send({ type: "ping" })) return;
      this.pongDue = setTimeout(() => this.drop(), PONG_WITHIN_MS);
      this.keepAlive();
    }, PING_EVERY_MS);
  }

  later(fn, ms) {
    const id = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.add(id);
  }

  clearTimers() {
    for (const id of this.timers) clearTimeout(id);
    this.timers.clear();
    clearTimeout(this.pongDue);
    this.pongDue = null;
  }
}
