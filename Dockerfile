# Builds the static aoba binary (pure Go, no cgo) into a distroless image.
FROM golang:1.27 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/aoba ./cmd/aoba

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/aoba /aoba
EXPOSE 8080
ENTRYPOINT ["/aoba"]
