// The transfer options drawer: what Globus does with the next transfer. Values stay
// for the following transfers (except the label, which names one task).

import { h, nextId } from "../dom.js";

const SYNC_LEVELS = [
  ["", "Copy everything"],
  ["exists", "Only files missing at the destination"],
  ["size", "Files whose size differs"],
  ["mtime", "Files newer at the source"],
  ["checksum", "Files whose checksum differs"],
];

function checkbox(label, checked, hint) {
  const id = nextId("opt");
  const hintId = hint ? nextId("hint") : null;
  const input = h("input", { id, type: "checkbox", checked, "aria-describedby": hintId });
  return {
    input,
    el: h("div", { class: "check" }, input, h("label", { for: id }, label), hint ? h("span", { id: hintId, class: "hint" }, hint) : null),
  };
}

export class TransferOptions {
  constructor() {
    const labelId = nextId("opt");
    const syncId = nextId("opt");
    const deadlineId = nextId("opt");
    this.label = h("input", { id: labelId, type: "text", maxlength: "128", autocomplete: "off", placeholder: "e.g. run 42 inputs" });
    this.sync = h("select", { id: syncId }, SYNC_LEVELS.map(([value, text]) => h("option", { value }, text)));
    this.deadline = h("input", { id: deadlineId, type: "datetime-local" });
    this.verify = checkbox("Verify checksum", true);
    this.preserve = checkbox("Preserve timestamps", false);
    this.encrypt = checkbox("Encrypt", false);
    this.failFast = checkbox("Fail fast", false, "(cancel at the first fault)");
    this.skipErrors = checkbox("Skip source errors", false, "(missing or unreadable files)");
    this.summary = h("span", { class: "drawer-summary" });
    this.el = h("details", { class: "drawer" },
      h("summary", null, h("span", { class: "drawer-title" }, "Transfer options"), this.summary),
      h("div", { class: "drawer-body" },
        h("div", { class: "drawer-fields" },
          h("div", { class: "field" }, h("label", { for: labelId, class: "field-label" }, "Label"), this.label),
          h("div", { class: "field" }, h("label", { for: syncId, class: "field-label" }, "Sync level"), this.sync),
          h("div", { class: "field" }, h("label", { for: deadlineId, class: "field-label" }, "Deadline"), this.deadline),
        ),
        h("div", { class: "drawer-checks" },
          this.verify.el, this.preserve.el, this.encrypt.el, this.failFast.el, this.skipErrors.el),
      ),
    );
    for (const input of [this.label, this.sync, this.deadline, this.verify.input, this.preserve.input, this.encrypt.input, this.failFast.input, this.skipErrors.input]) {
      input.addEventListener("change", () => this.renderSummary());
      input.addEventListener("input", () => this.renderSummary());
    }
    this.renderSummary();
  }

  renderSummary() {
    const parts = [];
    if (this.label.value.trim()) parts.push(`“${this.label.value.trim()}”`);
    parts.push(this.sync.value ? `sync: ${this.sync.value}` : "copy all");
    if (this.verify.input.checked) parts.push("verify");
    if (this.preserve.input.checked) parts.push("keep times");
    if (this.encrypt.input.checked) parts.push("encrypt");
    if (this.failFast.input.checked) parts.push("fail fast");
    if (this.skipErrors.input.checked) parts.push("skip source errors");
    if (this.deadline.value) parts.push(`deadline ${this.deadline.value.replace("T", " ")}`);
    this.summary.textContent = parts.join(" · ");
  }

  /** The submit_transfer options, or throws Error with a message naming the field. */
  values() {
    const out = {
      verify_checksum: this.verify.input.checked,
      preserve_timestamp: this.preserve.input.checked,
      encrypt_data: this.encrypt.input.checked,
      fail_fast: this.failFast.input.checked,
      skip_source_errors: this.skipErrors.input.checked,
    };
    const label = this.label.value.trim();
    if (label) out.label = label;
    if (this.sync.value) out.sync_level = this.sync.value;
    if (this.deadline.value) {
      const when = new Date(this.deadline.value);
      if (Number.isNaN(when.getTime())) throw new Error("Deadline is not a valid date and time");
      if (when.getTime() <= Date.now()) throw new Error("Deadline lies in the past; pick a later time or clear it");
      out.deadline = when.toISOString();
    }
    return out;
  }

  /** After a submission: the label named that task only. */
  used() {
    this.label.value = "";
    this.renderSummary();
  }
}
