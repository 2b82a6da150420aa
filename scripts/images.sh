#!/usr/bin/env bash
# Builds the container images Warren's Kubernetes tests need, offline (no registry, no Docker
# engine), as OCI archives that `ctr -n k8s.io images import` (containerd 1.6) accepts, and
# `podman load` too when the archive holds one name. Each archive names its image(s) with the
# annotations `ctr export` writes (io.containerd.image.name = the full reference,
# org.opencontainers.image.ref.name = the tag), so an import gives exactly the names the
# cluster references (warren/busybox:test arrives as docker.io/warren/busybox:test, the name
# the kubelet looks up).
#
# Usage: scripts/images.sh [--k8s-bin DIR] [--conformance] [ROLE...]
#   ROLE          warren-node pause busybox          (the default set)
#                 kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns
#                                                    (added to the default set by --k8s-bin)
#                 agnhost glibc-dns-testing          (added by --conformance; they need --k8s-bin
#                                                    with e2e.test and agnhost, which
#                                                    `scripts/k8s-tools.sh --conformance` adds)
#   --k8s-bin DIR the bin directory printed by scripts/k8s-tools.sh (also WARREN_K8S_BIN): the
#                 control-plane images are its static binaries, named as its
#                 `kubeadm config images list` prints them; when kubeadm's pause name differs
#                 from WARREN_PAUSE_IMAGE, the pause archive carries both (kubeadm's preflight
#                 looks for its own).
#   --conformance the images Kubernetes' network conformance tests run (`make conformance`),
#                 named as that bin directory's `e2e.test --list-images` names them; the pause
#                 archive also carries e2e.test's pause name when it is not one of its own
#
# Output: one line per image on stdout, tab-separated: ROLE ARCHIVE REF [REF...]; the first
# REF is the name the cluster uses (containerd's sandbox_image for `pause`). Progress, sizes
# and timings go to stderr. Archives live in the cache, keyed by content (package lists,
# Containerfile, binary hashes): a second call with the same inputs builds nothing.
#
# Environment (defaults):
#   WARREN_IMAGES_CACHE     /var/cache/warren/images
#   WARREN_NODE_IMAGE       warren/warren-node:<package.json version>   (warren.yaml's name)
#   WARREN_PAUSE_IMAGE      registry.k8s.io/pause:3.10.1
#   WARREN_BUSYBOX_IMAGE    warren/busybox:test
#   WARREN_K8S_IMAGE_REPOSITORY  passed to kubeadm as --image-repository when set
#   WARREN_DEBIAN_MIRROR    http://deb.debian.org/debian
#   WARREN_DEBIAN_SECURITY_MIRROR  http://deb.debian.org/debian-security
#
# How each image is made:
#   warren-node  daemonset/Containerfile built by `podman build --network=none` on a Debian 12
#                base bootstrapped by mmdebstrap with daemonset/runtime-packages (so the
#                Containerfile's apt-get step is skipped), binaries from dist/bin (built if absent)
#   pause        scripts/images/pause.c, gcc -static, alone in the image
#   busybox      the host's busybox-static with every applet linked in /bin (+ kubectl with --k8s-bin)
#   kube-*, etcd one static binary in /usr/local/bin on an otherwise empty base; kube-proxy on a
#                Debian 12 base with what it execs: iptables(-save/-restore), nft, ipset
#   coredns      /coredns (as the real image), built once per version with `go install` from
#                the Go module proxy (about 4 minutes cold), on an otherwise empty base
#   agnhost      test/images/agnhost/Dockerfile of the same k8s.io/kubernetes module, on Debian
#                instead of Alpine: a Debian 12 base with the tools its `apk add` line installs
#                and the e2e specs exec (E2E_TOOLS_PACKAGES: dig, nslookup, curl, wget, nc, ip,
#                ss, iperf, socat, ping), then /agnhost (and agnhost-2), /coredns (kubeadm's
#                CoreDNS, built above, for the specs that run their own DNS server), porter's
#                localhost.crt/.key, /uploads, the image's user and group; its tag is the one
#                whose version matches the module's test/images/agnhost/VERSION
#   glibc-dns-testing  the DNS specs' glibc prober: the real image is a Debian base with
#                dnsutils, i.e. agnhost's Debian base layer alone (stored once by containerd)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${WARREN_IMAGES_CACHE:-/var/cache/warren/images}"
K8S_BIN="${WARREN_K8S_BIN:-}"
MIRROR="${WARREN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${WARREN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SUITE=bookworm
# Bump to rebuild every cached archive (keys also cover the functions that make each one).
RECIPE=1
KEEP=3   # archives kept per role (the newest used)
PATH_ENV='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
KUBE_PROXY_PACKAGES=(iptables nftables ipset)   # iptables mode, nftables mode (knftables), ipvs mode
CONTROL_PLANE=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns)
CONFORMANCE=(agnhost glibc-dns-testing)
# What agnhost's `apk add` installs, by Debian's names (bash and util-linux are in the base
# already), plus ping and wget, which Alpine's busybox gives the real image.
E2E_TOOLS_PACKAGES=(bind9-dnsutils curl wget netcat-openbsd iproute2 iperf socat iputils-ping)

log() { printf 'images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

roles=()
conformance=0
while [ $# -gt 0 ]; do
  case "$1" in
    --k8s-bin) K8S_BIN="${2:?--k8s-bin needs a directory}"; shift 2 ;;
    --k8s-bin=*) K8S_BIN="${1#*=}"; shift ;;
    --conformance) conformance=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) roles+=("$1"); shift ;;
  esac
done
if [ "${#roles[@]}" -eq 0 ]; then
  roles=(warren-node pause busybox)
  [ -n "$K8S_BIN" ] && roles+=("${CONTROL_PLANE[@]}")
fi
[ "$conformance" = 1 ] && roles+=("${CONFORMANCE[@]}")
for r in "${roles[@]}"; do
  case "$r" in
    warren-node|pause|busybox) ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|etcd|coredns|agnhost|glibc-dns-testing)
      [ -n "$K8S_BIN" ] || die "$r needs --k8s-bin DIR (scripts/k8s-tools.sh prints it)" ;;
    *) die "unknown image role $r" ;;
  esac
done

# --- tools ---------------------------------------------------------------------------------
need=()
for c in mmdebstrap podman gcc jq gzip; do command -v "$c" >/dev/null || need+=("$c"); done
[ -x /bin/busybox ] || need+=(busybox-static)
[ -f "/usr/lib/$(gcc -dumpmachine 2>/dev/null)/libc.a" ] || need+=(libc6-dev)
if [ "${#need[@]}" -gt 0 ]; then
  log "missing ${need[*]}: running scripts/install-deps.sh"
  bash "$ROOT/scripts/install-deps.sh" >&2
fi

ARCH="$(dpkg --print-architecture)"
mkdir -p "$CACHE/sums" "$CACHE/base" "$CACHE/tmp"
find "$CACHE/sums" -type f -mtime +30 -delete 2>/dev/null || true
exec 9>"$CACHE/.lock"
flock 9   # one builder at a time; a waiting caller then finds the archives made
TMP="$(mktemp -d "$CACHE/tmp/run.XXXXXX")"
PODMAN_STORE=""
cleanup() {
  if [ -n "$PODMAN_STORE" ]; then podman_ rmi -a -f >/dev/null 2>&1 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# --- hashing -------------------------------------------------------------------------------
sha() { sha256sum | cut -c1-64; }
# A file's sha256, remembered by path, size, mtime and inode (the 100 MB binaries cost
# half a second each to hash).
file_sum() {
  local f st k
  f="$(readlink -f "$1")"
  st="$(stat -c '%s %.9Y %i %d' "$f")"
  k="$(printf '%s %s' "$f" "$st" | sha)"
  if [ ! -s "$CACHE/sums/$k" ]; then
    sha256sum "$f" | cut -c1-64 >"$CACHE/sums/$k.$$"
    mv -f "$CACHE/sums/$k.$$" "$CACHE/sums/$k"
  fi
  touch "$CACHE/sums/$k"
  cat "$CACHE/sums/$k"
}
# A cache key: the inputs, plus the code that turns them into an archive (a changed recipe
# rebuilds what it makes).
key_of() { # TEXT FUNCTION...
  local text="$1"; shift
  { printf 'recipe %s arch %s\n%s\n' "$RECIPE" "$ARCH" "$text"; declare -f "$@"; } | sha | cut -c1-16
}

# --- references ----------------------------------------------------------------------------
# The full reference containerd and the kubelet use: warren/busybox:test is
# docker.io/warren/busybox:test, pause:3 is docker.io/library/pause:3.
normalize_ref() {
  local r="$1" first="${1%%/*}"
  if [[ "$r" != */* ]]; then r="docker.io/library/$r"
  elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then r="docker.io/$r"; fi
  local last="${r##*/}"
  [[ "$last" == *:* || "$r" == *@* ]] || r="$r:latest"
  printf '%s' "$r"
}
tag_of() { local n; n="$(normalize_ref "$1")"; printf '%s' "${n##*:}"; }

# --- OCI archives --------------------------------------------------------------------------
# layer_from_tar TAR PREFIX: PREFIX.tar.gz (the blob) and PREFIX.diffid (the tar's digest).
layer_from_tar() {
  sha <"$1" >"$2.diffid.tmp"
  gzip -n -6 -c "$1" >"$2.tar.gz.tmp"
  mv -f "$2.tar.gz.tmp" "$2.tar.gz"
  mv -f "$2.diffid.tmp" "$2.diffid"
}
# layer_from_dir DIR PREFIX: a layer holding DIR's contents, owned by root, mtimes zeroed.
layer_from_dir() {
  tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$2.tar" .
  layer_from_tar "$2.tar" "$2"
  rm -f "$2.tar"
}
# blob FILE DIR: stores FILE in the layout DIR under its digest (a hard link when it can);
# prints "sha256:HEX SIZE".
blob() {
  local d s
  d="$(sha <"$1")"; s="$(stat -c %s "$1")"
  ln -f "$1" "$2/blobs/sha256/$d" 2>/dev/null || cp "$1" "$2/blobs/sha256/$d"
  printf 'sha256:%s %s' "$d" "$s"
}
# write_index LAYOUT MANIFEST_DIGEST MANIFEST_SIZE REF...: index.json naming the manifest once
# per reference, as `ctr export` does.
write_index() {
  local lay="$1" digest="$2" size="$3"; shift 3
  local entries=() r
  for r in "$@"; do
    entries+=("$(jq -cn --arg d "$digest" --argjson s "$size" --arg n "$(normalize_ref "$r")" --arg t "$(tag_of "$r")" \
      '{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
        annotations: {"io.containerd.image.name": $n, "org.opencontainers.image.ref.name": $t}}')")
  done
  printf '%s\n' "${entries[@]}" | jq -cs '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: .}' >"$lay/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
}
# pack_layout LAYOUT OUT: the archive, atomically.
pack_layout() {
  tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$2.tmp.$$" oci-layout index.json blobs
  mv -f "$2.tmp.$$" "$2"
}
# oci_image OUT CONFIG_JSON LAYER_PREFIXES_SPACE_SEPARATED REF...
# CONFIG_JSON is the image config's `config` object (Env, Entrypoint, Cmd, User...).
oci_image() {
  local out="$1" cfg="$2" prefixes="$3"; shift 3
  local lay; lay="$(mktemp -d "$TMP/layout.XXXXXX")"
  mkdir -p "$lay/blobs/sha256"
  local diffs=() layers=() p d s
  for p in $prefixes; do
    read -r d s <<<"$(blob "$p.tar.gz" "$lay")"
    diffs+=("sha256:$(cat "$p.diffid")")
    layers+=("$(jq -cn --arg d "$d" --argjson s "$s" '{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}')")
  done
  printf '%s\n' "${diffs[@]}" | jq -R . | jq -cs --argjson c "$cfg" --arg a "$ARCH" '{
      created: "1970-01-01T00:00:00Z", architecture: $a, os: "linux", config: $c,
      rootfs: {type: "layers", diff_ids: .},
      history: [range(length) | {created: "1970-01-01T00:00:00Z", created_by: "scripts/images.sh"}]}' >"$lay/config.json"
  local cd cs
  read -r cd cs <<<"$(blob "$lay/config.json" "$lay")"
  printf '%s\n' "${layers[@]}" | jq -cs --arg d "$cd" --argjson s "$cs" '{schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: $s},
      layers: .}' >"$lay/manifest.json"
  local md ms
  read -r md ms <<<"$(blob "$lay/manifest.json" "$lay")"
  rm -f "$lay/config.json" "$lay/manifest.json"
  write_index "$lay" "$md" "$ms" "$@"
  pack_layout "$lay" "$out"
  rm -rf "$lay"
}
# Sizes of an archive: the file, and its layers unpacked.
report() { # ROLE ARCHIVE SECONDS
  local m unpacked=0 l
  m="$(tar -xOf "$2" index.json | jq -r '.manifests[0].digest')"
  for l in $(tar -xOf "$2" "blobs/sha256/${m#sha256:}" | jq -r '.layers[].digest'); do
    unpacked=$((unpacked + $(tar -xOf "$2" "blobs/sha256/${l#sha256:}" | gzip -dc | wc -c)))
  done
  jq -n --arg role "$1" --argjson archive "$(stat -c %s "$2")" --argjson unpacked "$unpacked" --argjson seconds "$3" \
    '{role: $role, archiveBytes: $archive, unpackedLayerBytes: $unpacked, buildSeconds: $seconds}' >"$2.json"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# Keeps the newest $KEEP archives of a role.
prune() {
  local role="$1" old
  # shellcheck disable=SC2012  # names are ours: ROLE-HEX.oci.tar
  old="$(ls -1t "$CACHE/$role"-*.oci.tar 2>/dev/null | tail -n +$((KEEP + 1)))" || true
  for f in $old; do rm -f "$f" "$f.json"; done
}

# emit ROLE ARCHIVE REF...: prints the line, logs size and timing.
emit() {
  local role="$1" archive="$2"; shift 2
  touch "$archive"
  if [ -f "$archive.json" ]; then
    log "$role: $* ($(mib "$(jq .archiveBytes "$archive.json")") archive, $(mib "$(jq .unpackedLayerBytes "$archive.json")") unpacked)"
  fi
  local IFS=$'\t'
  printf '%s\t%s\t%s\n' "$role" "$archive" "$*"
}

# build_or_reuse ROLE KEY_TEXT BUILD_FUNCTION REF...: the archive for KEY_TEXT, built by
# BUILD_FUNCTION OUT REF... when the cache lacks it.
build_or_reuse() {
  local role="$1" key_text="$2" fn="$3"; shift 3
  local refs_text; refs_text="$(printf '%s\n' "$@")"
  local archive
  archive="$CACHE/$role-$(key_of "$key_text"$'\n'"refs $refs_text" "$fn" oci_image layer_from_tar layer_from_dir blob write_index pack_layout).oci.tar"
  if [ ! -s "$archive" ]; then
    local t0=$SECONDS
    log "$role: building $*"
    "$fn" "$archive" "$@"
    report "$role" "$archive" $((SECONDS - t0))
    log "$role: built in $((SECONDS - t0)) s"
    prune "$role"
  fi
  emit "$role" "$archive" "$@"
}

# --- Debian bases (mmdebstrap) -------------------------------------------------------------
# debian_base NAME PACKAGE...: prints the layer prefix of a Debian 12 minbase holding the
# packages, trimmed by daemonset/dpkg-excludes; cached by the recipe below.
debian_base() {
  local name="$1"; shift
  local excludes="$ROOT/daemonset/dpkg-excludes"
  local recipe
  recipe="$(printf 'suite %s\nmirror %s\nsecurity %s\nmmdebstrap %s\npackages %s\nexcludes %s\n' \
    "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$(dpkg-query -W -f='${Version}' mmdebstrap 2>/dev/null || echo none)" \
    "$*" "$(sha <"$excludes")")"
  local prefix; prefix="$CACHE/base/$name-$(key_of "$recipe" debian_base layer_from_tar)"
  if [ ! -s "$prefix.tar.gz" ]; then
    local t0=$SECONDS
    log "base $name: mmdebstrap $SUITE with $* (about 75 s)"
    # Merged /usr without the usrmerge package (which pulls in perl); no Recommends; the
    # excludes as --dpkgopt, the only way mmdebstrap applies them to the essential packages
    # too, then under the name the Containerfile gives them; no device nodes (the runtime
    # gives /dev); not the host's resolv.conf and hostname.
    # shellcheck disable=SC2016  # "$1" is the hooks' argument, expanded by mmdebstrap's shell
    if ! SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}" mmdebstrap --variant=minbase \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --aptopt='APT::Install-Recommends "false"' \
      --dpkgopt="$excludes" \
      --customize-hook='mv "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap" "$1/etc/dpkg/dpkg.cfg.d/warren-excludes"' \
      --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"' \
      --skip=output/dev \
      --include="$(IFS=,; printf '%s' "$*")" \
      "$SUITE" "$TMP/$name.tar" \
      "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main" \
      >"$TMP/$name.log" 2>&1; then
      tail -n 40 "$TMP/$name.log" >&2
      die "base $name: mmdebstrap failed"
    fi
    layer_from_tar "$TMP/$name.tar" "$prefix"
    rm -f "$TMP/$name.tar"
    # Older bases of the same name are not needed again.
    find "$CACHE/base" -name "$name-*" ! -name "$(basename "$prefix").*" -delete
    log "base $name: $((SECONDS - t0)) s"
  fi
  printf '%s' "$prefix"
}
packages_of() { sed 's/#.*//' "$1" | tr -s ' \t' '\n' | sed '/^$/d'; }

# --- warren-node ---------------------------------------------------------------------------
podman_() {
  CONTAINERS_CONF="$TMP/containers.conf" podman --root "$PODMAN_STORE/root" --runroot "$PODMAN_STORE/run" "$@"
}
# One executable (scripts/build.mjs); the Containerfile links each program's name to it.
# What its `COPY dist/bin/warren` takes is the executable, never a build's temporary file
# (scripts/sea.mjs writes NAME.partial-PID, then renames).
# The CNI shim (dist/cni/warren) goes beside it, to dist/cni/ of the context, and the
# server's process starter (dist/bin/warren-spawner) to dist/bin/.
WARREN_BINS=(bin/warren cni/warren bin/warren-spawner)
warren_binaries() {
  local b
  for b in "${WARREN_BINS[@]}"; do
    [ -f "$ROOT/dist/$b" ] && [ -x "$ROOT/dist/$b" ] && printf '%s\n' "$ROOT/dist/$b"
  done
}
ensure_warren_binaries() {
  local b missing=0
  for b in "${WARREN_BINS[@]}"; do [ -x "$ROOT/dist/$b" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    log "dist/bin lacks Warren's binaries: building them"
    (cd "$ROOT" && bash scripts/install-deps.sh && node scripts/build.mjs) >&2
  fi
}
NODE_BASE=""
build_warren_node() {
  local out="$1"; shift
  # The base as an OCI archive that the Containerfile's FROM reads directly.
  local base_oci="$TMP/warren-node-base.oci.tar"
  oci_image "$base_oci" "$(jq -cn --arg p "$PATH_ENV" '{Env: [$p], Cmd: ["bash"]}')" "$NODE_BASE" localhost/warren-node-base:build
  # A context of hard links holding only what the Containerfile copies (the repository holds
  # node_modules and more).
  local ctx="$TMP/context" f
  mkdir -p "$ctx/daemonset" "$ctx/dist/bin" "$ctx/dist/cni"
  for f in daemonset/Containerfile daemonset/runtime-packages daemonset/dpkg-excludes; do
    ln -f "$ROOT/$f" "$ctx/$f" 2>/dev/null || cp "$ROOT/$f" "$ctx/$f"
  done
  for f in $WARREN_NODE_FILES; do
    local to="$ctx/dist/$(basename "$(dirname "$f")")/"
    ln -f "$f" "$to" 2>/dev/null || cp "$f" "$to"
  done
  PODMAN_STORE="$TMP/podman"
  mkdir -p "$PODMAN_STORE/net.d"
  printf '%s\n' '[containers]' 'default_ulimits = []' \
    '[engine]' 'runtime = "runc"' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"' \
    '[network]' 'network_backend = "cni"' "network_config_dir = \"$PODMAN_STORE/net.d\"" >"$TMP/containers.conf"
  local tmp_name=localhost/warren-node-build:latest
  podman_ build --quiet --network=none --pull=never --squash --timestamp=0 \
    --build-arg "BASE=oci-archive:$base_oci" -f "$ctx/daemonset/Containerfile" -t "$tmp_name" "$ctx" >/dev/null
  podman_ save --quiet --format oci-archive -o "$TMP/saved.oci.tar" "$tmp_name" >&2
  # Rename: podman names it as built; the index gets the cluster's names.
  local lay="$TMP/saved"
  mkdir -p "$lay"
  tar -C "$lay" -xf "$TMP/saved.oci.tar"
  rm -f "$TMP/saved.oci.tar"
  write_index "$lay" "$(jq -r '.manifests[0].digest' "$lay/index.json")" "$(jq -r '.manifests[0].size' "$lay/index.json")" "$@"
  pack_layout "$lay" "$out"
  rm -rf "$lay"
  podman_ rmi -a -f >/dev/null 2>&1 || true
  rm -rf "$PODMAN_STORE"
  PODMAN_STORE=""
}

# --- pause ---------------------------------------------------------------------------------
build_pause() {
  local out="$1"; shift
  local d="$TMP/pause"
  mkdir -p "$d/root"
  gcc -static -Os -s -Wall -Werror -o "$d/root/pause" "$ROOT/scripts/images/pause.c"
  layer_from_dir "$d/root" "$d/layer"
  oci_image "$out" '{"Entrypoint": ["/pause"], "User": "65535:65535"}' "$d/layer" "$@"
}

# --- busybox -------------------------------------------------------------------------------
build_busybox() {
  local out="$1"; shift
  local d="$TMP/busybox" a
  mkdir -p "$d/root/bin" "$d/root/etc" "$d/root/root" "$d/root/tmp"
  chmod 1777 "$d/root/tmp"
  cp /bin/busybox "$d/root/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$d/root/bin/$a"; done
  # kubectl, when the Kubernetes programs are at hand: a test pod then talks to the API
  # server through its Service with its own service-account token (busybox's TLS cannot).
  [ -n "$K8S_BIN" ] && cp "$(static_binary kubectl)" "$d/root/bin/kubectl"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$d/root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/root/etc/group"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$d/root/etc/hosts"
  layer_from_dir "$d/root" "$d/layer"
  oci_image "$out" "$(jq -cn '{Env: ["PATH=/bin"], Cmd: ["sh"]}')" "$d/layer" "$@"
}

# --- control plane -------------------------------------------------------------------------
# The static binary of a role, at /usr/local/bin where the real images have it (kubeadm's
# static pods run `kube-apiserver ...`, `etcd ...` by name; kube-proxy's DaemonSet runs
# /usr/local/bin/kube-proxy).
static_binary() {
  local f="$K8S_BIN/$1"
  [ -x "$f" ] || die "$f is missing (scripts/k8s-tools.sh builds it)"
  if ldd "$f" >/dev/null 2>&1; then die "$f is dynamically linked; the image has no libraries"; fi
  printf '%s' "$f"
}
KUBE_PROXY_BASE=""
build_control_plane() { # OUT REF... ; role in CP_ROLE
  local out="$1"; shift
  local d="$TMP/$CP_ROLE"
  mkdir -p "$d/root/usr/local/bin" "$d/root/etc" "$d/root/tmp"
  chmod 1777 "$d/root/tmp"
  cp "$(static_binary "$CP_ROLE")" "$d/root/usr/local/bin/$CP_ROLE"
  local layer_list="$d/layer"
  if [ "$CP_ROLE" = kube-proxy ]; then
    layer_list="$KUBE_PROXY_BASE $d/layer"
  else
    # Go's resolver reads it for its lookup order (as in the distroless images).
    printf 'hosts: files dns\n' >"$d/root/etc/nsswitch.conf"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$d/root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/root/etc/group"
  fi
  layer_from_dir "$d/root" "$d/layer"
  oci_image "$out" "$(jq -cn --arg p "$PATH_ENV" --arg b "/usr/local/bin/$CP_ROLE" '{Env: [$p], Entrypoint: [$b]}')" "$layer_list" "$@"
}

# CoreDNS at the version of kubeadm's image tag, from the Go module proxy (a Go module with
# no replace directives, so `go install` builds it), cached by version and Go version.
coredns_binary() { # VERSION
  command -v go >/dev/null || die "coredns: Go is needed to build it"
  local dir; dir="$CACHE/tools/coredns-$1-$(go env GOVERSION)"
  if [ ! -x "$dir/coredns" ]; then
    local t0=$SECONDS
    log "coredns: go install github.com/coredns/coredns@$1 (once per version; about 4 minutes on 2 cores)"
    mkdir -p "$dir"
    CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$dir/.bin" go install -trimpath -ldflags "-s -w" \
      "github.com/coredns/coredns@$1" >&2
    mv -f "$dir/.bin/coredns" "$dir/coredns"
    rmdir "$dir/.bin"
    log "coredns: built in $((SECONDS - t0)) s"
  fi
  printf '%s' "$dir/coredns"
}
build_coredns() { # OUT REF... ; binary in COREDNS_BIN
  local out="$1"; shift
  local d="$TMP/coredns"
  mkdir -p "$d/root/etc" "$d/root/tmp"
  chmod 1777 "$d/root/tmp"
  cp "$COREDNS_BIN" "$d/root/coredns"
  printf 'hosts: files dns\n' >"$d/root/etc/nsswitch.conf"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$d/root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/root/etc/group"
  layer_from_dir "$d/root" "$d/layer"
  # kubeadm's Deployment passes only `-conf FILE`, and adds NET_BIND_SERVICE for port 53.
  oci_image "$out" "$(jq -cn --arg p "$PATH_ENV" '{Env: [$p], Entrypoint: ["/coredns"], WorkingDir: "/"}')" "$d/layer" "$@"
}

# --- conformance (e2e.test's images) -------------------------------------------------------
# The names e2e.test references, as it lists them itself.
E2E_IMAGES=""
e2e_ref() { # ERE: the one name of --list-images that matches
  local m
  m="$(grep -E "$1" <<<"$E2E_IMAGES" || true)"
  [ -n "$m" ] && [ "$(wc -l <<<"$m")" = 1 ] || die "e2e.test --list-images names ${m:-no image} for /$1/ (wanted exactly one)"
  printf '%s' "$m"
}
# The k8s.io/kubernetes module e2e.test and agnhost were built from (scripts/k8s-tools.sh).
k8s_module_dir() {
  local d; d="$(go env GOMODCACHE)/k8s.io/kubernetes@$k8s_version"
  [ -d "$d/test/images/agnhost" ] || die "$d is missing (scripts/k8s-tools.sh --conformance downloads it)"
  printf '%s' "$d"
}
E2E_TOOLS_BASE=""
build_agnhost() { # OUT REF... ; binaries in AGNHOST_BIN, COREDNS_BIN
  local out="$1"; shift
  local d="$TMP/agnhost" porter; porter="$(k8s_module_dir)/test/images/agnhost/porter"
  mkdir -p "$d/root/uploads" "$d/root/home/user-defined-in-image" "$d/base"
  cp "$AGNHOST_BIN" "$d/root/agnhost"
  # The entrypoint-tester specs override the entrypoint with agnhost-2.
  ln -s agnhost "$d/root/agnhost-2"
  cp "$COREDNS_BIN" "$d/root/coredns"
  install -m 0644 "$porter/localhost.crt" "$porter/localhost.key" "$d/root/"
  # adduser -u 1000 -D user-defined-in-image; addgroup -g 50000 group-defined-in-image; addgroup
  # user-defined-in-image group-defined-in-image: the base's files with those lines added.
  tar -C "$d/base" -xzf "$E2E_TOOLS_BASE.tar.gz" ./etc/passwd ./etc/group
  mkdir -p "$d/root/etc"
  { cat "$d/base/etc/passwd"; printf 'user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n'; } >"$d/root/etc/passwd"
  { cat "$d/base/etc/group"; printf 'user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n'; } >"$d/root/etc/group"
  chmod 0644 "$d/root/etc/passwd" "$d/root/etc/group"
  chown 1000:1000 "$d/root/home/user-defined-in-image"
  tar -C "$d/root" --sort=name --mtime=@0 --numeric-owner -cf "$d/layer.tar" .   # keeps the home's owner
  layer_from_tar "$d/layer.tar" "$d/layer"
  rm -f "$d/layer.tar"
  local ports='{"80/tcp":{},"8080/tcp":{},"8081/tcp":{},"9376/tcp":{},"5000/tcp":{}}'
  oci_image "$out" "$(jq -cn --arg p "$PATH_ENV" --argjson e "$ports" \
    '{Env: [$p], Entrypoint: ["/agnhost"], Cmd: ["pause"], WorkingDir: "/", ExposedPorts: $e}')" "$E2E_TOOLS_BASE $d/layer" "$@"
}
build_glibc_dns_testing() { # OUT REF...
  local out="$1"; shift
  oci_image "$out" "$(jq -cn --arg p "$PATH_ENV" '{Env: [$p], Cmd: ["bash"]}')" "$E2E_TOOLS_BASE" "$@"
}

# kubeadm's names for the control plane (and its pause), by role.
declare -A KUBEADM_REF=()
if [ -n "$K8S_BIN" ]; then
  [ -x "$K8S_BIN/kubeadm" ] || die "$K8S_BIN/kubeadm is missing (scripts/k8s-tools.sh builds it)"
  k8s_version="$("$K8S_BIN/kubeadm" version -o short)"
  repo_args=()
  [ -n "${WARREN_K8S_IMAGE_REPOSITORY:-}" ] && repo_args=(--image-repository "$WARREN_K8S_IMAGE_REPOSITORY")
  while read -r ref; do
    name="${ref%:*}"; KUBEADM_REF["${name##*/}"]="$ref"
  done < <("$K8S_BIN/kubeadm" config images list --kubernetes-version "$k8s_version" "${repo_args[@]}" -o json | jq -r '.images[]')
fi
for r in "${roles[@]}"; do
  case "$r" in agnhost|glibc-dns-testing) ;; *) [ "$conformance" = 1 ] || continue ;; esac
  [ -x "$K8S_BIN/e2e.test" ] || die "$K8S_BIN/e2e.test is missing (scripts/k8s-tools.sh --conformance builds it)"
  E2E_IMAGES="$("$K8S_BIN/e2e.test" --list-images)"
  break
done

# --- main ----------------------------------------------------------------------------------
NODE_IMAGE="${WARREN_NODE_IMAGE:-warren/warren-node:$(jq -r .version "$ROOT/package.json")}"
PAUSE_IMAGE="${WARREN_PAUSE_IMAGE:-registry.k8s.io/pause:3.10.1}"
BUSYBOX_IMAGE="${WARREN_BUSYBOX_IMAGE:-warren/busybox:test}"

for role in "${roles[@]}"; do
  case "$role" in
    warren-node)
      ensure_warren_binaries
      mapfile -t node_packages < <(packages_of "$ROOT/daemonset/runtime-packages")
      NODE_BASE="$(debian_base warren-node "${node_packages[@]}")"
      key="base $(basename "$NODE_BASE")"$'\n'
      for f in daemonset/Containerfile daemonset/runtime-packages daemonset/dpkg-excludes; do
        key+="$f $(sha <"$ROOT/$f")"$'\n'
      done
      WARREN_NODE_FILES="$(warren_binaries)"
      for f in $WARREN_NODE_FILES; do key+="${f#"$ROOT"/} $(file_sum "$f")"$'\n'; done
      build_or_reuse warren-node "$key" build_warren_node "$NODE_IMAGE"
      ;;
    pause)
      refs=("$PAUSE_IMAGE")
      # kubeadm's preflight wants its own pause name present too (it may differ from the
      # sandbox image the cluster configures): one archive, both names.
      kp="${KUBEADM_REF[pause]:-}"
      [ -n "$kp" ] && [ "$(normalize_ref "$kp")" != "$(normalize_ref "$PAUSE_IMAGE")" ] && refs+=("$kp")
      # And e2e.test's (its pause pods), for the conformance tests.
      if [ "$conformance" = 1 ]; then
        ep="$(e2e_ref '/pause:[^/]+$')"
        for r in "${refs[@]}"; do [ "$(normalize_ref "$r")" = "$(normalize_ref "$ep")" ] && ep=""; done
        [ -n "$ep" ] && refs+=("$ep")
      fi
      build_or_reuse pause "pause.c $(sha <"$ROOT/scripts/images/pause.c") gcc $(gcc -dumpfullversion) libc $(dpkg-query -W -f='${Version}' libc6-dev)" \
        build_pause "${refs[@]}"
      ;;
    busybox)
      key="busybox $(file_sum /bin/busybox)"
      [ -n "$K8S_BIN" ] && key+=$'\n'"kubectl $(file_sum "$(static_binary kubectl)")"
      build_or_reuse busybox "$key" build_busybox "$BUSYBOX_IMAGE"
      ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|etcd)
      ref="${KUBEADM_REF[$role]:-}"
      [ -n "$ref" ] || die "kubeadm config images list names no $role image"
      key="binary $(file_sum "$(static_binary "$role")")"
      if [ "$role" = kube-proxy ]; then
        KUBE_PROXY_BASE="$(debian_base kube-proxy "${KUBE_PROXY_PACKAGES[@]}")"
        key+=$'\n'"base $(basename "$KUBE_PROXY_BASE")"
      fi
      CP_ROLE="$role" build_or_reuse "$role" "$key" build_control_plane "$ref"
      ;;
    coredns)
      ref="${KUBEADM_REF[coredns]:-}"
      [ -n "$ref" ] || die "kubeadm config images list names no coredns image"
      COREDNS_BIN="$(coredns_binary "${ref##*:}")"
      build_or_reuse coredns "binary $(file_sum "$COREDNS_BIN")" build_coredns "$ref"
      ;;
    agnhost|glibc-dns-testing)
      E2E_TOOLS_BASE="$(debian_base e2e-tools "${E2E_TOOLS_PACKAGES[@]}")"
      if [ "$role" = glibc-dns-testing ]; then
        build_or_reuse glibc-dns-testing "base $(basename "$E2E_TOOLS_BASE")" build_glibc_dns_testing "$(e2e_ref '/glibc-dns-testing:[^/]+$')"
        continue
      fi
      # The tag of the agnhost this module builds (e2e.test also names older ones: AgnhostPrev).
      agnhost_version="$(tr -d ' \n' <"$(k8s_module_dir)/test/images/agnhost/VERSION")"
      AGNHOST_BIN="$(static_binary agnhost)"
      ref="${KUBEADM_REF[coredns]:-}"
      [ -n "$ref" ] || die "kubeadm config images list names no coredns image"
      COREDNS_BIN="$(coredns_binary "${ref##*:}")"
      porter="$(k8s_module_dir)/test/images/agnhost/porter"
      key="base $(basename "$E2E_TOOLS_BASE")"$'\n'"agnhost $(file_sum "$AGNHOST_BIN")"$'\n'"coredns $(file_sum "$COREDNS_BIN")"
      key+=$'\n'"porter $(cat "$porter/localhost.crt" "$porter/localhost.key" | sha)"
      build_or_reuse agnhost "$key" build_agnhost "$(e2e_ref "/agnhost:${agnhost_version//./\\.}\$")"
      ;;
  esac
done
