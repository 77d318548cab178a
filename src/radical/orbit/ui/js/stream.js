// The page's one event stream (GET /events, Server-Sent Events): topology changes and
// plugin notifications for this identity. One stream per page, shared by every view;
// it also drives the connection indicator.

const STATES = {
  connecting: ["Connecting", "pending"],
  live: ["Live", "ok"],
  reconnecting: ["Reconnecting", "warn"],
  offline: ["Offline", "bad"],
  closed: ["Signed out", "off"],
};

export class EventStream {
  /** @param indicator element with role=status that shows the state */
  constructor(indicator) {
    this.indicator = indicator;
    this.source = null;
    this.listeners = new Set();
    this.state = "";
    this.retryTimer = null;
    this.failures = 0;
    /** called when the stream failed for good: the caller checks whether we are signed out */
    this.onFailed = null;
  }

  start() {
    this.stop();
    this.setState(this.failures ? "reconnecting" : "connecting");
    const source = new EventSource("/events");
    this.source = source;
    source.addEventListener("hello", () => {
      const resumed = this.failures > 0 || this.wasLive;
      this.failures = 0;
      this.wasLive = true;
      this.setState("live");
      this.emit({ kind: "hello", resumed });
    });
    for (const kind of ["notification", "topology", "gap"]) {
      source.addEventListener(kind, (ev) => {
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (data && typeof data === "object") this.emit(data);
      });
    }
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CONNECTING) {
        this.setState("reconnecting"); // the browser retries by itself (same stream)
        return;
      }
      // CLOSED: the bridge refused the stream (signed out?) or is gone
      source.close();
      this.source = null;
      this.failures += 1;
      this.setState("offline");
      if (this.onFailed) this.onFailed();
      const delay = Math.min(30000, 1000 * 2 ** Math.min(this.failures, 5));
      this.retryTimer = setTimeout(() => this.start(), delay);
    });
  }

  stop() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  close() {
    this.stop();
    this.setState("closed");
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    const [text, tone] = STATES[state];
    this.indicator.dataset.tone = tone;
    this.indicator.querySelector(".conn-text").textContent = text;
    this.indicator.title = state === "live" ? "Live updates from the bridge" : text;
  }

  /** Subscribe to every event (hello, notification, topology, gap); returns unsubscribe. */
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(event) {
    for (const fn of [...this.listeners]) {
      try {
        fn(event);
      } catch (exc) {
        reportError(exc);
      }
    }
  }
}
