// The Globus panel of one endpoint: finds (or opens) this identity's Globus session on
// it, then shows two file panes, the transfer options and the activity. The session id
// lives in this object only; a reload asks the endpoint for the identity's sessions.

import { api, callPlugin, describe } from "../api.js";
import { busy, fill, h } from "../dom.js";
import { toast, toastError } from "../toast.js";
import { Activity } from "./activity.js";
import { ConnectForm } from "./connect.js";
import { TransferOptions } from "./options.js";
import { FilePane } from "./pane.js";
import { joinPath } from "./paths.js";

const RECENT_MAX = 8;
const AUTH_MODES = {
  access_token: "an access token (not renewed)",
  refresh_token: "a refresh token",
  client_credentials: "client credentials",
};

/** Labels Globus accepts: letters, digits, space and - _ , . (generated ones only). */
function safeLabel(text) {
  return text.replace(/[^A-Za-z0-9 _,.-]+/g, "_").slice(0, 128);
}

class GlobusApi {
  constructor(endpoint) {
    this.endpoint = endpoint;
    this.sid = null;
    this.onLost = null;
  }

  async call(route, body = {}) {
    try {
      return await callPlugin(this.endpoint, "globus", route, { sid: this.sid, ...body });
    } catch (err) {
      if ((err.code === "session_not_found" || err.code === "session_expired") && this.onLost) this.onLost(err);
      throw err;
    }
  }
}

export class GlobusPanel {
  constructor(endpoint, stream, pluginInfo) {
    this.endpoint = endpoint;
    this.stream = stream;
    this.pluginInfo = pluginInfo || {};
    this.api = new GlobusApi(endpoint);
    this.api.onLost = () => this.lost();
    this.connected = false;
    this.session = null;
    this.local = null;
    this.recent = [];
    this.changeListeners = new Set();
    this.refreshAfter = new Map(); // task_id -> panes to refresh when it ends
    this.el = h("div", { class: "globus" });
    this.bar = h("div", { class: "globus-bar", role: "status" });
    this.body = h("div", { class: "globus-body" });
    this.el.append(this.bar, this.body);
    this.started = false;
    this.unsubscribe = stream.on((ev) => this.onEvent(ev));
  }

  show() {
    if (!this.started) {
      this.started = true;
      this.start();
    }
  }

  destroy() {
    this.unsubscribe();
    if (this.activity) this.activity.destroy();
  }

  async start() {
    fill(this.bar);
    fill(this.body, h("p", { class: "muted pad" }, "Looking for your Globus session on this endpoint…"));
    let sessions = [];
    try {
      const res = await callPlugin(this.endpoint, "globus", "sessions", {});
      sessions = (Array.isArray(res && res.sessions) ? res.sessions : []).filter((s) => s && typeof s.sid === "string");
      sessions.sort((a, b) => (Number(b.created) || 0) - (Number(a.created) || 0));
    } catch (err) {
      if (err.signedOut) return;
      toastError("Globus sessions could not be listed", err);
    }
    if (!sessions.length) {
      this.showConnect();
      return;
    }
    try {
      await this.adopt(sessions[0].sid, sessions[0]);
    } catch (err) {
      if (!err.signedOut) this.showConnect(`Your Globus session on ${this.endpoint} no longer works: ${describe(err)} Connect again.`);
    }
  }

  /** After the endpoint reconnected: is our session still there? */
  async recheck() {
    if (!this.connected || !this.api.sid) return;
    try {
      const res = await callPlugin(this.endpoint, "globus", "sessions", {});
      const sessions = Array.isArray(res && res.sessions) ? res.sessions : [];
      if (sessions.some((s) => s && s.sid === this.api.sid)) {
        if (this.activity) this.activity.load();
      } else {
        this.lost();
      }
    } catch {
      // the next call says what is wrong
    }
  }

  async showConnect(message = "") {
    this.connected = false;
    this.api.sid = null;
    this.session = null;
    if (!("local_collection" in this.pluginInfo)) {
      try {
        // the plugin's own facts name the local collection it discovered
        const info = await api("GET", `/${encodeURIComponent(this.endpoint)}/globus/`);
        if (info && typeof info === "object") this.pluginInfo = { ...this.pluginInfo, ...info };
      } catch {
        // the form works without the hint
      }
    }
    if (this.connected) return;
    const form = new ConnectForm(this, this.pluginInfo);
    fill(this.bar);
    fill(this.body, message ? h("p", { class: "callout callout-warn", role: "alert" }, message) : null, form.el);
  }

  /**
   * Use session `sid` (just registered, or found by the sessions route). Globus is asked
   * once first: an access token is not checked when the session opens, and a refused
   * credential is better said here than by every pane. A refused session is closed and
   * the error thrown.
   */
  async adopt(sid, known = null) {
    this.api.sid = sid;
    let info = known;
    if (!info || !("auth_mode" in info)) info = await this.api.call("session_info", {});
    const localId = info.local_collection ? String(info.local_collection) : null;
    let doc = null;
    try {
      doc = localId
        ? await this.api.call("get_endpoint", { endpoint_id: localId })
        : await this.api.call("endpoint_search", { filter_scope: "my-endpoints", limit: 1 });
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        this.api.sid = null;
        callPlugin(this.endpoint, "globus", "unregister_session", { sid }).catch(() => {});
        throw err;
      }
    }
    this.session = info;
    this.connected = true;
    this.local = null;
    if (localId) {
      const name = doc && localId && typeof doc.display_name === "string" && doc.display_name ? doc.display_name : localId;
      this.local = { id: localId, name };
    }
    this.renderBar();
    this.buildWorkspace();
    // watch the identity's running tasks from this session too, so their changes notify
    this.api.call("track", { timeout: 10 }).catch(() => {});
  }

  renderBar(problem = "") {
    const mode = AUTH_MODES[this.session && this.session.auth_mode] || "a credential";
    const disconnect = h("button", { type: "button", class: "btn btn-small", onclick: (ev) => busy(ev.currentTarget, () => this.disconnect()) }, "Disconnect");
    fill(this.bar,
      h("span", { class: problem ? "dot dot-bad" : "dot dot-ok", "aria-hidden": "true" }),
      h("span", null, problem || `Connected to Globus with ${mode}`),
      this.local ? h("span", { class: "muted" }, ` · local collection: ${this.local.name}`) : null,
      h("span", { class: "spacer" }),
      disconnect,
    );
  }

  buildWorkspace() {
    if (this.activity) this.activity.destroy();
    this.left = new FilePane(this, "left");
    this.right = new FilePane(this, "right");
    this.options = new TransferOptions();
    this.activity = new Activity(this);
    fill(this.body,
      h("div", { class: "panes" }, this.left.el, this.right.el),
      this.options.el,
      this.activity.el,
    );
    if (this.local) this.left.open(this.local, "/~/");
    this.activity.load();
  }

  async disconnect() {
    const sid = this.api.sid;
    try {
      if (sid) await callPlugin(this.endpoint, "globus", "unregister_session", { sid });
    } catch (err) {
      toastError("Disconnect failed", err);
      return;
    }
    if (this.activity) this.activity.destroy();
    this.activity = null;
    this.showConnect();
    toast("Disconnected: the endpoint dropped the Globus credential.", { tone: "ok" });
  }

  lost() {
    if (!this.connected) return;
    if (this.activity) this.activity.destroy();
    this.activity = null;
    this.showConnect("The Globus session on this endpoint has ended (the endpoint restarted, or it expired). Connect again; your tasks keep running at Globus.");
  }

  /** Start "Log in with Globus": the browser leaves for Globus Auth and comes back to callback.html. */
  async login(scopes = null, localCollection = null) {
    const body = { redirect_uri: `${location.origin}/ui/callback.html` };
    if (scopes && scopes.length) body.scopes = scopes;
    // a login for more consent keeps what "local" meant in the session it replaces
    const local = localCollection || (this.session && this.session.local_collection) || null;
    if (local) body.local_collection = local;
    try {
      const res = await callPlugin(this.endpoint, "globus", "login_start", body);
      if (!res || typeof res.authorize_url !== "string" || !/^https?:\/\//.test(res.authorize_url)) throw new Error("the endpoint gave no authorize URL");
      location.assign(res.authorize_url);
    } catch (err) {
      toastError("Log in with Globus failed", err);
      throw err;
    }
  }

  remember(collection) {
    this.recent = [collection, ...this.recent.filter((c) => c.id !== collection.id)].slice(0, RECENT_MAX);
  }

  updateTransferButtons() {
    if (!this.left || !this.right) return;
    for (const [from, to] of [[this.left, this.right], [this.right, this.left]]) {
      from.transferButton.disabled = !(this.connected && from.selected.size && from.collection && to.collection && to.path && !to.problem);
    }
  }

  async transfer(from, to) {
    const entries = from.selectedEntries();
    if (!entries.length || !to.collection) return;
    let opts;
    try {
      opts = this.options.values();
    } catch (err) {
      this.options.el.open = true;
      toastError("Transfer options", err);
      return;
    }
    const items = entries.map((e) => {
      const dir = e.type === "dir";
      return {
        source: joinPath(from.path, e.name) + (dir ? "/" : ""),
        destination: joinPath(to.path, e.name) + (dir ? "/" : ""),
        recursive: dir,
      };
    });
    if (!opts.label) opts.label = safeLabel(`${entries.length === 1 ? entries[0].name : `${entries.length} items`} to ${to.collection.name}`);
    const button = from.transferButton;
    await busy(button, async () => {
      try {
        const res = await this.api.call("submit_transfer", { source: from.collection.id, destination: to.collection.id, items, ...opts });
        this.options.used();
        from.selected.clear();
        from.renderSelection();
        this.submitted(res, [to], {
          type: "TRANSFER", label: opts.label,
          source_endpoint_display_name: from.collection.name, destination_endpoint_display_name: to.collection.name,
        });
        toast(`Transfer “${opts.label}” submitted`, { tone: "ok" });
      } catch (err) {
        toastError("Transfer failed", err);
      }
    });
    this.updateTransferButtons();
  }

  /** A task this page submitted: show it at once; refresh `panes` when it ends. */
  submitted(res, panes, extra = {}) {
    if (!res || typeof res.task_id !== "string") return;
    this.refreshAfter.set(res.task_id, panes);
    this.activity.added(res, extra);
  }

  taskFinished(task) {
    const panes = this.refreshAfter.get(task.task_id);
    if (!panes) return;
    this.refreshAfter.delete(task.task_id);
    for (const pane of panes) pane.refresh();
  }

  onTaskChange(fn) {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  taskChanged(taskId) {
    for (const fn of [...this.changeListeners]) fn(taskId);
  }

  onEvent(ev) {
    if ((ev.kind === "gap" || (ev.kind === "hello" && ev.resumed)) && this.activity) {
      this.activity.load(); // notifications may have been missed
      return;
    }
    if (ev.kind !== "notification" || ev.endpoint !== this.endpoint || ev.plugin !== "globus" || !this.activity) return;
    if (ev.topic === "auth_error") {
      const p = ev.payload || {};
      this.renderBar(`Globus refused the credential: ${p.message || "connect again"}`);
      return;
    }
    this.activity.onNotification(ev.topic, ev.payload);
  }
}
