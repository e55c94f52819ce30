// The county center's reading station (center/web-server.ts serves this folder over the gateway's
// web/, so the page is web/index.html with this app.js): the shell every page shares (web/shell.js)
// with the center's routes: the worklist (#/worklist), one ECG to read (#/ecg/ID), the cases' time
// nodes (#/times), the county picture (#/county), and the gateway's users and audit pages; its own
// words and styles added to the gateway's.
import { addStrings } from "./i18n.js";
import { CENTER_STRINGS } from "./center-strings.js";
import { startShell } from "./shell.js";
import { mountAudit } from "./pages/audit.js";
import { mountUsers } from "./pages/users.js";
import { mountWorklist } from "./pages/center-worklist.js";
import { mountEcg } from "./pages/center-ecg.js";
import { mountTimes } from "./pages/center-times.js";
import { mountCounty } from "./pages/center-county.js";

addStrings(CENTER_STRINGS);
const style = document.createElement("link");
style.rel = "stylesheet";
style.href = "center.css";
document.head.append(style);

/** Who may do what: the server's table (src/web/context.ts PERMISSIONS), to show only what works. */
const PERMISSIONS = {
  admin: ["read", "devices", "cases", "admin", "reading"],
  crew: ["read", "devices", "cases"],
  technician: ["read", "devices", "cases"],
  viewer: ["read"],
  cardiologist: ["read", "reading"],
};

startShell({
  routes: {
    worklist: { mount: mountWorklist, nav: "nav.worklist", perm: "read" },
    ecg: { mount: mountEcg, perm: "read", navAs: "worklist" },
    times: { mount: mountTimes, nav: "nav.centerCases", perm: "read" },
    county: { mount: mountCounty, nav: "nav.county", perm: "read" },
    audit: { mount: mountAudit, nav: "nav.audit", perm: "admin" },
    users: {
      mount: (view, ctx) =>
        mountUsers(view, { ...ctx, roles: ["admin", "cardiologist", "viewer"], roleHint: "users.centerRoleHint" }),
      nav: "nav.users",
      perm: "admin",
    },
  },
  permissions: PERMISSIONS,
  home: "worklist",
  liveTypes: ["ecg", "reading", "case", "position", "status"],
});
