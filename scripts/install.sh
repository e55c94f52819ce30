#!/usr/bin/env bash
# vitalgate's installer, at the top of every release bundle (npm run release; docs/operations.md, "Install").
# It needs no network and no Node on the box: the bundle brings its own (bin/vitalgate).
#
#   sudo ./install.sh --role ambulance|clinic   first install: writes that example as /etc/vitalgate/vitalgate.yaml
#   sudo ./install.sh --config FILE             installs FILE as /etc/vitalgate/vitalgate.yaml
#   sudo ./install.sh                           again after provisioning, or a newer bundle: an upgrade
#   sudo /opt/vitalgate/current/install.sh rollback
#
# Install = provision, then start: this release's `config check` runs on the configuration as the service's user
# will read it, and the service is enabled and started only when it passes (else it says what to fix and exits 3).
# Releases live side by side in /opt/vitalgate/releases/<version>; /opt/vitalgate/current links to the running one.
# An upgrade checks the configuration with the new release, stops the service, backs up the state and the
# configuration (vitalgate backup, into /var/backups/vitalgate), switches `current`, starts and waits for /healthz; when the new release
# does not come up healthy in time, it switches back and restores the backup by itself. `rollback` does the same on
# demand. State stays in /var/lib/vitalgate, configuration in /etc/vitalgate.
#
# Options:
#   --health-timeout S   how long to wait for /healthz after a start (default 120, or $VITALGATE_HEALTH_TIMEOUT)
#   --keep N             releases kept on disk, the running one included (default 3, at least 2)
#   --root DIR           install under DIR instead of / (tests): every path below DIR, the example's paths too;
#                        no system user; the service runs without systemd
#   --init systemd|none  how the service runs: systemd when it runs the box; none starts the daemon in the
#                        background (<root>/run/vitalgate.pid, log in <root>/var/log/vitalgate/vitalgate.log)
# Exit codes: 0 done; 1 failed (says why); 2 usage; 3 configuration not valid, nothing started;
#             4 installed but not healthy; 5 upgrade not healthy, rolled back.
set -euo pipefail

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
  say "$1"
  exit "${2:-1}"
}

command=install role="" config_in="" root="" init="" keep=3
health_timeout=${VITALGATE_HEALTH_TIMEOUT:-120}
stop_timeout=30
while [ $# -gt 0 ]; do
  case "$1" in
    install | rollback) command=$1 ;;
    --role) role=${2:?--role needs ambulance or clinic} && shift ;;
    --config) config_in=${2:?--config needs a file} && shift ;;
    --root) root=${2:?--root needs a directory} && shift ;;
    --init) init=${2:?--init needs systemd or none} && shift ;;
    --keep) keep=${2:?--keep needs a number} && shift ;;
    --health-timeout) health_timeout=${2:?--health-timeout needs seconds} && shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' && exit 0 ;;
    *) die "unknown argument: $1 (--help lists them)" 2 ;;
  esac
  shift
done
case "$role" in "" | ambulance | clinic) ;; *) die "--role is ambulance or clinic, not $role" 2 ;; esac
[[ "$keep" =~ ^[0-9]+$ && "$keep" -ge 2 ]] || die "--keep is a number, at least 2 (the running release and the one before)" 2
[[ "$health_timeout" =~ ^[0-9]+$ ]] || die "--health-timeout is a number of seconds" 2

bundle=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
[ -n "$root" ] && root=$(realpath -m "$root")
OPT=$root/opt/vitalgate
RELEASES=$OPT/releases
ETC=$root/etc/vitalgate
CONF=$ETC/vitalgate.yaml
STATE=$root/var/lib/vitalgate
CACHE=$root/var/cache/vitalgate
BACKUPS=$root/var/backups/vitalgate
PIDFILE=$root/run/vitalgate.pid
LOG=$root/var/log/vitalgate/vitalgate.log

if [ -z "$init" ]; then
  # sd_booted(): systemd runs this box. Never under --root: its unit would start the real paths.
  if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then init=systemd; else init=none; fi
fi
case "$init" in systemd | none) ;; *) die "--init is systemd or none, not $init" 2 ;; esac
if [ -z "$root" ]; then
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"
  user=vitalgate
else
  user=$(id -un)
fi

# Runs a command as the service's user, as the service will (the same user, its groups), from / (the caller's
# folder, e.g. /root, may be closed to that user).
as_service() {
  if [ "$user" = "$(id -un)" ]; then "$@"; else (cd / && exec setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"); fi
}
release_field() { sed -n "s/^$2=//p" "$1/RELEASE"; }
current_version() { if [ -L "$OPT/current" ]; then basename "$(readlink "$OPT/current")"; fi; }
current_cli() { as_service "$OPT/current/bin/vitalgate" "$@"; }

# --- the bundle and this machine -----------------------------------------------------------------------------
check_bundle() {
  [ -f "$bundle/RELEASE" ] && [ -x "$bundle/node/bin/node" ] ||
    die "$bundle is not a release bundle (no RELEASE or node/bin/node); make one with npm run release"
  (cd "$bundle" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1) ||
    die "$bundle is damaged: files differ from its SHA256SUMS (cd $bundle && sha256sum -c --quiet SHA256SUMS); copy the bundle again"
  local machine glibc have
  machine=$(release_field "$bundle" machine)
  [ "$(uname -m)" = "$machine" ] ||
    die "this bundle is for $machine, this machine is $(uname -m): use vitalgate-$(release_field "$bundle" version)-linux-$([ "$(uname -m)" = aarch64 ] && echo arm64 || echo x64).tar.gz"
  glibc=$(release_field "$bundle" glibc)
  have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$glibc" "$have" | sort -V | head -1)" = "$glibc" ] ||
    die "this bundle needs glibc $glibc or newer (Debian 12, Ubuntu 22.04); this machine has ${have:-no glibc}"
}

ensure_user() {
  [ -z "$root" ] || return 0
  id vitalgate >/dev/null 2>&1 || useradd --system --home-dir /var/lib/vitalgate --shell /usr/sbin/nologin vitalgate
  # Serial devices (USB adapters) belong to dialout.
  usermod -a -G dialout vitalgate
}

# Copies the bundle to releases/<version>, fresh: a reinstalled release keeps no file the bundle no longer has.
place_release() {
  local version=$1 tmp
  mkdir -p "$RELEASES"
  tmp=$(mktemp -d "$RELEASES/.incoming-XXXXXX")
  cp -a "$bundle/." "$tmp/"
  chmod 0755 "$tmp"
  touch "$tmp" # installed now: what --keep counts by
  if [ -e "$RELEASES/$version" ]; then mv "$RELEASES/$version" "$tmp.old"; fi
  mv "$tmp" "$RELEASES/$version"
  rm -rf "$tmp.old"
}

# --- the configuration -----------------------------------------------------------------------------------------
# The example for a role, with its paths under --root when there is one.
write_example() {
  sed -e "s#/etc/vitalgate/#$ETC/#g" -e "s#/var/lib/vitalgate#$STATE#g" "$1/config/$role.yaml" >"$2"
}

install_config_file() { # source, destination: readable by root and the service's group only
  if [ -z "$root" ]; then install -m 0640 -o root -g vitalgate "$1" "$2"; else install -m 0640 "$1" "$2"; fi
}

# `config check` of a release on a file, as the service's user will read it; on failure, what to do.
check_config() { # release dir, file, the file as the operator named it
  local out
  if out=$(as_service "$1/bin/vitalgate" config check "$2" --on-box 2>&1); then
    say "$3: ${out#*: }"
    return 0
  fi
  printf '%s\n' "${out//$2/$3}" >&2
  say "$3 is not ready: fix what is listed above (the file, and the files it names: passwords, certificates and"
  say "keys, readable by the $user user), then run this again: $bundle/install.sh${root:+ --root $root}${config_in:+ --config $config_in}"
  say "nothing was started or changed"
  return 3
}

# --- the service ------------------------------------------------------------------------------------------------
install_unit() {
  mkdir -p "$root/etc/systemd/system" "$root/usr/local/bin"
  install -m 0644 "$OPT/current/systemd/vitalgate.service" "$root/etc/systemd/system/vitalgate.service"
  ln -sfn "$OPT/current/bin/vitalgate" "$root/usr/local/bin/vitalgate"
}

# Node's compile cache, emptied and filled as the service will use it (its user, its Node flags, its cache
# directory) with every module: even the first start does without the TypeScript stripper (decision 0008).
warm_cache() {
  local flags
  flags=$(sed -n 's|^ExecStart=/opt/vitalgate/current/node/bin/node \(.*\) /opt/vitalgate/current/src/cli/main.ts start.*|\1|p' \
    "$OPT/current/systemd/vitalgate.service")
  mkdir -p "$CACHE"
  [ -n "$root" ] || chown vitalgate:vitalgate "$CACHE"
  rm -rf "$CACHE/compile"
  # shellcheck disable=SC2086 # the flags are words
  as_service env NODE_COMPILE_CACHE="$CACHE/compile" "$OPT/current/node/bin/node" $flags "$OPT/current/scripts/warm-cache.ts" ||
    say "the compile cache is not filled; the first start fills it (and uses ~30 MB more until restarted)"
}

log_from=0 # the log's size when the daemon was last started: what it said since

daemon_pid() { if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then cat "$PIDFILE"; fi; }

start_service() {
  if [ "$init" = systemd ]; then
    systemctl daemon-reload
    systemctl enable --quiet vitalgate
    # Type=notify: returns once the gateway said READY=1, or fails after TimeoutStartSec; the health wait decides.
    systemctl restart vitalgate || true
    return
  fi
  mkdir -p "$(dirname "$PIDFILE")" "$(dirname "$LOG")" "$STATE"
  [ -n "$root" ] || chown vitalgate:vitalgate "$STATE"
  log_from=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
  local cmd=("$OPT/current/bin/vitalgate" start --config "$CONF")
  [ "$user" = "$(id -un)" ] || cmd=(setpriv --reuid="$user" --regid="$user" --init-groups -- "${cmd[@]}")
  # Every step execs the next: the pid is the gateway's own.
  (cd "$STATE" && exec env NODE_COMPILE_CACHE="$CACHE/compile" setsid "${cmd[@]}" >>"$LOG" 2>&1 </dev/null) &
  echo $! >"$PIDFILE"
}

stop_service() {
  if [ "$init" = systemd ]; then
    systemctl stop vitalgate 2>/dev/null || true
    return
  fi
  local pid deadline
  pid=$(daemon_pid)
  if [ -n "$pid" ]; then
    kill -TERM "$pid"
    deadline=$((SECONDS + stop_timeout))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}

# Waits, at most --health-timeout seconds, for the running release's /healthz to say ok.
wait_healthy() {
  local deadline=$((SECONDS + health_timeout)) out
  while :; do
    if out=$(current_cli health --config "$CONF" 2>&1); then
      say "healthy: $out"
      return 0
    fi
    if [ "$init" = none ] && [ -z "$(daemon_pid)" ]; then
      say "the gateway exited; the end of what it logged ($LOG):"
      tail -c +$((log_from + 1)) "$LOG" | tail -n 15 >&2 || true
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      say "not healthy within ${health_timeout} s: $out"
      if [ "$init" = systemd ]; then journalctl -u vitalgate -n 15 --no-pager >&2 || true; else
        tail -c +$((log_from + 1)) "$LOG" | tail -n 15 >&2 || true
      fi
      return 1
    fi
    sleep 0.5
  done
}

switch_current() { # version
  ln -sfn "releases/$1" "$OPT/.current.new"
  mv -T "$OPT/.current.new" "$OPT/current"
}

# Starts the current release and waits for it to be healthy.
start_current() {
  install_unit
  warm_cache
  start_service
  wait_healthy
}

# --- backups ------------------------------------------------------------------------------------------------------
# The pre-upgrade backup (`vitalgate backup` of the release that took it: local.db, the outbox, the paired devices,
# the page's certificate, the configuration; docs/operations.md, Backups), taken while the service is stopped, so
# that a rollback finds the databases as the older release left them, before any migration of the newer one.
take_backup() { # from-version; prints the backup's folder
  mkdir -p "$BACKUPS"
  chmod 0700 "$BACKUPS"
  "$RELEASES/$1/bin/vitalgate" backup --config "$CONF" --to "$BACKUPS" | tail -n 1
}

# Puts a pre-upgrade backup back with the release that took it, the service stopped: its configuration file
# over $CONF (the one replaced is kept aside), then `vitalgate restore`, which moves what it replaces into
# <state>/replaced-<time>/ (never deletes it).
restore_backup() { # backup, release that took it, version rolled back from
  local aside
  if [ -f "$1/vitalgate.yaml" ]; then
    aside=$BACKUPS/rolled-back-from-$3-$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p "$aside"
    cp -a "$CONF" "$aside/vitalgate.yaml"
    install_config_file "$1/vitalgate.yaml" "$CONF"
    say "restored $CONF from $1; the one of $3 is kept in $aside"
  fi
  "$RELEASES/$2/bin/vitalgate" restore "$1" --config "$CONF" >&2
}

# --- rollback and pruning -------------------------------------------------------------------------------------------
# $OPT/rollback, written by an upgrade: from (the newer release), to (the one before), backup (taken in between).
roll_back() {
  [ -f "$OPT/rollback" ] || die "nothing to roll back to: no upgrade recorded in $OPT/rollback"
  local from to backup
  from=$(sed -n 's/^from=//p' "$OPT/rollback")
  to=$(sed -n 's/^to=//p' "$OPT/rollback")
  backup=$(sed -n 's/^backup=//p' "$OPT/rollback")
  [ -d "$RELEASES/$to" ] || die "release $to is no longer in $RELEASES: install its bundle instead"
  [ -d "$backup" ] || die "the pre-upgrade backup $backup is missing"
  say "rolling back from $from to $to"
  stop_service
  restore_backup "$backup" "$to" "$from" || die "the restore of $backup failed (above); $from is stopped, current is still $from"
  switch_current "$to"
  rm -f "$OPT/rollback"
  if start_current; then say "rolled back: $to runs"; else
    say "rolled back to $to, but it is not healthy either"
    return 4
  fi
}

# Keeps the --keep most recently installed releases, always the current one and the one a rollback goes to.
prune_releases() {
  local current keep_to others r
  current=$(current_version)
  keep_to=$(sed -n 's/^to=//p' "$OPT/rollback" 2>/dev/null || true)
  others=$((keep - 1))
  [ -z "$keep_to" ] || others=$((others - 1))
  for r in $(ls -1t "$RELEASES"); do
    if [ "$r" = "$current" ] || [ "$r" = "$keep_to" ]; then continue; fi
    if [ $others -gt 0 ]; then others=$((others - 1)); else rm -rf "${RELEASES:?}/$r" && say "removed release $r"; fi
  done
}

# --- install, upgrade -------------------------------------------------------------------------------------------------
install_release() {
  check_bundle
  local version current staged=""
  version=$(release_field "$bundle" version)
  current=$(current_version)
  ensure_user
  mkdir -p "$ETC"
  [ -n "$root" ] || {
    chown root:vitalgate "$ETC"
    chmod 0750 "$ETC"
  }

  # The configuration this release will run with, checked by this release before anything changes.
  if [ -n "$config_in" ]; then
    [ -f "$config_in" ] || die "--config $config_in: no such file"
    staged=$ETC/.vitalgate.yaml.new
    install_config_file "$config_in" "$staged"
  elif [ ! -f "$CONF" ]; then
    [ -n "$role" ] || die "no $CONF yet: give --role ambulance|clinic (writes that example) or --config FILE" 2
    write_example "$bundle" "$ETC/.vitalgate.yaml.new"
    install_config_file "$ETC/.vitalgate.yaml.new" "$CONF"
    rm -f "$ETC/.vitalgate.yaml.new"
    say "wrote $CONF from the $role example: set gateway.id, the devices and the uplink, and put its secrets in place"
  elif [ -n "$role" ]; then
    say "keeping the existing $CONF (--role writes an example only on a first install; --config FILE replaces it)"
  fi
  if [ "$version" != "$current" ] || [ -z "$current" ]; then place_release "$version"; fi
  local rc=0
  check_config "$RELEASES/$version" "${staged:-$CONF}" "${config_in:-$CONF}" || rc=$?
  if [ $rc -ne 0 ]; then
    rm -f "$ETC/.vitalgate.yaml.new"
    exit $rc
  fi

  if [ -z "$current" ]; then
    [ -z "$staged" ] || mv "$staged" "$CONF"
    switch_current "$version"
    if start_current; then say "installed $version; it runs"; else exit 4; fi
    return
  fi

  # An upgrade (or this release again): stop, back up, switch, start; back to the old one when not healthy.
  if [ "$version" = "$current" ]; then say "reinstalling $version"; else say "upgrading from $current to $version"; fi
  stop_service
  local backup
  backup=$(take_backup "$current") || {
    rm -f "$staged"
    start_service
    exit 1
  }
  say "backed up the state and the configuration to $backup"
  if [ "$version" = "$current" ]; then place_release "$version"; fi
  [ -z "$staged" ] || mv "$staged" "$CONF"
  if [ "$version" != "$current" ]; then
    # The record of the upgrade before this one comes back if this one is rolled back by itself.
    [ ! -f "$OPT/rollback" ] || mv "$OPT/rollback" "$OPT/rollback.before"
    printf 'from=%s\nto=%s\nbackup=%s\n' "$version" "$current" "$backup" >"$OPT/rollback"
  fi
  switch_current "$version"
  if start_current; then
    if [ "$version" = "$current" ]; then say "reinstalled $version; it runs"; else
      say "upgraded to $version; it runs (sudo $OPT/current/install.sh rollback goes back to $current)"
    fi
    rm -f "$OPT/rollback.before"
    prune_releases
    return
  fi
  if [ "$version" = "$current" ]; then exit 4; fi
  say "$version did not come up healthy: rolling back to $current"
  roll_back || exit 4
  [ ! -f "$OPT/rollback.before" ] || mv "$OPT/rollback.before" "$OPT/rollback"
  exit 5
}

case "$command" in
  install) install_release ;;
  rollback) roll_back ;;
esac
