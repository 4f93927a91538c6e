package router

import (
	"sync"
	"sync/atomic"
	"time"
)

// closer is what cached entries are.
type closer interface{ close() }

// cacheEntry wraps a cached value with the time it was last used.
type cacheEntry[V closer] struct {
	v        V
	lastUsed atomic.Int64 // unix nanos
}

// cache is an idle-TTL cache: an entry not used for ttl is removed and
// closed by sweep. Lookups of present keys take a read lock only.
type cache[V closer] struct {
	mu      sync.RWMutex
	m       map[string]*cacheEntry[V]
	ttl     time.Duration
	misses  *int64counter
	evicts  *int64counter
	newFunc func(key string) V
}

type int64counter struct{ n atomic.Int64 }

func newCache[V closer](ttl time.Duration, newFunc func(key string) V) *cache[V] {
	return &cache[V]{
		m:       map[string]*cacheEntry[V]{},
		ttl:     ttl,
		misses:  new(int64counter),
		evicts:  new(int64counter),
		newFunc: newFunc,
	}
}

// get returns the entry for key, creating it with newFunc on a miss.
// newFunc runs under the write lock, so it must be quick and must not use
// the cache.
func (c *cache[V]) get(key string, now int64) V {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e == nil {
		c.mu.Lock()
		if e = c.m[key]; e == nil {
			c.misses.n.Add(1)
			e = &cacheEntry[V]{v: c.newFunc(key)}
			c.m[key] = e
		}
		c.mu.Unlock()
	}
	if e.lastUsed.Load() != now {
		e.lastUsed.Store(now)
	}
	return e.v
}

// getBytes is get for a key held in a byte slice: a hit does not allocate
// (the compiler does not copy string(key) for a map index).
func (c *cache[V]) getBytes(key []byte, now int64) V {
	c.mu.RLock()
	e := c.m[string(key)]
	c.mu.RUnlock()
	if e == nil {
		return c.get(string(key), now)
	}
	if e.lastUsed.Load() != now {
		e.lastUsed.Store(now)
	}
	return e.v
}

// sweep removes and closes the entries idle since before now-ttl.
func (c *cache[V]) sweep(now int64) {
	limit := now - int64(c.ttl)
	var dead []V
	c.mu.Lock()
	for k, e := range c.m {
		if e.lastUsed.Load() < limit {
			delete(c.m, k)
			dead = append(dead, e.v)
		}
	}
	c.mu.Unlock()
	c.evicts.n.Add(int64(len(dead)))
	for _, v := range dead {
		v.close()
	}
}

// closeAll removes and closes every entry.
func (c *cache[V]) closeAll() {
	c.mu.Lock()
	m := c.m
	c.m = map[string]*cacheEntry[V]{}
	c.mu.Unlock()
	for _, e := range m {
		e.v.close()
	}
}

// len returns the number of entries.
func (c *cache[V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
