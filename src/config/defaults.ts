// The configuration used when no file exists (DESIGN.md §7): a developer's `npm start` in a checkout, or
// a box switched on before IT has provisioned it. It goes through the same loader as any file, so it is
// validated like one. config/demo.yaml is this text, byte for byte (a test keeps them equal).
//
// State goes to ./var in the working directory: in a checkout that is the project's git-ignored var/.
// Services never rely on this: the systemd unit always passes --config /etc/vitalgate/vitalgate.yaml.
// Everything listens on loopback only, since nobody has been given a login yet.
import { loadConfig } from "./load.ts";
import type { LoadConfigOptions, LoadConfigResult } from "./load.ts";

export const DEFAULT_CONFIG_NAME = "<embedded default>";

export const DEFAULT_CONFIG_YAML = `# yaml-language-server: $schema=./vitalgate.schema.json
#
# vitalgate demo configuration: the one the gateway uses when it finds no configuration file.
# No uplink: events go to the embedded MQTT broker on 127.0.0.1:1883, so you can watch them with
#   mosquitto_sub $(node src/cli/main.ts broker viewer) -t 'vitalgate/#' -v
# (its clients log in: the read-only viewer's password is made at each start, in ./var/broker-credentials.json)
# One HL7 listener on 127.0.0.1:2575 takes messages from a demo sender or a monitor simulator.

gateway:
  id: demo
  site: Demo (no configuration file)
  role: clinic

# Outbox and paired devices, relative to the working directory.
stateDir: ./var

embeddedBroker:
  host: 127.0.0.1
  port: 1883

devices:
  - id: demo-monitor
    driver: hl7-pcd01
    name: Demo monitor (HL7 PCD-01)
    options:
      mode: listen
      host: 127.0.0.1
      port: 2575

web:
  host: 127.0.0.1
  port: 8080

# Unpaired senders (HL7 2575, DICOM 11112) are noticed on loopback only, like everything else here.
pairing:
  listenHost: 127.0.0.1

log:
  level: info
  pretty: auto
`;

/** Loads the embedded default through the same path as a file, so it gets the same checks and defaults. */
export function loadDefaultConfig(options: Omit<LoadConfigOptions, "file" | "text" | "readFile">): LoadConfigResult {
  return loadConfig({ ...options, file: DEFAULT_CONFIG_NAME, text: DEFAULT_CONFIG_YAML });
}
