#!/usr/bin/env bash
# Builds the Kubernetes programs Warren's Kubernetes tests run (test tools, never shipped):
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubeadm,
# kubectl from the k8s.io/kubernetes Go module, etcd from go.etcd.io/etcd/server/v3, crictl
# from sigs.k8s.io/cri-tools. `--conformance` adds e2e.test and agnhost.
#
# The binaries are cached outside the repository, keyed by the Kubernetes and Go versions:
# a fresh machine pays the build once (about 15 minutes on 2 cores), later runs nothing.
# Prints the cache's bin directory on stdout; progress goes to stderr.
set -euo pipefail

K8S_VERSION="${WARREN_K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${WARREN_ETCD_VERSION:-v3.6.16}"
CRICTL_VERSION="${WARREN_CRICTL_VERSION:-v1.37.0}"
GO_VERSION="$(go env GOVERSION)"
CACHE="${WARREN_K8S_CACHE:-/var/cache/warren}/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-${GO_VERSION}"
BIN="$CACHE/bin"

conformance=0
[ "${1:-}" = "--conformance" ] && conformance=1

log() { printf 'k8s-tools: %s\n' "$*" >&2; }

# The staging modules (k8s.io/api, k8s.io/client-go, ...) are released as v0.X.Y next to
# k8s.io/kubernetes vX.Y; the main module replaces them with its own staging folders,
# which a module that requires it cannot see, so the wrapper pins each one.
staging_version="v0.${K8S_VERSION#v1.}"
ldflags() {
  local major minor
  major=1; minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean"
    flags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  printf '%s' "$flags"
}

wrapper_module() { # dir module version [replace-source-module]
  local dir="$1" mod="$2" ver="$3"
  mkdir -p "$dir"
  (
    cd "$dir"
    [ -f go.mod ] && return 0
    go mod init "warren.test/$(basename "$dir")" >/dev/null 2>&1
    go mod edit -require="$mod@$ver"
    local modfile
    modfile="$(go mod download -json "$mod@$ver" | jq -r .GoMod)"
    # Every local replace of the required module becomes a version pin.
    awk '/^replace \(/{r=1;next} r&&/^\)/{r=0} r&&/=> \.\//{print $1}' "$modfile" | while read -r m; do
      go mod edit -replace="$m=$m@$staging_version"
    done
  )
}

build_k8s() {
  local dir="$CACHE/src/kubernetes"
  wrapper_module "$dir" k8s.io/kubernetes "$K8S_VERSION"
  cd "$dir"
  local cmds=(kubectl kubeadm kubelet kube-scheduler kube-proxy kube-controller-manager kube-apiserver)
  local want=()
  for c in "${cmds[@]}"; do [ -x "$BIN/$c" ] || want+=("$c"); done
  [ "${#want[@]}" -eq 0 ] && return 0
  log "building ${want[*]} $K8S_VERSION (once per version; about 15 minutes on 2 cores)"
  for c in "${want[@]}"; do
    log "  $c"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags selinux,notest \
      -ldflags "$(ldflags)" -o "$BIN/.$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv -f "$BIN/.$c.tmp" "$BIN/$c"
  done
}

build_conformance() {
  local dir="$CACHE/src/kubernetes"
  cd "$dir"
  if [ ! -x "$BIN/agnhost" ]; then
    log "  agnhost"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$BIN/.agnhost.tmp" \
      k8s.io/kubernetes/test/images/agnhost
    mv -f "$BIN/.agnhost.tmp" "$BIN/agnhost"
  fi
  if [ ! -x "$BIN/e2e.test" ]; then
    log "  e2e.test"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go test -c -trimpath -tags selinux \
      -ldflags "$(ldflags)" -o "$BIN/.e2e.test.tmp" k8s.io/kubernetes/test/e2e
    mv -f "$BIN/.e2e.test.tmp" "$BIN/e2e.test"
  fi
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return 0
  local dir="$CACHE/src/etcd"
  wrapper_module "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  cd "$dir"
  log "building etcd $ETCD_VERSION"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$BIN/.etcd.tmp" go.etcd.io/etcd/server/v3
  mv -f "$BIN/.etcd.tmp" "$BIN/etcd"
}

build_crictl() {
  [ -x "$BIN/crictl" ] && return 0
  log "building crictl $CRICTL_VERSION"
  CGO_ENABLED=0 GOBIN="$CACHE/gobin" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
  mv -f "$CACHE/gobin/crictl" "$BIN/crictl"
}

command -v go >/dev/null || { log "Go is required to build the Kubernetes test tools"; exit 1; }
mkdir -p "$BIN"
# One builder at a time: two test runs on one machine must not both pay the build.
exec 9>"$CACHE/.lock"
flock 9
build_etcd
build_crictl
build_k8s
[ "$conformance" = 1 ] && build_conformance
printf '%s\n' "$BIN"
