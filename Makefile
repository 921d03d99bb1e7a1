# metaproxy — see README.md. Every target works on a fresh clone; `.ci/run`
# runs `make test` on a clean machine.

GO        ?= go
BIN       := bin
PKGS      := ./...
export GOTOOLCHAIN := local

.PHONY: all build so test test-loaded unit e2e lint demo demo-thrift bench fuzz fuzz-smoke api clean

all: build

## build: the standalone proxy (bin/metaproxy), pure Go (CGO_ENABLED=0)
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/metaproxy ./cmd/metaproxy

## so: the Envoy plugin (bin/metaprotocol.so); ENVOY_VERSION selects the SDK
ENVOY_VERSION ?=
so:
	ENVOY_VERSION="$(ENVOY_VERSION)" ./plugin/build.sh $(BIN)/metaprotocol.so

## test: everything CI runs — lint, unit tests with -race, end-to-end tests,
## every codec fuzzer for a few seconds
test: lint unit e2e fuzz-smoke

## test-loaded: `make test` with every CPU kept busy by a spinning process, as
## on a loaded CI machine: tests must wait for events, not for time
test-loaded:
	@pids=""; for i in $$(seq $$(nproc)); do (while :; do :; done) & pids="$$pids $$!"; done; \
	trap 'kill $$pids' EXIT; $(MAKE) test

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd test && $(GO) vet ./...
	@# Everything but the Envoy binding builds without cgo.
	CGO_ENABLED=0 $(GO) build $$($(GO) list ./... | grep -v /plugin)

unit:
	$(GO) test -race -count=1 $(PKGS)

e2e:
	cd test && $(GO) test -count=1 -timeout 12m ./...

## demo: a real dubbo-go consumer calls a real dubbo-go provider through metaproxy
demo:
	./demo/dubbo.sh

demo-thrift:
	./demo/thrift.sh

## bench: micro-benchmarks of the core path and the side-by-side load benchmark
bench:
	./bench/run.sh

## fuzz: run every codec fuzzer for FUZZTIME each
FUZZTIME ?= 30s
fuzz-smoke:
	$(MAKE) fuzz FUZZTIME=8s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) ./codecs/fuzz.sh

## api: regenerate the Go code of the protobuf schema in api/
api:
	./api/gen.sh

clean:
	rm -rf $(BIN)
