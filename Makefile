# Sluice. `make test` is the one test command (README, CI): it installs the
# Debian packages the tests talk to when they are missing, then runs every
# test with the race detector.
.PHONY: test deps demo bench

test: deps
	go test -race -timeout 25m ./...

deps:
	./.ci/deps

demo:
	go run ./cmd/sluice demo

bench:
	go run ./bench
