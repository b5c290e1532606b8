# agentexec build, test, lint and benchmark targets.
# `make demo` and `make test` do all set-up themselves (see .ci/deps).

GO       ?= go
TAGS     := seccomp
BIN      := bin/agentexec
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# The binary is linked statically (glibc and libseccomp from their .a
# files; netgo and osusergo keep name lookups in Go). Each command execs it
# twice more (libcontainer's init, the container's PID 1), and a dynamic
# cgo binary paid the dynamic loader every time: about 2 ms a command.
BUILDTAGS := $(TAGS),netgo,osusergo
STATIC   := -linkmode external -extldflags -static
export CGO_ENABLED := 1
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build deps test test-short lint bench fuzz demo clean

all: build

deps:
	@./.ci/deps

build: deps
	$(GO) build -tags $(BUILDTAGS) -ldflags '$(LDFLAGS) $(STATIC)' -o $(BIN) ./cmd/agentexec

# Everything, including the real-client, sandbox-escape, crash and
# concurrency suites, and a short pass of every fuzz target's seed corpus.
test: build
	AGENTEXEC_BIN=$(CURDIR)/$(BIN) $(GO) test -tags $(TAGS) -count=1 -timeout 15m ./...

test-short: build
	AGENTEXEC_BIN=$(CURDIR)/$(BIN) $(GO) test -tags $(TAGS) -short -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TAGS) ./...
	$(GO) tool staticcheck -tags $(TAGS) ./...

# Benchmarks: Go testing.B plus whole-process scripts, each reported against
# a baseline measured in the same run.
bench: build
	AGENTEXEC_BIN=$(CURDIR)/$(BIN) ./testdata/bench/run

fuzz:
	./testdata/fuzz.sh

demo: build
	./testdata/demo.sh $(CURDIR)/$(BIN)

clean:
	rm -rf bin
