//go:build tools

// Package tools pins the Gateway API conformance suite; scripts/test-binaries.sh builds its test binary
// (go test -c sigs.k8s.io/gateway-api/conformance).
package tools

import _ "sigs.k8s.io/gateway-api/conformance"
