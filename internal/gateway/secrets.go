package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// secretWatcher reads exactly the Secrets the TrafficRoutes name, each with
// its own list and watch narrowed to its name (fieldSelector
// metadata.name=…), so that the gateway needs get, list and watch only on
// those Secrets (an RBAC Role with resourceNames) and never sees the others
// of a namespace. A watch starts when a build first asks for its Secret and
// stops after a build that no longer does.
type secretWatcher struct {
	client kubernetes.Interface
	// kick asks for a table rebuild (a watched Secret changed).
	kick func()

	mu      sync.Mutex
	watches map[types.NamespacedName]*secretWatch
}

// secretSyncWait bounds how long a build waits for a newly watched Secret's
// first list; a Secret not read by then is a problem until it is.
const secretSyncWait = 5 * time.Second

type secretWatch struct {
	store  toolscache.Store
	synced toolscache.InformerSynced
	stop   context.CancelFunc
	// lastErr is the last list or watch error ("forbidden", …).
	lastErr atomic.Pointer[string]
	// waited: a build already waited for the first list.
	waited bool
	// used: asked for by the build under way.
	used bool
}

func newSecretWatcher(client kubernetes.Interface, kick func()) *secretWatcher {
	return &secretWatcher{client: client, kick: kick, watches: map[types.NamespacedName]*secretWatch{}}
}

// begin marks the start of a build.
func (s *secretWatcher) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.watches {
		w.used = false
	}
}

// end stops the watches the build just done did not use.
func (s *secretWatcher) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, w := range s.watches {
		if !w.used {
			w.stop()
			delete(s.watches, k)
		}
	}
}

// stopAll stops every watch.
func (s *secretWatcher) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, w := range s.watches {
		w.stop()
		delete(s.watches, k)
	}
}

// get returns the Secret, nil when it does not exist, or an error saying why
// it cannot be read.
func (s *secretWatcher) get(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	s.mu.Lock()
	w := s.watches[key]
	if w == nil {
		w = s.start(key)
		s.watches[key] = w
	}
	w.used = true
	wait := !w.waited
	w.waited = true
	s.mu.Unlock()

	if !w.synced() && wait {
		wctx, cancel := context.WithTimeout(ctx, secretSyncWait)
		toolscache.WaitForCacheSync(wctx.Done(), w.synced)
		cancel()
	}
	if !w.synced() {
		if e := w.lastErr.Load(); e != nil {
			return nil, errors.New("cannot be read: " + *e)
		}
		return nil, errors.New("not read yet")
	}
	obj, ok, err := w.store.GetByKey(key.Namespace + "/" + key.Name)
	if err != nil || !ok {
		return nil, nil
	}
	sec, _ := obj.(*corev1.Secret)
	return sec, nil
}

// start begins watching one Secret; called with s.mu held.
func (s *secretWatcher) start(key types.NamespacedName) *secretWatch {
	ctx, cancel := context.WithCancel(context.Background())
	byName := fields.OneTermEqualSelector("metadata.name", key.Name).String()
	secrets := s.client.CoreV1().Secrets(key.Namespace)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = byName
			return secrets.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			return secrets.Watch(ctx, o)
		},
	}
	inf := toolscache.NewSharedIndexInformer(lw, &corev1.Secret{}, 0, toolscache.Indexers{})
	w := &secretWatch{store: inf.GetStore(), synced: inf.HasSynced, stop: cancel}
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *toolscache.Reflector, err error) {
		msg := err.Error()
		w.lastErr.Store(&msg)
		toolscache.DefaultWatchErrorHandler(ctx, r, err)
	})
	on := func(any) { s.kick() }
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: on, UpdateFunc: func(_, o any) { on(o) }, DeleteFunc: on,
	})
	go inf.RunWithContext(ctx)
	go func() { // a Secret that does not exist sends no event: rebuild once listed
		if toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			s.kick()
		}
	}()
	return w
}
