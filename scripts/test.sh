#!/usr/bin/env bash
# The project's test command (the README's): formatting, vet, staticcheck,
# the race-enabled tests, then every fuzz target for a short bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2

# The core is checked as users get it: on its own, outside the workspace
# of go.work (which could raise a shared dependency to a nested module's
# version). The nested modules are checked inside it (the go command
# finds go.work from their directories), against the core beside them
# (docs/RELEASING.md).
core() { GOWORK=off "$@"; }
FUZZTIME=${FUZZTIME:-8s}

echo "== gofmt"
unformatted=$(gofmt -l . | grep -v '^testdata/' || true)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
core go vet ./...

# Nested modules must be publishable: a replace in their go.mod would be
# ignored by users' builds (docs/RELEASING.md). Local development goes
# through go.work, which must use each of them and replace exactly the
# core version they require.
echo "== nested modules: no replace directives; go.work uses them all"
core_version=$(sed -n 's|^replace github.com/wxpaykit/wechatpay \(v[^ ]*\) => ./$|\1|p' go.work)
for dir in $(find . -mindepth 2 -name go.mod -not -path './testdata/*' -not -path '*/testdata/*' -exec dirname {} \; | sort); do
	if grep -Eq '^[[:space:]]*replace' "$dir/go.mod"; then
		echo "$dir/go.mod has a replace directive, which users' builds ignore; put it in go.work"; exit 1
	fi
	if ! grep -Eq "^[[:space:]]+$dir\$" go.work; then
		echo "go.work does not use $dir"; exit 1
	fi
	required=$(sed -n 's|^[[:space:]]*github.com/wxpaykit/wechatpay \(v[^ ]*\)$|\1|p' "$dir/go.mod")
	if [ -n "$required" ] && [ "$required" != "$core_version" ]; then
		echo "$dir/go.mod requires the core $required, but go.work replaces $core_version"; exit 1
	fi
done

echo "== root surface (go doc -short: at most 40 lines; names in testdata/api.txt)"
lines=$(core go doc -short . | wc -l)
if [ "$lines" -gt 40 ]; then
	echo "go doc -short of the root package prints $lines lines; the agreed limit is 40"; exit 1
fi

echo "== staticcheck $STATICCHECK_VERSION"
core go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...

echo "== go test -race"
core go test -race -count=1 -timeout 10m ./...

# The browser tests are a module of their own (chromedp); they need
# Debian's chromium at /usr/bin/chromium, which .ci/run installs.
echo "== browsertest: vet, staticcheck, go test -race (headless Chromium)"
(
	cd browsertest
	go vet ./...
	go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...
	go test -race -count=1 -timeout 5m ./...
)

# The Redis module is a module of its own (go-redis); its tests start a
# real redis-server (Debian's package), which .ci/run installs.
echo "== redisstore: vet, staticcheck, go test -race (real redis-server)"
(
	cd redisstore
	go vet ./...
	go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...
	go test -race -count=1 -timeout 5m ./...
)

# The OpenSSL module is a module of its own (go-crypto-openssl); it loads
# Debian's libcrypto.so.3 (package libssl3, which .ci/run installs) at run
# time, with cgo and without.
echo "== openssl: vet, staticcheck, go test (real libcrypto; CGO_ENABLED=1 and 0)"
(
	cd openssl
	if ! command -v gcc >/dev/null; then
		apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev
	fi
	for cgo in 1 0; do
		echo "-- CGO_ENABLED=$cgo"
		CGO_ENABLED=$cgo go vet ./...
		CGO_ENABLED=$cgo go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...
		if [ "$cgo" = 1 ]; then
			CGO_ENABLED=1 go test -race -count=1 -timeout 5m ./...
		else
			CGO_ENABLED=0 go test -count=1 -timeout 5m ./...
		fi
	done
)

# The same tests in Go's FIPS 140-3 mode and with BoringCrypto (which
# needs cgo and a C compiler), for the packages that do cryptography.
CRYPTO_PKGS=". ./middleware/ ./cmd/..."
echo "== go test, GODEBUG=fips140=on"
GODEBUG=fips140=on core go test -count=1 -timeout 5m $CRYPTO_PKGS
echo "== go test, GOEXPERIMENT=boringcrypto"
if ! command -v gcc >/dev/null; then
	apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev
fi
CGO_ENABLED=1 GOEXPERIMENT=boringcrypto core go test -count=1 -timeout 5m $CRYPTO_PKGS

echo "== fuzz ($FUZZTIME each)"
for pkg in $(core go list ./...); do
	for target in $(core go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "-- $pkg $target"
		core go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done
echo "all checks passed"
