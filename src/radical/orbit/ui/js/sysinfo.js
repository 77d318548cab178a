// The System view of an endpoint, from the sysinfo plugin: host (info, host_role),
// CPU, memory, disks, network and GPUs (metrics), and a live load line from its `load`
// notifications while the view is shown.

import { api, callPlugin, describe } from "./api.js";
import { fill, h, sparkline } from "./dom.js";
import { bytes, count, dateTime, duration, percent } from "./format.js";

const WATCH_INTERVAL = 2; // seconds between load notifications while the view is shown
// a watch ends by itself after this many (and is renewed while the view is shown), so a
// closed tab does not leave the endpoint notifying for the session's whole idle lifetime
const WATCH_COUNT = 60;
const HISTORY = 60; // load samples kept for the line
const ROLES = { compute: "compute node", login: "login node", standalone: "standalone host" };

function meter(pct, label) {
  const el = h("div", { class: "meter", role: "img", "aria-label": `${label}: ${pct === null ? "unknown" : `${Math.round(pct)}% used`}` });
  const bar = h("div", { class: "meter-bar" });
  if (pct !== null) {
    bar.style.width = `${Math.max(0, Math.min(100, pct)).toFixed(1)}%`;
    if (pct > 90) bar.classList.add("meter-bad");
    else if (pct > 75) bar.classList.add("meter-warn");
  }
  el.appendChild(bar);
  return el;
}

function fact(label, value) {
  return [h("dt", null, label), h("dd", null, value === null || value === undefined || value === "" ? "—" : String(value))];
}

function card(id, title, ...content) {
  return h("section", { class: "card", "aria-labelledby": id }, h("h3", { id }, title), content);
}

const list = (value) => (Array.isArray(value) ? value.filter((x) => x && typeof x === "object") : []);

export class SysinfoView {
  constructor(endpoint, stream) {
    this.endpoint = endpoint;
    this.stream = stream;
    this.sid = null;
    this.watch = null;
    this.loads = [];
    this.facts = {};
    this.metrics = {};
    this.role = {};
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
      const [facts, metrics, role] = await Promise.all([
        callPlugin(this.endpoint, "sysinfo", "info", { sid: this.sid }),
        callPlugin(this.endpoint, "sysinfo", "metrics", { sid: this.sid }).catch(() => ({})), // older endpoints
        api("GET", `/${encodeURIComponent(this.endpoint)}/sysinfo/host_role`).catch(() => ({})),
      ]);
      this.facts = facts || {};
      this.metrics = metrics || {};
      this.role = role || {};
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
    this.facts.load_average = p.load;
    this.renderLoad();
    if (p.last && this.sid) this.startWatch().catch(() => {});
  }

  renderLoad() {
    const load = Array.isArray(this.facts.load_average) ? this.facts.load_average : null;
    const cpus = Number(this.facts.cpu_count) || 1;
    fill(
      this.loadBox,
      h("div", { class: "load-figures" },
        load
          ? ["1 min", "5 min", "15 min"].map((label, i) =>
              h("div", { class: "figure" }, h("span", { class: "figure-value num" }, Number(load[i]).toFixed(2)), h("span", { class: "figure-label" }, label)))
          : h("span", { class: "muted" }, "not reported"),
      ),
      load ? meter(percent(Math.min(load[0], cpus), cpus), "Load per CPU") : null,
      this.loads.length > 1
        ? [sparkline(this.loads, cpus), h("p", { class: "hint" }, `1-minute load, live; the top line is ${cpus} (one per CPU) or the highest seen`)]
        : h("p", { class: "hint" }, "Live load appears here every few seconds."),
    );
  }

  render() {
    const f = this.facts;
    const m = this.metrics;
    const sys = m.system && typeof m.system === "object" ? m.system : {};
    const cpu = m.cpu && typeof m.cpu === "object" ? m.cpu : {};
    const mem = m.memory && typeof m.memory === "object" ? m.memory : {};
    const total = mem.total ?? f.memory_total;
    const available = mem.available ?? f.memory_available;
    const memPct = typeof mem.percent === "number" ? mem.percent : percent((total || 0) - (available || 0), total);
    const role = this.role.role ? `${ROLES[this.role.role] || this.role.role}${this.role.scheduler && this.role.scheduler !== "none" ? ` (${this.role.scheduler}${this.role.job_id ? `, job ${this.role.job_id}` : ""})` : ""}` : null;
    const id = (part) => `${this.endpoint}-${part}`;
    this.renderLoad();
    fill(
      this.el,
      h("div", { class: "cards" },
        card(id("host"), "Host",
          h("dl", { class: "facts" },
            fact("Hostname", sys.hostname || f.hostname),
            fact("Role", role),
            fact("User", sys.user),
            fact("System", sys.kernel || f.platform),
            fact("Machine", sys.arch || f.machine),
            fact("Python", f.python_version ? `${f.python_implementation || ""} ${f.python_version}`.trim() : null),
            fact("Up", typeof sys.uptime === "number" ? duration(sys.uptime * 1000) : null),
            fact("Clock", f.time ? dateTime(new Date(f.time * 1000)) : null),
          )),
        card(id("cpu"), "CPU and load",
          h("dl", { class: "facts" },
            fact("Model", cpu.model),
            fact("Cores", cpu.cores_logical ? `${cpu.cores_logical} logical, ${cpu.cores_physical} physical` : f.cpu_count),
            fact("Clock", cpu.freq_mhz ? `${count(Math.round(cpu.freq_mhz))} MHz` : null),
          ),
          this.loadBox),
        card(id("mem"), "Memory",
          h("dl", { class: "facts" },
            fact("Total", total ? bytes(total) : null),
            fact("Available", available !== null && available !== undefined ? bytes(available) : null),
            fact("Used", memPct !== null && memPct !== undefined ? `${Math.round(memPct)}%` : null),
          ),
          memPct !== null && memPct !== undefined ? meter(memPct, "Memory") : null),
      ),
      this.renderDisks(list(m.disks)),
      this.renderNetwork(list(m.network), list(m.gpus)),
    );
  }

  renderDisks(disks) {
    const id = `${this.endpoint}-disks`;
    return h("section", { class: "card card-wide", "aria-labelledby": id },
      h("h3", { id }, "Disks"),
      disks.length
        ? h("table", { class: "grid disks", "aria-labelledby": id },
            h("thead", null, h("tr", null,
              h("th", { scope: "col" }, "Mount"), h("th", { scope: "col" }, "Kind"), h("th", { scope: "col" }, "File system"),
              h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col", class: "num" }, "Used"),
              h("th", { scope: "col", class: "num" }, "Use"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Usage bar")))),
            h("tbody", null, disks.map((d) => h("tr", null,
              h("td", { class: "mono" }, String(d.mount ?? "")),
              h("td", null, String(d.type ?? "")),
              h("td", { class: "muted" }, `${d.fstype ?? ""} ${d.device ? `(${d.device})` : ""}`.trim()),
              h("td", { class: "num" }, bytes(d.total)),
              h("td", { class: "num" }, bytes(d.used)),
              h("td", { class: "num" }, typeof d.percent === "number" ? `${Math.round(d.percent)}%` : "—"),
              h("td", null, meter(typeof d.percent === "number" ? d.percent : null, `Disk ${d.mount}`)),
            ))))
        : h("p", { class: "muted" }, "This endpoint's sysinfo plugin reports no disks."));
  }

  renderNetwork(nics, gpus) {
    const id = `${this.endpoint}-net`;
    return h("section", { class: "card card-wide", "aria-labelledby": id },
      h("h3", { id }, gpus.length ? "Network and GPUs" : "Network"),
      nics.length
        ? h("table", { class: "grid", "aria-label": "Network interfaces" },
            h("thead", null, h("tr", null,
              h("th", { scope: "col" }, "Interface"), h("th", { scope: "col" }, "Address"),
              h("th", { scope: "col", class: "num" }, "Speed"), h("th", { scope: "col", class: "num" }, "Received"),
              h("th", { scope: "col", class: "num" }, "Sent"))),
            h("tbody", null, nics.map((n) => h("tr", null,
              h("td", { class: "mono" }, String(n.interface ?? "")),
              h("td", { class: "mono" }, String(n.ip ?? "")),
              h("td", { class: "num" }, n.speed_mbps ? `${count(n.speed_mbps)} Mb/s` : "—"),
              h("td", { class: "num" }, bytes(n.rx_bytes)),
              h("td", { class: "num" }, bytes(n.tx_bytes)),
            ))))
        : h("p", { class: "muted" }, "No network interface reported."),
      gpus.length
        ? h("table", { class: "grid", "aria-label": "GPUs" },
            h("thead", null, h("tr", null,
              h("th", { scope: "col" }, "GPU"), h("th", { scope: "col" }, "Name"),
              h("th", { scope: "col", class: "num" }, "Busy"), h("th", { scope: "col", class: "num" }, "Memory"))),
            h("tbody", null, gpus.map((g) => h("tr", null,
              h("td", null, String(g.id ?? "")),
              h("td", null, String(g.name ?? "")),
              h("td", { class: "num" }, g.util_gpu === null || g.util_gpu === undefined ? "—" : `${g.util_gpu}%`),
              h("td", { class: "num" }, g.mem_total ? `${count(g.mem_total)} MiB` : "—"),
            ))))
        : null,
    );
  }
}
