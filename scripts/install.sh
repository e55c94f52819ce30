#!/usr/bin/env bash
# Installs vitalgate on a box as a systemd service (run as root from a checkout or release tarball):
#   sudo scripts/install.sh
# Copies the project to /opt/vitalgate, brings Node 24 and the dependencies, creates the vitalgate
# user (in dialout, for serial adapters), installs the unit, and starts it. An existing
# /etc/vitalgate/vitalgate.yaml is never overwritten.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=/opt/vitalgate

id vitalgate >/dev/null 2>&1 || useradd --system --home-dir /var/lib/vitalgate --shell /usr/sbin/nologin vitalgate
usermod -a -G dialout vitalgate

mkdir -p "$dest"
tar -C "$src" --exclude=./node_modules --exclude=./.tools --exclude=./var --exclude=./.git -cf - . | tar -C "$dest" -xf -
# Node 24 and `npm ci --omit=dev`; then a stable path to the node binary for the unit.
(cd "$dest" && NPM_CONFIG_OMIT=dev scripts/node24 node --version)
node_bin=$(cd "$dest" && scripts/node24 bash -c 'command -v node')
mkdir -p "$dest/.tools/bin"
ln -sf "$node_bin" "$dest/.tools/bin/node"

install -d -m 0750 -o root -g vitalgate /etc/vitalgate
if [ ! -f /etc/vitalgate/vitalgate.yaml ]; then
  install -m 0640 -o root -g vitalgate "$dest/config/clinic.yaml" /etc/vitalgate/vitalgate.yaml
  echo "install.sh: wrote /etc/vitalgate/vitalgate.yaml from config/clinic.yaml: edit gateway.id and the devices"
fi
# Node's compile cache, filled as the service will use it (its user, its Node flags, its cache
# directory) with every module stripped and compiled: even the first start then does without the
# TypeScript stripper (docs/decisions/0008-daemon-memory.md). Emptied first: an upgrade leaves stale entries.
flags=$(sed -n 's|^ExecStart=/opt/vitalgate/.tools/bin/node \(.*\) /opt/vitalgate/src/cli/main.ts start.*|\1|p' "$dest/systemd/vitalgate.service")
install -d -m 0750 -o vitalgate -g vitalgate /var/cache/vitalgate
rm -rf /var/cache/vitalgate/compile
# shellcheck disable=SC2086 # the flags are words
runuser -u vitalgate -- env NODE_COMPILE_CACHE=/var/cache/vitalgate/compile "$dest/.tools/bin/node" $flags "$dest/scripts/warm-cache.ts" \
  || echo "install.sh: the compile cache is not filled; the first start will fill it (and use ~30 MB more until restarted)"
"$dest/.tools/bin/node" "$dest/src/cli/main.ts" config check /etc/vitalgate/vitalgate.yaml || echo "install.sh: fix the errors above, then: systemctl restart vitalgate"

install -m 0644 "$dest/systemd/vitalgate.service" /etc/systemd/system/vitalgate.service
systemctl daemon-reload
systemctl enable --now vitalgate
systemctl --no-pager status vitalgate || true
