# A small static image: the linnet binary on distroless (no shell, no libc,
# runs as an unprivileged user).
#
#   docker build -t ghcr.io/linnet-mesh/linnet:latest .
#   docker run --rm ghcr.io/linnet-mesh/linnet:latest router /etc/l5d/config.yaml
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits reuse the module cache layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/linnet-mesh/linnet/internal/cli.Version=${VERSION}" \
      -o /out/linnet ./cmd/linnet

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/linnet /usr/local/bin/linnet
USER 65532:65532
# 4140/4141 routers, 4142 ingress, 9990 router admin, 4180 namerd API, 9991 namerd admin
EXPOSE 4140 4141 4142 9990 4180 9991
ENTRYPOINT ["/usr/local/bin/linnet"]
CMD ["--help"]
