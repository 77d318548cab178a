// Numbers and times as people read them (decimal units, like Globus shows them).

const UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return "—";
  let value = Number(n);
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function rate(n) {
  if (!n) return "—";
  return `${bytes(n)}/s`;
}

export function count(n) {
  if (n === null || n === undefined) return "—";
  return Number(n).toLocaleString("en-US");
}

/** Globus times: "2024-05-01T12:00:00+00:00" or "2024-05-01 12:00:00+00:00". */
export function parseTime(text) {
  if (!text) return null;
  const date = new Date(String(text).replace(" ", "T"));
  return Number.isNaN(date.getTime()) ? null : date;
}

const pad = (n) => String(n).padStart(2, "0");

/** Local "YYYY-MM-DD HH:MM" (file lists: dense and sortable by eye). */
export function dateTime(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** "12 s", "4 min", "3 h", "2 d" from a duration in milliseconds. */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

export function ago(value, now = Date.now()) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  const ms = now - date.getTime();
  if (ms < 5000) return "just now";
  return `${duration(ms)} ago`;
}

export function shortId(id) {
  return id ? `${String(id).slice(0, 8)}…` : "—";
}

export function percent(part, whole) {
  if (!whole) return null;
  return Math.max(0, Math.min(100, (100 * part) / whole));
}
