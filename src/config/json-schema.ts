// The JSON Schema of vitalgate.yaml, generated from the zod schema for editors (yaml-language-server reads
// the `$schema` comment at the top of each example) and for the web form. Each device entry is a choice
// keyed by `driver`, so an editor completes and checks the options of the driver named on the entry.
// config/vitalgate.schema.json is this output for the registered drivers; a test keeps it current.
import { z } from "zod";
import { configInputSchemaFor } from "./schema.ts";

/** What the JSON Schema needs of a driver; DriverDefinition satisfies it. */
export interface DriverOptionsEntry {
  id: string;
  options: z.ZodType;
  title?: { en: string };
}

/** JSON Schema (draft 2020-12) of the configuration file as written (defaults shown, not required). */
export function configJsonSchema(drivers: readonly DriverOptionsEntry[]): Record<string, unknown> {
  return z.toJSONSchema(configInputSchemaFor(drivers), {
    target: "draft-2020-12",
    io: "input",
    // Refinements (cron syntax, cert-and-key pairs, known drivers) cannot be expressed; the loader checks them.
    unrepresentable: "any",
  });
}

/** The schema as committed in config/vitalgate.schema.json: two-space indented, with a final newline. */
export function configJsonSchemaText(drivers: readonly DriverOptionsEntry[]): string {
  return `${JSON.stringify(configJsonSchema(drivers), null, 2)}\n`;
}
