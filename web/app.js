// The gateway's page: its routes (#/status, #/devices, #/pairing, #/cases, #/case/ID, #/audit,
// #/users) in the shell every page shares (web/shell.js), and which box this is in the header.
import { api } from "./api.js";
import { startShell } from "./shell.js";
import { mountStatus } from "./pages/status.js";
import { mountDevices } from "./pages/devices.js";
import { mountPairing } from "./pages/pairing.js";
import { mountCases, mountCase } from "./pages/cases.js";
import { mountAudit } from "./pages/audit.js";
import { mountUsers } from "./pages/users.js";

/** Who may do what: the server's table (src/web/context.ts PERMISSIONS), to show only what works. */
const PERMISSIONS = {
  admin: ["read", "devices", "cases", "admin"],
  crew: ["read", "devices", "cases"],
  technician: ["read", "devices", "cases"],
  viewer: ["read"],
  cardiologist: ["read"],
};

const ROUTES = {
  status: { mount: mountStatus, nav: "nav.status", perm: "read" },
  devices: { mount: mountDevices, nav: "nav.devices", perm: "read" },
  pairing: { mount: mountPairing, nav: "nav.pairing", perm: "devices" },
  cases: { mount: mountCases, nav: "nav.cases", perm: "read" },
  case: { mount: mountCase, perm: "read", navAs: "cases" },
  audit: { mount: mountAudit, nav: "nav.audit", perm: "admin" },
  users: { mount: mountUsers, nav: "nav.users", perm: "admin" },
};

const gwId = document.getElementById("gw-id");

// Which box this is, in the header: from the status, once signed in.
const live = startShell({
  routes: ROUTES,
  permissions: PERMISSIONS,
  home: "status",
  onSignedIn: () =>
    api("GET", "/api/status").then(
      (s) => (gwId.textContent = s?.gateway?.id ?? ""),
      () => undefined,
    ),
  onSignedOut: () => (gwId.textContent = ""),
});
live.on("status", (s) => (gwId.textContent = s?.gateway?.id ?? ""));
