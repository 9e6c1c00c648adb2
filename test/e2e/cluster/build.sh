#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager for the e2e control plane from the Go
# modules pinned in controlplane/go.mod, into a cache outside the repository:
#
#   ${PODLEASE_CACHE_DIR:-/var/cache/podlease}/k8s-<K8S_VERSION>/bin/{etcd,kube-apiserver,kube-controller-manager}
#
# Idempotent: when all three binaries exist it exits at once. Binaries are built into a temporary
# directory next to bin/ and renamed into place one by one, so an interrupted build never leaves a
# half-written binary under a final name. GOMODCACHE and GOCACHE stay at Go's defaults (outside
# the repository) so later builds reuse them.
#
# Environment: PODLEASE_CACHE_DIR (cache root), GO (go binary, default: go on PATH or
# /usr/local/go/bin/go). Prints the bin directory on stdout as its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${here}/versions.env"

cache_root="${PODLEASE_CACHE_DIR:-/var/cache/podlease}"
bin_dir="${cache_root}/k8s-${K8S_VERSION}/bin"
binaries=(etcd kube-apiserver kube-controller-manager)

all_present() {
  local b
  for b in "${binaries[@]}"; do [[ -x "${bin_dir}/${b}" ]] || return 1; done
}

if all_present; then
  echo "build-control-plane: cached ${bin_dir}" >&2
  echo "${bin_dir}"
  exit 0
fi

go_bin="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[[ -x "${go_bin}" ]] || { echo "build-control-plane: no Go toolchain (set GO or install Go)" >&2; exit 1; }

mkdir -p "${bin_dir}"
# One build at a time per version: a second caller waits for the first and then finds the cache.
exec 9>"${bin_dir}/../build.lock"
flock 9
if all_present; then
  echo "build-control-plane: cached ${bin_dir} (built by a concurrent run)" >&2
  echo "${bin_dir}"
  exit 0
fi

# Left by an interrupted build (we hold the lock, so no build is using them).
rm -rf "${bin_dir}"/../bin.tmp.*
tmp_dir="$(mktemp -d "${bin_dir}/../bin.tmp.XXXXXX")"
trap 'rm -rf "${tmp_dir}"' EXIT

minor="${K8S_VERSION#v1.}"
minor="${minor%%.*}"
version_pkg="k8s.io/component-base/version"
ldflags="-s -w"
ldflags+=" -X ${version_pkg}.gitVersion=${K8S_VERSION}"
ldflags+=" -X ${version_pkg}.gitMajor=1 -X ${version_pkg}.gitMinor=${minor}"
ldflags+=" -X ${version_pkg}.gitTreeState=clean -X ${version_pkg}.buildDate=1970-01-01T00:00:00Z"

echo "build-control-plane: building Kubernetes ${K8S_VERSION} and etcd ${ETCD_VERSION} into ${bin_dir} with $("${go_bin}" version)" >&2
start=${SECONDS}
(
  cd "${here}/controlplane"
  # -mod=readonly: go.mod/go.sum are committed and must already be complete.
  GOFLAGS="-mod=readonly" CGO_ENABLED=0 "${go_bin}" build -trimpath -ldflags="${ldflags}" \
    -o "${tmp_dir}/" \
    ./cmd/etcd \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager
)
for b in "${binaries[@]}"; do
  [[ -x "${tmp_dir}/${b}" ]] || { echo "build-control-plane: ${b} missing after go build" >&2; exit 1; }
  mv -f "${tmp_dir}/${b}" "${bin_dir}/${b}"
done
echo "build-control-plane: built in $((SECONDS - start))s: ${bin_dir}" >&2
echo "${bin_dir}"
