// The System view of an endpoint: host facts from the sysinfo plugin (host, CPU,
// memory, disks, load) and a live load line from its `load` notifications while shown.

import { callPlugin, describe } from "./api.js";
import { fill, h, sparkline } from "./dom.js";
import { bytes, dateTime, percent } from "./format.js";

const WATCH_INTERVAL = 2; // seconds between load notifications while the view is shown
// a watch ends by itself after this many (and is renewed while the view is shown), so a
// closed tab does not leave the endpoint notifying for the session's whole idle lifetime
const WATCH_COUNT = 60;
const HISTORY = 60; // load samples kept for the line

function meter(used, total, label) {
  const pct = percent(used, total);
  const el = h("div", { class: "meter", role: "img", "aria-label": `${label}: ${pct === null ? "unknown" : Math.round(pct) + "% used"}` });
  const bar = h("div", { class: "meter-bar" });
  if (pct !== null) {
    bar.style.width = `${pct.toFixed(1)}%`;
    if (pct > 90) bar.classList.add("meter-bad");
    else if (pct > 75) bar.classList.add("meter-warn");
  }
  el.appendChild(bar);
  return el;
}

function fact(label, value) {
  return [h("dt", null, label), h("dd", null, value === null || value === undefined || value === "" ? "—" : value)];
}

export class SysinfoView {
  constructor(endpoint, stream) {
    this.endpoint = endpoint;
    this.stream = stream;
    this.sid = null;
    this.watch = null;
    this.loads = [];
    this.facts = null;
    this.el = h("section", { class: "sysinfo", "aria-label": `System of ${endpoint}` });
    this.loadBox = h("div", { class: "load-live" });
    this.unsubscribe = null;
    // leaving the page: close the session (and its watch) rather than let it idle out
    window.addEventListener("pagehide", () => {
      if (this.sid) callPlugin(this.endpoint, "sysinfo", "unregister_session", { sid: this.sid }, { keepalive: true }).catch(() => {});
    });
  }

  async show() {
    fill(this.el, h("p", { class: "muted" }, "Asking the endpoint…"));
    this.unsubscribe = this.stream.on((ev) => this.onEvent(ev));
    try {
      if (!this.sid) this.sid = (await callPlugin(this.endpoint, "sysinfo", "register_session", {})).sid;
      this.facts = await callPlugin(this.endpoint, "sysinfo", "info", { sid: this.sid });
      this.render();
      await this.startWatch();
    } catch (err) {
      this.sid = err.status === 404 || err.status === 410 ? null : this.sid;
      fill(this.el, h("p", { class: "callout callout-error", role: "alert" }, `System facts unavailable: ${describe(err)}`));
    }
  }

  async startWatch() {
    const res = await callPlugin(this.endpoint, "sysinfo", "watch", { sid: this.sid, interval: WATCH_INTERVAL, count: WATCH_COUNT });
    this.watch = res.watch;
  }

  async hide() {
    if (this.unsubscribe) this.unsubscribe();
    this.unsubscribe = null;
    const { sid, watch } = this;
    this.watch = null;
    this.sid = null;
    if (sid) {
      try {
        if (watch) await callPlugin(this.endpoint, "sysinfo", "unwatch", { sid, watch });
        await callPlugin(this.endpoint, "sysinfo", "unregister_session", { sid });
      } catch {
        // the endpoint may be gone; its session expires on its own
      }
    }
  }

  onEvent(ev) {
    if (ev.kind !== "notification" || ev.endpoint !== this.endpoint || ev.plugin !== "sysinfo" || ev.topic !== "load") return;
    const p = ev.payload || {};
    if (!this.watch || p.watch !== this.watch || !Array.isArray(p.load)) return;
    this.loads.push(Number(p.load[0]) || 0);
    if (this.loads.length > HISTORY) this.loads.shift();
    if (this.facts) this.facts.load_average = p.load;
    this.renderLoad();
    if (p.last && this.sid) this.startWatch().catch(() => {});
  }

  renderLoad() {
    const f = this.facts || {};
    const load = Array.isArray(f.load_average) ? f.load_average : null;
    const cpus = Number(f.cpu_count) || 1;
    fill(
      this.loadBox,
      h("div", { class: "load-figures" },
        load
          ? ["1 min", "5 min", "15 min"].map((label, i) =>
              h("div", { class: "figure" }, h("span", { class: "figure-value num" }, Number(load[i]).toFixed(2)), h("span", { class: "figure-label" }, label)))
          : h("span", { class: "muted" }, "not reported"),
      ),
      load ? meter(Math.min(load[0], cpus), cpus, "Load per CPU") : null,
      this.loads.length > 1
        ? [sparkline(this.loads, cpus), h("p", { class: "hint" }, `1-minute load, live; the top line is ${cpus} (one per CPU) or the highest seen`)]
        : h("p", { class: "hint" }, "Live load appears here every few seconds."),
    );
  }

  render() {
    const f = this.facts || {};
    const memUsed = f.memory_total && f.memory_available !== null && f.memory_available !== undefined ? f.memory_total - f.memory_available : null;
    const disks = Array.isArray(f.disks) ? f.disks : null;
    this.renderLoad();
    fill(
      this.el,
      h("div", { class: "cards" },
        h("section", { class: "card", "aria-labelledby": `${this.endpoint}-host` },
          h("h3", { id: `${this.endpoint}-host` }, "Host"),
          h("dl", { class: "facts" },
            fact("Hostname", f.hostname),
            fact("Platform", f.platform),
            fact("Machine", f.machine),
            fact("Python", f.python_version ? `${f.python_implementation || ""} ${f.python_version}`.trim() : null),
            fact("Endpoint PID", f.pid),
            fact("Clock", f.time ? dateTime(new Date(f.time * 1000)) : null),
          ),
        ),
        h("section", { class: "card", "aria-labelledby": `${this.endpoint}-cpu` },
          h("h3", { id: `${this.endpoint}-cpu` }, "CPU and load"),
          h("dl", { class: "facts" }, fact("CPUs", f.cpu_count)),
          this.loadBox,
        ),
        h("section", { class: "card", "aria-labelledby": `${this.endpoint}-mem` },
          h("h3", { id: `${this.endpoint}-mem` }, "Memory"),
          h("dl", { class: "facts" },
            fact("Total", f.memory_total ? bytes(f.memory_total) : null),
            fact("Available", f.memory_available !== null && f.memory_available !== undefined ? bytes(f.memory_available) : null),
          ),
          memUsed !== null ? meter(memUsed, f.memory_total, "Memory") : null,
        ),
      ),
      h("section", { class: "card card-wide", "aria-labelledby": `${this.endpoint}-disks` },
        h("h3", { id: `${this.endpoint}-disks` }, "Disks"),
        disks && disks.length
          ? h("table", { class: "grid disks" },
              h("thead", null, h("tr", null,
                h("th", { scope: "col" }, "Path"), h("th", { scope: "col" }, "Role"),
                h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col", class: "num" }, "Used"),
                h("th", { scope: "col", class: "num" }, "Free"), h("th", { scope: "col" }, "Usage"))),
              h("tbody", null, disks.map((d) => h("tr", null,
                h("td", { class: "mono" }, String(d.path ?? "")),
                h("td", null, String(d.label ?? "")),
                h("td", { class: "num" }, bytes(d.total)),
                h("td", { class: "num" }, bytes(d.used)),
                h("td", { class: "num" }, bytes(d.free)),
                // as df counts it: blocks reserved for root are neither used nor free to us
                h("td", null, meter(d.used, d.used + d.free, `Disk ${d.path}`)),
              ))),
            )
          : h("p", { class: "muted" }, "This endpoint's sysinfo plugin does not report disks."),
      ),
    );
  }
}
