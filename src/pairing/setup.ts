// What a technician sets on the device itself so that it reaches the gateway (issue 19 item 8), for
// the pairing form: worked out from the transport the driver asks for with the options chosen (the
// address and port a monitor sends to, the AE title a cart calls, the serial settings, the folder),
// followed by the driver's own hint, where the device's menu has it. zh-CN and English.
import { networkInterfaces } from "node:os";
import type { DriverDefinition, Text, TransportSpec } from "../devices/driver.ts";
import { isLoopback } from "../config/schema.ts";

/** The box's addresses a device on the LAN can reach: IPv4 first, no loopback, no link-local IPv6. */
export function boxAddresses(): string[] {
  const all = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal && !(a.family === "IPv6" && a.address.startsWith("fe80:")));
  return [...all.filter((a) => a!.family === "IPv4"), ...all.filter((a) => a!.family === "IPv6")].map(
    (a) => a!.address,
  );
}

const PARITY: Record<string, Text> = {
  none: { zh: "无校验", en: "no parity" },
  even: { zh: "偶校验", en: "even parity" },
  odd: { zh: "奇校验", en: "odd parity" },
  mark: { zh: "标记校验", en: "mark parity" },
  space: { zh: "空格校验", en: "space parity" },
};

/**
 * The steps on the device for a transport. `addresses`: where this box can be reached (a listener
 * bound to one address is reached only there).
 */
export function transportSetup(spec: TransportSpec, addresses: readonly string[]): Text[] {
  const reachable = (host: string) => (host === "0.0.0.0" || host === "::" ? addresses : [host]);
  const list = (hosts: readonly string[], lang: keyof Text) =>
    hosts.length > 0
      ? hosts.join(lang === "zh" ? " 或 " : " or ")
      : lang === "zh"
        ? "本机的 IP 地址"
        : "this box's IP address";
  switch (spec.type) {
    case "tcp-listen":
    case "dicom-scp": {
      if (isLoopback(spec.host))
        return [
          {
            zh: `本机只在 ${spec.host} 上监听，网络上的设备连不上：把地址改为 0.0.0.0（或本机的网卡地址）。`,
            en: `This box listens on ${spec.host} only, which no device on the network can reach: set the address to 0.0.0.0 (or one of the box's addresses).`,
          },
        ];
      const hosts = reachable(spec.host);
      if (spec.type === "tcp-listen")
        return [
          {
            zh: `在设备上把发送目标（服务器）设为本机地址 ${list(hosts, "zh")}，端口 ${spec.port}。`,
            en: `On the device, set where it sends to (its server or destination) to this box: ${list(hosts, "en")}, port ${spec.port}.`,
          },
        ];
      const steps: Text[] = [
        {
          zh: `在心电图机的 DICOM 发送（存储目标）设置中：AE 名称 ${spec.aeTitle}，地址 ${list(hosts, "zh")}，端口 ${spec.port}。`,
          en: `In the cart's DICOM send (storage destination) settings: AE title ${spec.aeTitle}, address ${list(hosts, "en")}, port ${spec.port}.`,
        },
      ];
      if (spec.callingAeTitles?.length)
        steps.push({
          zh: `心电图机自己的 AE 名称须为 ${spec.callingAeTitles.join("、")} 之一。`,
          en: `The cart's own AE title must be one of ${spec.callingAeTitles.join(", ")}.`,
        });
      return steps;
    }
    case "tcp-connect":
      return [
        {
          zh: `本机会连接 ${spec.host} 的 ${spec.port} 端口：把设备（或串口服务器接它的那一口）设为 TCP Server 模式，端口 ${spec.port}。`,
          en: `This box connects to ${spec.host}, port ${spec.port}: set the device (or the serial server's port wired to it) to TCP server mode on port ${spec.port}.`,
        },
      ];
    case "serial": {
      const parity = PARITY[spec.parity] ?? { zh: spec.parity, en: spec.parity };
      const flow = spec.rtscts ? { zh: "，RTS/CTS 流控", en: ", RTS/CTS flow control" } : { zh: "", en: "" };
      return [
        {
          zh: `把设备的串口线接到本机的 ${spec.path}；设备串口设为 ${spec.baudRate} 波特、${spec.dataBits} 数据位、${parity.zh}、${spec.stopBits} 停止位${flow.zh}。`,
          en: `Connect the device's serial cable to this box's ${spec.path}; set the device's port to ${spec.baudRate} baud, ${spec.dataBits} data bits, ${parity.en}, ${spec.stopBits} stop bit${spec.stopBits === 1 ? "" : "s"}${flow.en}.`,
        },
      ];
    }
    case "folder":
      return [
        {
          zh: `让设备把文件导出（或拷贝）到 ${spec.dir}；文件写完后本机自动收取，收取后移入 done/，读不了的移入 rejected/。`,
          en: `Have the device export (or copy) its files to ${spec.dir}; each is taken once complete, then moved to done/ (or to rejected/ when it cannot be read).`,
        },
      ];
  }
}

/** The steps for a driver with its (parsed) options: the transport's, then the driver's own hint. */
export function deviceSetup<O>(driver: DriverDefinition<O>, options: O, addresses: readonly string[]): Text[] {
  const hint = driver.setupHint?.(options);
  return [...transportSetup(driver.transport(options), addresses), ...(hint ? [hint] : [])];
}
