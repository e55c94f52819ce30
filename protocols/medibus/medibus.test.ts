import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { FrameResult } from "../codec.ts";
import {
  MEDIBUS_CMD as C,
  decodeMedibusAlarms,
  decodeMedibusDeviceId,
  decodeMedibusMeasured,
  decodeMedibusSettings,
  decodeMedibusTexts,
  encodeMedibusCommand,
  encodeMedibusResponse,
  medibusFramer,
  parseMedibusMessage,
} from "./index.ts";
import type { MedibusMessage } from "./index.ts";
import { ownFixture } from "../../test/fixtures/serial/load.ts";

// Synthetic: no public capture of a Dräger device exists; see test/fixtures/serial/README.md.
const session = ownFixture("medibus-synthetic.bin");

function messages(bytes: Uint8Array, cuts: number[] = []): (MedibusMessage | string)[] {
  const f = medibusFramer();
  const out: FrameResult[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...f.push(bytes.subarray(from, cut)));
    from = cut;
  }
  return out.map((r) => {
    if ("error" in r) return r.error.code;
    const m = parseMedibusMessage(r.frame);
    return m.ok ? m.message : m.error.code;
  });
}

describe("MEDIBUS (synthetic session from the protocol definition)", () => {
  const all = messages(session);

  it("frames the session: 9 commands, 9 responses, the real-time bytes skipped", () => {
    expect(all).toHaveLength(18);
    expect(all.every((m) => typeof m !== "string")).toBe(true);
    const ms = all as MedibusMessage[];
    expect(ms.filter((m) => m.kind === "command").map((m) => m.code)).toEqual([
      C.ICC,
      C.DEVICE_ID,
      C.MEASURED_DATA_CP1,
      C.LOW_ALARM_LIMITS_CP1,
      C.HIGH_ALARM_LIMITS_CP1,
      C.CURRENT_ALARMS_CP1,
      C.DEVICE_SETTINGS,
      C.TEXT_MESSAGES,
      C.NOP,
    ]);
  });

  it("gives the same messages split at every byte boundary", () => {
    for (let cut = 1; cut < session.length; cut++) expect(messages(session, [cut])).toEqual(all);
  });

  it("encodes ICC as ESC 'Q' '6' 'C' CR (checksum 0x1B + 0x51 = 0x6C)", () => {
    expect([...encodeMedibusCommand(C.ICC)]).toEqual([0x1b, 0x51, 0x36, 0x43, 0x0d]);
    expect([...encodeMedibusResponse(C.NOP)]).toEqual([0x01, 0x30, 0x33, 0x31, 0x0d]);
  });

  it("decodes each response's data", () => {
    const rsp = (code: number) => (all as MedibusMessage[]).find((m) => m.kind === "response" && m.code === code)!.data;
    expect(decodeMedibusDeviceId(rsp(C.DEVICE_ID))).toEqual({
      ok: true,
      device: { id: "0161", name: "SimVent", revision: "01.03", medibusVersion: "06.00" },
    });
    const measured = decodeMedibusMeasured(rsp(C.MEASURED_DATA_CP1));
    expect(measured.ok && measured.items.map((v) => [v.code, v.value])).toEqual([
      ["05", 16],
      ["06", 5],
      ["08", 21],
      ["0B", 7.3],
      ["8B", 480],
      ["D6", 14],
    ]);
    const low = decodeMedibusMeasured(rsp(C.LOW_ALARM_LIMITS_CP1));
    expect(low.ok && low.items.map((v) => v.value)).toEqual([5, 3]);
    const alarms = decodeMedibusAlarms(rsp(C.CURRENT_ALARMS_CP1));
    expect(alarms).toEqual({
      ok: true,
      items: [
        { priority: 31, code: "12", phrase: "Paw high" },
        { priority: 10, code: "3A", phrase: "MV low" },
      ],
    });
    const settings = decodeMedibusSettings(rsp(C.DEVICE_SETTINGS));
    expect(settings.ok && settings.items.map((v) => [v.code, v.value])).toEqual([
      ["01", 100],
      ["04", 480],
      ["07", 14],
    ]);
    expect(decodeMedibusTexts(rsp(C.TEXT_MESSAGES))).toEqual({ ok: true, items: [{ code: "0A", text: "IPPV" }] });
  });

  it("refuses bad checksums, odd lengths, and reports garbage and cut messages with codes", () => {
    const bad = encodeMedibusResponse(C.MEASURED_DATA_CP1, "05  16");
    bad[3] = 0x37;
    expect(parseMedibusMessage(bad)).toMatchObject({ ok: false, error: { code: "MEDIBUS_BAD_CHECKSUM" } });
    expect(decodeMedibusMeasured("05  1")).toMatchObject({ ok: false, error: { code: "MEDIBUS_BAD_LENGTH" } });
    expect(decodeMedibusDeviceId("xx")).toMatchObject({ ok: false });
    const s = Uint8Array.from([...new TextEncoder().encode("noise"), 0x1b, 0x24, ...encodeMedibusCommand(C.NOP)]);
    expect(messages(s).map((m) => (typeof m === "string" ? m : m.code))).toEqual([
      "MEDIBUS_GARBAGE",
      "MEDIBUS_TRUNCATED",
      C.NOP,
    ]);
  });

  it("reads an alarm's priority as its number + 30H, 1 ('1') to 31 ('O'), and refuses any other character", () => {
    const item = (p: string) => p + "10" + "Paw high".padEnd(12, " ");
    expect(decodeMedibusAlarms(item("1") + item("O") + item(":"))).toMatchObject({
      ok: true,
      items: [{ priority: 1 }, { priority: 31 }, { priority: 10 }],
    });
    // '0' (0) and 'P' (32) are out of range; a bare number (here 1FH for 31) is not the wire format
    for (const p of ["0", "P", "\x1f", "\x00", "\xff"]) {
      const r = decodeMedibusAlarms(item("5") + item(p));
      expect(r, JSON.stringify(p)).toMatchObject({ ok: false, error: { code: "MEDIBUS_BAD_ALARM_PRIORITY" } });
      expect(!r.ok && r.error.message).toContain("alarm 2 of the list");
    }
  });
});

describe("fuzz (fast-check, seeded)", () => {
  const params = { seed: 0x3ed1b5, numRuns: 300 };
  it("random bytes and endless messages: no throw, bounded pending, coded errors", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x1b, 0x01, 0x0d)), { maxLength: 5000 }),
        (arr) => {
          const f = medibusFramer({ maxMessageBytes: 512 });
          for (const r of f.push(Uint8Array.from(arr))) {
            if ("error" in r) expect(r.error.code).toMatch(/^MEDIBUS_/);
            else {
              const m = parseMedibusMessage(r.frame);
              if (m.ok) {
                decodeMedibusMeasured(m.message.data);
                decodeMedibusAlarms(m.message.data);
                decodeMedibusTexts(m.message.data);
                decodeMedibusDeviceId(m.message.data);
              }
            }
          }
          expect(f.pending).toBeLessThanOrEqual(512);
        },
      ),
      params,
    );
  });

  it("an encoded response survives any split and noise before it", () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[ -~]{0,60}$/),
        fc.uint8Array({ maxLength: 30 }),
        fc.nat(),
        (data, noise, cut) => {
          const msg = encodeMedibusResponse(C.MEASURED_DATA_CP1, data);
          const bytes = Uint8Array.from([...noise, 0x0d, ...msg]);
          const got = messages(bytes, [cut % (bytes.length + 1)]);
          expect(got).toContainEqual({ kind: "response", code: C.MEASURED_DATA_CP1, data });
        },
      ),
      params,
    );
  });
});
