// A driver for files dropped into a watched folder, for testing the core's folder intake without a
// real ECG format: a file starting "ECG" becomes an ecg12 event carrying the file as its original;
// anything else is rejected as unreadable.
import { z } from "zod";
import { defineDriver } from "../../src/devices/driver.ts";

export const fileDriver = defineDriver({
  id: "test-file",
  kind: "ecg-cart",
  sends: ["ecg12"],
  title: { en: "Test file drop", zh: "测试文件投放" },
  labels: {},
  options: z.object({
    dir: z.string(),
    stableMs: z.int().default(200),
    scanMs: z.int().default(50),
    maxSettleMs: z.int().optional(),
  }),
  transport: (o) => ({
    type: "folder",
    dir: o.dir,
    stableMs: o.stableMs,
    scanMs: o.scanMs,
    maxBytes: 1 << 20,
    maxSettleMs: o.maxSettleMs,
  }),
  handle(bytes) {
    if (Buffer.from(bytes.subarray(0, 3)).toString() !== "ECG") {
      return { ok: false, error: { code: "TEST_NOT_ECG", message: "the file does not start with ECG", where: 0 } };
    }
    return {
      ok: true,
      events: [
        {
          kind: "ecg12",
          body: { format: "test", leads: [] },
          original: { contentType: "application/octet-stream", bytes },
        },
      ],
    };
  },
});
