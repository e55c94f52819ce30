// Which folders a device may watch (issue 13 item 1, issue 19 item 9). A watched folder's files are
// read and then moved to done/ or rejected/: a folder that is the gateway's state directory (or
// holds it, or lies in it) would have the gateway's own databases moved away, and a folder on a
// kernel pseudo filesystem (/proc, /sys) has files that never end or block when read. So a folder,
// whether from the configuration file or paired on the page, is watched only when, resolved
// through symlinks (realpath):
//  - it lies in one of the roots IT sets in the configuration file (`watchedFolders.roots`);
//  - it is neither the state directory (nor the outbox's directory), nor a parent, nor a child of one;
//  - it is not on a pseudo filesystem (by path: /proc, /sys, /dev; by the filesystem's type).
// Checked when a device is paired (400), each time a device starts (refused with an alarm), and
// by the folder transport at each scan (a folder swapped for a symlink since is no longer read).
import { realpathSync, statfsSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve, sep } from "node:path";

export interface FolderRules {
  /** `watchedFolders.roots`. */
  roots: readonly string[];
  stateDir: string;
  /** The outbox file (`store.path`): its directory is protected like the state directory. */
  storePath: string;
}

export interface FolderProblem {
  code: "VG_FOLDER_NOT_ALLOWED";
  message: string;
}

/**
 * Kernel pseudo filesystems, by statfs f_type (linux/include/uapi/linux/magic.h): proc, sysfs,
 * debugfs, tracefs, securityfs, cgroup, cgroup2, devpts, bpf, configfs, pstore, efivarfs,
 * fusectl, hugetlbfs, mqueue, nsfs, selinuxfs.
 */
const PSEUDO_FS_TYPES = new Set([
  0x9fa0, 0x62656572, 0x64626720, 0x74726163, 0x73636673, 0x27e0eb, 0x63677270, 0x1cd1, 0xcafe4a11, 0x62656570,
  0x6165676c, 0xde5e81e4, 0x65735543, 0x958458f6, 0x19800202, 0x6e736673, 0xf97cff8c,
]);
/** Trees of device nodes and kernel state, whatever filesystem they are on (devtmpfs is a tmpfs). */
const PSEUDO_TREES = ["/proc", "/sys", "/dev"];

/**
 * `path` resolved through symlinks; a part that does not exist yet (the transport makes the folder)
 * is appended to its nearest existing ancestor's real path.
 */
export function realFolder(path: string): string {
  const absolute = resolve(path);
  const missing: string[] = [];
  let at = absolute;
  for (;;) {
    try {
      return join(realpathSync(at), ...missing.reverse());
    } catch {
      const up = dirname(at);
      if (up === at) return absolute;
      missing.push(basename(at));
      at = up;
    }
  }
}

/** `inner` is `outer` or lies in it (both real, absolute). */
const within = (inner: string, outer: string) =>
  inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);

/** The nearest existing ancestor of a real path (for statfs). */
function existing(real: string): string {
  for (let at = real; ; at = dirname(at)) {
    try {
      realpathSync(at);
      return at;
    } catch {
      if (dirname(at) === at) return at;
    }
  }
}

/** Why the real path `real` is on a pseudo filesystem, or undefined. */
export function pseudoFilesystem(real: string): string | undefined {
  const tree = PSEUDO_TREES.find((t) => within(real, t));
  if (tree) return `${tree} holds kernel and device files, not files a device writes`;
  try {
    const type = statfsSync(existing(real)).type;
    if (PSEUDO_FS_TYPES.has(type))
      return `it is on a kernel pseudo filesystem (type 0x${type.toString(16)}), whose files may never end`;
  } catch {
    // not stat-able: the transport reports it when it cannot read the folder
  }
  return undefined;
}

/** Why `dir` may not be watched under `rules`, or undefined when it may. */
export function folderProblem(dir: string, rules: FolderRules): FolderProblem | undefined {
  const no = (message: string): FolderProblem => ({
    code: "VG_FOLDER_NOT_ALLOWED",
    message: `folder ${dir}: ${message}`,
  });
  if (!isAbsolute(dir)) return no("must be an absolute path");
  const real = realFolder(dir);
  const pseudo = pseudoFilesystem(real);
  if (pseudo) return no(`not watched: ${pseudo}`);
  const via = real === resolve(dir) ? "" : ` (it leads to ${real})`;
  for (const [what, path] of [
    ["the gateway's state directory", rules.stateDir],
    ["the outbox's directory", dirname(resolve(rules.storePath))],
  ] as const) {
    const protectedDir = realFolder(path);
    if (within(real, protectedDir) || within(protectedDir, real)) {
      return no(`not watched: it is, holds or lies in ${what} ${protectedDir}${via}; files there would be moved away`);
    }
  }
  if (rules.roots.length === 0)
    return no("not watched: no folder may be watched until IT sets watchedFolders.roots in the configuration file");
  if (!rules.roots.some((root) => within(real, realFolder(root)))) {
    return no(
      `not watched: it is outside the folders IT allows (watchedFolders.roots: ${rules.roots.join(", ")})${via}`,
    );
  }
  return undefined;
}
