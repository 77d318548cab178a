// One file pane of the Globus panel: a collection, a path with breadcrumbs, and a
// sortable, multi-select listing. Keyboard: arrows move between rows, Space selects,
// Enter opens a folder, Backspace goes up, Ctrl+A selects all.

import { ApiError, describe } from "../api.js";
import { busy, fill, h, icon, nextId } from "../dom.js";
import { bytes, dateTime, parseTime } from "../format.js";
import { deleteEntries, newFolder, renameEntry } from "./fileops.js";
import { joinPath, normalizeDir, parentPath } from "./paths.js";
import { CollectionPicker } from "./picker.js";

const MAX_ROWS = 5000; // rows rendered at once; larger folders say how many are hidden

const SORTS = {
  name: (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: "base" }),
  size: (a, b) => (Number(a.size) || 0) - (Number(b.size) || 0),
  modified: (a, b) => (parseTime(a.last_modified)?.getTime() || 0) - (parseTime(b.last_modified)?.getTime() || 0),
};

export class FilePane {
  /**
   * @param panel the Globus panel
   * @param side "left" | "right"
   */
  constructor(panel, side) {
    this.panel = panel;
    this.side = side;
    this.title = side === "left" ? "Left pane" : "Right pane";
    this.collection = null; // {id, name}
    this.path = "";
    this.entries = [];
    this.selected = new Set();
    this.anchor = null; // the row a shift-click extends from
    this.focusName = null;
    this.sort = { key: "name", dir: 1 };
    this.loadSeq = 0;
    this.problem = null;
    this.build();
  }

  build() {
    this.picker = new CollectionPicker(this.panel, this.side, (c) => this.open(c, "/~/"));
    const pathId = nextId(`path-${this.side}`);
    this.pathInput = h("input", { id: pathId, type: "text", class: "path-input mono", autocomplete: "off", spellcheck: "false", disabled: true });
    this.pathInput.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        if (this.collection) this.navigate(normalizeDir(this.pathInput.value));
      } else if (ev.key === "Escape") {
        this.pathInput.value = this.path;
      }
    });
    this.upButton = h("button", { type: "button", class: "btn btn-icon", "aria-label": "Up one folder", title: "Up one folder (Backspace)", disabled: true, onclick: () => this.up() }, icon("up"));
    this.crumbs = h("ol", { class: "crumbs" });
    // labels stay in the accessible name when a narrow pane shows only the icons
    const tool = (cls, glyph, label, action) =>
      h("button", { type: "button", class: `btn btn-quiet ${cls}`, disabled: true, title: label, onclick: action }, icon(glyph), h("span", { class: "btn-label" }, label));
    this.buttons = {
      newFolder: tool("", "plusFolder", "New folder", () => this.newFolder()),
      rename: tool("", "pencil", "Rename", () => this.rename()),
      del: tool("btn-quiet-danger", "trash", "Delete", () => this.remove()),
      refresh: tool("", "refresh", "Refresh", () => this.refresh()),
    };
    this.selectAll = h("input", { type: "checkbox", "aria-label": "Select all", disabled: true });
    this.selectAll.addEventListener("change", () => {
      if (this.selectAll.checked) this.entries.forEach((e) => this.selected.add(e.name));
      else this.selected.clear();
      this.renderSelection();
    });
    this.headers = {};
    const th = (key, label, cls = "") => {
      const button = h("button", { type: "button", class: "sort", onclick: () => this.sortBy(key) }, label, icon("chevron", "sort-icon"));
      this.headers[key] = h("th", { scope: "col", class: cls }, button);
      return this.headers[key];
    };
    this.tbody = h("tbody");
    this.tbody.addEventListener("keydown", (ev) => this.onKey(ev));
    // a grid: rows take the focus and carry aria-selected (several at once)
    this.table = h("table", { class: "grid files", role: "grid", "aria-multiselectable": "true", "aria-label": `Files in the ${this.side} pane` },
      h("thead", null, h("tr", null,
        h("th", { scope: "col", class: "col-check" }, this.selectAll),
        th("name", "Name"), th("size", "Size", "num col-size"), th("modified", "Modified", "col-date"))),
      this.tbody,
    );
    this.body = h("div", { class: "pane-body" });
    this.status = h("span", { class: "pane-status", "aria-live": "polite" });
    const label = this.side === "left" ? "Transfer to right" : "Transfer to left";
    this.transferButton = h("button", {
      type: "button", class: "btn btn-primary", disabled: true,
      onclick: () => this.panel.transfer(this, this.side === "left" ? this.panel.right : this.panel.left),
    }, this.side === "left" ? null : icon("left"), label, this.side === "left" ? icon("right") : null);
    this.el = h("section", { class: `pane pane-${this.side}`, role: "region", "aria-label": this.title },
      h("div", { class: "pane-head" },
        this.picker.el,
        h("div", { class: "field field-path" },
          h("label", { for: pathId, class: "field-label" }, "Path"),
          h("div", { class: "pathbar" }, this.upButton, this.pathInput),
        ),
        h("nav", { class: "crumbs-nav", "aria-label": `Breadcrumb, ${this.side} pane` }, this.crumbs),
        h("div", { class: "toolbar", role: "toolbar", "aria-label": `${this.title} actions` },
          this.buttons.newFolder, this.buttons.rename, this.buttons.del, h("span", { class: "spacer" }), this.buttons.refresh),
      ),
      this.body,
      h("div", { class: `pane-foot pane-foot-${this.side}` }, this.status, this.transferButton),
    );
    this.renderEmpty("Choose a collection above: this endpoint’s local one, a recent one, or search Globus.");
  }

  // -- navigation ------------------------------------------------------------
  open(collection, path) {
    this.collection = collection;
    this.picker.set(collection);
    this.panel.remember(collection);
    if (collection.name === collection.id) this.nameCollection(collection);
    return this.navigate(path);
  }

  /** A collection opened by its id: show its display name once Globus tells it. */
  async nameCollection(collection) {
    try {
      const doc = await this.panel.api.call("get_endpoint", { endpoint_id: collection.id });
      if (!doc || typeof doc.display_name !== "string" || !doc.display_name || this.collection !== collection) return;
      collection.name = doc.display_name;
      this.picker.set(collection);
      this.panel.remember(collection);
      this.renderCrumbs();
    } catch {
      // the id names it well enough
    }
  }

  up(options = {}) {
    if (this.collection && this.path && this.path !== "/") this.navigate(parentPath(this.path), options);
  }

  refresh() {
    if (this.collection) return this.navigate(this.path || "/~/", { keep: true });
    return Promise.resolve();
  }

  /** List `path`; `keep` the selection (a refresh); `focus` the list afterwards (keyboard use). */
  async navigate(path, { keep = false, focus = false } = {}) {
    const seq = ++this.loadSeq;
    const previous = keep ? new Set(this.selected) : new Set();
    this.problem = null;
    this.pathInput.disabled = false;
    this.pathInput.value = path;
    this.body.setAttribute("aria-busy", "true");
    if (!keep) this.renderEmpty("Loading…");
    try {
      const res = await this.panel.api.call("ls", { collection: this.collection.id, path });
      if (seq !== this.loadSeq) return;
      this.path = typeof res.path === "string" && res.path ? normalizeDir(res.path) : path;
      this.entries = (Array.isArray(res.DATA) ? res.DATA : []).filter((e) => e && typeof e.name === "string");
      const names = new Set(this.entries.map((e) => e.name));
      this.selected = new Set([...previous].filter((n) => names.has(n)));
      if (!keep) this.focusName = null;
      this.render();
      if (focus) this.focusRow(this.tbody.querySelector("tr[tabindex='0']"));
    } catch (err) {
      if (seq !== this.loadSeq) return;
      this.path = path;
      this.entries = [];
      this.selected.clear();
      this.showProblem(err);
    } finally {
      if (seq === this.loadSeq) this.body.removeAttribute("aria-busy");
    }
  }

  showProblem(err) {
    this.problem = err;
    this.renderChrome();
    this.renderSelection();
    if (err instanceof ApiError && err.code === "consent_required") {
      const scopes = Array.isArray(err.details.required_scopes) ? err.details.required_scopes : [];
      fill(this.body, h("div", { class: "callout callout-warn consent", role: "alert" },
        h("h3", null, "Consent required"),
        h("p", null, "This collection lets you in only with your consent to access its data. Log in with Globus and grant:"),
        h("ul", { class: "scopes" }, scopes.map((s) => h("li", null, h("code", null, String(s))))),
        h("button", { type: "button", class: "btn btn-primary", onclick: (ev) => busy(ev.currentTarget, () => this.panel.login(scopes)) }, "Grant consent"),
      ));
      return;
    }
    fill(this.body, h("div", { class: "callout callout-error", role: "alert" },
      h("p", null, describe(err)),
      h("button", { type: "button", class: "btn", onclick: () => this.refresh() }, "Try again"),
    ));
  }

  renderEmpty(message) {
    this.renderChrome();
    fill(this.body, h("p", { class: "pane-empty" }, message));
  }

  // -- rendering -------------------------------------------------------------
  sortBy(key) {
    this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : 1 };
    this.render();
  }

  sorted() {
    const cmp = SORTS[this.sort.key];
    const dirs = (e) => (e.type === "dir" ? 0 : 1);
    return [...this.entries].sort((a, b) => dirs(a) - dirs(b) || this.sort.dir * cmp(a, b) || SORTS.name(a, b));
  }

  render() {
    this.renderChrome();
    const rows = this.sorted();
    for (const [key, cell] of Object.entries(this.headers)) {
      if (key === this.sort.key) cell.setAttribute("aria-sort", this.sort.dir > 0 ? "ascending" : "descending");
      else cell.removeAttribute("aria-sort");
    }
    if (!rows.length) {
      fill(this.tbody);
      fill(this.body, this.table, h("p", { class: "pane-empty" }, "This folder is empty."));
      this.renderSelection();
      return;
    }
    const shown = rows.slice(0, MAX_ROWS);
    const focus = shown.some((e) => e.name === this.focusName) ? this.focusName : shown[0].name;
    fill(this.tbody, shown.map((entry) => this.row(entry, entry.name === focus)));
    fill(this.body, this.table,
      rows.length > shown.length ? h("p", { class: "pane-empty" }, `${rows.length - shown.length} more entries are not shown.`) : null);
    this.renderSelection();
  }

  row(entry, tabbable) {
    const isDir = entry.type === "dir";
    const check = h("input", { type: "checkbox", tabindex: "-1", "aria-label": `Select ${entry.name}`, checked: this.selected.has(entry.name) });
    check.addEventListener("click", (ev) => ev.stopPropagation());
    check.addEventListener("change", () => {
      if (check.checked) this.selected.add(entry.name);
      else this.selected.delete(entry.name);
      this.anchor = entry.name;
      this.renderSelection();
    });
    const kind = isDir ? "folder" : entry.type === "link" || entry.type === "invalid_symlink" ? "link" : "file";
    const name = h("span", { class: isDir ? "entry-name entry-dir" : "entry-name" }, entry.name);
    if (isDir) {
      name.addEventListener("click", (ev) => {
        ev.stopPropagation();
        this.enter(entry);
      });
    }
    const tr = h("tr", {
      "aria-label": entry.name, tabindex: tabbable ? "0" : "-1", dataset: { name: entry.name },
      "aria-selected": this.selected.has(entry.name) ? "true" : "false",
      class: isDir ? "row-dir" : "",
    },
    h("td", { class: "col-check" }, check),
    h("td", { class: "col-name" }, icon(kind, `kind kind-${kind}`), name,
      entry.type === "link" && entry.link_target ? h("span", { class: "link-target" }, ` → ${entry.link_target}`) : null),
    h("td", { class: "num col-size" }, isDir ? "" : bytes(entry.size)),
    h("td", { class: "col-date" }, dateTime(entry.last_modified)),
    );
    tr.addEventListener("click", (ev) => this.clickRow(entry, ev));
    tr.addEventListener("dblclick", () => this.enter(entry));
    tr.addEventListener("focus", () => {
      this.focusName = entry.name;
    });
    return tr;
  }

  enter(entry, options = {}) {
    if (entry.type === "dir") this.navigate(`${joinPath(this.path, entry.name)}/`, options);
  }

  clickRow(entry, ev) {
    const name = entry.name;
    if (ev.shiftKey && this.anchor) {
      const names = this.sorted().map((e) => e.name);
      const [a, b] = [names.indexOf(this.anchor), names.indexOf(name)].sort((x, y) => x - y);
      if (a >= 0) names.slice(a, b + 1).forEach((n) => this.selected.add(n));
    } else if (ev.ctrlKey || ev.metaKey) {
      if (this.selected.has(name)) this.selected.delete(name);
      else this.selected.add(name);
      this.anchor = name;
    } else {
      this.selected = new Set([name]);
      this.anchor = name;
    }
    this.renderSelection();
  }

  rows() {
    return [...this.tbody.querySelectorAll("tr")];
  }

  focusRow(tr) {
    if (!tr) return;
    for (const row of this.rows()) row.tabIndex = row === tr ? 0 : -1;
    tr.focus();
  }

  onKey(ev) {
    const tr = ev.target.closest("tr");
    if (!tr || ev.target !== tr) return;
    const rows = this.rows();
    const i = rows.indexOf(tr);
    const entry = this.entries.find((e) => e.name === tr.dataset.name);
    const toggle = (row) => {
      const n = row.dataset.name;
      if (this.selected.has(n)) this.selected.delete(n);
      else this.selected.add(n);
      this.anchor = n;
      this.renderSelection();
    };
    switch (ev.key) {
      case "ArrowDown":
      case "ArrowUp": {
        ev.preventDefault();
        const next = rows[Math.max(0, Math.min(rows.length - 1, i + (ev.key === "ArrowDown" ? 1 : -1)))];
        if (ev.shiftKey && next !== tr && !this.selected.has(next.dataset.name)) toggle(next);
        this.focusRow(next);
        break;
      }
      case "Home":
      case "End":
        ev.preventDefault();
        this.focusRow(ev.key === "Home" ? rows[0] : rows[rows.length - 1]);
        break;
      case " ":
        ev.preventDefault();
        toggle(tr);
        break;
      case "Enter":
        ev.preventDefault();
        if (entry && entry.type === "dir") this.enter(entry, { focus: true });
        else toggle(tr);
        break;
      case "Backspace":
        ev.preventDefault();
        this.up({ focus: true });
        break;
      case "Delete":
        ev.preventDefault();
        if (this.selected.size) this.remove();
        break;
      case "F2":
        ev.preventDefault();
        if (this.selected.size === 1) this.rename();
        break;
      case "a":
        if (ev.ctrlKey || ev.metaKey) {
          ev.preventDefault();
          this.entries.forEach((e) => this.selected.add(e.name));
          this.renderSelection();
        }
        break;
      default:
    }
  }

  renderChrome() {
    const ready = Boolean(this.collection) && this.panel.connected;
    if (this.path && document.activeElement !== this.pathInput) this.pathInput.value = this.path;
    this.upButton.disabled = !ready || !this.path || this.path === "/";
    this.buttons.newFolder.disabled = !ready || Boolean(this.problem);
    this.buttons.refresh.disabled = !ready;
    this.selectAll.disabled = !this.entries.length;
    this.renderCrumbs();
  }

  renderCrumbs() {
    if (!this.collection || !this.path) {
      fill(this.crumbs);
      return;
    }
    const parts = this.path.split("/").filter(Boolean);
    const items = [{ label: this.collection.name, path: "/" }];
    parts.forEach((part, i) => items.push({ label: part, path: `/${parts.slice(0, i + 1).join("/")}/` }));
    fill(this.crumbs, items.map((item, i) => {
      const last = i === items.length - 1;
      const control = last
        ? h("span", { "aria-current": "location", class: "crumb-current" }, item.label)
        : h("button", { type: "button", class: "crumb", onclick: () => this.navigate(item.path) }, item.label);
      return h("li", { class: i === 0 ? "crumb-root" : "" }, control);
    }));
  }

  renderSelection() {
    const n = this.selected.size;
    for (const tr of this.rows()) {
      const on = this.selected.has(tr.dataset.name);
      tr.setAttribute("aria-selected", on ? "true" : "false");
      const box = tr.querySelector("input[type=checkbox]");
      if (box) box.checked = on;
    }
    this.selectAll.checked = n > 0 && n === this.entries.length;
    this.selectAll.indeterminate = n > 0 && n < this.entries.length;
    this.buttons.rename.disabled = n !== 1;
    this.buttons.del.disabled = n === 0;
    const total = this.entries.length;
    this.status.textContent = !this.collection || this.problem ? "" : n ? `${n} of ${total} selected` : `${total} ${total === 1 ? "item" : "items"}`;
    this.panel.updateTransferButtons();
  }

  selectedEntries() {
    return this.entries.filter((e) => this.selected.has(e.name));
  }

  // -- actions (./fileops.js) ---------------------------------------------------
  newFolder() {
    return newFolder(this);
  }

  rename() {
    return renameEntry(this);
  }

  remove() {
    return deleteEntries(this);
  }
}
