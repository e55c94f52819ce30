// Serial port discovery against a fake sysfs tree shaped like a Debian box's: an FTDI USB adapter,
// a CH340 adapter, an on-board UART with no hardware behind it, and a virtual console.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findSerialPort, listSerialPorts } from "../src/transports/serial-ports.ts";

function fakeSystem() {
  const root = mkdtempSync(join(tmpdir(), "vg-sysfs-"));
  const sys = join(root, "sys");
  const dev = join(root, "dev");
  const write = (path: string, text: string) => {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, `${text}\n`);
  };
  const usbPort = (tty: string, usbDev: string, ids: Record<string, string>, driver: string) => {
    const usb = join(sys, "devices/pci0000:00/0000:00:14.0/usb1", usbDev);
    for (const [k, v] of Object.entries(ids)) write(join(usb, k), v);
    const iface = join(usb, `${usbDev}:1.0`, tty);
    mkdirSync(iface, { recursive: true });
    mkdirSync(join(sys, "bus/usb-serial/drivers", driver), { recursive: true });
    symlinkSync(join(sys, "bus/usb-serial/drivers", driver), join(iface, "driver"));
    mkdirSync(join(sys, "class/tty", tty), { recursive: true });
    symlinkSync(iface, join(sys, "class/tty", tty, "device"));
  };
  usbPort(
    "ttyUSB0",
    "1-1",
    { idVendor: "0403", idProduct: "6001", serial: "A50285BI", manufacturer: "FTDI", product: "FT232R USB UART" },
    "ftdi_sio",
  );
  usbPort("ttyUSB1", "1-2", { idVendor: "1a86", idProduct: "7523", product: "USB Serial" }, "ch341-uart");
  // An 8250 UART slot with no chip: type 0.
  const uart = join(sys, "devices/platform/serial8250/tty/ttyS1");
  mkdirSync(uart, { recursive: true });
  mkdirSync(join(sys, "bus/platform/drivers/serial8250"), { recursive: true });
  symlinkSync(join(sys, "bus/platform/drivers/serial8250"), join(uart, "driver"));
  mkdirSync(join(sys, "class/tty/ttyS1"), { recursive: true });
  symlinkSync(uart, join(sys, "class/tty/ttyS1/device"));
  write(join(sys, "class/tty/ttyS1/type"), "0");
  mkdirSync(join(sys, "class/tty/tty1"), { recursive: true }); // a console: no device
  mkdirSync(join(dev, "serial/by-id"), { recursive: true });
  symlinkSync("../../ttyUSB0", join(dev, "serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"));
  return { sys, dev };
}

describe("serial port discovery (sysfs)", () => {
  it("lists real ports with their USB identity and stable alias, and leaves out consoles and empty UART slots", () => {
    const roots = fakeSystem();
    expect(listSerialPorts(roots)).toEqual([
      {
        path: join(roots.dev, "ttyUSB0"),
        byId: join(roots.dev, "serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"),
        driver: "ftdi_sio",
        vendorId: "0403",
        productId: "6001",
        serialNumber: "A50285BI",
        manufacturer: "FTDI",
        product: "FT232R USB UART",
      },
      {
        path: join(roots.dev, "ttyUSB1"),
        byId: undefined,
        driver: "ch341-uart",
        vendorId: "1a86",
        productId: "7523",
        serialNumber: undefined,
        manufacturer: undefined,
        product: "USB Serial",
      },
    ]);
  });

  it("finds a replugged adapter by its USB identity, and only when the match is unique", () => {
    const roots = fakeSystem();
    expect(findSerialPort({ vendorId: "0403", serialNumber: "a50285bi" }, roots)?.path).toBe(
      join(roots.dev, "ttyUSB0"),
    );
    expect(findSerialPort({ vendorId: "1a86" }, roots)?.path).toBe(join(roots.dev, "ttyUSB1"));
    expect(findSerialPort({ productId: "ffff" }, roots)).toBeUndefined();
  });

  it("finds nothing, without failing, where there is no sysfs", () => {
    expect(listSerialPorts({ sys: "/nonexistent", dev: "/nonexistent" })).toEqual([]);
  });
});
