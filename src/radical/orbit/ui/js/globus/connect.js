// Connecting the endpoint to Globus: "Log in with Globus" (the endpoint runs the
// OAuth2 code + PKCE flow and keeps the tokens: the browser never holds one), or a
// pasted credential. Pasted values live only in these fields until Connect, which
// clears them whatever the outcome; nothing is stored anywhere.

import { callPlugin, describe } from "../api.js";
import { busy, h, icon, nextId } from "../dom.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function field(label, { secret = false, hint = "", placeholder = "" } = {}) {
  const id = nextId("cred");
  const hintId = hint ? nextId("hint") : null;
  const input = h("input", {
    id, type: secret ? "password" : "text", autocomplete: secret ? "new-password" : "off",
    spellcheck: "false", autocapitalize: "off", placeholder, "aria-describedby": hintId,
    "data-lpignore": "true", "data-1p-ignore": "true",
  });
  return {
    input,
    el: h("div", { class: "field" }, h("label", { for: id, class: "field-label" }, label), input, hint ? h("p", { id: hintId, class: "hint" }, hint) : null),
  };
}

/** Which credential the filled fields make, or an Error naming what is missing. */
export function credentialBody(values) {
  const { access, refresh, clientId, secret, local } = values;
  const body = {};
  if (access && (refresh || secret)) throw new Error("Give one credential: an access token, or a refresh token with its client ID, or a client ID with its secret.");
  if (refresh && !clientId) throw new Error("A refresh token needs the Client ID of the app it was issued to.");
  if (secret && !clientId) throw new Error("A client secret needs its Client ID.");
  if (clientId && !refresh && !secret) throw new Error("A Client ID alone is not a credential: add its refresh token or its client secret.");
  if (!access && !refresh && !secret) throw new Error("Paste a credential first, or use Log in with Globus.");
  if (clientId && !UUID.test(clientId)) throw new Error("Client ID must be a Globus client id (a UUID).");
  if (local && !UUID.test(local)) throw new Error("Local collection must be a collection UUID (or empty).");
  if (access) body.access_token = access;
  if (refresh) body.refresh_token = refresh;
  if (clientId) body.client_id = clientId;
  if (secret) body.client_secret = secret;
  if (local) body.local_collection = local;
  return body;
}

export class ConnectForm {
  constructor(panel, pluginInfo) {
    this.panel = panel;
    const discovered = pluginInfo && pluginInfo.local_collection;
    this.access = field("Access token", { secret: true });
    this.refresh = field("Refresh token", { secret: true });
    this.clientId = field("Client ID", { placeholder: "UUID of the Globus app" });
    this.secret = field("Client secret", { secret: true });
    this.local = field("Local collection", {
      placeholder: discovered ? String(discovered) : "collection UUID",
      hint: discovered
        ? `Optional. Empty: this endpoint's own (${discovered}).`
        : "Optional. This endpoint has no local collection configured; name one to use “local”.",
    });
    this.error = h("p", { class: "field-error", role: "alert" });
    this.loginButton = h("button", { type: "button", class: "btn btn-primary btn-large", onclick: () => this.login() }, icon("globe"), "Log in with Globus");
    this.connectButton = h("button", { type: "submit", class: "btn btn-primary" }, "Connect");
    const titleId = nextId("connect");
    this.form = h("form", { class: "connect-creds", novalidate: true, "aria-label": "Connect with a credential" },
      h("h3", null, "Or use a credential"),
      h("p", { class: "hint" }, "An access token; or a refresh token with its client ID; or a client ID with its secret (a confidential app, for automation)."),
      this.access.el,
      h("div", { class: "field-row" }, this.refresh.el, this.clientId.el),
      this.secret.el,
      this.local.el,
      this.error,
      h("div", { class: "form-actions" }, this.connectButton),
    );
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(this.connectButton, () => this.connect());
    });
    this.el = h("section", { class: "connect", "aria-labelledby": titleId },
      h("h2", { id: titleId }, `Connect ${panel.endpoint} to Globus`),
      h("div", { class: "connect-grid" },
        h("div", { class: "connect-login" },
          h("h3", null, "Recommended"),
          h("p", null, "Sign in at Globus in this window. The endpoint receives the tokens and keeps them in its memory; this page never sees one."),
          this.loginButton,
          h("p", { class: "hint" }, "Uses the Local collection below when you give one."),
        ),
        this.form,
      ),
    );
  }

  values() {
    return {
      access: this.access.input.value.trim(),
      refresh: this.refresh.input.value.trim(),
      clientId: this.clientId.input.value.trim(),
      secret: this.secret.input.value.trim(),
      local: this.local.input.value.trim(),
    };
  }

  clear() {
    for (const f of [this.access, this.refresh, this.clientId, this.secret, this.local]) f.input.value = "";
  }

  async connect() {
    this.error.textContent = "";
    let body;
    try {
      body = credentialBody(this.values());
    } catch (err) {
      this.error.textContent = err.message; // nothing was sent: leave the fields to fix
      return;
    }
    this.clear();
    try {
      const res = await callPlugin(this.panel.endpoint, "globus", "register_session", body);
      body = null;
      await this.panel.adopt(res.sid);
    } catch (err) {
      body = null;
      this.error.textContent = `Globus did not accept it: ${describe(err)}`;
    }
  }

  login() {
    this.error.textContent = "";
    const { local } = this.values();
    this.clear();
    if (local && !UUID.test(local)) {
      this.error.textContent = "Local collection must be a collection UUID (or empty).";
      return Promise.resolve();
    }
    return busy(this.loginButton, async () => {
      try {
        await this.panel.login(null, local || null);
      } catch (err) {
        this.error.textContent = `Log in with Globus failed: ${describe(err)}`;
      }
    });
  }
}
