// The view of one endpoint: its facts, and tabs for the Globus panel and the System
// (sysinfo) view. Views are kept while the page lives, so switching endpoints keeps
// each one's panes, selection and activity.

import { fill, h, icon } from "./dom.js";
import { dateTime } from "./format.js";
import { GlobusPanel } from "./globus/panel.js";
import { SysinfoView } from "./sysinfo.js";

function plugin(info, name) {
  return (Array.isArray(info && info.plugins) ? info.plugins : []).find((p) => p && p.name === name) || null;
}

export class EndpointView {
  constructor(name, stream) {
    this.name = name;
    this.stream = stream;
    this.info = null;
    this.connectedAt = null; // when the endpoint's current connection began (kept while it is away)
    this.tab = "";
    this.globus = null;
    this.sysinfo = null;
    this.title = h("h1", { class: "ep-title" }, icon("server"), h("span", null, name));
    this.meta = h("p", { class: "ep-meta" });
    this.banner = h("div", { class: "ep-banner", hidden: true, role: "alert" });
    this.tabs = h("nav", { class: "view-tabs", "aria-label": `Views of ${name}` });
    this.content = h("div", { class: "view-content" });
    this.el = h("article", { class: "endpoint-view", "aria-labelledby": "" },
      h("header", { class: "ep-head" }, h("div", null, this.title, this.meta), this.tabs),
      this.banner,
      this.content,
    );
  }

  /** New facts from GET /endpoints (null: not connected now). */
  update(info) {
    this.info = info;
    if (!info) {
      this.banner.hidden = false;
      fill(this.banner, icon("alert"), ` ${this.name} is not connected to the bridge right now. This view comes back to life when it reconnects.`);
      this.meta.textContent = "disconnected";
      return;
    }
    this.banner.hidden = true;
    const host = info.host && typeof info.host === "object" ? info.host : {};
    const bits = [];
    if (host.hostname) bits.push(String(host.hostname));
    if (info.version) bits.push(`Orbit ${info.version}`);
    if (info.connected_at) bits.push(`connected ${dateTime(new Date(info.connected_at * 1000))}`);
    this.meta.textContent = bits.join(" · ");
    const reconnected = this.connectedAt !== null && info.connected_at !== this.connectedAt;
    this.connectedAt = info.connected_at;
    if (reconnected) {
      // a new connection: a restarted endpoint has forgotten its sessions, a reconnected one not
      if (this.globus) this.globus.recheck();
      if (this.sysinfo && this.tab === "system") this.sysinfo.hide().then(() => this.sysinfo.show());
    }
  }

  renderTabs() {
    const globus = plugin(this.info, "globus");
    const sysinfo = plugin(this.info, "sysinfo");
    const link = (key, label, p) => h("a", {
      href: `#/e/${encodeURIComponent(this.name)}${key === "globus" ? "" : `/${key}`}`,
      class: p && !p.enabled ? "view-tab view-tab-off" : "view-tab",
      "aria-current": this.tab === key ? "page" : null,
    }, label);
    fill(this.tabs, link("globus", "Globus", globus), link("system", "System", sysinfo));
  }

  show(tab) {
    const previous = this.tab;
    this.tab = tab;
    this.renderTabs();
    if (previous === "system" && tab !== "system" && this.sysinfo) this.sysinfo.hide();
    const name = tab === "system" ? "sysinfo" : "globus";
    const p = plugin(this.info, name);
    if (!p || !p.enabled) {
      const why = !p ? `This endpoint does not run the ${name} plugin. Start it with --plugins ${name}.` : `The ${name} plugin is disabled here: ${p.reason || "no reason given"}`;
      fill(this.content, h("p", { class: "callout callout-warn" }, why));
      return;
    }
    if (tab === "system") {
      if (!this.sysinfo) this.sysinfo = new SysinfoView(this.name, this.stream);
      fill(this.content, this.sysinfo.el);
      if (previous !== "system") this.sysinfo.show();
    } else {
      if (!this.globus) this.globus = new GlobusPanel(this.name, this.stream, p);
      fill(this.content, this.globus.el);
      this.globus.show();
    }
  }

  hide() {
    if (this.tab === "system" && this.sysinfo) this.sysinfo.hide();
    this.tab = "";
  }
}
