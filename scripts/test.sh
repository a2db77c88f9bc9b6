#!/usr/bin/env bash
# The project's test command (the README's): formatting, vet, staticcheck,
# the race-enabled tests, then every fuzz target for a short bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2
FUZZTIME=${FUZZTIME:-8s}

echo "== gofmt"
unformatted=$(gofmt -l . | grep -v '^testdata/' || true)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== root surface (go doc -short: at most 40 lines; names in testdata/api.txt)"
lines=$(go doc -short . | wc -l)
if [ "$lines" -gt 40 ]; then
	echo "go doc -short of the root package prints $lines lines; the agreed limit is 40"; exit 1
fi

echo "== staticcheck $STATICCHECK_VERSION"
go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...

echo "== go test -race"
go test -race -count=1 -timeout 10m ./...

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
GODEBUG=fips140=on go test -count=1 -timeout 5m $CRYPTO_PKGS
echo "== go test, GOEXPERIMENT=boringcrypto"
if ! command -v gcc >/dev/null; then
	apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev
fi
CGO_ENABLED=1 GOEXPERIMENT=boringcrypto go test -count=1 -timeout 5m $CRYPTO_PKGS

echo "== fuzz ($FUZZTIME each)"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "-- $pkg $target"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done
echo "all checks passed"
