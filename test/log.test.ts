import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/log.ts";

describe("logging", () => {
  it("writes JSON lines with context, and censors patient fields and secrets should any reach a log call", () => {
    const lines: string[] = [];
    const log = createLogger(
      { level: "info", pretty: false },
      new Writable({
        write(c, _e, cb) {
          lines.push(c.toString());
          cb();
        },
      }),
    );
    const device = log.child({ device: "monitor-bed1" });
    device.info(
      {
        patient: { id: "110101199001011234", name: "张三" },
        event: { patient: { name: "Li Si" } },
        password: "hunter2",
        code: "X",
      },
      "hello",
    );
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      level: 30,
      device: "monitor-bed1",
      code: "X",
      msg: "hello",
      patient: "[redacted]",
      event: { patient: "[redacted]" },
      password: "[redacted]",
    });
    expect(lines[0]).not.toMatch(/110101199001011234|张三|Li Si|hunter2/);
    expect(typeof entry.time).toBe("string");
  });
});
