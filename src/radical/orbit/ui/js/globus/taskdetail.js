// The detail view of one task: Globus' task document, its event log (faults included)
// and the files it skipped. It follows the task live while open.

import { describe } from "../api.js";
import { fill, h, icon } from "../dom.js";
import { bytes, count, dateTime, rate } from "../format.js";
import { infoDialog } from "../dialogs.js";

function row(label, value, cls = "") {
  return [h("dt", null, label), h("dd", { class: cls }, value === null || value === undefined || value === "" ? "—" : String(value))];
}

function yesNo(value) {
  return value === true ? "yes" : value === false ? "no" : "—";
}

const SYNC = { 0: "exists", 1: "size", 2: "mtime", 3: "checksum" };

export function openTaskDetail(panel, activity, task) {
  const facts = h("dl", { class: "facts facts-2" });
  const events = h("div", { class: "detail-section" }, h("p", { class: "muted" }, "Loading events…"));
  const skipped = h("div", { class: "detail-section" }, h("p", { class: "muted" }, "Loading…"));
  const taskId = task.task_id;
  const cancel = h("button", { type: "button", class: "btn btn-danger", onclick: (ev) => activity.cancel(taskId, ev.currentTarget) }, icon("stop"), "Cancel task");

  const renderFacts = () => {
    const t = activity.tasks.get(taskId) || task;
    const running = t.status === "ACTIVE" || t.status === "INACTIVE";
    cancel.hidden = !running;
    fill(facts,
      row("Status", t.nice_status && t.nice_status !== "OK" && running ? `${t.status} (${t.nice_status})` : t.status),
      row("Task id", t.task_id, "mono"),
      row("Type", t.type),
      row("Label", t.label),
      row("Source", t.source_endpoint_display_name || t.source_endpoint_id),
      row("Destination", t.destination_endpoint_display_name || t.destination_endpoint_id),
      row("Submitted", dateTime(t.request_time)),
      row("Completed", t.completion_time ? dateTime(t.completion_time) : null),
      row("Deadline", t.deadline ? dateTime(t.deadline) : null),
      row("Bytes", t.bytes_transferred !== undefined ? `${bytes(t.bytes_transferred)} (${count(t.bytes_transferred)} B)` : null),
      row("Files", t.files !== undefined ? `${count(t.files_transferred || 0)} of ${count(t.files)} transferred, ${count(t.files_skipped || 0)} skipped` : null),
      row("Folders", t.directories),
      row("Rate", rate(t.effective_bytes_per_second)),
      row("Faults", t.faults),
      row("Sync level", t.sync_level === null || t.sync_level === undefined ? "copy everything" : SYNC[t.sync_level] || t.sync_level),
      row("Verify checksum", yesNo(t.verify_checksum)),
      row("Preserve timestamps", yesNo(t.preserve_timestamp)),
      row("Encrypt", yesNo(t.encrypt_data)),
      row("Skip source errors", yesNo(t.skip_source_errors)),
      t.fatal_error && typeof t.fatal_error === "object" ? row("Error", `${t.fatal_error.code || ""} ${t.fatal_error.description || ""}`.trim()) : null,
    );
  };

  const loadEvents = async () => {
    try {
      const res = await panel.api.call("task_events", { task_id: taskId, limit: 100 });
      const items = Array.isArray(res && res.DATA) ? res.DATA : [];
      fill(events, items.length
        ? h("table", { class: "grid events", "aria-label": "Event log" },
            h("thead", null, h("tr", null, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Event"), h("th", { scope: "col" }, "Description"))),
            h("tbody", null, items.map((e) => h("tr", { class: e.is_error ? "event-error" : "" },
              h("td", { class: "num nowrap" }, dateTime(e.time)),
              h("td", { class: "mono" }, String(e.code ?? "")),
              h("td", null, String(e.description ?? ""), e.details ? h("div", { class: "event-details mono" }, String(e.details)) : null),
            ))))
        : h("p", { class: "muted" }, "No events yet."));
    } catch (err) {
      fill(events, h("p", { class: "callout callout-error" }, `Events unavailable: ${describe(err)}`));
    }
  };

  const loadSkipped = async () => {
    try {
      const res = await panel.api.call("skipped_errors", { task_id: taskId });
      const items = Array.isArray(res && res.DATA) ? res.DATA : [];
      fill(skipped, items.length
        ? h("table", { class: "grid events", "aria-label": "Skipped errors" },
            h("thead", null, h("tr", null, h("th", { scope: "col" }, "Path"), h("th", { scope: "col" }, "Error"), h("th", { scope: "col" }, "Details"))),
            h("tbody", null, items.map((e) => h("tr", null,
              h("td", { class: "mono" }, String(e.source_path ?? e.destination_path ?? "")),
              h("td", { class: "mono" }, String(e.error_code ?? "")),
              h("td", null, String(e.error_details ?? "")),
            ))))
        : h("p", { class: "muted" }, "No skipped files."));
    } catch (err) {
      fill(skipped, h("p", { class: "muted" }, `Skipped files unavailable: ${describe(err)}`));
    }
  };

  renderFacts();
  const dialog = infoDialog({
    title: task.label ? `Task “${task.label}”` : `Task ${String(taskId).slice(0, 8)}`,
    wide: true,
    body: [
      facts,
      h("h3", null, "Event log"), events,
      h("h3", null, "Skipped errors"), skipped,
    ],
    actions: [cancel],
  });
  loadEvents();
  loadSkipped();

  // follow the task while the dialog is open
  let pending = null;
  const stop = panel.onTaskChange((id) => {
    if (id !== taskId) return;
    renderFacts();
    clearTimeout(pending);
    pending = setTimeout(() => {
      loadEvents();
      const t = activity.tasks.get(taskId);
      if (t && t.status !== "ACTIVE" && t.status !== "INACTIVE") loadSkipped();
    }, 1500);
  });
  dialog.addEventListener("close", () => {
    stop();
    clearTimeout(pending);
  });
  return dialog;
}
