#!/usr/bin/env bash
# Checks the archives of scripts/images.sh for real: a private containerd (Debian's 1.6,
# runc, its own config, root, state and socket) imports each one into the k8s.io namespace,
# and a container of each image runs a command that needs what the image is for. Also the
# pause binary as PID 1 of a PID namespace: it reaps an orphan and exits 0 on SIGTERM.
# Everything it starts (containerd, shims, mounts) is gone when it exits.
#
# Usage: scripts/images/verify.sh [--k8s-bin DIR] [ROLE...]   (the arguments of images.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log() { printf 'verify: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

lines="$(bash "$ROOT/scripts/images.sh" "$@")"
K8S_BIN=""
for ((i = 1; i <= $#; i++)); do
  case "${!i}" in
    --k8s-bin) j=$((i + 1)); K8S_BIN="${!j}" ;;
    --k8s-bin=*) K8S_BIN="${!i#*=}" ;;
  esac
done

D="$(mktemp -d /tmp/warren-images-verify.XXXXXX)"
SOCK="$D/containerd.sock"
CTR=(ctr --address "$SOCK" --namespace k8s.io)
CONTAINERD_PID=""
cleanup() {
  set +e
  if [ -n "$CONTAINERD_PID" ]; then
    for c in $("${CTR[@]}" containers list -q 2>/dev/null); do
      "${CTR[@]}" task kill -s SIGKILL "$c" >/dev/null 2>&1
      sleep 0.2
      "${CTR[@]}" task delete "$c" >/dev/null 2>&1
      "${CTR[@]}" containers delete "$c" >/dev/null 2>&1
    done
    kill "$CONTAINERD_PID" 2>/dev/null
    wait "$CONTAINERD_PID" 2>/dev/null
  fi
  # Mounts left under the private root (snapshots of a task that did not end), innermost first.
  awk -v d="$D" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$D"
}
trap cleanup EXIT

role_line() { printf '%s\n' "$lines" | awk -F'\t' -v r="$1" '$1 == r'; }
archive_of() { role_line "$1" | cut -f2; }
ref_of() { role_line "$1" | cut -f3; }

# --- containerd ----------------------------------------------------------------------------
mkdir -p "$D/cni/bin" "$D/cni/net.d"
pause_ref="$(ref_of pause)"
cat >"$D/config.toml" <<EOF
version = 2
root = "$D/root"
state = "$D/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$D/containerd.ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$D/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pause_ref:-registry.k8s.io/pause:3.10.1}"
  # This VM lacks CAP_SYS_RESOURCE: without it every sandbox fails to start.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$D/cni/bin"
    conf_dir = "$D/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$D/runc"
EOF
containerd --config "$D/config.toml" >"$D/containerd.log" 2>&1 &
CONTAINERD_PID=$!
for _ in $(seq 100); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
"${CTR[@]}" version >/dev/null 2>&1 || { tail -20 "$D/containerd.log" >&2; fail "containerd did not start"; }
log "containerd $(containerd --version | awk '{print $3}') on $SOCK"

# The full names an archive gives (what the kubelet and the CRI look images up by).
names_in() { tar -xOf "$1" index.json | jq -r '.manifests[].annotations["io.containerd.image.name"]'; }
full_ref() { names_in "$(archive_of "$1")" | head -n 1; }

# --- import --------------------------------------------------------------------------------
while IFS=$'\t' read -r role archive refs; do
  t0=$(date +%s%N)
  "${CTR[@]}" images import "$archive" >/dev/null || fail "$role: ctr images import $archive"
  names="$(names_in "$archive")"
  [ "$(wc -l <<<"$names")" = "$(wc -w <<<"$refs")" ] || fail "$role: the archive names $names, not $refs"
  present="$("${CTR[@]}" images ls -q)"
  for n in $names; do
    grep -qxF "$n" <<<"$present" || fail "$role: $n not in containerd after the import"
  done
  log "$role: imported $(basename "$archive") as $(tr '\n' ' ' <<<"$names")in $((($(date +%s%N) - t0) / 1000000)) ms"
done <<<"$lines"
if [ -n "$K8S_BIN" ] && [ -x "$K8S_BIN/crictl" ]; then
  log "the CRI's view (crictl images):"
  "$K8S_BIN/crictl" --runtime-endpoint "unix://$SOCK" images 2>/dev/null | sed "s/^/  /" >&2
fi

# --- run -----------------------------------------------------------------------------------
RUN_OPTS=()
run_in() { # ROLE COMMAND... : runs it in a fresh container of ROLE's image, prints its output
  local role="$1"; shift
  "${CTR[@]}" run --rm "${RUN_OPTS[@]}" "$(full_ref "$role")" "verify-$role-$RANDOM" "$@"
}
check() { # ROLE DESCRIPTION COMMAND...
  local role="$1" what="$2"; shift 2
  local out
  out="$(run_in "$role" "$@" 2>&1)" || { printf '%s\n' "$out" >&2; fail "$role: $what"; }
  log "$role: $what: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)"
}
has() { role_line "$1" | grep -q .; }

if has busybox; then
  RUN_OPTS=(--privileged)   # setting lo up needs CAP_NET_ADMIN
  # shellcheck disable=SC2016  # the script runs in the container
  check busybox "sh, ip, ping, nc, wget (to localhost, so through /etc/hosts)" sh -ec '
    for a in sh ping wget nc ip nslookup; do command -v "$a" >/dev/null; done
    ip link set lo up
    out="$(ping -c 1 -W 2 127.0.0.1)"; case "$out" in *"1 packets received"*) ;; *) exit 1 ;; esac
    printf "HTTP/1.0 200 OK\r\n\r\nhello from nc\n" | nc -l -p 8080 & sleep 0.3
    wget -q -O - http://localhost:8080/'
  RUN_OPTS=()
fi
if has warren-node; then
  check warren-node "the binaries and the tools they exec" sh -ec '
    warren-agent --help >/dev/null && warren-configgen --help >/dev/null
    CNI_COMMAND=VERSION warren-cni </dev/null
    wg --version; wireguard-go --version | head -1; ip -V; nft --version
    test -x /usr/lib/cni/host-local && test -x /usr/lib/cni/portmap && ls /usr/lib/cni | tr "\n" " "
    ! command -v ovs-vsctl'
fi
for role in kube-apiserver kube-controller-manager kube-scheduler; do
  has "$role" && check "$role" "$role --version by name (as kubeadm's static pod runs it)" "$role" --version
done
has etcd && check etcd "etcd --version by name" etcd --version
if has kube-proxy; then
  # Privileged as kube-proxy runs; in the container's own network namespace.
  RUN_OPTS=(--privileged)
  # shellcheck disable=SC2016
  check kube-proxy "kube-proxy and what it execs, against the kernel" sh -ec '
    /usr/local/bin/kube-proxy --version
    for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do "$t" --version; done | sort -u
    printf "*nat\n:KUBE-VERIFY - [0:0]\n-A KUBE-VERIFY -j RETURN\nCOMMIT\n" | iptables-restore --noflush
    iptables-save -t nat | grep -c KUBE-VERIFY
    nft add table inet kube-verify && nft list tables
    ipset --version | head -n 1'
  RUN_OPTS=()
fi
if has coredns; then
  check coredns "/coredns -version (the Deployment relies on the entrypoint)" /coredns -version
  plugins="$(run_in coredns /coredns -plugins)" || fail "coredns: -plugins"
  grep -q kubernetes <<<"$plugins" || fail "coredns: no kubernetes plugin"
fi

if has pause; then
  # The sandbox image: a task that runs until SIGTERM, then exits 0 (ctr run's status).
  "${CTR[@]}" run --rm "$(full_ref pause)" verify-pause >/dev/null 2>&1 &
  ctr_run=$!
  for _ in $(seq 50); do "${CTR[@]}" task ls 2>/dev/null | grep -q 'verify-pause.*RUNNING' && break; sleep 0.1; done
  "${CTR[@]}" task ls | grep -q 'verify-pause.*RUNNING' || fail "pause: not running"
  sleep 0.5
  "${CTR[@]}" task ls | grep -q 'verify-pause.*RUNNING' || fail "pause: did not keep running"
  "${CTR[@]}" task kill -s SIGTERM verify-pause
  wait "$ctr_run" && rc=0 || rc=$?
  [ "$rc" = 0 ] || fail "pause: the task's exit status was $rc after SIGTERM"
  log "pause: ran as a task until SIGTERM, exit status 0"
  # Reaping, with the binary from the archive as PID 1 of a new PID namespace: an orphan
  # re-parented to it must not stay a zombie.
  x="$D/pause-x"; mkdir -p "$x"
  tar -C "$x" -xf "$(archive_of pause)"
  m="$(jq -r '.manifests[0].digest' "$x/index.json")"
  l="$(jq -r '.layers[0].digest' "$x/blobs/sha256/${m#sha256:}")"
  tar -C "$x" -xzf "$x/blobs/sha256/${l#sha256:}" ./pause
  unshare --pid --fork "$x/pause" 2>/dev/null &
  outer=$!
  sleep 0.3
  inner="$(pgrep -P "$outer" -x pause)" || fail "pause: did not start in a PID namespace"
  # A shell in that namespace leaves a background child behind and exits: the child's new
  # parent is pause (PID 1 there).
  nsenter --target "$inner" --pid -- sh -c 'sleep 0.5 & exit 0'
  sleep 0.2
  orphan="$(pgrep -P "$inner" -x sleep)" || fail "pause: the orphan was not re-parented to it"
  sleep 0.8
  # shellcheck disable=SC2009  # pgrep has no state filter
  zombies="$(ps -o stat= --ppid "$inner" | grep -c '^Z')" || true
  [ "$zombies" = 0 ] || fail "pause: $zombies zombie(s) under it"
  kill -TERM "$inner"
  wait "$outer" && rc=0 || rc=$?
  [ "$rc" = 0 ] || fail "pause: exit status $rc after SIGTERM"
  log "pause: as PID 1 it reaped an orphan (pid $orphan) and exited 0 on SIGTERM"
fi
log "all checks passed"
