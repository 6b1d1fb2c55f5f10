package errorpage

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The gRPC face of the application (Options.GRPCAddr): the standard
// grpc.health.v1.Health service, so that any gRPC client can call it without
// generated code of its own.
//
//	Check  SERVING, or for ErrorRatio of the calls UNAVAILABLE
//	       ("injected failure"), spread like the HTTP failures (their own
//	       counter); delayed like /api/error_page
//	Watch  streams SERVING three times
//
// Every answer carries the version in the response header x-version.

// VersionHeader is the gRPC response header naming the version.
const VersionHeader = "x-version"

type grpcHealth struct {
	healthpb.UnimplementedHealthServer
	app     *app
	version string
}

func (h *grpcHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	fail := h.app.fails(h.app.requests.Add(1))
	_ = grpc.SetHeader(ctx, metadata.Pairs(VersionHeader, h.version))
	if !h.app.delay(ctx) {
		return nil, status.Error(codes.Canceled, "client went away")
	}
	if fail {
		return nil, status.Error(codes.Unavailable, "injected failure")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *grpcHealth) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	if err := s.SendHeader(metadata.Pairs(VersionHeader, h.version)); err != nil {
		return err
	}
	for range 3 {
		if err := s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}); err != nil {
			return err
		}
	}
	return nil
}

// newGRPCServer returns the gRPC server of o (valid).
func newGRPCServer(o Options) *grpc.Server {
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, &grpcHealth{app: newApp(o), version: o.Version})
	return s
}

// serveGRPC serves s on ln until it is stopped; its error is reported on errc.
func serveGRPC(s *grpc.Server, ln net.Listener, errc chan<- error) {
	errc <- s.Serve(ln)
}
