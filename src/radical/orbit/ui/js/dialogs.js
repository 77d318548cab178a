// Modal dialogs on the native <dialog> element: it traps focus, makes the page behind
// it inert and closes on Escape; focus returns to the control that opened it.

import { h, nextId } from "./dom.js";

function openDialog(dialog, { onClose } = {}) {
  const opener = document.activeElement;
  document.body.appendChild(dialog);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (onClose) onClose(dialog.returnValue);
    if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
  });
  dialog.showModal();
  return dialog;
}

/**
 * Ask for confirmation. Resolves true when the user chose the action.
 * @param {object} o title, body (nodes or strings), confirm (button text), cancel, danger
 */
export function confirmDialog({ title, body = [], confirm = "OK", cancel = "Cancel", danger = false }) {
  return new Promise((resolve) => {
    const titleId = nextId("dlg");
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": titleId },
      h("form", { method: "dialog" },
        h("h2", { id: titleId }, title),
        h("div", { class: "dialog-body" }, body),
        h("div", { class: "dialog-actions" },
          h("button", { type: "submit", value: "cancel", class: "btn", autofocus: true }, cancel),
          h("button", { type: "submit", value: "ok", class: danger ? "btn btn-danger" : "btn btn-primary" }, confirm),
        ),
      ),
    );
    openDialog(dialog, { onClose: (value) => resolve(value === "ok") });
  });
}

/**
 * Ask for one line of text. Resolves the trimmed text, or null when cancelled.
 * `check(text)` returns an error message to show, or "" when the text is fine.
 */
export function promptDialog({ title, label, value = "", confirm = "OK", hint = "", check = () => "" }) {
  return new Promise((resolve) => {
    const titleId = nextId("dlg");
    const inputId = nextId("in");
    const errorId = nextId("err");
    const input = h("input", {
      id: inputId, type: "text", value, autocomplete: "off", spellcheck: "false",
      "aria-describedby": errorId, required: true,
    });
    const error = h("p", { id: errorId, class: "field-error", role: "alert" });
    let result = null;
    const form = h("form", { method: "dialog" },
      h("h2", { id: titleId }, title),
      h("div", { class: "dialog-body" },
        h("label", { for: inputId, class: "field-label" }, label),
        input,
        hint ? h("p", { class: "hint" }, hint) : null,
        error,
      ),
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "btn", onclick: () => dialog.close("cancel") }, "Cancel"),
        h("button", { type: "submit", value: "ok", class: "btn btn-primary" }, confirm),
      ),
    );
    form.addEventListener("submit", (ev) => {
      const text = input.value.trim();
      const problem = text ? check(text) : `${label} must not be empty`;
      if (problem) {
        ev.preventDefault();
        error.textContent = problem;
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      result = text;
    });
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId }, form);
    openDialog(dialog, { onClose: () => resolve(result) });
    input.focus();
    input.select();
  });
}

/** A non-modal-content dialog (details views): returns the dialog; close() removes it. */
export function infoDialog({ title, body, actions = [], wide = false }) {
  const titleId = nextId("dlg");
  const dialog = h(
    "dialog",
    { class: wide ? "dialog dialog-wide" : "dialog", "aria-labelledby": titleId },
    h("div", { class: "dialog-head" },
      h("h2", { id: titleId }, title),
    ),
    h("div", { class: "dialog-body" }, body),
    h("div", { class: "dialog-actions" },
      actions,
      h("button", { type: "button", class: "btn", onclick: () => dialog.close() }, "Close"),
    ),
  );
  openDialog(dialog);
  return dialog;
}
