import { readFileSync } from "node:fs";

/** The gateway's version, from package.json: published in the status topic and on /metrics. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
