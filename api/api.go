// Package api holds the OpenAPI description of vguard serve's HTTP API,
// embedded in the binary and served at /api/openapi.json.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the API (openapi.json).
//
//go:embed openapi.json
var OpenAPI []byte
