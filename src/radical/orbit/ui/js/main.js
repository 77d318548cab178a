// Orbit Explorer: boot, sign-in, the shell (endpoints, connection indicator) and routing.
//
// Sign-in: `radical-orbit explorer` prints /ui/#signin=<one-time secret>. The secret is
// in the URL fragment (never sent to a server, not in logs or Referer); this page
// removes it from the address bar at once and trades it for an HttpOnly cookie.

import { api, describe, onSignedOut } from "./api.js";
import { fill, h } from "./dom.js";
import { EndpointList } from "./endpoints.js";
import { EndpointView } from "./endpoint.js";
import { EventStream } from "./stream.js";
import { toast, toastArea, toastError } from "./toast.js";

const $ = (selector) => document.querySelector(selector);

const state = {
  me: null,
  stream: null,
  endpoints: null,
  views: new Map(), // endpoint name -> EndpointView
  current: null,
  signedOut: false,
};

function takeSigninSecret() {
  const match = /^#signin=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!match && !location.hash.startsWith("#signin=")) return null;
  history.replaceState(null, "", `${location.pathname}${location.search}`);
  return match ? match[1] : "";
}

function showSignedOut(message) {
  state.signedOut = true;
  if (state.stream) state.stream.close();
  else new EventStream($("#conn")).close(); // the indicator says "Signed out"
  for (const view of state.views.values()) {
    view.hide();
    if (view.globus) view.globus.destroy();
  }
  state.views.clear();
  state.current = null;
  document.body.dataset.state = "signed-out";
  $("#who").textContent = "";
  $("#signout").hidden = true;
  fill($(".endpoint-list"));
  $(".endpoint-empty").hidden = true;
  fill($("#main"),
    h("section", { class: "signin card", "aria-labelledby": "signin-title" },
      h("h1", { id: "signin-title" }, "Signed out"),
      message ? h("p", { class: "callout callout-warn", role: "alert" }, message) : null,
      h("p", null, "To sign in, run this where your bridge token is, and open the link it prints (it works once, for five minutes):"),
      h("pre", { class: "command" }, h("code", null, "radical-orbit explorer")),
      h("p", { class: "hint" }, "The link carries a one-time secret, not your token; the browser keeps only a session cookie that scripts cannot read, and Sign out revokes it."),
    ),
  );
}

async function signOut() {
  try {
    await api("POST", "/ui/api/signout", {});
  } catch (err) {
    if (!err.signedOut) {
      toastError("Sign out failed", err);
      return;
    }
  }
  showSignedOut("");
  toast("Signed out. The session cookie is revoked.", { tone: "ok" });
}

function route() {
  if (state.signedOut || !state.endpoints) return;
  const match = /^#\/e\/([^/]+)(?:\/(system))?$/.exec(location.hash);
  let name = "";
  try {
    name = match ? decodeURIComponent(match[1]) : "";
  } catch {
    name = ""; // a mangled address: show the first endpoint instead
  }
  const tab = match && match[2] ? "system" : "globus";
  if (!name) {
    const names = [...state.endpoints.endpoints.keys()].sort((a, b) => a.localeCompare(b));
    if (names.length) {
      history.replaceState(null, "", `#/e/${encodeURIComponent(names[0])}`);
      route();
      return;
    }
    if (state.current) state.current.hide();
    state.current = null;
    state.endpoints.select("");
    fill($("#main"), h("section", { class: "card welcome" },
      h("h1", null, "No endpoint yet"),
      h("p", null, "Endpoints appear here as soon as they connect to the bridge:"),
      h("pre", { class: "command" }, h("code", null, "radical-orbit endpoint --name my-dtn --plugins globus,sysinfo"))));
    document.title = "Orbit Explorer";
    return;
  }
  let view = state.views.get(name);
  if (!view) {
    view = new EndpointView(name, state.stream);
    state.views.set(name, view);
  }
  if (state.current && state.current !== view) state.current.hide();
  state.current = view;
  state.endpoints.select(name);
  view.update(state.endpoints.get(name) || null);
  fill($("#main"), view.el);
  view.show(tab);
  document.title = `${name} · Orbit Explorer`;
}

function endpointsChanged(map) {
  for (const [name, view] of state.views) view.update(map.get(name) || null);
  if (!state.current) route();
}

function startShell(me) {
  onSignedOut(() => {
    if (!state.signedOut) showSignedOut("Your session ended (signed out elsewhere, expired, or the bridge restarted).");
  });
  state.me = me;
  state.signedOut = false;
  document.body.dataset.state = "signed-in";
  $("#who").textContent = me.admin ? `${me.identity} (admin)` : String(me.identity);
  $("#signout").hidden = false;
  const stream = new EventStream($("#conn"));
  state.stream = stream;
  stream.onFailed = async () => {
    try {
      await api("GET", "/ui/api/me");
    } catch (err) {
      if (err.signedOut) showSignedOut("Your session ended (signed out elsewhere, expired, or the bridge restarted).");
    }
  };
  state.endpoints = new EndpointList($("#endpoints"), stream, { onChange: endpointsChanged });
  stream.start();
  state.endpoints.refresh();
}

async function boot() {
  toastArea($("#toasts"));
  $(".skip-link").addEventListener("click", (ev) => {
    ev.preventDefault(); // the address keeps naming the view
    $("#main").focus();
  });
  $("#signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => {
    // a sign-in link opened over this page changes only the fragment: start over with it
    if (location.hash.startsWith("#signin=")) location.reload();
    else route();
  });
  const secret = takeSigninSecret();
  if (secret !== null) {
    try {
      await api("POST", "/ui/api/session", { secret });
    } catch (err) {
      showSignedOut(`That sign-in link did not work: ${describe(err)} Links work once and for five minutes; run radical-orbit explorer again.`);
      return;
    }
  }
  let me;
  try {
    me = await api("GET", "/ui/api/me");
  } catch (err) {
    showSignedOut(err.signedOut ? "" : `The bridge did not answer: ${describe(err)}`);
    return;
  }
  startShell(me);
}

window.addEventListener("unhandledrejection", (ev) => {
  // a failed action must say so on the page too (the console keeps the trace)
  toastError("Something went wrong", ev.reason);
});

boot();
