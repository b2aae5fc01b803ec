#!/usr/bin/env bash
# Builds the real test binaries (kube-apiserver, kube-controller-manager, etcd,
# helm, the Gateway API conformance echo backend echo-basic, and the Gateway API
# conformance suite's test binary gateway-conformance) from the Go module proxy,
# once, into a version-stamped cache folder, and reuses them afterwards.
#
#   BIN=$(bash scripts/test-binaries.sh | tail -1)
#
# Versions are pinned by the wrapper modules in tools/kube, tools/etcd,
# tools/helm, tools/echo-basic and tools/gateway-conformance (go.mod + go.sum). Cache folder:
#   ${WARREN_TOOLS_DIR:-$HOME/.cache/warren-tools}/<version-stamp>/
# The last line of stdout is always that folder. Progress goes to stderr.
#
# Environment:
#   WARREN_TOOLS_DIR     cache root (default $HOME/.cache/warren-tools)
#   WARREN_BUILD_JOBS    go build -p value (default 2)
#   WARREN_TOOLS_VERIFY  1 = also run each cached binary's version command
#                        before trusting the cache (default: stamp file only)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/tools"

export GOTOOLCHAIN=local # never download a toolchain; fail loudly instead
export GOWORK=off         # the wrapper modules stand alone
export CGO_ENABLED=0

log() { printf '[test-binaries] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Version of MODULE as required in the go.mod file FILE (single-line or block form).
modver() {
  awk -v m="$2" '
    /^replace/ { inrep = 1 } inrep && /^\)/ { inrep = 0; next } inrep { next }
    { for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit } }
  ' "$1"
}

KUBE_VERSION=$(modver "$TOOLS/kube/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(modver "$TOOLS/etcd/go.mod" go.etcd.io/etcd/server/v3)
HELM_VERSION=$(modver "$TOOLS/helm/go.mod" helm.sh/helm/v3)
HELM_CLIENT_GO=$(modver "$TOOLS/helm/go.mod" k8s.io/client-go)
ECHO_VERSION=$(modver "$TOOLS/echo-basic/go.mod" sigs.k8s.io/gateway-api/conformance)
SUITE_VERSION=$(modver "$TOOLS/gateway-conformance/go.mod" sigs.k8s.io/gateway-api/conformance)
[[ -n $KUBE_VERSION && -n $ETCD_VERSION && -n $HELM_VERSION && -n $HELM_CLIENT_GO && -n $ECHO_VERSION && -n $SUITE_VERSION ]] ||
  die "could not read pinned versions from tools/{kube,etcd,helm,echo-basic,gateway-conformance}/go.mod"

STAMP_NAME="kube-apiserver-${KUBE_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"
CACHE_ROOT=${WARREN_TOOLS_DIR:-$HOME/.cache/warren-tools}
BIN="$CACHE_ROOT/$STAMP_NAME"
STAMP="$BIN/versions"
JOBS=${WARREN_BUILD_JOBS:-2}

# What each binary must report (one line per binary in the stamp file).
expected() {
  case $1 in
    kube-apiserver | kube-controller-manager) echo "Kubernetes $KUBE_VERSION" ;;
    etcd) echo "etcd Version: ${ETCD_VERSION#v}" ;;
    helm) echo "$HELM_VERSION" ;;
    echo-basic) echo "sigs.k8s.io/gateway-api/conformance $ECHO_VERSION" ;;
    gateway-conformance) echo "sigs.k8s.io/gateway-api/conformance $SUITE_VERSION" ;;
  esac
}
# What the binary at PATH actually reports.
reported() {
  case $1 in
    kube-apiserver | kube-controller-manager) "$2" --version 2>/dev/null | head -1 ;;
    etcd) "$2" --version 2>/dev/null | head -1 ;;
    helm) HELM_CONFIG_HOME=/nonexistent HELM_CACHE_HOME=/nonexistent HELM_DATA_HOME=/nonexistent \
      "$2" version --template '{{.Version}}' 2>/dev/null ;;
    # No version flag: read the module it was built from out of the binary's build info.
    echo-basic | gateway-conformance) go version -m "$2" 2>/dev/null | awk '$1 == "mod" || $1 == "dep" { if ($2 == "sigs.k8s.io/gateway-api/conformance") { print $2, $3; exit } }' ;;
  esac
}

NAMES=(kube-apiserver kube-controller-manager etcd helm echo-basic gateway-conformance)

# true if NAME is present, executable and recorded in the stamp with the expected version
is_current() {
  local name=$1 want
  want="$name $(expected "$name")"
  [[ -x "$BIN/$name" && -f $STAMP ]] || return 1
  grep -qxF -- "$want" "$STAMP" || return 1
  if [[ ${WARREN_TOOLS_VERIFY:-0} == 1 ]]; then
    [[ "$(reported "$name" "$BIN/$name")" == "$(expected "$name")" ]] || return 1
  fi
}

all_current() {
  local n
  for n in "${NAMES[@]}"; do is_current "$n" || return 1; done
}

# Fast path: no lock needed (binaries and stamp are only ever replaced by rename).
if all_current; then
  log "cached: $BIN"
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock; waiting"
  flock 9
fi
if all_current; then # another run finished the job while we waited
  log "cached: $BIN"
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || die "go is not installed"
log "go: $(go version)"
log "cache folder: $BIN"

# Record "NAME VERSION-LINE" in the stamp file, atomically.
stamp_set() {
  local name=$1 line=$2 tmp="$STAMP.tmp.$$"
  { [[ -f $STAMP ]] && grep -v -- "^$name " "$STAMP" || true; echo "$name $line"; } | sort >"$tmp"
  mv -f "$tmp" "$STAMP"
}

TMP_OUT=""
cleanup() { [[ -z $TMP_OUT ]] || rm -f "$TMP_OUT"; }
trap cleanup EXIT

# build NAME MODULE_DIR PACKAGE [go build flags...]
# With GO_CMD="test -c" the package's test binary is built instead (go test -c).
build() {
  local name=$1 dir=$2 pkg=$3 start got want
  local -a gocmd
  read -r -a gocmd <<<"${GO_CMD:-build}"
  shift 3
  want=$(expected "$name")
  log "$name: go mod download all (tools/$(basename "$dir"))"
  (cd "$dir" && go mod download all) || die "$name: module download failed (see the module named above)"
  log "$name: building $pkg (-p $JOBS)"
  start=$(date +%s)
  TMP_OUT="$BIN/.$name.tmp.$$"
  (cd "$dir" && go "${gocmd[@]}" -p "$JOBS" -trimpath "$@" -o "$TMP_OUT" "$pkg") || die "$name: build failed"
  got=$(reported "$name" "$TMP_OUT" || true)
  [[ $got == "$want" ]] || die "$name: built binary reports '$got', expected '$want'"
  mv -f "$TMP_OUT" "$BIN/$name"
  TMP_OUT=""
  stamp_set "$name" "$got"
  echo "built $name $got in $(($(date +%s) - start))s"
}

for name in "${NAMES[@]}"; do
  if is_current "$name"; then
    log "$name: cached ($(expected "$name"))"
    continue
  fi
  case $name in
    kube-apiserver | kube-controller-manager)
      # Tags and -X flags as in Kubernetes' hack/lib/golang.sh and hack/lib/version.sh.
      minor=${KUBE_VERSION#v*.}
      minor=${minor%%.*}
      ld="-s -w"
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
      done
      build "$name" "$TOOLS/kube" "k8s.io/kubernetes/cmd/$name" \
        -tags selinux,notest,grpcnotrace -ldflags "$ld"
      ;;
    etcd)
      build etcd "$TOOLS/etcd" go.etcd.io/etcd/server/v3 -ldflags "-s -w"
      ;;
    helm)
      # As helm's Makefile: version, plus the Kubernetes version that lint and
      # template assume by default (taken from the client-go it is built with).
      kminor=${HELM_CLIENT_GO#v*.}
      kminor=${kminor%%.*}
      ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
      ld="$ld -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        ld="$ld -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kminor"
      done
      build helm "$TOOLS/helm" helm.sh/helm/v3/cmd/helm -ldflags "$ld"
      ;;
    echo-basic)
      build echo-basic "$TOOLS/echo-basic" sigs.k8s.io/gateway-api/conformance/echo-basic -ldflags "-s -w"
      ;;
    gateway-conformance)
      # The suite is a Go test (TestConformance in the module's root package): its test binary, run by
      # core/test/gateway-conformance with -test.run and the suite's own flags.
      GO_CMD="test -c" build gateway-conformance "$TOOLS/gateway-conformance" sigs.k8s.io/gateway-api/conformance -ldflags "-s -w"
      ;;
  esac
done

all_current || die "internal error: cache incomplete after build"
echo "$BIN"
