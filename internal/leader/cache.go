package leader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SharedCache lends the replica's cache to each term's manager, which
// neither starts nor stops it, and registers each field index once: a
// term that registers the indexes of its controllers again finds them.
type SharedCache struct {
	cache.Cache
	mu      sync.Mutex
	indexed map[string]bool
}

// Start waits for ctx: the replica's manager runs the cache.
func (c *SharedCache) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// IndexField registers an index the first time it is asked for.
func (c *SharedCache) IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	key := fmt.Sprintf("%T/%s", obj, field)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.indexed[key] {
		return nil
	}
	if err := c.Cache.IndexField(ctx, obj, field, extract); err != nil {
		return err
	}
	if c.indexed == nil {
		c.indexed = map[string]bool{}
	}
	c.indexed[key] = true
	return nil
}

// term lends the cache to one term, keeping the event handlers the
// term's controllers add so that release can remove them: the shared
// informers outlive the term, and a handler left on them would go on
// feeding a stopped controller's queue with every change.
func (c *SharedCache) term() *termCache { return &termCache{SharedCache: c} }

type termCache struct {
	*SharedCache
	mu       sync.Mutex
	handlers []registration
}

type registration struct {
	informer cache.Informer
	handle   toolscache.ResourceEventHandlerRegistration
}

// GetInformer hands out the shared informer, keeping its handlers.
func (c *termCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.SharedCache.GetInformer(ctx, obj, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: i, term: c}, nil
}

// GetInformerForKind hands out the shared informer, keeping its handlers.
func (c *termCache) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.SharedCache.GetInformerForKind(ctx, gvk, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: i, term: c}, nil
}

// release removes the handlers the term added.
func (c *termCache) release(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.handlers {
		if err := r.informer.RemoveEventHandler(r.handle); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Removing an event handler of an ended term")
		}
	}
	c.handlers = nil
}

func (c *termCache) keep(i cache.Informer, h toolscache.ResourceEventHandlerRegistration, err error) (toolscache.ResourceEventHandlerRegistration, error) {
	if err == nil {
		c.mu.Lock()
		c.handlers = append(c.handlers, registration{informer: i, handle: h})
		c.mu.Unlock()
	}
	return h, err
}

// termInformer is a shared informer whose handlers are its term's.
type termInformer struct {
	cache.Informer
	term *termCache
}

func (i *termInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandler(h)
	return i.term.keep(i.Informer, r, err)
}

func (i *termInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithResyncPeriod(h, resync)
	return i.term.keep(i.Informer, r, err)
}

func (i *termInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, o toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithOptions(h, o)
	return i.term.keep(i.Informer, r, err)
}
