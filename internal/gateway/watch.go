package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/apiwait"
)

// Run runs a gateway on the cluster of cfg until ctx is done, then drains (see
// Gateway.Serve). It watches TrafficRoutes, Services and EndpointSlices (in
// opts.Namespace, or all namespaces) and rebuilds the routing table on every
// change; /readyz turns 200 once the caches have synced and the first table is
// built. It needs only get, list and watch on those three resources. The logger
// comes from ctx.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	opts = opts.withDefaults()
	var lc net.ListenConfig
	proxyLn, err := lc.Listen(ctx, "tcp", opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.HTTPAddr, err)
	}
	adminLn, err := lc.Listen(ctx, "tcp", opts.MetricsAddr)
	if err != nil {
		_ = proxyLn.Close()
		return fmt.Errorf("listen on %s: %w", opts.MetricsAddr, err)
	}
	ls := Listeners{HTTP: proxyLn, Admin: adminLn}
	if opts.HTTPSAddr != "" {
		if ls.HTTPS, err = lc.Listen(ctx, "tcp", opts.HTTPSAddr); err != nil {
			_, _ = proxyLn.Close(), adminLn.Close()
			return fmt.Errorf("listen on %s: %w", opts.HTTPSAddr, err)
		}
	}
	return run(ctx, cfg, New(opts), ls)
}

// run is Run with its Gateway and listeners made.
func run(ctx context.Context, cfg *rest.Config, g *Gateway, ls Listeners) error {
	// Its informers wait for the API server while it is down, so they follow
	// changes again as soon as it is back (package apiwait).
	w, err := newWatcher(apiwait.Config(cfg), g.opts.Namespace)
	if err != nil {
		_, _ = ls.HTTP.Close(), ls.Admin.Close()
		if ls.HTTPS != nil {
			_ = ls.HTTPS.Close()
		}
		return err
	}

	// The watcher outlives ctx until the drain is over, so that endpoint changes
	// still apply to the requests in flight; its failure stops serving.
	serveCtx, stopServing := context.WithCancelCause(ctx)
	defer stopServing(nil)
	watchCtx, stopWatching := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatching()
	watchErr := make(chan error, 1)
	go func() {
		err := w.run(watchCtx, g)
		if err != nil {
			stopServing(err)
		}
		watchErr <- err
	}()
	err = g.ServeListeners(serveCtx, ls)
	stopWatching()
	return errors.Join(err, <-watchErr)
}

// sliceServiceIndex indexes EndpointSlices by their Service name.
const sliceServiceIndex = "gateway.fledge.dev/service-name"

// watcher keeps a Gateway's table in step with an informer cache.
type watcher struct {
	cache cache.Cache
	// kick asks for a rebuild; its buffer of one coalesces bursts of events.
	kick chan struct{}
	// building is set while a table is built, see relevant.
	building atomic.Bool
	// g is set by run before any event is handled.
	g *Gateway
	// secrets reads the TLS Secrets the routes name.
	secrets *secretWatcher
}

func newWatcher(cfg *rest.Config, namespace string) (*watcher, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme, fledgev1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	hasService, err := labels.NewRequirement(discoveryv1.LabelServiceName, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("build EndpointSlice selector: %w", err)
	}
	opts := cache.Options{
		Scheme:                       scheme,
		ReaderFailOnMissingInformer:  true,
		DefaultTransform:             cache.TransformStripManagedFields(),
		DefaultUnsafeDisableDeepCopy: ptr.To(true), // the build only reads
		ByObject: map[client.Object]cache.ByObject{
			&discoveryv1.EndpointSlice{}: {Label: labels.NewSelector().Add(*hasService)},
		},
	}
	if namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	c, err := cache.New(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("create informer cache: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create Secret client: %w", err)
	}
	w := &watcher{cache: c, kick: make(chan struct{}, 1)}
	w.secrets = newSecretWatcher(cs, w.trigger)
	return w, nil
}

// run starts the informers, builds a table after they synced and on every
// relevant change, until ctx is done.
func (w *watcher) run(ctx context.Context, g *Gateway) error {
	logger := logr.FromContextOrDiscard(ctx)
	w.g = g
	if err := w.cache.IndexField(ctx, &discoveryv1.EndpointSlice{}, sliceServiceIndex, func(o client.Object) []string {
		return []string{o.GetLabels()[discoveryv1.LabelServiceName]}
	}); err != nil {
		return fmt.Errorf("index EndpointSlices by Service: %w", err)
	}
	handlers := map[client.Object]func(obj any) bool{
		&fledgev1.TrafficRoute{}: func(any) bool { return true },
		&corev1.Service{}: func(obj any) bool {
			o, ok := obj.(client.Object)
			return !ok || w.relevant(o.GetNamespace(), o.GetName())
		},
		&discoveryv1.EndpointSlice{}: func(obj any) bool {
			o, ok := obj.(client.Object)
			return !ok || w.relevant(o.GetNamespace(), o.GetLabels()[discoveryv1.LabelServiceName])
		},
	}
	for obj, relevant := range handlers {
		inf, err := w.cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("get informer for %T: %w", obj, err)
		}
		on := func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if relevant(obj) {
				w.trigger()
			}
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    on,
			UpdateFunc: func(_, obj any) { on(obj) },
			DeleteFunc: on,
		}); err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	startErr := make(chan error, 1)
	go func() {
		startErr <- w.cache.Start(cctx)
		cancel()
	}()
	logger.Info("waiting for informer caches", "namespace", g.opts.Namespace)
	if !w.cache.WaitForCacheSync(cctx) {
		cancel()
		if err := <-startErr; err != nil {
			return fmt.Errorf("start informer cache: %w", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("informer caches did not sync")
	}
	logger.Info("informer caches synced")
	src := cacheSource{w.cache, w.secrets}
	defer w.secrets.stopAll()
	for {
		w.building.Store(true)
		w.secrets.begin()
		_, err := g.update(ctx, src)
		if err == nil {
			w.secrets.end()
		}
		w.building.Store(false)
		if err != nil && ctx.Err() == nil {
			logger.Error(err, "build routing table; keeping the one in effect")
		}
		select {
		case <-cctx.Done():
			cancel()
			if err := <-startErr; err != nil && ctx.Err() == nil {
				return fmt.Errorf("informer cache: %w", err)
			}
			return nil
		case <-w.kick:
		}
	}
}

func (w *watcher) trigger() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// relevant reports whether a change of a Service (or of its EndpointSlices) may
// change the table: the table in effect uses it, or a build is under way (its
// reads may have missed the change). The informer updated its store before
// calling the handler, so when this returns false, either the build still to come
// reads the change, or the table in effect does not use the Service.
func (w *watcher) relevant(namespace, service string) bool {
	if w.building.Load() {
		return true
	}
	t := w.g.table.Load()
	return t == nil || t.dependsOn(namespace, service)
}

// cacheSource reads a table's objects from the informer cache.
type cacheSource struct {
	r       client.Reader
	secrets *secretWatcher
}

func (s cacheSource) secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return s.secrets.get(ctx, types.NamespacedName{Namespace: namespace, Name: name})
}

func (s cacheSource) trafficRoutes(ctx context.Context) ([]*fledgev1.TrafficRoute, error) {
	var l fledgev1.TrafficRouteList
	if err := s.r.List(ctx, &l); err != nil {
		return nil, err
	}
	out := make([]*fledgev1.TrafficRoute, len(l.Items))
	for i := range l.Items {
		out[i] = &l.Items[i]
	}
	return out, nil
}

func (s cacheSource) service(ctx context.Context, namespace, name string) (*corev1.Service, error) {
	var svc corev1.Service
	err := s.r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &svc)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &svc, nil
}

func (s cacheSource) endpointSlices(ctx context.Context, namespace, service string) ([]*discoveryv1.EndpointSlice, error) {
	var l discoveryv1.EndpointSliceList
	if err := s.r.List(ctx, &l, client.InNamespace(namespace), client.MatchingFields{sliceServiceIndex: service}); err != nil {
		return nil, err
	}
	out := make([]*discoveryv1.EndpointSlice, len(l.Items))
	for i := range l.Items {
		out[i] = &l.Items[i]
	}
	return out, nil
}
