# One static binary: fledge controller | gateway | error-page | ctl commands.
#   docker build -t ghcr.io/fledge-dev/fledge:latest .
# Without Docker, hack/image.sh builds the same image FROM scratch with buildah into
# an OCI archive (for `ctr -n k8s.io images import`), adding itself what the
# distroless base provides and fledge needs: CA certificates, /etc/passwd and
# /etc/group with nonroot (65532), /home/nonroot and /tmp.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /fledge ./cmd/fledge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /fledge /fledge
USER 65532:65532
ENTRYPOINT ["/fledge"]
