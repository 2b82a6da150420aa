#!/usr/bin/env bash
# Installs what Warren's build, tests and demo need on Debian 12, as root. Cheap when
# everything is already there: it only calls apt-get for missing packages.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  openvswitch-switch      # OVS: the pod bridge (userspace datapath where the module is absent)
  containernetworking-plugins  # host-local IPAM, portmap, and the reference bridge plugin (bench baseline)
  podman runc             # a real CNI runtime for the tests and the demo
  nftables ethtool iproute2 util-linux iputils-ping iperf3 conntrack tcpdump
  etcd-server etcd-client # the allocation store
  busybox-static          # a tiny container image
  mmdebstrap              # the Debian base of the offline-built images (scripts/images.sh)
  gcc libc6-dev           # the static pause binary of the sandbox image (scripts/images.sh)
  containerd              # Debian's containerd 1.6: the Kubernetes tests' runtime
  iptables curl openssl   # the kubelet's iptables chains; the tests' HTTP probes and certificates
  prometheus              # scrapes the agents in the Kubernetes test
  wireguard-tools wireguard-go coturn
  strongswan-charon strongswan-swanctl libcharon-extra-plugins
  jq
  time                    # /usr/bin/time: a process's peak memory (bench/runtimes.ts)
  systemd                 # systemd-analyze checks the agent's unit file
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these as system services; Warren runs its own instances.
  for svc in etcd coturn openvswitch-switch prometheus prometheus-node-exporter containerd; do systemctl disable --now "$svc" >/dev/null 2>&1 || true; done
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.warren-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
