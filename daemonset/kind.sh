#!/usr/bin/env bash
# NOT RUN IN WARREN'S CI, nor on its dev machine: there is no Docker engine there. Written for
# real users with Docker, kind and kubectl; the emulated nodes of `make demo` / `make test` are
# what is exercised here.
#
# Brings up Warren on a kind cluster:
#   1. builds the binaries (if dist/bin lacks them) and the warren-node image
#   2. creates a kind cluster with no default CNI and podSubnet 10.244.0.0/16
#   3. installs and starts Open vSwitch inside each kind node (Warren expects OVS on the host)
#   4. starts etcd with mTLS as a container on the `kind` Docker network, and sets up the
#      node identities as README's bootstrap says: `warren-configgen admin init` and
#      `admin add-node NODE` (run from the image with the admin's certificate, CN=root),
#      each node's own certificate (CN = its name) in its /etc/warren/etcd
#   5. creates the TURN issuer's two Secrets: warren-turn (coturn's static-auth-secret, from
#      TURN_SECRET_FILE or a new random one kept in the work directory) and
#      warren-turn-issuer-etcd (its etcd certificate, CN=warren-turn-issuer)
#   6. loads the image into the nodes, applies warren.yaml
#
# coturn is not started here: run it where the nodes reach it with the same secret,
#   turnserver --lt-cred-mech --use-auth-secret --static-auth-secret="$(cat SECRET_FILE)" --realm warren
# and put its address in warren.yaml's stunServers and turn.server (without it the nodes
# connect directly, which kind's single Docker network allows, and run without a relay).
#
# Usage (from anywhere; Linux, same architecture as the nodes, Node >= 20.12):
#   daemonset/kind.sh            create everything
#   daemonset/kind.sh --delete   delete the cluster and the etcd container
# Environment: CLUSTER (default warren), WORKERS (default 2), IMAGE, ETCD_IMAGE, TURN_SECRET_FILE.
set -euo pipefail

CLUSTER="${CLUSTER:-warren}"
WORKERS="${WORKERS:-2}"
IMAGE="${IMAGE:-warren/warren-node:0.1.0}"          # the name warren.yaml uses
ETCD_IMAGE="${ETCD_IMAGE:-quay.io/coreos/etcd:v3.5.17}"
ETCD_NAME="${CLUSTER}-etcd"                          # resolvable by name on the kind network
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${XDG_CACHE_HOME:-${HOME}/.cache}/warren-kind-${CLUSTER}"   # certificates, kind config
KUBECTL=(kubectl --context "kind-${CLUSTER}")

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'kind.sh: %s\n' "$*" >&2; exit 1; }

if [[ "${1:-}" == "--delete" ]]; then
  kind delete cluster --name "${CLUSTER}"
  docker rm -f "${ETCD_NAME}" >/dev/null 2>&1 || true
  rm -rf "${WORK}"
  exit 0
fi

for tool in docker kind kubectl openssl node npm; do
  command -v "${tool}" >/dev/null || die "${tool} is required"
done
[[ "$(uname -s)" == Linux ]] || die "build on Linux: the binaries are Linux executables made from this machine's node"

log "Building the binaries and the image ${IMAGE}"
cd "${ROOT}"
if [[ ! -x dist/bin/warren-cni || ! -x dist/bin/warren-configgen ]]; then
  npm ci --no-audit --no-fund
  node scripts/build.mjs
fi
docker build -t "${IMAGE}" -f daemonset/Containerfile .

log "Creating the kind cluster ${CLUSTER} (no default CNI, podSubnet 10.244.0.0/16)"
mkdir -p "${WORK}"
{
  printf 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n'
  printf 'networking:\n  disableDefaultCNI: true\n  podSubnet: "10.244.0.0/16"\n'
  printf 'nodes:\n  - role: control-plane\n'
  for ((i = 0; i < WORKERS; i++)); do printf '  - role: worker\n'; done
} >"${WORK}/kind.yaml"
kind create cluster --name "${CLUSTER}" --config "${WORK}/kind.yaml"

log "Installing Open vSwitch in each node (the host's OVS, as on a real node)"
# Without the openvswitch module on the Docker host, OVS falls back to its userspace datapath
# (warren-cni detects it). `sudo modprobe openvswitch` on the Docker host gives the kernel one.
mapfile -t nodes < <(kind get nodes --name "${CLUSTER}")
for node in "${nodes[@]}"; do
  docker exec "${node}" bash -euo pipefail -c '
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends openvswitch-switch nftables ethtool >/dev/null
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random
    ovs-vsctl --timeout=10 show >/dev/null
    test -S /run/openvswitch/db.sock'
  echo "  ${node}: OVS running"
done

log "Starting etcd (${ETCD_NAME}) with mTLS on the kind network"
certs="${WORK}/certs"
mkdir -p "${certs}"
issue() { # name, subject CN, extensions
  openssl req -new -newkey rsa:2048 -nodes -keyout "${certs}/$1.key" -out "${certs}/$1.csr" -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "${certs}/$1.csr" -CA "${certs}/ca.crt" -CAkey "${certs}/ca.key" -CAcreateserial \
    -days 365 -out "${certs}/$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
}
openssl req -x509 -newkey rsa:2048 -nodes -keyout "${certs}/ca.key" -out "${certs}/ca.crt" -days 365 \
  -subj "/CN=${CLUSTER}-etcd-ca" 2>/dev/null
issue server "${ETCD_NAME}" "subjectAltName=DNS:${ETCD_NAME},DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue root root "extendedKeyUsage=clientAuth"          # the admin's: stays off the nodes
issue turn-issuer warren-turn-issuer "extendedKeyUsage=clientAuth"   # the TURN issuer's (a Secret)
for node in "${nodes[@]}"; do issue "node-${node}" "${node}" "extendedKeyUsage=clientAuth"; done
chmod 0644 "${certs}"/*.key   # read by etcd's and configgen's users inside their containers; throwaway dev PKI
docker rm -f "${ETCD_NAME}" >/dev/null 2>&1 || true
docker run -d --name "${ETCD_NAME}" --network kind --restart unless-stopped \
  -v "${certs}:/certs:ro" "${ETCD_IMAGE}" etcd --name "${ETCD_NAME}" --data-dir /var/lib/etcd \
  --listen-client-urls https://0.0.0.0:2379 --advertise-client-urls "https://${ETCD_NAME}:2379" \
  --cert-file /certs/server.crt --key-file /certs/server.key \
  --trusted-ca-file /certs/ca.crt --client-cert-auth >/dev/null

log "Node identities in etcd: admin init, then add-node for each node (README, Security)"
admin() {
  docker run --rm --network kind -v "${certs}:/certs:ro" --entrypoint /warren/bin/warren-configgen "${IMAGE}" admin "$@" \
    --etcd-endpoints "https://${ETCD_NAME}:2379" --etcd-cacert /certs/ca.crt --etcd-cert /certs/root.crt --etcd-key /certs/root.key \
    --etcd-timeout 30s
}
# As warren.yaml's ConfigMap. Run again until etcd answers: init brings etcd to the stated state.
tries=0
until admin init --pod-cidr 10.244.0.0/16 --node-bits 8 --host-cidr 10.10.0.0/16; do
  ((++tries < 30)) || die "admin init failed 30 times: is ${ETCD_NAME} running? (docker logs ${ETCD_NAME})"
  sleep 1
done
for node in "${nodes[@]}"; do
  admin add-node "${node}"
  # The node's own certificate only, where the DaemonSet's hostPath takes it from.
  docker exec "${node}" install -d -m 0700 /etc/warren/etcd
  docker cp "${certs}/ca.crt" "${node}:/etc/warren/etcd/ca.crt"
  docker cp "${certs}/node-${node}.crt" "${node}:/etc/warren/etcd/tls.crt"
  docker cp "${certs}/node-${node}.key" "${node}:/etc/warren/etcd/tls.key"
  docker exec "${node}" chmod 0600 /etc/warren/etcd/ca.crt /etc/warren/etcd/tls.crt /etc/warren/etcd/tls.key
done

log "The TURN issuer's Secrets (warren.yaml's header): coturn's secret, the issuer's etcd certificate"
"${KUBECTL[@]}" create namespace warren-system --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f -
turn_secret="${TURN_SECRET_FILE:-${WORK}/turn-secret}"
if [[ ! -s "${turn_secret}" ]]; then
  (umask 077; openssl rand -hex 32 >"${turn_secret}")
  echo "  new coturn static-auth-secret in ${turn_secret}"
fi
issuer_dir="${WORK}/turn-issuer-etcd"
mkdir -p "${issuer_dir}"
cp "${certs}/ca.crt" "${issuer_dir}/ca.crt"
cp "${certs}/turn-issuer.crt" "${issuer_dir}/tls.crt"
cp "${certs}/turn-issuer.key" "${issuer_dir}/tls.key"
# apply, not create: running the script again updates them.
"${KUBECTL[@]}" -n warren-system create secret generic warren-turn --from-file=secret="${turn_secret}" \
  --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f -
"${KUBECTL[@]}" -n warren-system create secret generic warren-turn-issuer-etcd --from-file="${issuer_dir}/ca.crt" \
  --from-file="${issuer_dir}/tls.crt" --from-file="${issuer_dir}/tls.key" --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f -

log "Loading ${IMAGE} into the nodes and applying daemonset/warren.yaml"
kind load docker-image "${IMAGE}" --name "${CLUSTER}"
placeholder='https://etcd.example.internal:2379'
grep -q "${placeholder}" daemonset/warren.yaml || die "warren.yaml no longer holds ${placeholder}: update this script"
sed "s|${placeholder}|https://${ETCD_NAME}:2379|" daemonset/warren.yaml | "${KUBECTL[@]}" apply -f -

log "Waiting for warren-node on every node, the TURN issuer, then for the nodes to be Ready"
"${KUBECTL[@]}" -n warren-system rollout status daemonset/warren-node --timeout=300s
"${KUBECTL[@]}" -n warren-system rollout status deployment/warren-turn-issuer --timeout=300s
"${KUBECTL[@]}" wait --for=condition=Ready nodes --all --timeout=300s
"${KUBECTL[@]}" -n warren-system logs -l app.kubernetes.io/name=warren-node -c configgen --prefix

cat <<EOF

Warren is running on kind cluster ${CLUSTER}. Try:
  kubectl --context kind-${CLUSTER} run a --image=busybox --restart=Never -- sleep 3600
  kubectl --context kind-${CLUSTER} get pods -o wide
Delete everything with: $0 --delete
EOF
