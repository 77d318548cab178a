// Short messages in the corner: results of actions and errors. Errors stay until
// dismissed (they often name a fix); other messages fade after a few seconds.

import { h, icon } from "./dom.js";

let area = null;

export function toastArea(el) {
  area = el;
}

export function toast(message, { tone = "info", title = "", timeout = 5000 } = {}) {
  if (!area) return;
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss message" }, icon("close"));
  const item = h(
    "div",
    { class: `toast toast-${tone}`, role: tone === "error" ? "alert" : "status" },
    icon(tone === "error" ? "alert" : tone === "ok" ? "check" : "info", "toast-icon"),
    h("div", { class: "toast-text" }, title ? h("strong", null, title) : null, h("span", null, message)),
    close,
  );
  close.addEventListener("click", () => item.remove());
  area.appendChild(item);
  while (area.children.length > 5) area.firstElementChild.remove();
  if (tone !== "error" && timeout) setTimeout(() => item.remove(), timeout);
  return item;
}

export function toastError(title, err) {
  const message = err && err.message ? err.message : String(err);
  return toast(message, { tone: "error", title });
}
