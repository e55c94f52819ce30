// Vitest global setup: the whole run's temporary files (state directories, outboxes, PTY links,
// broker configs, the daemons' files) go under one directory of this run, removed at its end, so
// a test that fails before its cleanup, or a killed daemon, leaves nothing behind in /tmp.
// VG_KEEP_TMP=1 keeps it for a post-mortem. Workers and child processes inherit TMPDIR.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "vg-run-"));
  process.env.TMPDIR = dir;
  return () => {
    if (process.env.VG_KEEP_TMP === "1") console.log(`test files kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
}
