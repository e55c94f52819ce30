// Fills Node's compile cache (the directory in NODE_COMPILE_CACHE) with every module of the gateway,
// stripped of its types and compiled, so that no start of the daemon has to load the TypeScript
// stripper (docs/decisions/0008-daemon-memory.md). Run it with the daemon's own Node flags: the cache
// is kept per set of flags. scripts/install.sh runs it as the service runs; the benches before they
// measure. It imports each module, which runs only its top level: modules do nothing when imported.
import { flushCompileCache, getCompileCacheDir } from "node:module";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = join(import.meta.dirname, "..");

/** Every module the daemon may load from the project: src/, drivers/, protocols/, tests left out. */
function gatewayModules(): string[] {
  return ["src", "drivers", "protocols"].flatMap((dir) =>
    readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
      .sort()
      .map((f) => join(ROOT, dir, f)),
  );
}

if (import.meta.main) {
  if (getCompileCacheDir() === undefined) {
    console.error("warm-cache: NODE_COMPILE_CACHE is not set, or Node cannot use that directory: nothing to fill");
    process.exit(1);
  }
  for (const file of gatewayModules()) await import(pathToFileURL(file).href);
  flushCompileCache();
  process.exit(0); // an install must not wait on a handle some module's top level may have opened
}
