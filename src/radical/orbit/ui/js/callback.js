// The redirect target of "Log in with Globus": Globus Auth sends the browser here with
// ?code=...&state=... The state starts with the endpoint's name and a dot; this page
// asks that endpoint (through the bridge, with the sign-in cookie) to exchange the
// code, then returns to the Explorer. The code leaves the address bar at once.

import { callPlugin, describe } from "./api.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function show(title, message) {
  document.getElementById("cb-title").textContent = title;
  const el = document.getElementById("cb-message");
  el.textContent = message;
  el.setAttribute("role", "alert");
}

async function finish() {
  const query = new URLSearchParams(location.search);
  history.replaceState(null, "", location.pathname);
  const state = query.get("state") || "";
  const cut = state.lastIndexOf(".");
  const endpoint = cut > 0 ? state.slice(0, cut) : "";
  const back = document.getElementById("cb-back");
  if (NAME.test(endpoint)) back.href = `./#/e/${encodeURIComponent(endpoint)}`;
  if (query.get("error")) {
    const why = query.get("error_description") || query.get("error");
    show("Globus login not completed", `Globus answered: ${why}. Nothing changed; try again from the Explorer.`);
    return;
  }
  const code = query.get("code");
  if (!code || !NAME.test(endpoint)) {
    show("Globus login not completed", "This page expects the code and state Globus sends back after a login; open the Explorer and use Log in with Globus.");
    return;
  }
  try {
    await callPlugin(endpoint, "globus", "login_finish", { state, code });
  } catch (err) {
    show("Globus login not completed", `${endpoint} could not finish the login: ${describe(err)}`);
    return;
  }
  location.replace(`./#/e/${encodeURIComponent(endpoint)}`);
}

finish();
