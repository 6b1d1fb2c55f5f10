package errorpage

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestGRPCHealth calls the gRPC face with a real grpc-go client: exactly
// ErrorRatio of the Check calls fail with UNAVAILABLE, every answer names
// the version, Watch streams three answers.
func TestGRPCHealth(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newGRPCServer(Options{Version: "v7", ErrorRatio: 0.05})
	errc := make(chan error, 1)
	go serveGRPC(s, ln, errc)
	defer func() {
		s.Stop()
		<-errc
	}()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := healthpb.NewHealthClient(conn)
	ctx := t.Context()
	failed := 0
	for range 100 {
		var md metadata.MD
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
		if v := md.Get(VersionHeader); len(v) != 1 || v[0] != "v7" {
			t.Fatalf("header %s = %v, want [v7]", VersionHeader, v)
		}
		switch status.Code(err) {
		case codes.OK:
		case codes.Unavailable:
			failed++
		default:
			t.Fatalf("Check: %v", err)
		}
	}
	if failed != 5 {
		t.Errorf("%d of 100 calls failed, want exactly 5", failed)
	}
	w, err := c.Watch(context.WithoutCancel(ctx), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		if _, err := w.Recv(); err != nil {
			break
		}
	}
	if n != 3 {
		t.Errorf("Watch streamed %d answers, want 3", n)
	}
}
