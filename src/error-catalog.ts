// Every VG_ code the gateway uses, in one table: what it means, what a person should do, and what
// the gateway does by itself (issue 14). docs/errors.md is generated from it (`vitalgate errors`,
// scripts/errors-doc.ts), and test/error-catalog.test.ts holds the code, this table and that page
// together: a code used anywhere in src/, drivers/, protocols/ or web/ is here, nothing here is
// unused, and the page is what this table generates.
//
// The device protocols' own codes (HL7_…, DICOM_…, NMEA_…, ASTM_…) are not here: they name what a
// device sent, and docs/devices.md lists them with each driver.

/**
 * What comes after a failure (STYLE.md principle 4): "retry" transient, it passes without anyone
 * acting (the gateway, or the device, tries again); "operator" a person must act (disk, config,
 * cabling, permissions); "stop" a programming or unrecoverable error, to report.
 */
export type NextStep = "retry" | "operator" | "stop";

/** Where a code belongs; the page's sections, in this order. */
export const AREAS = {
  store: "The outbox (store)",
  devices: "Devices",
  transports: "Transports: serial ports, TCP, listeners, folders",
  dicom: "DICOM listener",
  pairing: "Pairing",
  time: "Time",
  cases: "Cases",
  web: "Web page and API",
  audit: "Audit trail",
  service: "Service, schema, backups and uplink",
} as const;
export type Area = keyof typeof AREAS;

export interface CodeEntry {
  area: Area;
  /**
   * Where it shows: a log line and its level, an HTTP answer and its status, a device's `lastError`,
   * a file's `.why.txt` in rejected/, an alarm event to the center, a count in a device's `conditions`.
   */
  seen: string;
  /** What happened. */
  meaning: string;
  /** What a person should do ("nothing" when nothing). */
  action: string;
  /** What comes next (a VitalgateError's `next`); absent on lines that report no failure (a recovery, a fact). */
  next?: NextStep;
}

const log = (level: "info" | "warn" | "error") => `log ${level}`;
const http = (status: number) => `HTTP ${status}`;

export const CODES = {
  // ---- store -----------------------------------------------------------------------------------
  VG_STORE_QUOTA: {
    area: "store",
    seen: `${log("error")}; device lastError; alarm`,
    meaning:
      "the outbox reached store.quotaMB and nothing it may evict is left: devices get a negative acknowledgement (HL7 AE) and must resend; /healthz answers 503; an alarm goes to the center once per episode",
    action: "see [Quota reached](operations.md#quota-reached): bring the uplink back, or raise store.quotaMB",
    next: "operator",
  },
  VG_STORE_DISK_FULL: {
    area: "store",
    seen: `${log("error")}; device lastError; alarm`,
    meaning:
      "the disk is full: an append, the delivery marks, a checkpoint or the open found no room (`failed` says which); one line for the whole condition. Devices get a negative acknowledgement; what the outbox holds is still forwarded; the alarm is raised and cleared",
    action: "see [Disk full](operations.md#disk-full): free space on the state directory's file system",
    next: "operator",
  },
  VG_STORE_DISK_OK: {
    area: "store",
    seen: log("info"),
    meaning: "the disk has room again (a write went through); the VG_STORE_DISK_FULL alarm is cleared at the center",
    action: "nothing",
  },
  VG_STORE_FAILED: {
    area: "store",
    seen: `${log("error")}; device lastError; alarm`,
    meaning:
      "another SQLite failure on commit (or the store's write probe failed): the device got a negative acknowledgement",
    action: "read the message; restart; if it persists, check the disk",
    next: "operator",
  },
  VG_STORE_CLOSED: {
    area: "store",
    seen: "device lastError",
    meaning:
      "an event arrived while the store was closed (the gateway is shutting down): the device got a negative acknowledgement and resends",
    action: "nothing",
    next: "retry",
  },
  VG_STORE_THINNED: {
    area: "store",
    seen: log("warn"),
    meaning:
      "the quota was reached and undelivered vitals or waveforms older than 10 minutes were thinned to the first of each minute of each device (`thinned`: counts by kind; at most one line a minute); a gap record goes to the center",
    action: "see [Quota reached](operations.md#quota-reached)",
    next: "retry",
  },
  VG_STORE_EVICTED: {
    area: "store",
    seen: log("warn"),
    meaning:
      "the quota was reached and the oldest low-priority undelivered events were dropped to make room (`evicted`: counts by kind; at most one line a minute); a gap record says what; ECGs, alarms and case events never are",
    action: "see [Quota reached](operations.md#quota-reached)",
    next: "retry",
  },
  VG_STORE_CORRUPT: {
    area: "store",
    seen: `${log("error")}; alarm`,
    meaning:
      "the outbox could not be opened at start, or failed the integrity check run after start: it was renamed and a fresh one started",
    action: "see [Corrupt store](operations.md#corrupt-store-set-aside)",
    next: "operator",
  },
  VG_STORE_UNCHECKED: {
    area: "store",
    seen: log("warn"),
    meaning:
      "the background integrity check of the outbox could not run (its process did not start or died, or SQLite could not read the file for another cause than damage, `reason`): nothing is known to be wrong, so the outbox is kept and used",
    action:
      "if it repeats at every start, see whether the box is out of memory or processes (the unit's TasksMax, MemoryMax)",
    next: "retry",
  },
  VG_JOB_FAILED: {
    area: "store",
    seen: log("error"),
    meaning:
      "a scheduled job (`job`: purge, audit-purge, checkpoint) failed, e.g. SQLite's SQLITE_FULL (`errCode`); one line per failing stretch; it is tried again at its next time",
    action: "read `err`; for SQLITE_FULL see [Disk full](operations.md#disk-full)",
    next: "retry",
  },

  // ---- devices ---------------------------------------------------------------------------------
  VG_DEVICE_CONFIG: {
    area: "devices",
    seen: `${log("error")}; device lastError (faulted)`,
    meaning: "a device could not start: unknown driver or invalid options; it stays listed as faulted, the others run",
    action: "fix the configuration (`vitalgate config check` reports the same)",
    next: "operator",
  },
  VG_DEVICE_SILENT: {
    area: "devices",
    seen: `${log("warn")}; device lastError (silent)`,
    meaning:
      "a connected device whose driver expects a steady stream sent nothing for its driver's limit (`silentAfterMs`); the connection stays open and the first byte puts it back to connected",
    action: "check the device is on and sending: cable, output settings (port, speed, protocol)",
    next: "operator",
  },
  VG_DRIVER_BUG: {
    area: "devices",
    seen: `${log("error")}; device lastError; a file's .why.txt`,
    meaning:
      "a driver threw on a message (or on opening a session); the line names the exception's type and up to 8 stack frames, never its message. The device gets no acknowledgement and resends (a cart's file goes to rejected/, a DICOM object is answered 0x0110)",
    action: "report it with the frames and, if possible, a capture: `vitalgate decode` on the capture reproduces it",
    next: "stop",
  },
  VG_ALREADY_RECEIVED: {
    area: "devices",
    seen: "device conditions (a count)",
    meaning:
      "a message the device sent before and that was stored then (a file dropped again, a resend after a lost acknowledgement): acknowledged, not stored again",
    action: "nothing (the case page says the ECG was already received)",
  },
  VG_TOO_MANY_CONNECTIONS: {
    area: "devices",
    seen: `${log("warn")}; device lastError`,
    meaning:
      "a device's TCP or DICOM listener already had listeners.maxConnections open, or that address its listeners.maxPerAddress: those connections were closed at once (a summary at most every 10 s)",
    action: "find what opens so many connections (a device that never closes its old ones, or a scan)",
    next: "operator",
  },
  VG_LISTENER_FAILED: {
    area: "devices",
    seen: log("error"),
    meaning:
      "events were committed, but a listener of them (the case book, the live page) failed; the events are stored and forwarded",
    action: "a bug: report it with the log line",
    next: "stop",
  },
  VG_DEVICE_TIME_UNPLACED: {
    area: "devices",
    seen: log("warn"),
    meaning:
      "a device's times cannot be placed in UTC (no offset and no time.zone); kept raw in time.dev, said once per device",
    action: "set time.zone, or the device's own time zone",
    next: "operator",
  },
  VG_DEVICE_CLOCK_AHEAD: {
    area: "devices",
    seen: log("warn"),
    meaning: "an ECG dated after its arrival: the cart's clock is fast",
    action: "set the cart's clock",
    next: "operator",
  },
  VG_DEVICE_RECORD_LATE: {
    area: "devices",
    seen: log("warn"),
    meaning: "an ECG dated long before it arrived: a late send, or a slow clock",
    action: "check the cart's clock",
    next: "operator",
  },
  VG_DEVICE_CLOCK_SKEW: {
    area: "devices",
    seen: log("warn"),
    meaning: "a device's clock went beyond the skew threshold; its times are corrected either way",
    action: "set the device's clock",
    next: "operator",
  },
  VG_DEVICE_CLOCK_OK: {
    area: "devices",
    seen: log("info"),
    meaning: "a device's clock is within the threshold again",
    action: "nothing",
  },
  VG_DEVICE_CLOCKS_SAVE: {
    area: "devices",
    seen: log("warn"),
    meaning: "the device clock skews could not be written to the state directory",
    action: "check the state directory (space, permissions)",
    next: "operator",
  },

  // ---- transports ------------------------------------------------------------------------------
  // A transport that fails is tried again, from 0.5 s up to 30 s apart (a folder every scanMs), each
  // time logged at warn as "transport down; retrying" with `address`, `retryInMs` and `error`; the code
  // is the device's lastError.code. `next` says whether that retrying is enough by itself.
  VG_SERIAL_PERMISSION: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning: "the serial port exists but the gateway's user may not open it (EACCES: permission denied)",
    action:
      "add the vitalgate user to the port's group (`usermod -aG dialout vitalgate`, then restart the gateway), or check the udev rule that sets the port's group and mode (`ls -l` the port)",
    next: "operator",
  },
  VG_SERIAL_MISSING: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning:
      "the serial port is not there (ENOENT, ENODEV): the USB adapter was unplugged, or is not plugged in yet; the gateway opens it again as soon as it is back (found by its USB identity when the device has `match`)",
    action: "plug the adapter in; if it is in, check the path (`vitalgate ports` lists the ports)",
    next: "retry",
  },
  VG_SERIAL_BUSY: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning:
      "another program holds the serial port (EBUSY, or its exclusive lock is taken): a serial console, ModemManager, another gateway",
    action: "stop that program (`fuser -v` the port names it), or give this device another port",
    next: "operator",
  },
  VG_SERIAL_FAILED: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning:
      "the serial port failed to open or closed for another reason (the message gives the system's words, e.g. an I/O error or a line setting the port refuses)",
    action: "read the message; check the adapter and the line settings",
    next: "retry",
  },
  VG_TCP_REFUSED: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning: "the device (or its serial server) refused the connection (ECONNREFUSED): nothing listens on that port",
    action: "check that the device is on and listens on that port; the gateway keeps trying",
    next: "retry",
  },
  VG_TCP_UNREACHABLE: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning:
      "the device's address cannot be reached (EHOSTUNREACH, ENETUNREACH, ETIMEDOUT): off, out of range, or another network",
    action: "check the device is on and on the network, and its address",
    next: "retry",
  },
  VG_TCP_DNS: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning: "the device's host name does not resolve (ENOTFOUND, EAI_AGAIN)",
    action: "give the device's IP address, or fix the name in DNS",
    next: "operator",
  },
  VG_TCP_CLOSED: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning: "the device closed the connection, or reset it (ECONNRESET); the gateway connects again",
    action: "nothing, unless it repeats: then check the device's network settings",
    next: "retry",
  },
  VG_LISTEN_PORT_TAKEN: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning:
      "the device's listening port is taken by another program or device (EADDRINUSE); tried again in case it is freed",
    action: "free the port (`ss -ltnp` names who holds it), or give the device another port",
    next: "operator",
  },
  VG_LISTEN_ADDRESS: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning: "the address to listen on is not one of this box's (EADDRNOTAVAIL), or does not resolve",
    action: "set the device's host to an address of the box, or 0.0.0.0",
    next: "operator",
  },
  VG_LISTEN_PERMISSION: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning: "the gateway may not listen on that port (EACCES: a port below 1024)",
    action: "use a port of 1024 or above (DICOM's 11112 rather than 104), see devices.md",
    next: "operator",
  },
  VG_FOLDER_UNUSABLE: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning:
      "a watched folder cannot be created, read or written (the message gives the system's words: permission denied, read-only file system, not a folder)",
    action: "check the folder, its mount and its permissions for the vitalgate user",
    next: "operator",
  },
  VG_FOLDER_MOVED: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning:
      "the watched folder now leads elsewhere than when the device started (a symlink or mount changed): not read",
    action: "restart the device (or the gateway) once the change is intended; else put the folder back",
    next: "operator",
  },
  VG_FOLDER_CROWDED: {
    area: "transports",
    seen: "device lastError (said once)",
    meaning:
      "more than 1,000 entries in a watched folder: the first 1,000 are taken first, the rest as they leave; the folder is still watched",
    action: "find why files pile up (a stuck export, a copy of a whole archive)",
    next: "retry",
  },
  VG_TRANSPORT: {
    area: "transports",
    seen: `${log("warn")}; device lastError (retrying)`,
    meaning:
      "a device's TCP connection or listener failed for a reason none of the codes above names (the message gives the system's errno and words)",
    action: "read the error; check the address, port, cabling",
    next: "retry",
  },
  VG_FOLDER_NOT_ALLOWED: {
    area: "transports",
    seen: `${log("error")}; device lastError (faulted); HTTP 400`,
    meaning:
      "a watched folder outside watchedFolders.roots, or the state directory, or on a pseudo file system: the device is not started",
    action: "choose a folder IT allows, or have IT allow it",
    next: "operator",
  },
  VG_FILE_NEVER_SETTLED: {
    area: "transports",
    seen: "a file's .why.txt in rejected/",
    meaning: "a file still changing maxSettleMs after it appeared: not a finished export; moved to rejected/",
    action: "find what keeps writing to the folder",
    next: "operator",
  },
  VG_FILE_TOO_LARGE: {
    area: "transports",
    seen: "a file's .why.txt in rejected/",
    meaning: "a file larger than the device's maxBytes (or one that grew while read): not read, moved to rejected/",
    action: "check what is exported into the folder; raise maxBytes if it is a real ECG",
    next: "operator",
  },

  // ---- DICOM -----------------------------------------------------------------------------------
  VG_DICOM_CALLING_AE: {
    area: "dicom",
    seen: "device lastError",
    meaning: "the cart's (calling) AE title is not in callingAeTitles: association rejected",
    action: "add the cart's AE title to the list, or correct it on the cart",
    next: "operator",
  },
  VG_DICOM_CALLED_AE: {
    area: "dicom",
    seen: "device lastError",
    meaning: "the cart called another AE title than aeTitle (the message names both): association rejected",
    action: "set the destination AE title on the cart to aeTitle, exactly",
    next: "operator",
  },
  VG_DICOM_SOP_CLASS: {
    area: "dicom",
    seen: "device lastError",
    meaning:
      "the association proposed nothing acceptable (the SOP classes and transfer syntaxes proposed are named), or a C-STORE's SOP class was not an ECG one or not its presentation context's: association rejected, or 0x0122",
    action:
      "the device sends something other than a 12-lead ECG, or compressed: change its export settings, or point it elsewhere",
    next: "operator",
  },
  VG_DICOM_TOO_LARGE: {
    area: "dicom",
    seen: "device lastError",
    meaning: "an object over 64 MiB: its bytes were counted and dropped, answered 0xA700",
    action: "none for an ECG; find what the device sends",
    next: "operator",
  },
  VG_DICOM_NOT_DICOM: {
    area: "dicom",
    seen: "device lastError",
    meaning:
      "bytes that are not DICOM on the port (a port scanner, a web browser, HL7 sent to the wrong port): connection closed",
    action: "find the sender (the remote address is in the message)",
    next: "operator",
  },
  VG_DICOM_PDU_TOO_LARGE: {
    area: "dicom",
    seen: "device lastError",
    meaning: "a PDU declared larger than 1 MiB: connection closed",
    action: "set the cart's maximum PDU size lower, if it has the setting",
    next: "operator",
  },
  VG_DICOM_INCOMPLETE: {
    area: "dicom",
    seen: "device lastError",
    meaning: "the connection closed in the middle of an object: nothing of it was stored, the cart sends it again",
    action: "nothing; if it keeps happening, check the network",
    next: "retry",
  },
  VG_DICOM_NETWORK: {
    area: "dicom",
    seen: "device lastError",
    meaning: "a timeout, a reset, or a PDU dcmjs-dimse could not read on one connection: connection closed",
    action: "if it repeats, check the network and the cart's DICOM settings",
    next: "retry",
  },
  VG_DICOM_ERROR: {
    area: "dicom",
    seen: "device lastError",
    meaning:
      "a connection's session could not start, or dcmjs-dimse could not be loaded at start (the device then stays retrying)",
    action: "report it; check the installation (npm ci)",
    next: "stop",
  },

  // ---- pairing ---------------------------------------------------------------------------------
  VG_PAIRED_FILE_INVALID: {
    area: "pairing",
    seen: log("error"),
    meaning:
      "paired-devices.json could not be read: it was renamed paired-devices.json.bad-<ms> (never deleted); the configuration file's devices run",
    action: "pair the devices again on the page, or repair the file set aside",
    next: "operator",
  },
  VG_PAIRED_ID_CLASH: {
    area: "pairing",
    seen: log("error"),
    meaning: "a paired device has the id of a device of the configuration file: it is not started",
    action: "rename one of them",
    next: "operator",
  },
  VG_PAIRING_LISTEN: {
    area: "pairing",
    seen: log("warn"),
    meaning:
      "a port for unpaired senders cannot be listened on (taken, or not permitted); tried again every 10 s, said once",
    action: "free the port, or change pairing.listen",
    next: "retry",
  },
  VG_PAIRING_REFUSED: {
    area: "pairing",
    seen: log("warn"),
    meaning:
      "unpaired senders' connections refused or closed (too many, or for what they sent); a summary at most every 10 s",
    action: "find what connects; nothing if it is a sender you will pair",
    next: "retry",
  },
  VG_PAIRING_TOO_MUCH: {
    area: "pairing",
    seen: "in a VG_PAIRING_REFUSED summary",
    meaning: "an unpaired sender sent more bytes than one may before it is paired: closed",
    action: "pair the sender",
    next: "operator",
  },
  VG_PAIRING_UNKNOWN: {
    area: "pairing",
    seen: "in a VG_PAIRING_REFUSED summary",
    meaning: "an unpaired sender sent something that is not HL7/MLLP, DICOM, ASTM or NMEA: closed",
    action: "find the sender (a scan, a device pointed at the wrong port)",
    next: "operator",
  },
  VG_PAIRING_BUG: {
    area: "pairing",
    seen: log("error"),
    meaning: "an unpaired sender's data could not be handled (a decoder failed): that sender was closed",
    action: "a bug: report it with the log line",
    next: "stop",
  },
  VG_NOT_A_PORT: {
    area: "pairing",
    seen: http(400),
    meaning: "the path is not one of the serial ports listed for pairing",
    action: "choose a port the page lists",
    next: "operator",
  },
  VG_PORT_IN_USE: {
    area: "pairing",
    seen: http(409),
    meaning: "another device uses that serial or TCP port",
    action: "choose another port, or remove the other device",
    next: "operator",
  },
  VG_PORT_BUSY: {
    area: "pairing",
    seen: http(409),
    meaning: "the port is being probed or previewed already",
    action: "wait for that to finish",
    next: "retry",
  },
  VG_PORT_OPEN: {
    area: "pairing",
    seen: http(409),
    meaning: "the port could not be opened for a probe or preview (the message says why)",
    action: "check the cable, the adapter and the port's permissions",
    next: "operator",
  },
  VG_PREVIEW_UNSUPPORTED: {
    area: "pairing",
    seen: http(400),
    meaning: "a watched folder has nothing to preview",
    action: "pair the device, then drop a file into its folder",
    next: "operator",
  },
  VG_INVALID: {
    area: "pairing",
    seen: http(400),
    meaning: "a paired device's entry does not validate (`field` names the first bad one), or names an unknown driver",
    action: "correct the field",
    next: "operator",
  },
  VG_DEVICE_EXISTS: {
    area: "pairing",
    seen: http(409),
    meaning: "a device with that id is paired already",
    action: "edit it, or choose another id",
    next: "operator",
  },
  VG_DEVICE_ID_TAKEN: {
    area: "pairing",
    seen: http(409),
    meaning: "the id is a device of the configuration file",
    action: "choose another id",
    next: "operator",
  },
  VG_DEVICE_CONFIGURED: {
    area: "pairing",
    seen: http(409),
    meaning: "the device is set in the configuration file: the page may not edit or remove it",
    action: "IT changes it in the configuration file",
    next: "operator",
  },
  VG_ADDRESS_NOT_ALLOWED: {
    area: "pairing",
    seen: http(400),
    meaning: "a TCP address that is a name, or not on pairing.connectNetworks, or a port not in pairing.connectPorts",
    action: "give the device's IP address; IT allows its network or port",
    next: "operator",
  },
  VG_PAIRING_SAVE: {
    area: "pairing",
    seen: http(500),
    meaning: "the paired devices could not be saved; nothing changed",
    action: "check the state directory (space, permissions)",
    next: "operator",
  },

  // ---- time ------------------------------------------------------------------------------------
  VG_TIME_SYNCED: {
    area: "time",
    seen: log("info"),
    meaning: "the first sync since start, with the correction applied to what was stamped before",
    action: "nothing",
  },
  VG_TIME_RESTAMPED: {
    area: "time",
    seen: log("info"),
    meaning: "how many waiting events the first sync corrected",
    action: "nothing",
  },
  VG_TIME_RESTAMP_FAILED: {
    area: "time",
    seen: log("error"),
    meaning: "the store could not correct the events stamped before the first sync: they keep their unsynced mark",
    action: "see the store's codes; the center knows not to trust those times",
    next: "operator",
  },
  VG_TIME_RESTAMP_SKIPPED: {
    area: "time",
    seen: log("warn"),
    meaning:
      "the box was suspended since the gateway started: the events stamped before the sync keep their unsynced mark",
    action: "nothing",
  },
  VG_TIME_PLACE_FAILED: {
    area: "time",
    seen: log("error"),
    meaning: "the first sync came, but the audit records or case times taken before it could not be placed",
    action: "read `err`; check the state directory",
    next: "operator",
  },
  VG_TIME_PPS_PRESENT: {
    area: "time",
    seen: log("info"),
    meaning: "PPS devices found (listed; not read by this version)",
    action: "nothing",
  },
  VG_TIME_PPS_MISSING: {
    area: "time",
    seen: log("warn"),
    meaning: "the configured time.ppsDevice is not there",
    action: "check the GPS receiver's PPS wiring, or the setting",
    next: "operator",
  },
  VG_TIME_STEP: {
    area: "time",
    seen: log("warn"),
    meaning: "the time estimate moved by more than its uncertainty (`stepMs`, and from which source)",
    action: "look at VG_TIME_DISAGREE lines and the sources' offsets",
  },
  VG_TIME_STEP_BACK: {
    area: "time",
    seen: log("warn"),
    meaning: "the estimate stepped back (`stepMs`): events stamped next carry stepBackMs; order by seq",
    action: "nothing",
  },
  VG_TIME_CORROBORATED: {
    area: "time",
    seen: log("warn"),
    meaning: "a source outside the plausibility window is believed: another source agrees with it",
    action: "nothing",
  },
  VG_TIME_MARK_SAVE: {
    area: "time",
    seen: log("warn"),
    meaning: "the last known good time could not be written to the state directory",
    action: "check the state directory (space, permissions)",
    next: "operator",
  },
  VG_TIME_MARK_UNREADABLE: {
    area: "time",
    seen: log("warn"),
    meaning: "the last known good time could not be read from the state directory",
    action: "check the state directory; it is written again at the next sync",
    next: "retry",
  },
  VG_TIME_DISAGREE: {
    area: "time",
    seen: log("warn"),
    meaning: "time sources disagree beyond their uncertainties; the line says which was believed",
    action: "check the sources (GPS antenna, NTP servers)",
    next: "operator",
  },
  VG_TIME_IMPLAUSIBLE: {
    area: "time",
    seen: log("warn"),
    meaning:
      "a source reported a time before 2025 (ignored), or outside the plausibility window (waits for another source to agree)",
    action: "check that source",
    next: "retry",
  },
  VG_TIME_SOURCE_BUG: {
    area: "time",
    seen: log("error"),
    meaning: "a time source's poll failed unexpectedly; it polls again at its next time",
    action: "a bug: report it with the log line",
    next: "stop",
  },
  VG_WALL_CLOCK_STEP: {
    area: "time",
    seen: log("warn"),
    meaning: "the system clock was stepped (`stepMs`); event times are unaffected",
    action: "nothing",
  },
  VG_NTP_TIMEOUT: {
    area: "time",
    seen: `${log("warn")}; time status`,
    meaning: "an NTP server did not answer within time.ntpTimeoutMs (said once, again only when the failure changes)",
    action: "check the server's address and the firewall (UDP 123)",
    next: "retry",
  },
  VG_NTP_SOCKET: {
    area: "time",
    seen: `${log("warn")}; time status`,
    meaning: "an NTP server could not be reached (name lookup, network)",
    action: "check the server's name and the network",
    next: "retry",
  },
  VG_NTP_REJECTED: {
    area: "time",
    seen: `${log("warn")}; time status`,
    meaning:
      "an NTP server answered unusably (`ntpCode`: NTP_KISS, NTP_UNSYNCHRONIZED, …); a kiss-o'-death holds it off",
    action: "use another server if it persists",
    next: "retry",
  },
  VG_NTP_FAILED: {
    area: "time",
    seen: `${log("warn")}; time status`,
    meaning: "an NTP server gave no usable answer in a poll, for no more precise reason",
    action: "check the server",
    next: "retry",
  },
  VG_NTP_FALSETICKER: {
    area: "time",
    seen: log("warn"),
    meaning: "an NTP server disagreed with the majority: ignored this poll",
    action: "use another server if it persists",
    next: "retry",
  },
  VG_NTP_OK: {
    area: "time",
    seen: log("info"),
    meaning: "a failing NTP server answers again",
    action: "nothing",
  },

  // ---- cases -----------------------------------------------------------------------------------
  VG_CASE_NOT_FOUND: {
    area: "cases",
    seen: http(404),
    meaning: "no such case on this gateway",
    action: "check the case id",
    next: "operator",
  },
  VG_CASE_ALREADY_OPEN: {
    area: "cases",
    seen: http(409),
    meaning: "another case is open at that location (the message names it)",
    action: "close it first, or open the case at another location",
    next: "operator",
  },
  VG_CASE_EXISTS: {
    area: "cases",
    seen: http(409),
    meaning: "a case with that id exists already on this gateway",
    action: "choose another id",
    next: "operator",
  },
  VG_CASE_TIME: {
    area: "cases",
    seen: http(400),
    meaning: "a tapped time in the future",
    action: "correct the time",
    next: "operator",
  },
  VG_CASE_NODE_SET: {
    area: "cases",
    seen: http(409),
    meaning: "that time node is already recorded",
    action: "send a correction, with the time it really was",
    next: "operator",
  },
  VG_CASE_CORRECTION: {
    area: "cases",
    seen: http(400),
    meaning: "a correction of a time node without the time it really was",
    action: "give the time",
    next: "operator",
  },
  VG_REPORT_UNKNOWN_ECG: {
    area: "cases",
    seen: "ack to the center",
    meaning:
      "the center sent a reading of an event that is not an ECG this gateway sent (or one past its retention): refused, not shown to the crew",
    action: "the center: send the reading to the gateway whose ECG it is, for that ecg12 event's id",
    next: "operator",
  },
  VG_CASE_FAILED: {
    area: "cases",
    seen: "audit record",
    meaning: "a command from the center about a case failed for a reason other than the case's rules",
    action: "read the gateway's log at that time",
    next: "stop",
  },
  VG_CASES_CLOSED: {
    area: "cases",
    seen: "error",
    meaning: "the case book was used while closed (the gateway is stopping or never started)",
    action: "a bug if seen while the gateway runs: report it",
    next: "stop",
  },
  VG_CASE_EVENT_REFUSED: {
    area: "cases",
    seen: log("error"),
    meaning:
      "a case change was saved on the box, but its case event could not be stored for the center (`cause`: the store's code)",
    action: "fix the store's problem (`cause`); the change itself is kept on the box",
    next: "operator",
  },
  VG_CASE_ECG_BEFORE_FMC: {
    area: "cases",
    seen: log("warn"),
    meaning: "a case's first ECG is dated before its first medical contact",
    action: "check the cart's clock",
    next: "operator",
  },
  VG_CASE_TIMES_PLACED: {
    area: "cases",
    seen: log("info"),
    meaning:
      "case times taken before the clock was synchronized were placed on the synchronized timeline (those of an earlier boot cannot be)",
    action: "nothing",
  },
  VG_ECG_NOT_FOUND: {
    area: "cases",
    seen: http(404),
    meaning: "no such 12-lead ECG is kept on this gateway (delivered events are deleted after their retention)",
    action: "nothing: the center has it",
    next: "operator",
  },

  // ---- web -------------------------------------------------------------------------------------
  VG_AUTH_REQUIRED: {
    area: "web",
    seen: http(401),
    meaning: "no session: log in first",
    action: "log in",
    next: "operator",
  },
  VG_LOGIN_FAILED: {
    area: "web",
    seen: http(401),
    meaning: "wrong username or password (counted towards the lock-outs)",
    action: "give the right ones; an admin resets a forgotten password",
    next: "operator",
  },
  VG_ACCOUNT_LOCKED: {
    area: "web",
    seen: http(429),
    meaning: "this username is locked after too many failed logins (`retryAfterS`, `retryAt`)",
    action: "wait, or have an admin reset the password",
    next: "retry",
  },
  VG_TOO_MANY_ATTEMPTS: {
    area: "web",
    seen: http(429),
    meaning: "too many failed attempts from this address (`retryAfterS`, `retryAt`)",
    action: "wait",
    next: "retry",
  },
  VG_BUSY: {
    area: "web",
    seen: http(503),
    meaning: "too many logins at once (`retryAfterS`: 1)",
    action: "try again in a moment",
    next: "retry",
  },
  VG_CSRF: {
    area: "web",
    seen: http(403),
    meaning: "a changing request without the session's x-csrf-token",
    action: "reload the page",
    next: "operator",
  },
  VG_ORIGIN: {
    area: "web",
    seen: http(403),
    meaning: "the request's Origin is another site",
    action: "use the page itself",
    next: "operator",
  },
  VG_FORBIDDEN: {
    area: "web",
    seen: http(403),
    meaning: "the user's role may not do this",
    action: "ask an admin",
    next: "operator",
  },
  VG_PASSWORD_CHANGE_REQUIRED: {
    area: "web",
    seen: http(403),
    meaning:
      "the password is an initial one, reset or expired: every route but changing it and logging out answers this",
    action: "change the password",
    next: "operator",
  },
  VG_PASSWORD_WEAK: {
    area: "web",
    seen: http(400),
    meaning: "the new password breaks the password policy (the message names the rule)",
    action: "choose a stronger one",
    next: "operator",
  },
  VG_PASSWORD_REUSED: {
    area: "web",
    seen: http(400),
    meaning: "the new password is the current one",
    action: "choose another",
    next: "operator",
  },
  VG_PASSWORD_WRONG: {
    area: "web",
    seen: http(403),
    meaning: "the current password given is wrong (counted like a failed login)",
    action: "give the current password",
    next: "operator",
  },
  VG_SETUP_DONE: {
    area: "web",
    seen: http(409),
    meaning: "the first admin exists already",
    action: "log in",
    next: "operator",
  },
  VG_SETUP_CODE: {
    area: "web",
    seen: http(403),
    meaning: "wrong or missing setup code (counted like a failed login)",
    action: "read it from <stateDir>/setup-code on the box",
    next: "operator",
  },
  VG_WEB_SETUP: {
    area: "web",
    seen: log("info"),
    meaning:
      "at start, no web user exists yet: the first admin is created on the page with the setup code in the file named",
    action: "open the page and set up the admin, or provision web.users",
    next: "operator",
  },
  VG_USER_EXISTS: {
    area: "web",
    seen: http(409),
    meaning: "that username exists, or reads the same as an existing one",
    action: "choose another name",
    next: "operator",
  },
  VG_USER_UNKNOWN: {
    area: "web",
    seen: http(404),
    meaning: "no such user",
    action: "check the username",
    next: "operator",
  },
  VG_USER_PROVISIONED: {
    area: "web",
    seen: http(409),
    meaning: "the user is provisioned in the configuration: its password and existence are changed there",
    action: "IT changes web.users in the configuration",
    next: "operator",
  },
  VG_USER_SELF: {
    area: "web",
    seen: http(409),
    meaning: "an admin cannot reset their own password this way, nor remove themself",
    action: "change your own password with your current one",
    next: "operator",
  },
  VG_HOST: {
    area: "web",
    seen: http(421),
    meaning: "the request's Host is not a name this box is served under (DNS rebinding)",
    action: "use the box's address, or add the name to web.hostNames",
    next: "operator",
  },
  VG_LOOPBACK_ONLY: {
    area: "web",
    seen: http(403),
    meaning: "GET /status answers only on the box itself",
    action: "use /api/status with a session, or `vitalgate status` on the box",
    next: "operator",
  },
  VG_BAD_REQUEST: {
    area: "web",
    seen: http(400),
    meaning: "a body, query or path part that does not validate (`field` names the first bad one)",
    action: "correct the field",
    next: "operator",
  },
  VG_NOT_FOUND: {
    area: "web",
    seen: http(404),
    meaning: "no such route, file or paired device",
    action: "check the address",
    next: "operator",
  },
  VG_INTERNAL: {
    area: "web",
    seen: http(500),
    meaning: "a web request failed inside the daemon (logged as VG_WEB_ERROR)",
    action: "a bug: report it with the log line",
    next: "stop",
  },
  VG_WEB_ERROR: {
    area: "web",
    seen: log("error"),
    meaning: "a web request failed inside the daemon (answered 500 VG_INTERNAL)",
    action: "a bug: report it with the log line",
    next: "stop",
  },
  VG_LIVE_FULL: {
    area: "web",
    seen: http(503),
    meaning: "already the most pages watching live at once",
    action: "close a page",
    next: "operator",
  },
  VG_LIVE_SESSION_FULL: {
    area: "web",
    seen: http(429),
    meaning: "this login already watches live on the most pages one session may",
    action: "close a page",
    next: "operator",
  },
  VG_NETWORK: {
    area: "web",
    seen: "the page",
    meaning: "the page cannot reach the gateway",
    action: "check the network; the page tries again",
    next: "retry",
  },
  VG_WEB_TLS: {
    area: "web",
    seen: log("info"),
    meaning: "the page is served over HTTPS; the line gives the certificate's SHA-256 fingerprint",
    action: "compare the fingerprint with the browser's",
  },
  VG_WEB_HTTP: {
    area: "web",
    seen: log("info"),
    meaning: "the page is served over plain HTTP, on loopback only",
    action: "nothing",
  },

  // ---- audit -----------------------------------------------------------------------------------
  VG_AUDIT_FAILED: {
    area: "audit",
    seen: log("error"),
    meaning: "an audit record (the daemon's start or stop, a center command) could not be written",
    action: "check the state directory (local.db: space, permissions)",
    next: "operator",
  },
  VG_AUDIT_CHAIN_BROKEN: {
    area: "audit",
    seen: log("error"),
    meaning:
      "the audit trail's hash chain does not verify (`firstBad`): a record was changed or deleted outside the daemon; the retention purge is skipped",
    action: "find who had write access to <stateDir>/local.db; GET /api/audit shows the same",
    next: "operator",
  },

  // ---- service and uplink ----------------------------------------------------------------------
  VG_SCHEMA_TOO_NEW: {
    area: "service",
    seen: "log fatal; the gateway does not start (exit code 1)",
    meaning:
      "local.db or outbox.db is at a schema version newer than this release knows: written by a newer release (a rollback without restoring); the file is left as it is",
    action:
      "run the newer release again, or restore the backup taken before the upgrade (see [Schema versions](operations.md#schema-versions-and-upgrades))",
    next: "operator",
  },
  VG_BACKUP: {
    area: "service",
    seen: log("info"),
    meaning: "a scheduled backup was taken (`path`, `bytes`, `pruned`: older ones deleted)",
    action: "nothing",
  },
  VG_BACKUP_FAILED: {
    area: "service",
    seen: `${log("error")}; vitalgate backup`,
    meaning:
      "a backup failed (`err`: the disk is full, backup.dir is not writable, …); nothing half-written is left as a backup; a scheduled one is taken again at its next time",
    action:
      "read `err`; for a place outside /var/lib/vitalgate-backup see [On a schedule](operations.md#on-a-schedule)",
    next: "operator",
  },
  VG_BACKUP_SKIPPED: {
    area: "service",
    seen: log("warn"),
    meaning: "the backup schedule came round while the previous backup still ran: that time is skipped",
    action: "a schedule closer than a backup takes: space it out",
    next: "operator",
  },
  VG_BACKUP_DAMAGED: {
    area: "service",
    seen: "vitalgate restore",
    meaning:
      "the backup to restore is damaged or incomplete (a file missing, a SHA-256 that does not match its manifest): not restored",
    action: "restore another backup",
    next: "operator",
  },
  VG_RESTORE_REFUSED: {
    area: "service",
    seen: "vitalgate restore",
    meaning: "the backup holds a database at a schema version newer than this release knows: not restored",
    action: "restore it with the release that took it (the message names it)",
    next: "operator",
  },
  VG_SD_NOTIFY_FAILED: {
    area: "service",
    seen: log("warn"),
    meaning:
      "systemd-notify failed or took over 5 s (`what`: READY=1, WATCHDOG=1, STOPPING=1); the next ping tries again; a READY=1 that never arrives fails the start after TimeoutStartSec",
    action: "check that systemd-notify is installed (the systemd package) and the unit has NotifyAccess=all",
    next: "operator",
  },
  VG_EVENT_LOOP_STALLED: {
    area: "service",
    seen: log("warn"),
    meaning:
      "the event loop stalled for more than half the watchdog interval: no watchdog ping is sent, and systemd restarts the gateway if it lasts",
    action: "report it with the log around it",
    next: "stop",
  },
  VG_MESSAGE_TOO_LARGE: {
    area: "service",
    seen: log("error"),
    meaning:
      "an event is larger than uplink.maxMessageKiB allows (one stored before the limit was lowered): kept in the outbox, not sent; said once per event (`seq`, `kind`, `bytes`)",
    action: "raise uplink.maxMessageKiB to send it",
    next: "operator",
  },
  VG_UPLINK_UNVERIFIED: {
    area: "service",
    seen: log("warn"),
    meaning: "the uplink does not verify the broker's certificate (rejectUnauthorized: false)",
    action: "give the broker's CA (uplink.caFile) and remove rejectUnauthorized: false",
    next: "operator",
  },
  VG_CENTER_MESSAGE_IGNORED: {
    area: "service",
    seen: `${log("warn")}; ack or cmd-result to the center`,
    meaning:
      "a receipt, report or command from the center was not acted on: too large, not JSON, invalid, expired, for an unknown ECG, or asking for an answer topic the gateway may not publish to",
    action: "the center: read the reason in the answer (docs/protocol.md, Answers)",
    next: "operator",
  },
  VG_UPLINK_PLAINTEXT: {
    area: "service",
    seen: log("warn"),
    meaning: "a plain mqtt:// or ws:// uplink to something other than loopback",
    action: "use mqtts:// or wss://",
    next: "operator",
  },
} as const satisfies Record<string, CodeEntry>;

export type Code = keyof typeof CODES;

export function isCode(code: string): code is Code {
  return Object.hasOwn(CODES, code);
}

/** The next step of a catalog code; undefined for another code (a device protocol's) or a line that reports no failure. */
export function nextStep(code: string): NextStep | undefined {
  return isCode(code) ? (CODES[code] as CodeEntry).next : undefined;
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** docs/errors.md, as this table writes it. */
export function errorsPage(): string {
  const out = [
    "# Error and event codes",
    "",
    "<!-- Generated from src/error-catalog.ts by `vitalgate errors`: edit the table there, then",
    "     `node src/cli/main.ts errors > docs/errors.md` (test/error-catalog.test.ts checks they agree). -->",
    "",
    "Every `VG_` code the gateway uses: in its log (`code`), in a device's `lastError` (`/api/devices`,",
    "`vitalgate status`), in HTTP answers (`error.code`), in the `.why.txt` of a file set aside, in alarms",
    "to the center. The device protocols' own codes (`HL7_…`, `DICOM_…`, `NMEA_…`, `ASTM_…`) are listed",
    "with each driver in [devices.md](devices.md).",
    "",
    "**next** says what comes next: **retry**: it passes without anyone acting (the gateway, or the",
    "device, tries again); **operator**: a person must act; **stop**: a fault of the gateway itself,",
    "to report. A dash: the line reports no failure.",
  ];
  for (const [area, title] of Object.entries(AREAS)) {
    out.push("", `## ${title}`, "", "| code | seen as | what happened | what to do | next |", "|---|---|---|---|---|");
    for (const [code, e] of Object.entries(CODES) as [Code, CodeEntry][]) {
      if (e.area !== area) continue;
      out.push(`| \`${code}\` | ${cell(e.seen)} | ${cell(e.meaning)} | ${cell(e.action)} | ${e.next ?? "—"} |`);
    }
  }
  return out.join("\n") + "\n";
}
