// The file operations of a pane: New folder and Rename are direct Globus calls; Delete
// submits a Globus delete task (after a confirmation) that shows in the activity.

import { h } from "../dom.js";
import { confirmDialog, promptDialog } from "../dialogs.js";
import { toast, toastError } from "../toast.js";
import { joinPath } from "./paths.js";

function validName(text) {
  if (text.includes("/")) return "A name cannot contain “/”";
  if (text === "." || text === "..") return "Choose another name";
  return "";
}

export async function newFolder(pane) {
  const name = await promptDialog({ title: "New folder", label: "Folder name", confirm: "Create", check: validName, hint: `In ${pane.path}` });
  if (!name) return;
  try {
    await pane.panel.api.call("mkdir", { collection: pane.collection.id, path: joinPath(pane.path, name) });
    toast(`Created ${name}`, { tone: "ok" });
    pane.focusName = name;
    pane.selected = new Set([name]);
    await pane.navigate(pane.path, { keep: true });
  } catch (err) {
    toastError("New folder failed", err);
  }
}

export async function renameEntry(pane) {
  const [entry] = pane.selectedEntries();
  if (!entry) return;
  const name = await promptDialog({ title: `Rename “${entry.name}”`, label: "New name", value: entry.name, confirm: "Rename", check: validName });
  if (!name || name === entry.name) return;
  try {
    await pane.panel.api.call("rename", {
      collection: pane.collection.id, oldpath: joinPath(pane.path, entry.name), newpath: joinPath(pane.path, name),
    });
    toast(`Renamed ${entry.name} to ${name}`, { tone: "ok" });
    pane.selected = new Set([name]);
    pane.focusName = name;
    await pane.navigate(pane.path, { keep: true });
  } catch (err) {
    toastError("Rename failed", err);
  }
}

export async function deleteEntries(pane) {
  const entries = pane.selectedEntries();
  if (!entries.length) return;
  const dirs = entries.filter((e) => e.type === "dir").length;
  const names = entries.slice(0, 8).map((e) => h("li", null, e.type === "dir" ? `${e.name}/` : e.name));
  const ok = await confirmDialog({
    title: entries.length === 1 ? `Delete “${entries[0].name}”?` : `Delete ${entries.length} items?`,
    body: [
      h("p", null, `From ${pane.collection.name}, ${pane.path}. Globus deletes them in a delete task; this cannot be undone.`),
      h("ul", { class: "delete-list" }, names, entries.length > 8 ? h("li", null, `… and ${entries.length - 8} more`) : null),
      dirs ? h("p", { class: "warn-text" }, `${dirs === 1 ? "A folder is" : `${dirs} folders are`} deleted with everything inside.`) : null,
    ],
    confirm: "Delete",
    danger: true,
  });
  if (!ok) return;
  try {
    const res = await pane.panel.api.call("delete", {
      collection: pane.collection.id,
      paths: entries.map((e) => joinPath(pane.path, e.name) + (e.type === "dir" ? "/" : "")),
      recursive: dirs > 0,
      label: entries.length === 1 ? `Delete ${entries[0].name}`.slice(0, 128) : `Delete ${entries.length} items`,
    });
    pane.selected.clear();
    pane.renderSelection();
    pane.panel.submitted(res, [pane]);
    toast("Delete task submitted", { tone: "ok" });
  } catch (err) {
    toastError("Delete failed", err);
  }
}
