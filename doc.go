// Package kiwicache keeps a whole, slowly changing dataset (a table of
// airlines, currency rates, feature flags) in process memory, shared through
// one Redis record by every process that reads it, and filled from the source
// by one of them at a time.
//
// A [Cache] serves reads from an immutable snapshot: [Cache.Get] is a map
// lookup, with no lock, allocation or network on a hit. Once the snapshot is
// ReloadTTL old (a minute by default) one read starts a background reload
// from the record resource:NAME[:SUFFIX], and the others keep reading the old
// snapshot meanwhile. When the record is missing, the process that takes the
// lock lock:NAME[:SUFFIX] calls the [Loader] and writes the record; the
// others wait for it. When the source or Redis fails, the last good snapshot
// is served and the failure is counted and logged.
//
// It speaks the protocol of the Python library kiwi-cache 0.4.5 (PROTOCOL.md
// in the repository), so Go and Python services can share one Redis.
//
// # Usage
//
//	type Airline struct {
//		Name    string `json:"name"`
//		Country string `json:"country"`
//	}
//
//	airlines, err := kiwicache.New("Airlines", rdb,
//		kiwicache.LoaderFunc[string, Airline](func(ctx context.Context) (map[string]Airline, error) {
//			return loadAirlinesFromDB(ctx) // the whole table
//		}),
//		kiwicache.WithReloadTTL(30*time.Second))
//	if err != nil {
//		return err // errors.Is(err, kiwicache.ErrInvalidConfig)
//	}
//	defer airlines.Close()
//
//	a, err := airlines.Get(ctx, "OK")
//	switch {
//	case errors.Is(err, kiwicache.ErrNotFound): // no such airline
//	case errors.Is(err, kiwicache.ErrNoData): // no data yet: Redis and the source failed
//	case err == nil:
//		fmt.Println(a.Name)
//	}
//
// A periodic job calls [RefillAll] (or [Cache.Refill]) so that requests never
// wait for the source; [Cache.Health] reports the state for probes.
//
// # Errors
//
// Every failure is an [*Error] naming the cache, the operation and the key
// (the record's, the lock's, or the item's for Get), and wraps one of the
// sentinel errors (ErrNotFound, ErrNoData, ErrLoadFailed, ErrRedis, ...) for
// errors.Is.
package kiwicache
