// The driver contract as the pairing page relies on it (issue 14, issue 19 item 8): every option of
// every driver is named in zh-CN and English with help in both; and what a technician sets on the
// device itself follows from the transport the options ask for.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { drivers } from "../drivers/registry.ts";
import { transportSetup } from "../src/pairing/setup.ts";

const CJK = /[\u3400-\u9fff]/;

/** Every option path of a JSON Schema ("port", "match.vendorId"), with its description. */
function optionPaths(schema: Record<string, unknown>, prefix = ""): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  const visit = (s: Record<string, unknown>, at: string) => {
    for (const [key, sub] of Object.entries((s.properties ?? {}) as Record<string, Record<string, unknown>>)) {
      const path = at ? `${at}.${key}` : key;
      out.set(path, (sub.description as string | undefined) ?? out.get(path));
      visit(sub, path);
      for (const alt of (sub.anyOf ?? []) as Record<string, unknown>[]) visit(alt, path);
    }
    for (const alt of (s.anyOf ?? s.oneOf ?? []) as Record<string, unknown>[]) visit(alt, at);
  };
  visit(schema, prefix);
  return out;
}

describe("every driver's options, as the pairing form shows them", () => {
  for (const d of drivers)
    it(`${d.id}: each option has a label in zh-CN and English and help in both; no label names a missing option`, () => {
      const paths = optionPaths(z.toJSONSchema(d.options, { io: "input", unrepresentable: "any" }) as never);
      expect(paths.size).toBeGreaterThan(0);
      for (const [path, description] of paths) {
        const l = d.labels[path];
        expect(l, `${d.id}: no label for option ${path}`).toBeDefined();
        expect(CJK.test(l!.zh), `${d.id}.${path} zh label`).toBe(true);
        expect(CJK.test(l!.helpZh), `${d.id}.${path} zh help`).toBe(true);
        expect(l!.en.length, `${d.id}.${path} en label`).toBeGreaterThan(1);
        expect(CJK.test(l!.en)).toBe(false);
        expect(description, `${d.id}.${path}: the English help is its schema description`).toBeTruthy();
      }
      expect(Object.keys(d.labels).filter((k) => !paths.has(k))).toEqual([]);
    });
});

describe("what to set on the device", () => {
  const addresses = ["192.168.10.5", "10.8.0.2"];
  it("a device that sends to us: this box's addresses (when listening on all) and the port", () => {
    const [step] = transportSetup({ type: "tcp-listen", host: "0.0.0.0", port: 2575 }, addresses);
    expect(step!.zh).toContain("192.168.10.5 或 10.8.0.2");
    expect(step!.zh).toContain("端口 2575");
    expect(step!.en).toContain("192.168.10.5 or 10.8.0.2, port 2575");
    // Bound to one address, only that one is said.
    expect(transportSetup({ type: "tcp-listen", host: "10.8.0.2", port: 2575 }, addresses)[0]!.en).not.toContain(
      "192.168",
    );
  });

  it("a listener on loopback is said to be unreachable, with the fix", () => {
    const [step] = transportSetup({ type: "tcp-listen", host: "127.0.0.1", port: 2575 }, addresses);
    expect(step!.en).toMatch(/no device on the network can reach.*0\.0\.0\.0/);
    expect(step!.zh).toContain("0.0.0.0");
  });

  it("a cart sending by DICOM: our AE title, address and port, and the carts let in", () => {
    const steps = transportSetup(
      { type: "dicom-scp", host: "0.0.0.0", port: 11112, aeTitle: "VITALGATE", callingAeTitles: ["CART1"] },
      addresses,
    );
    expect(steps.map((s) => s.en).join(" ")).toMatch(/AE title VITALGATE.*port 11112.*one of CART1/);
  });

  it("a serial device: the port and the line settings; a serial server: TCP server mode on its port", () => {
    const [serial] = transportSetup(
      {
        type: "serial",
        path: "/dev/ttyUSB0",
        baudRate: 19200,
        dataBits: 8,
        parity: "even",
        stopBits: 1,
        rtscts: true,
        xonxoff: false,
      },
      addresses,
    );
    expect(serial!.en).toBe(
      "Connect the device's serial cable to this box's /dev/ttyUSB0; set the device's port to 19200 baud, 8 data bits, even parity, 1 stop bit, RTS/CTS flow control.",
    );
    expect(serial!.zh).toContain("19200 波特、8 数据位、偶校验、1 停止位，RTS/CTS 流控");
    const [server] = transportSetup({ type: "tcp-connect", host: "10.0.0.9", port: 4001 }, addresses);
    expect(server!.en).toContain("TCP server mode on port 4001");
  });

  it("with no address known, the step says to use the box's IP address rather than a question mark", () => {
    const [step] = transportSetup({ type: "tcp-listen", host: "0.0.0.0", port: 2575 }, []);
    expect(step!.zh).toContain("本机的 IP 地址");
    expect(step!.en).not.toContain("?");
  });
});
