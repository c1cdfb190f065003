# The one keyward image used by the Helm chart (deploy/helm/keyward): the
# secrets server, the identity controller and the node agent. The agent
# needs iptables for its DNAT of 169.254.169.254.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/keyward ./cmd/keyward

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iptables ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && (getent passwd 100 >/dev/null || useradd --system --uid 100 --home-dir /keyward --shell /usr/sbin/nologin keyward) \
    && mkdir -p /keyward/data /keyward/config && chown -R 100 /keyward
COPY --from=build /out/keyward /usr/local/bin/keyward
USER 100
ENTRYPOINT ["keyward"]
