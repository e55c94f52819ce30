// How the daemon is run: the same Node flags and compile cache in the systemd unit, `npm start` and
// the tests' daemons, and the compile cache doing what docs/decisions/0008-daemon-memory.md counts on.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DAEMON_ENV, DEPLOYED_NODE_FLAGS, ROOT } from "./support/processes.ts";

const unit = readFileSync(join(ROOT, "systemd/vitalgate.service"), "utf8");
const start = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts.start!;

describe("the daemon's command line", () => {
  it("has the same Node flags in the unit, npm start and the tests", () => {
    const unitFlags = /^ExecStart=\S+\/node (.*) \/opt\/vitalgate\/src\/cli\.ts start /m.exec(unit)?.[1]?.split(" ");
    const startFlags = /(?:^|\s)node (.*) src\/cli\.ts start$/.exec(start)?.[1]?.split(" ");
    expect(unitFlags).toEqual(DEPLOYED_NODE_FLAGS);
    expect(startFlags).toEqual(DEPLOYED_NODE_FLAGS);
  });

  it("keeps Node's compile cache in the unit, npm start and the tests", () => {
    expect(unit).toMatch(/^CacheDirectory=vitalgate$/m);
    expect(unit).toMatch(/^Environment=NODE_COMPILE_CACHE=\/var\/cache\/vitalgate\/\S+$/m);
    expect(start).toMatch(/^NODE_COMPILE_CACHE=\S+ node /);
    expect(DAEMON_ENV.NODE_COMPILE_CACHE).toBeTruthy();
  });

  it("loads the type stripper only where the compile cache lacks a module; scripts/warm-cache.ts fills it with all", () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-compile-cache-"));
    const env = { ...process.env, NODE_COMPILE_CACHE: join(dir, "compile") };
    // Names the TypeScript stripper's modules Node loaded, on stderr, as the process exits.
    const probe = `data:text/javascript,process.on("exit",()=>process.stderr.write("loaded:"+process.moduleLoadList.filter((m)=>m.includes("amaro")).join(",")+"\\n"))`;
    const node = (args: string[]) => {
      const r = spawnSync(process.execPath, ["--import", probe, ...DEPLOYED_NODE_FLAGS, ...args], { cwd: ROOT, env, encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      return /^loaded:(.*)$/m.exec(r.stderr)![1];
    };
    const check = [join(ROOT, "src/cli.ts"), "config", "check", join(ROOT, "config/demo.yaml")];
    // The embedded broker's module, which the daemon imports only when no uplink is configured.
    const broker = ["--input-type=module", "-e", `await import(${JSON.stringify(join(ROOT, "src/broker.ts"))})`];
    try {
      expect(node(check)).toContain("amaro");
      expect(node(broker)).toContain("amaro"); // config check filled the cache, but not with this one
      rmSync(dir, { recursive: true, force: true });
      node([join(ROOT, "scripts/warm-cache.ts")]);
      expect(node(check)).toBe("");
      expect(node(broker)).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
