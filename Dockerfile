# Builds the static aoba binary (pure Go, no cgo) into a distroless image. Every base image is pinned: the Go
# release of go.mod's toolchain line, and distroless by digest (the static-debian12:nonroot tag as of 2026-08-26;
# refresh with `crane digest gcr.io/distroless/static-debian12:nonroot`).
# The binary reports VERSION and REVISION in `aoba --version`, the start-up log and the aoba_build_info metric:
#   docker build --build-arg VERSION=1.4.0 --build-arg REVISION=$(git rev-parse --short HEAD) -t aoba:1.4.0 .
FROM golang:1.27.3-bookworm AS build
ARG VERSION=devel
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/aoba ./cmd/aoba \
    && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/aoba /aoba
# The embedded mode's data directory, owned by the nonroot user, so that a volume mounted there (docker run -v
# aoba-data:/data) is writable; `aoba backup` and `aoba restore` in the container use it too.
COPY --from=build --chown=65532:65532 /out/data /data
ENV AOBA_DATA_DIR=/data
EXPOSE 8080
# No shell and no curl in this image: `aoba healthcheck` is the probe (docker-compose.yml uses it).
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["/aoba", "healthcheck"]
ENTRYPOINT ["/aoba"]
CMD ["serve"]
