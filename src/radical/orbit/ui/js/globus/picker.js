// The "Collection" field of a pane: a combobox that offers this endpoint's local
// collection, the collections used recently (this page's memory only) and, as you
// type, Globus' endpoint search. A pasted collection UUID is taken as it is.

import { describe } from "../api.js";
import { fill, h, nextId } from "../dom.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SEARCH_DELAY = 250;

export class CollectionPicker {
  /**
   * @param panel the Globus panel (api, local collection, recent list)
   * @param onPick called with {id, name} when the user chooses a collection
   */
  constructor(panel, side, onPick) {
    this.panel = panel;
    this.onPick = onPick;
    this.current = null;
    this.options = [];
    this.active = -1;
    this.searchTimer = null;
    this.searchSeq = 0;
    this.results = [];
    this.searchNote = "";
    const inputId = nextId(`coll-${side}`);
    this.listId = nextId(`coll-list-${side}`);
    this.input = h("input", {
      id: inputId,
      type: "text",
      role: "combobox",
      "aria-autocomplete": "list",
      "aria-expanded": "false",
      "aria-controls": this.listId,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "Search collections or paste a UUID",
      class: "combo-input",
    });
    this.list = h("div", { id: this.listId, role: "listbox", class: "combo-list", hidden: true, "aria-label": "Collections" });
    this.el = h("div", { class: "field field-collection" },
      h("label", { for: inputId, class: "field-label" }, "Collection"),
      h("div", { class: "combo" }, this.input, this.list),
    );
    this.input.addEventListener("focus", () => {
      this.input.select();
      this.open();
    });
    this.input.addEventListener("input", () => this.onInput());
    this.input.addEventListener("keydown", (ev) => this.onKey(ev));
    this.input.addEventListener("blur", () => setTimeout(() => this.close(true), 120));
    this.list.addEventListener("mousedown", (ev) => ev.preventDefault()); // keep focus in the input
  }

  set(collection) {
    this.current = collection;
    this.input.value = collection ? collection.name : "";
  }

  onInput() {
    clearTimeout(this.searchTimer);
    const text = this.input.value.trim();
    this.results = [];
    this.searchNote = "";
    if (text.length >= 2 && !UUID.test(text)) {
      this.searchNote = "Searching…";
      this.searchTimer = setTimeout(() => this.search(text), SEARCH_DELAY);
    }
    this.open();
  }

  async search(text) {
    const seq = ++this.searchSeq;
    try {
      const res = await this.panel.api.call("endpoint_search", { filter_text: text, limit: 25 });
      if (seq !== this.searchSeq) return;
      const items = Array.isArray(res && res.DATA) ? res.DATA : [];
      this.results = items.filter((e) => e && typeof e.id === "string").map((e) => ({
        id: e.id,
        name: typeof e.display_name === "string" && e.display_name ? e.display_name : e.id,
        note: [e.owner_string, e.entity_type].filter((x) => typeof x === "string" && x).join(" · "),
      }));
      this.searchNote = this.results.length ? "" : `No collection matches “${text}”`;
    } catch (err) {
      if (seq !== this.searchSeq) return;
      this.searchNote = `Search failed: ${describe(err)}`;
    }
    if (document.activeElement === this.input) this.open();
  }

  groups() {
    const text = this.input.value.trim();
    const lower = text.toLowerCase();
    const groups = [];
    if (UUID.test(text)) groups.push(["Collection id", [{ id: text.toLowerCase(), name: text.toLowerCase(), note: "open by id" }]]);
    const typed = text && (!this.current || text !== this.current.name);
    const keep = (c) => !typed || c.name.toLowerCase().includes(lower) || c.id.startsWith(lower);
    const local = this.panel.local;
    if (local && keep(local)) groups.push(["This endpoint", [{ ...local, note: "local collection" }]]);
    const recent = this.panel.recent.filter((c) => (!local || c.id !== local.id) && keep(c));
    if (recent.length) groups.push(["Recent", recent.map((c) => ({ ...c, note: "recently used" }))]);
    if (this.results.length) groups.push(["Search results", this.results]);
    return groups;
  }

  open() {
    const groups = this.groups();
    this.options = [];
    const nodes = groups.map(([label, items]) => {
      const gid = nextId("grp");
      return h("div", { role: "group", "aria-labelledby": gid, class: "combo-group" },
        h("div", { id: gid, class: "combo-group-label", role: "presentation" }, label),
        items.map((item) => {
          const index = this.options.length;
          const opt = h("div", {
            id: nextId("opt"), role: "option", class: "combo-option", "aria-selected": "false",
            onclick: () => this.pick(index),
          },
          h("span", { class: "combo-option-name" }, item.name),
          item.note ? h("span", { class: "combo-option-note" }, item.note) : null);
          this.options.push({ item, node: opt });
          return opt;
        }),
      );
    });
    const note = this.searchNote || (!this.options.length ? "Type part of a collection name to search Globus." : "");
    fill(this.list, nodes, note ? h("div", { class: "combo-note", role: "presentation" }, note) : null);
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.setActive(this.options.length && this.active >= 0 ? Math.min(this.active, this.options.length - 1) : -1);
  }

  close(restore) {
    clearTimeout(this.searchTimer);
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    this.active = -1;
    if (restore && document.activeElement !== this.input) this.input.value = this.current ? this.current.name : "";
  }

  setActive(index) {
    this.active = index;
    this.options.forEach(({ node }, i) => node.setAttribute("aria-selected", i === index ? "true" : "false"));
    if (index >= 0 && this.options[index]) {
      const node = this.options[index].node;
      this.input.setAttribute("aria-activedescendant", node.id);
      node.scrollIntoView({ block: "nearest" });
    } else {
      this.input.removeAttribute("aria-activedescendant");
    }
  }

  onKey(ev) {
    const n = this.options.length;
    if (ev.key === "ArrowDown") {
      ev.preventDefault();
      if (this.list.hidden) this.open();
      else if (n) this.setActive((this.active + 1) % n);
    } else if (ev.key === "ArrowUp") {
      ev.preventDefault();
      if (n) this.setActive(this.active <= 0 ? n - 1 : this.active - 1);
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      const text = this.input.value.trim();
      if (this.active >= 0) this.pick(this.active);
      else if (UUID.test(text)) this.choose({ id: text.toLowerCase(), name: text.toLowerCase() });
      else if (n === 1) this.pick(0);
      else if (text.length >= 2) this.search(text);
    } else if (ev.key === "Escape") {
      if (!this.list.hidden) {
        ev.preventDefault();
        ev.stopPropagation();
        this.close(false);
        this.input.value = this.current ? this.current.name : "";
        this.input.select();
      }
    }
  }

  pick(index) {
    const entry = this.options[index];
    if (entry) this.choose({ id: entry.item.id, name: entry.item.name });
  }

  choose(collection) {
    this.searchSeq += 1;
    this.results = [];
    this.searchNote = "";
    this.set(collection);
    this.close(false);
    this.onPick(collection);
  }
}
