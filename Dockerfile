# Sluice in a container: a static binary on distroless, run as non-root.
#
#   docker build -t sluice .
#   docker run -p 8080:8080 -v /etc/sluice:/etc/sluice:ro -v sluice-data:/var/lib/sluice sluice
#
# The configuration is the operator's, mounted at /etc/sluice/sluice.yaml: in a container it listens on
# 0.0.0.0:8080 (not loopback) and keeps its audit trail and state under /var/lib/sluice.
#
# No HEALTHCHECK: distroless has no shell and no curl to run one, and the binary has no probe command.
# Orchestrators probe over HTTP instead: GET /healthz (alive; it also names the version) for liveness,
# GET /readyz (policy loaded, audit trail writable, state reachable) for readiness.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# .git is in the context (see .dockerignore) so that go build records the commit `sluice version` prints.
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/sluice ./cmd/sluice \
 && mkdir -p /out/var/lib/sluice

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sluice /usr/local/bin/sluice
# 65532 is distroless's nonroot: the trail and state directory is its own.
COPY --from=build --chown=65532:65532 /out/var/lib/sluice /var/lib/sluice
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve", "--config", "/etc/sluice/sluice.yaml"]
