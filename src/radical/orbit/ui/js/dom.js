// DOM helpers. Every string reaches the page as a text node or an attribute value,
// never as markup: nothing here parses HTML, so data from a server cannot run.

const PROPS = new Set(["value", "checked", "disabled", "hidden", "indeterminate", "selected", "open"]);

/** Build an element: h("button", {class: "x", onclick: fn, "aria-label": "Go"}, "text", child). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

export function setProps(el, props) {
  if (!props) return el;
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (PROPS.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  return el;
}

/** Append strings (as text), nodes and (nested) arrays; null/false are skipped. */
export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

/** Replace the children of el. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// Icons: simple line drawings on a 24x24 grid, built as SVG nodes (no markup parsing).
const ICONS = {
  folder: ["M3 6.5A1.5 1.5 0 0 1 4.5 5h4.2l2 2.2h8.8A1.5 1.5 0 0 1 21 8.7V18a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 18z"],
  file: ["M6 3h8l4 4v14H6z", "M14 3v4h4"],
  link: ["M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1", "M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1"],
  up: ["M12 19V5", "M6 11l6-6 6 6"],
  refresh: ["M20 11a8 8 0 1 0-2.3 5.7", "M20 4v7h-7"],
  plusFolder: ["M3 6.5A1.5 1.5 0 0 1 4.5 5h4.2l2 2.2h8.8A1.5 1.5 0 0 1 21 8.7V18a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 18z", "M12 10.5v6", "M9 13.5h6"],
  pencil: ["M4 20h4L19 9l-4-4L4 16z", "M13.5 6.5l4 4"],
  trash: ["M4 7h16", "M9 7V4h6v3", "M6 7l1 13h10l1-13", "M10 11v6", "M14 11v6"],
  right: ["M4 12h15", "M13 6l6 6-6 6"],
  left: ["M20 12H5", "M11 6l-6 6 6 6"],
  search: ["M10.5 17a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13z", "M15.5 15.5L21 21"],
  close: ["M6 6l12 12", "M18 6L6 18"],
  chevron: ["M6 9l6 6 6-6"],
  server: ["M4 4h16v6H4z", "M4 14h16v6H4z", "M8 7h.01", "M8 17h.01"],
  check: ["M5 12.5l4.5 4.5L19 7"],
  alert: ["M12 3l10 18H2z", "M12 10v5", "M12 18h.01"],
  stop: ["M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M9 9h6v6H9z"],
  home: ["M3 11l9-8 9 8", "M5 9.5V20h14V9.5"],
  signout: ["M15 4h4v16h-4", "M10 8l-4 4 4 4", "M6 12h10"],
  globe: ["M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M3 12h18", "M12 3c2.5 2.5 3.5 5.5 3.5 9s-1 6.5-3.5 9c-2.5-2.5-3.5-5.5-3.5-9s1-6.5 3.5-9z"],
  sliders: ["M4 6h10", "M18 6h2", "M4 12h4", "M12 12h8", "M4 18h12", "M20 18h0", "M16 4v4", "M10 10v4", "M18 16v4"],
  info: ["M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z", "M12 11v6", "M12 7.5h.01"],
};

const SVG = "http://www.w3.org/2000/svg";

/** An icon as decoration: hidden from assistive technology (the control names itself). */
export function icon(name, cls = "") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `icon ${cls}`.trim());
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.appendChild(path);
  }
  return svg;
}

/** A small SVG line chart of values (0..max) for live load figures. */
export function sparkline(values, max, width = 160, height = 36) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "spark");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  if (values.length > 1) {
    const step = width / (values.length - 1);
    const top = Math.max(max, ...values, 0.01);
    const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.appendChild(line);
  }
  return svg;
}

let uid = 0;
/** A page-unique id for label/aria wiring. */
export function nextId(prefix = "id") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** Disable the control while an async action runs, so a double click cannot submit twice. */
export async function busy(control, action) {
  const was = control.disabled;
  control.disabled = true;
  control.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    control.disabled = was;
    control.removeAttribute("aria-busy");
  }
}
