// Calls to the bridge, same origin, with the sign-in cookie (HttpOnly: this code never
// sees it). Every call carries the CSRF header the bridge asks of cookie requests.

export class ApiError extends Error {
  constructor(status, body) {
    const data = body && typeof body === "object" ? body : {};
    super(typeof data.message === "string" && data.message ? data.message : `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = typeof data.code === "string" ? data.code : "";
    this.details = data.details && typeof data.details === "object" ? data.details : {};
  }

  /** The bridge refused the sign-in cookie (not a Globus 401, which has its own codes). */
  get signedOut() {
    return this.status === 401 && (this.code === "unauthorized" || this.code === "");
  }
}

const unauthorizedHandlers = new Set();

/** Called when any call finds the browser signed out (cookie expired or revoked). */
export function onSignedOut(fn) {
  unauthorizedHandlers.add(fn);
}

export async function api(method, path, body, { keepalive = false } = {}) {
  const headers = { Accept: "application/json", "X-Orbit-CSRF": "1" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store", redirect: "error", keepalive };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (exc) {
    throw new ApiError(0, { code: "network", message: "the bridge cannot be reached; check that it is running" });
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: `HTTP ${resp.status}: the answer was not JSON` };
    }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    if (err.signedOut) for (const fn of unauthorizedHandlers) fn(err);
    throw err;
  }
  return data;
}

/** POST /{endpoint}/{plugin}/{route} through the bridge's relay. */
export function callPlugin(endpoint, plugin, route, body = {}, options = {}) {
  return api("POST", `/${encodeURIComponent(endpoint)}/${encodeURIComponent(plugin)}/${route}`, body, options);
}

/** A short human message for an error (what the server said, else the status). */
export function describe(err) {
  if (err instanceof ApiError) return err.message;
  if (err && typeof err.message === "string") return err.message;
  return String(err);
}
