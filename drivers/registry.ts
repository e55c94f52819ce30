// Every driver the gateway knows. Adding a driver: one folder in drivers/, one line here.
import type { DriverDefinition } from "../src/devices/driver.ts";
import { astmAnalyzer } from "./astm-analyzer/index.ts";
import { ecgCart } from "./ecg-cart/index.ts";
import { hl7Pcd01 } from "./hl7-pcd01/index.ts";
import { nmeaGps } from "./nmea-gps/index.ts";
import { datexS5 } from "./datex-s5/index.ts";
import { medibusVent } from "./medibus-vent/index.ts";
import { gpsd } from "./gpsd/index.ts";
import { noninOximeter } from "./nonin-oximeter/index.ts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const drivers: readonly DriverDefinition<any>[] = [
  hl7Pcd01,
  ecgCart,
  nmeaGps,
  datexS5,
  astmAnalyzer,
  medibusVent,
  gpsd,
  noninOximeter,
];

export function findDriver(id: string): DriverDefinition<unknown> | undefined {
  return drivers.find((d) => d.id === id) as DriverDefinition<unknown> | undefined;
}
