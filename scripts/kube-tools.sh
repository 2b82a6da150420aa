#!/usr/bin/env bash
# Everything the Kubernetes tests need beyond Warren's own build, recorded for them in
# dist/kube-tools.json: the Kubernetes programs (scripts/k8s-tools.sh, cached per version)
# and the container images as OCI archives (scripts/images.sh, cached per content).
#
# `--conformance` (`make conformance`) adds e2e.test, agnhost and the images e2e.test runs,
# and records the lot in dist/kube-tools.conformance.json instead: dist/kube-tools.json, and
# with it what `make test` imports into every node, stays as it was.
set -euo pipefail
cd "$(dirname "$0")/.."

conformance=0
[ "${1:-}" = "--conformance" ] && conformance=1
bin="$(bash scripts/k8s-tools.sh "$@")"
if [ "$conformance" = 1 ]; then
  images="$(bash scripts/images.sh --k8s-bin "$bin" --conformance)"
  out=dist/kube-tools.conformance.json
else
  images="$(bash scripts/images.sh --k8s-bin "$bin")"
  out=dist/kube-tools.json
fi

# images.sh prints ROLE ARCHIVE REF [REF...] per image, tab-separated.
ref_of() { awk -F'\t' -v r="$1" '$1 == r { print $3 }' <<<"$images"; }
mkdir -p dist
jq -n --arg bin "$bin" \
  --argjson archives "$(awk -F'\t' '{ print $2 }' <<<"$images" | jq -R . | jq -s .)" \
  --arg sandbox "$(ref_of pause)" --arg warren "$(ref_of warren-node)" --arg test "$(ref_of busybox)" \
  --arg etcd "$(ref_of etcd)" \
  '{ bin: $bin, archives: $archives, sandboxImage: $sandbox, warrenImage: $warren, testImage: $test, etcdImage: $etcd }' \
  >"dist/.kube-tools.json.tmp.$$"
if [ "$conformance" = 1 ]; then
  jq --arg e2e "$bin/e2e.test" --arg agnhost "$(ref_of agnhost)" --arg glibc "$(ref_of glibc-dns-testing)" \
    '. + { conformance: { e2eTest: $e2e, images: { agnhost: $agnhost, glibcDnsTesting: $glibc } } }' \
    "dist/.kube-tools.json.tmp.$$" >"dist/.kube-tools.json.tmp.$$.c"
  mv -f "dist/.kube-tools.json.tmp.$$.c" "dist/.kube-tools.json.tmp.$$"
fi
mv -f "dist/.kube-tools.json.tmp.$$" "$out"
echo "kube-tools: $out" >&2
