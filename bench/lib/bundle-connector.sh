#!/bin/sh
# Warren as the image runs it, for `bench/tunnel.js --connector`: the bundle (`npm run bundle`) in folder mode on a
# folder with one Ingress for bench.example.com whose Service's EndpointSlice is the bench's origin, connecting to
# the bench's edge with its token file; default settings otherwise (access log, every built-in plugin, metrics).
#   --connector "bundle=sh $PWD/bench/lib/bundle-connector.sh <node> $PWD/core/build/bundle/main.js {edge} {caFile} {tokenFile} {origin} {ha} [node options…]"
# Put NODE_COMPILE_CACHE=<dir> in front (`env NODE_COMPILE_CACHE=… sh …`) for the image's compile cache, made under
# the same node options. Warren's log goes to <folder>.log next to the folder, under $TMPDIR.
set -e
N=$1; MAIN=$2; EDGE=$3; CA=$4; TOKEN=$5; ORIGIN=$6; HA=$7; shift 7
DIR=$(mktemp -d "${TMPDIR:-/tmp}/warren-bench-bundle.XXXXXX")
PORT=${ORIGIN##*:}
cat > $DIR/objects.yaml <<Y
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: cloudflare-tunnel
spec:
  controller: warren.dev/ingress-controller
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bench
  namespace: bench
spec:
  ingressClassName: cloudflare-tunnel
  rules:
    - host: bench.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: origin
                port:
                  number: 80
---
apiVersion: v1
kind: Service
metadata:
  name: origin
  namespace: bench
spec:
  ports:
    - name: http
      port: 80
      targetPort: $PORT
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: origin-1
  namespace: bench
  labels:
    kubernetes.io/service-name: origin
addressType: IPv4
ports:
  - name: http
    port: $PORT
    protocol: TCP
endpoints:
  - addresses: ["127.0.0.1"]
    conditions:
      ready: true
Y
cat > $DIR.json <<J
{ "logLevel": "warn", "tunnel": { "tokenFile": "$TOKEN", "edgeAddresses": ["$EDGE"], "edgeCaFile": "$CA", "haConnections": $HA }, "server": { "listen": "127.0.0.1:0" } }
J
exec $N "$@" $MAIN --local $DIR --config $DIR.json > $DIR.log 2>&1
