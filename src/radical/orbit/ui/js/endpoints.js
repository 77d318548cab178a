// The "Endpoints" landmark: one link per connected endpoint with its plugins, kept
// current from topology events (a connect or drop refetches GET /endpoints).

import { api, describe } from "./api.js";
import { fill, h } from "./dom.js";

export class EndpointList {
  constructor(nav, stream, { onChange } = {}) {
    this.nav = nav;
    this.list = nav.querySelector(".endpoint-list");
    this.empty = nav.querySelector(".endpoint-empty");
    this.endpoints = new Map();
    this.current = "";
    this.onChange = onChange || (() => {});
    this.timer = null;
    stream.on((ev) => {
      if (ev.kind === "topology" || ev.kind === "gap" || (ev.kind === "hello" && ev.resumed)) this.refreshSoon();
    });
  }

  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), 80);
  }

  async refresh() {
    try {
      const data = await api("GET", "/endpoints");
      const items = Array.isArray(data && data.endpoints) ? data.endpoints : [];
      this.endpoints = new Map(items.filter((e) => e && typeof e.name === "string").map((e) => [e.name, e]));
      this.render();
    } catch (err) {
      if (!err.signedOut) fill(this.empty, `Cannot list endpoints: ${describe(err)}`);
      this.empty.hidden = false;
    }
    this.onChange(this.endpoints);
  }

  get(name) {
    return this.endpoints.get(name);
  }

  select(name) {
    this.current = name;
    for (const link of this.list.querySelectorAll("a")) {
      if (link.dataset.name === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  render() {
    const focused = this.list.contains(document.activeElement) ? document.activeElement.dataset.name : null;
    const names = [...this.endpoints.keys()].sort((a, b) => a.localeCompare(b));
    this.empty.hidden = names.length > 0;
    if (!names.length) fill(this.empty, "No endpoint is connected. Start one with radical-orbit endpoint --name NAME.");
    fill(
      this.list,
      names.map((name) => {
        const info = this.endpoints.get(name);
        const plugins = Array.isArray(info.plugins) ? info.plugins : [];
        const link = h(
          "a",
          { href: `#/e/${encodeURIComponent(name)}`, dataset: { name }, class: info.alive === false ? "stale" : "" },
          name,
        );
        if (name === this.current) link.setAttribute("aria-current", "page");
        return h(
          "li",
          { class: "endpoint-item" },
          h("span", { class: `ep-dot ${info.alive === false ? "ep-dot-stale" : ""}`, "aria-hidden": "true" }),
          link,
          h(
            "ul",
            { class: "plugin-tags", "aria-label": `Plugins of ${name}` },
            plugins.map((p) =>
              h(
                "li",
                { class: p.enabled ? "tag" : "tag tag-off", title: p.enabled ? p.description || "" : p.reason || "disabled" },
                String(p.name),
                p.enabled ? null : h("span", { class: "sr-only" }, " (disabled)"),
              ),
            ),
          ),
        );
      }),
    );
    if (focused) {
      const again = [...this.list.querySelectorAll("a")].find((a) => a.dataset.name === focused);
      if (again) again.focus();
    }
  }
}
