// The options every device on an RS-232 line takes, whether the line ends at a serial port of this
// box (usually a USB adapter) or at a serial-to-Ethernet server (Moxa NPort, ser2net) we connect to;
// and the transport the core opens for them. A driver spreads `serialLine(...)` into its options,
// checks them with `checkSerialLine`, and hands `serialLineTransport` (and `serialLineOptions`, for
// the pairing page) to defineDriver.
import { z } from "zod";
import type { OptionLabels, TransportSpec } from "../src/devices/driver.ts";

export interface SerialLineSettings {
  /** What is on the line, for the descriptions: "the receiver", "the analyser", "the monitor". */
  device: string;
  /** Where the defaults come from, for the descriptions: "NMEA 0183", "E1381 §5", "S/5". */
  source: string;
  baudRates: readonly [number, ...number[]];
  baudRate: number;
  /** Why that speed, for the description. */
  baudNote: string;
  dataBits: 7 | 8;
  parity: "none" | "even" | "odd";
  stopBits: 1 | 2;
  /** RTS/CTS flow control on by default (off when absent). */
  rtscts?: boolean;
  /** More to say about transport tcp, for the description. */
  tcpAlso?: string;
}

export function serialLine(s: SerialLineSettings) {
  return {
    transport: z
      .enum(["serial", "tcp"])
      .default("serial")
      .describe(
        `serial: ${s.device} is on a serial port of this box (RS-232, usually through a USB adapter); tcp: we connect to a serial-to-Ethernet server (Moxa NPort, ser2net) wired to it.${s.tcpAlso ? ` ${s.tcpAlso}` : ""}`,
      ),
    port: z
      .string()
      .min(1)
      .optional()
      .describe(
        "With transport serial: the serial port, best a stable path such as /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0 (a USB adapter may come back as another ttyUSB after a replug).",
      ),
    match: z
      .strictObject({
        vendorId: z
          .string()
          .regex(/^[0-9a-fA-F]{4}$/)
          .optional()
          .describe('USB vendor id as lsusb prints it, e.g. "0403" (FTDI).'),
        productId: z
          .string()
          .regex(/^[0-9a-fA-F]{4}$/)
          .optional()
          .describe('USB product id, e.g. "6001".'),
        serialNumber: z.string().min(1).optional().describe("USB serial number of the adapter or device."),
      })
      .optional()
      .describe(
        "With transport serial: finds the adapter by its USB identity when it comes back under another name; `port` is then the first guess.",
      ),
    baudRate: z.literal(s.baudRates).default(s.baudRate).describe(`Serial speed. ${s.baudNote}`),
    dataBits: z.literal([7, 8]).default(s.dataBits).describe(`Data bits (${s.source}: ${s.dataBits}).`),
    parity: z.enum(["none", "even", "odd"]).default(s.parity).describe(`Parity (${s.source}: ${s.parity}).`),
    stopBits: z.literal([1, 2]).default(s.stopBits).describe(`Stop bits (${s.source}: ${s.stopBits}).`),
    rtscts: z
      .boolean()
      .default(s.rtscts ?? false)
      .describe(
        `RTS/CTS hardware flow control (${s.source}: ${s.rtscts ? "on" : "off"}). ${s.rtscts ? "Turn off only for a cable without the handshake lines." : ""}`.trim(),
      ),
    host: z.string().min(1).optional().describe("With transport tcp: the serial server's address."),
    tcpPort: z
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe(
        `With transport tcp: the serial server's TCP port for ${s.device} (e.g. 4001, a Moxa NPort's first port in TCP server mode).`,
      ),
  };
}

/** The pairing form's names for the options of `serialLine`. */
export const SERIAL_LINE_LABELS: OptionLabels = {
  transport: {
    zh: "连接方式",
    en: "Connection",
    helpZh:
      "serial：设备接在本机的串口上（RS-232，通常经 USB 转串口线）；tcp：本机连接接着该设备的串口服务器（Moxa NPort、ser2net 等）。",
  },
  port: {
    zh: "串口",
    en: "Serial port",
    helpZh: "本机的串口，最好选稳定路径 /dev/serial/by-id/…：USB 转串口线重新插拔后可能变成另一个 ttyUSB。",
  },
  match: { zh: "USB 识别", en: "USB identity", helpZh: "转接线换了名字时按 USB 身份找回它；此时“串口”只是首选。" },
  "match.vendorId": { zh: "USB 厂商 ID", en: "USB vendor id", helpZh: "lsusb 显示的厂商 ID，例如 0403（FTDI）。" },
  "match.productId": { zh: "USB 产品 ID", en: "USB product id", helpZh: "lsusb 显示的产品 ID，例如 6001。" },
  "match.serialNumber": { zh: "USB 序列号", en: "USB serial number", helpZh: "转接线或设备的 USB 序列号。" },
  baudRate: { zh: "波特率", en: "Baud rate", helpZh: "与设备串口的设置一致。" },
  dataBits: { zh: "数据位", en: "Data bits", helpZh: "与设备串口的设置一致。" },
  parity: { zh: "校验", en: "Parity", helpZh: "none 无校验、even 偶校验、odd 奇校验，与设备一致。" },
  stopBits: { zh: "停止位", en: "Stop bits", helpZh: "与设备串口的设置一致。" },
  rtscts: {
    zh: "RTS/CTS 硬件流控",
    en: "RTS/CTS flow control",
    helpZh: "设备要求且线缆带握手线时打开。",
  },
  host: { zh: "串口服务器地址", en: "Serial server address", helpZh: "连接方式为 tcp 时：串口服务器的 IP 地址。" },
  tcpPort: {
    zh: "串口服务器端口",
    en: "Serial server port",
    helpZh: "连接方式为 tcp 时：串口服务器上接该设备那一口的 TCP 端口（如 Moxa NPort 第一口 TCP Server 模式为 4001）。",
  },
};

type SerialLineOptions = z.infer<z.ZodObject<ReturnType<typeof serialLine>>>;

/** The checks zod cannot express field by field: what each transport needs. */
export function checkSerialLine(o: SerialLineOptions, ctx: z.RefinementCtx): void {
  if (o.transport === "serial" && o.port === undefined)
    ctx.addIssue({ code: "custom", path: ["port"], message: "the serial port is required with transport serial" });
  if (o.transport === "tcp") {
    if (o.host === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["host"],
        message: "the serial server's address is required with transport tcp",
      });
    if (o.tcpPort === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["tcpPort"],
        message: "the serial server's port is required with transport tcp",
      });
  }
}

export function serialLineTransport(o: SerialLineOptions): TransportSpec {
  if (o.transport === "tcp") return { type: "tcp-connect", host: o.host!, port: o.tcpPort! };
  const serial = {
    type: "serial",
    path: o.port!,
    baudRate: o.baudRate,
    dataBits: o.dataBits,
    parity: o.parity,
    stopBits: o.stopBits,
    rtscts: o.rtscts,
    xonxoff: false,
  } as const;
  return o.match ? { ...serial, match: o.match } : serial;
}

/** The options of a device on a serial port of this box, as the pairing page sets them up. */
export function serialLineOptions(path: string, baudRate?: number): Record<string, unknown> {
  return baudRate === undefined ? { transport: "serial", port: path } : { transport: "serial", port: path, baudRate };
}
