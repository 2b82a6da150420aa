#!/usr/bin/env bash
# Everything the Kubernetes tests need beyond Warren's own build, recorded for them in
# dist/kube-tools.json: the Kubernetes programs (scripts/k8s-tools.sh, cached per version)
# and the container images as OCI archives (scripts/images.sh, cached per content).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(bash scripts/k8s-tools.sh "$@")"
images="$(bash scripts/images.sh --k8s-bin "$bin")"

# images.sh prints ROLE ARCHIVE REF [REF...] per image, tab-separated.
ref_of() { awk -F'\t' -v r="$1" '$1 == r { print $3 }' <<<"$images"; }
mkdir -p dist
jq -n --arg bin "$bin" \
  --argjson archives "$(awk -F'\t' '{ print $2 }' <<<"$images" | jq -R . | jq -s .)" \
  --arg sandbox "$(ref_of pause)" --arg warren "$(ref_of warren-node)" --arg test "$(ref_of busybox)" \
  --arg etcd "$(ref_of etcd)" \
  '{ bin: $bin, archives: $archives, sandboxImage: $sandbox, warrenImage: $warren, testImage: $test, etcdImage: $etcd }' \
  >dist/.kube-tools.json.tmp
mv -f dist/.kube-tools.json.tmp dist/kube-tools.json
echo "kube-tools: dist/kube-tools.json" >&2
