// Package deploy embeds the manifests users apply, so the tests and the demo
// apply exactly these files.
package deploy

import "embed"

// FS holds namespace.yaml, crds/, rbac/, controller.yaml, gateway.yaml and examples/.
//
//go:embed namespace.yaml crds rbac controller.yaml gateway.yaml examples
var FS embed.FS
