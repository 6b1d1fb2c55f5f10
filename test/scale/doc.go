// Package scale is fledge's scale benchmark: the controller, configured as in
// production, against a real kube-apiserver and etcd with thousands of
// applications. It reports numbers (times, reconciles, API requests, heap); it
// has no pass/fail threshold on them. It is behind the build tag scale so the
// normal `go test ./...` does not run it:
//
//	go test -tags scale -count=1 -run TestScale -v -timeout 30m ./test/scale/
//
// Knobs (flags after the package, or environment variables; -count=1 because
// a cached result is no measurement):
//
//	-scale.apps N        FLEDGE_SCALE_APPS        applications (default 1000)
//	-scale.namespaces K  FLEDGE_SCALE_NAMESPACES  namespaces the apps are spread over (default 1)
//	-scale.workers W     FLEDGE_SCALE_WORKERS     concurrent writers creating the objects (default 8)
//	-scale.qps Q         FLEDGE_SCALE_QPS         controller client QPS; 0 = unset, as the fledge binary leaves it (default 0)
//	-scale.burst B       FLEDGE_SCALE_BURST       controller client burst; 0 = unset (default 0)
//	-scale.timeout D     FLEDGE_SCALE_TIMEOUT     limit of each phase (default 4m)
//	-scale.endpointslices FLEDGE_SCALE_ENDPOINTSLICES an EndpointSlice per Service (default true)
//	-scale.reconcilers R FLEDGE_SCALE_RECONCILERS controller.Options.Workers (default 4, as fledge controller --workers)
//	-scale.log PATH      FLEDGE_SCALE_LOG         controller log file (default: a temporary file, printed)
//
// docs/scale.md has the method and the numbers of a run.
package scale
