// Activity: this identity's Globus tasks (from list_tasks, so a reload or another
// browser shows them), kept live by the plugin's notifications: status, bytes, files
// and rate as they move, faults as Globus reports them, and "stalled" when an active
// task has made no progress for a while.

import { describe } from "../api.js";
import { fill, h, icon, nextId } from "../dom.js";
import { ago, bytes, count, dateTime, duration, parseTime, percent, rate } from "../format.js";
import { confirmDialog } from "../dialogs.js";
import { toast, toastError } from "../toast.js";
import { openTaskDetail } from "./taskdetail.js";

export const STALL_MS = 120000; // an ACTIVE task without progress for this long is "stalled"
const LIST_LIMIT = 100;
const REFRESH_MS = 60000;

const TABS = [
  ["all", "All", () => true],
  ["active", "Active", (t) => t.status === "ACTIVE" || t.status === "INACTIVE"],
  ["succeeded", "Succeeded", (t) => t.status === "SUCCEEDED"],
  ["failed", "Failed", (t) => t.status === "FAILED"],
];

const QUIET_NICE = new Set(["", "OK", "Queued", "null"]);

export function isRunning(task) {
  return task.status === "ACTIVE" || task.status === "INACTIVE";
}

export class Activity {
  constructor(panel) {
    this.panel = panel;
    this.tasks = new Map(); // task_id -> task document (+ live fields)
    this.rows = new Map(); // task_id -> {tr, parts}
    this.tab = "all";
    this.total = null;
    this.loadError = null;
    this.refreshTimer = null;
    this.listSoon = null;
    this.build();
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  build() {
    const headingId = nextId("act");
    this.tabButtons = new Map();
    const panelId = nextId("act-panel");
    this.tablist = h("div", { role: "tablist", class: "tabs", "aria-label": "Task status" },
      TABS.map(([key, label]) => {
        const tab = h("button", {
          type: "button", role: "tab", id: nextId("tab"), class: "tab", "aria-controls": panelId,
          "aria-selected": key === this.tab ? "true" : "false", tabindex: key === this.tab ? "0" : "-1",
          onclick: () => this.setTab(key, true),
        }, label, h("span", { class: "tab-count num" }));
        this.tabButtons.set(key, tab);
        return tab;
      }),
    );
    this.tablist.addEventListener("keydown", (ev) => {
      const keys = TABS.map(([k]) => k);
      const i = keys.indexOf(this.tab);
      let next = null;
      if (ev.key === "ArrowRight") next = keys[(i + 1) % keys.length];
      else if (ev.key === "ArrowLeft") next = keys[(i + keys.length - 1) % keys.length];
      else if (ev.key === "Home") next = keys[0];
      else if (ev.key === "End") next = keys[keys.length - 1];
      if (next) {
        ev.preventDefault();
        this.setTab(next, true);
      }
    });
    this.tbody = h("tbody");
    this.table = h("table", { class: "grid tasks", "aria-label": "Tasks" },
      h("thead", null, h("tr", null,
        h("th", { scope: "col", class: "col-status" }, "Status"),
        h("th", { scope: "col" }, "Task"),
        h("th", { scope: "col", class: "col-progress" }, "Progress"),
        h("th", { scope: "col", class: "num col-rate" }, "Rate"),
        h("th", { scope: "col", class: "col-when" }, "Submitted"),
        h("th", { scope: "col", class: "col-actions" }, h("span", { class: "sr-only" }, "Actions")),
      )),
      this.tbody,
    );
    this.message = h("p", { class: "pane-empty" });
    this.note = h("span", { class: "activity-note muted" });
    this.tabpanel = h("div", { id: panelId, role: "tabpanel", class: "activity-body" }, this.table, this.message);
    this.el = h("section", { class: "activity", "aria-labelledby": headingId },
      h("div", { class: "activity-head" },
        h("h2", { id: headingId }, "Activity"), this.tablist, this.note),
      this.tabpanel,
    );
  }

  setTab(key, focus) {
    this.tab = key;
    for (const [k, tab] of this.tabButtons) {
      tab.setAttribute("aria-selected", k === key ? "true" : "false");
      tab.tabIndex = k === key ? 0 : -1;
      if (k === key && focus) tab.focus();
    }
    this.tabpanel.setAttribute("aria-labelledby", this.tabButtons.get(key).id);
    this.render();
  }

  destroy() {
    clearInterval(this.ticker);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.listSoon);
  }

  // -- data ------------------------------------------------------------------
  async load() {
    clearTimeout(this.refreshTimer);
    try {
      const res = await this.panel.api.call("list_tasks", { limit: LIST_LIMIT });
      const items = Array.isArray(res && res.DATA) ? res.DATA : [];
      for (const doc of items) if (doc && typeof doc.task_id === "string") this.merge(doc);
      this.total = typeof res.total === "number" ? res.total : null;
      this.loadError = null;
    } catch (err) {
      this.loadError = describe(err);
    }
    this.render();
    this.refreshTimer = setTimeout(() => this.load(), REFRESH_MS);
  }

  loadSoon() {
    clearTimeout(this.listSoon);
    this.listSoon = setTimeout(() => this.load(), 300);
  }

  merge(raw) {
    const now = Date.now();
    const doc = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
    const old = this.tasks.get(doc.task_id);
    const task = old ? Object.assign(old, doc) : { ...doc, seenAt: now, lastProgress: now };
    if (old && (doc.bytes_transferred !== undefined && doc.bytes_transferred !== old.lastBytes)) task.lastProgress = now;
    task.lastBytes = task.bytes_transferred;
    if (!isRunning(task)) task.fault = task.status === "FAILED" ? task.fault : null;
    this.tasks.set(doc.task_id, task);
    return task;
  }

  async fetchOne(taskId) {
    try {
      const doc = await this.panel.api.call("get_task", { task_id: taskId });
      if (doc && doc.task_id) this.merge(doc);
      this.render();
    } catch {
      // the list refresh will try again
    }
  }

  /** A task this page just submitted (before any notification names it). */
  added(res, extra) {
    this.merge({ task_id: res.task_id, status: res.status || "ACTIVE", request_time: new Date().toISOString(), bytes_transferred: 0, files_transferred: 0, ...extra });
    this.render();
    this.fetchOne(res.task_id);
  }

  onNotification(topic, p) {
    if (!p || typeof p.task_id !== "string") return;
    const known = this.tasks.has(p.task_id);
    const now = Date.now();
    if (topic === "transfer_status") {
      const task = this.merge({
        task_id: p.task_id, status: p.status, label: p.label ?? this.tasks.get(p.task_id)?.label,
        bytes_transferred: p.bytes_transferred, files_transferred: p.files_transferred, nice_status: p.nice_status,
      });
      if (!isRunning(task)) {
        task.bytes_per_second = 0;
        this.fetchOne(p.task_id);
        this.panel.taskFinished(task);
      } else if (QUIET_NICE.has(String(p.nice_status ?? ""))) {
        task.fault = null;
      }
    } else if (topic === "transfer_progress") {
      const task = this.merge({
        task_id: p.task_id, status: p.status || "ACTIVE", bytes_transferred: p.bytes_transferred,
        files_transferred: p.files_transferred, files: p.files, subtasks_total: p.subtasks_total,
        subtasks_succeeded: p.subtasks_succeeded, effective_bytes_per_second: p.effective_bytes_per_second,
      });
      task.bytes_per_second = p.bytes_per_second;
      task.lastProgress = now;
    } else if (topic === "transfer_fault") {
      const task = this.merge({ task_id: p.task_id, nice_status: p.nice_status, faults: p.faults });
      task.fault = { code: p.code, description: p.description, time: p.time, cancelling: Boolean(p.cancelling) };
    } else {
      return;
    }
    if (!known) this.loadSoon();
    this.render();
    this.panel.taskChanged(p.task_id);
  }

  tick() {
    // relative times and "stalled" change with the clock, not with events
    for (const [id, row] of this.rows) {
      const task = this.tasks.get(id);
      if (task && row.tr.isConnected) this.updateTimes(row, task);
    }
  }

  // -- rendering -------------------------------------------------------------
  ordered() {
    const time = (t) => parseTime(t.request_time)?.getTime() || t.seenAt || 0;
    return [...this.tasks.values()].sort((a, b) => time(b) - time(a));
  }

  render() {
    const all = this.ordered();
    for (const [key, , test] of TABS) this.tabButtons.get(key).querySelector(".tab-count").textContent = String(all.filter(test).length);
    const test = TABS.find(([key]) => key === this.tab)[2];
    const shown = all.filter(test);
    const wanted = shown.map((t) => this.rowFor(t).tr);
    const current = [...this.tbody.children];
    if (wanted.length !== current.length || wanted.some((tr, i) => tr !== current[i])) {
      const focused = document.activeElement;
      this.tbody.replaceChildren(...wanted);
      if (focused && focused.isConnected && focused !== document.activeElement) focused.focus();
    }
    for (const t of shown) this.update(this.rows.get(t.task_id), t);
    this.message.hidden = shown.length > 0 && !this.loadError;
    this.message.textContent = this.loadError
      ? `Tasks could not be listed: ${this.loadError}`
      : all.length ? "No task in this tab." : "No tasks yet. Select files in a pane and transfer them.";
    this.note.textContent = this.total !== null && this.total > LIST_LIMIT ? `newest ${LIST_LIMIT} of ${count(this.total)}` : "";
  }

  rowFor(task) {
    let row = this.rows.get(task.task_id);
    if (row) return row;
    const parts = {
      badge: h("span", { class: "badge" }),
      sub: h("span", { class: "status-sub" }),
      title: h("button", { type: "button", class: "task-title link", onclick: () => this.details(task.task_id) }),
      route: h("span", { class: "task-route" }),
      fault: h("div", { class: "task-fault", hidden: true }),
      bar: h("div", { class: "progress", "aria-hidden": "true" }, h("div", { class: "progress-bar" })),
      amount: h("span", { class: "num" }),
      files: h("span", { class: "num muted" }),
      rate: h("td", { class: "num col-rate" }),
      when: h("td", { class: "col-when" }),
      actions: h("td", { class: "col-actions" }),
    };
    parts.cancel = h("button", { type: "button", class: "btn btn-small btn-quiet-danger", onclick: (ev) => this.cancel(task.task_id, ev.currentTarget) }, icon("stop"), "Cancel");
    const tr = h("tr", { dataset: { task: task.task_id } },
      h("td", { class: "col-status" }, parts.badge, parts.sub),
      h("td", { class: "col-task" }, parts.title, parts.route, parts.fault),
      h("td", { class: "col-progress" }, h("div", { class: "amounts" }, parts.amount, parts.files), parts.bar),
      parts.rate, parts.when, parts.actions,
    );
    row = { tr, parts };
    this.rows.set(task.task_id, row);
    return row;
  }

  update(row, t) {
    const { parts } = row;
    const status = String(t.status || "UNKNOWN");
    parts.badge.textContent = status;
    parts.badge.className = `badge badge-${status.toLowerCase()}`;
    const type = t.type === "DELETE" ? "Delete" : "Transfer";
    parts.title.textContent = t.label ? String(t.label) : `${type} ${String(t.task_id).slice(0, 8)}`;
    parts.title.setAttribute("aria-label", `Details of ${parts.title.textContent}`);
    const src = t.source_endpoint_display_name || t.source_endpoint_id || "";
    const dst = t.destination_endpoint_display_name || t.destination_endpoint_id || "";
    parts.route.textContent = t.type === "DELETE" ? `${type} on ${src || dst}` : src || dst ? `${src} → ${dst}` : type;
    const fault = t.fault;
    const nice = t.nice_status && !QUIET_NICE.has(String(t.nice_status)) ? String(t.nice_status) : "";
    if (fault && isRunning(t)) {
      parts.fault.hidden = false;
      const code = String(fault.code || nice || "FAULT");
      const said = fault.description && String(fault.description).toUpperCase() !== code.toUpperCase() ? String(fault.description) : "";
      fill(parts.fault, icon("alert", "fault-icon"),
        h("strong", null, code), said ? ` ${said}` : "",
        t.faults ? ` (${count(t.faults)} ${t.faults === 1 ? "fault" : "faults"}, Globus keeps retrying)` : "",
        fault.cancelling ? " — cancelling (fail fast)" : "");
    } else if (t.status === "FAILED" && t.fatal_error && typeof t.fatal_error === "object") {
      parts.fault.hidden = false;
      const code = String(t.fatal_error.code || "FAILED");
      const said = String(t.fatal_error.description || "");
      fill(parts.fault, icon("alert", "fault-icon"), h("strong", null, code), said && said.toUpperCase() !== code.toUpperCase() ? ` ${said}` : "");
    } else {
      parts.fault.hidden = true;
    }
    // the status word's second line: why an active task is not moving (unless the fault line says it)
    parts.sub.textContent = !isRunning(t) ? "" : nice && !(fault && fault.code === nice) ? nice : t.nice_status === "Queued" ? "Queued" : "";
    parts.amount.textContent = bytes(t.bytes_transferred || 0);
    const files = t.type === "DELETE" ? t.subtasks_succeeded : t.files_transferred;
    const filesTotal = t.type === "DELETE" ? t.subtasks_total : t.files;
    parts.files.textContent = filesTotal ? `${count(files || 0)} / ${count(filesTotal)} files` : files ? `${count(files)} files` : "";
    const pct = t.status === "SUCCEEDED" ? 100 : percent(t.subtasks_succeeded || 0, t.subtasks_total || 0);
    const bar = parts.bar.firstChild;
    bar.style.width = `${pct === null ? 0 : pct.toFixed(1)}%`;
    parts.bar.dataset.state = status.toLowerCase();
    const speed = isRunning(t) ? t.bytes_per_second || t.effective_bytes_per_second : t.effective_bytes_per_second;
    parts.rate.textContent = rate(speed);
    if (isRunning(t)) {
      if (!parts.cancel.isConnected) fill(parts.actions, parts.cancel);
    } else if (parts.actions.firstChild) {
      const hadFocus = parts.actions.contains(document.activeElement);
      fill(parts.actions);
      if (hadFocus) parts.title.focus();
    }
    row.tr.classList.toggle("row-fault", Boolean(fault && isRunning(t)));
    this.updateTimes(row, t);
  }

  updateTimes(row, t) {
    const requested = parseTime(t.request_time);
    row.parts.when.textContent = requested ? ago(requested) : "—";
    row.parts.when.title = requested ? dateTime(requested) : "";
    const stalled = t.status === "ACTIVE" && Date.now() - (t.lastProgress || t.seenAt) > STALL_MS;
    row.tr.classList.toggle("row-stalled", stalled);
    let tag = row.parts.stalled;
    if (stalled) {
      if (!tag) {
        tag = h("span", { class: "stalled" });
        row.parts.stalled = tag;
      }
      tag.textContent = `stalled: no progress for ${duration(Date.now() - (t.lastProgress || t.seenAt))}`;
      if (!tag.isConnected) row.parts.sub.after(tag);
    } else if (tag && tag.isConnected) {
      tag.remove();
    }
  }

  // -- actions ---------------------------------------------------------------
  details(taskId) {
    const task = this.tasks.get(taskId);
    if (task) openTaskDetail(this.panel, this, task);
  }

  async cancel(taskId, control) {
    const task = this.tasks.get(taskId);
    if (!task) return;
    const name = task.label ? `“${task.label}”` : `task ${String(taskId).slice(0, 8)}`;
    const ok = await confirmDialog({
      title: `Cancel ${name}?`,
      body: [h("p", null, "Globus stops the task. Files already copied stay at the destination.")],
      confirm: "Cancel task",
      cancel: "Keep running",
      danger: true,
    });
    if (!ok) return;
    if (control) control.disabled = true;
    try {
      const res = await this.panel.api.call("cancel_task", { task_id: taskId });
      toast(res && res.message ? String(res.message) : "Cancel requested", { tone: "ok" });
      this.fetchOne(taskId);
    } catch (err) {
      toastError("Cancel failed", err);
    } finally {
      if (control) control.disabled = false;
    }
  }
}
