// `vitalgate center [--config FILE]`: runs one center worker until SIGTERM (systemd/vitalgate-center.service).
import { parseArgs } from "node:util";
import { formatConfigErrors } from "../src/config/load.ts";
import { createLogger } from "../src/log.ts";
import { DEFAULT_CENTER_CONFIG_PATH, loadCenterConfig } from "./config.ts";
import { CenterService } from "./service.ts";

export async function centerMain(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args, options: { config: { type: "string" } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: vitalgate center [--config FILE]\n`);
    return 2;
  }
  const file = values.config ?? process.env.VITALGATE_CENTER_CONFIG ?? DEFAULT_CENTER_CONFIG_PATH;
  const loaded = loadCenterConfig({ file, env: process.env });
  if (!loaded.ok) {
    process.stderr.write(formatConfigErrors(loaded.errors) + "\n");
    return 2;
  }
  const log = createLogger(loaded.config.log);
  const service = new CenterService({ config: loaded.config, secrets: loaded.secrets, log });
  try {
    await service.start();
  } catch (err) {
    log.fatal({ code: "VG_CENTER_START", err: (err as Error).message }, "the center could not start");
    await service.stop().catch(() => undefined);
    return 1;
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    await service.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  return new Promise<number>(() => undefined);
}
