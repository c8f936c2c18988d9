package kiwicache

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"
)

// decodeData decodes the data object at d.i into a snapshot's table, or
// with toMap into a map (JSONCodec.Decode's); hook, if not nil, decodes its
// members instead of the built-in decoder (JSONCodec.Unmarshal).
func decodeData[K comparable, V any](d *decoder, hook func([]byte, any) error, toMap bool) (*memberSink[K, V], error) {
	if d.peek() != '{' {
		start := d.i
		if err := d.skipValue(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("data is a JSON %s, not an object", kindAt(d.b[start]))
	}
	if hook != nil {
		return decodeDataWithHook[K, V](d, hook, toMap)
	}
	dd := dataDecoder[K, V]{key: keyFuncFor[K](), plan: planFor(reflect.TypeFor[V]()), toMap: toMap}
	return dd.decode(d)
}

// A dataDecoder decodes the data object of a record into a table or a map.
type dataDecoder[K comparable, V any] struct {
	key   keyFunc[K]
	plan  *typePlan
	toMap bool

	// spare holds the pairs of pieces already taken into the table, for the
	// workers' next pieces: the workers then make a few slices of pairs,
	// not one per piece.
	spare chan []pair[K, V]
}

func (dd *dataDecoder[K, V]) decode(d *decoder) (*memberSink[K, V], error) {
	start := d.i
	size := len(d.b) - start
	var cuts []int
	members := 0
	if workers := runtime.GOMAXPROCS(0) - 1; workers > 0 && size >= 2*minPiece {
		cuts, members = findCuts(d.b, start, min(size/minPiece, maxPieces))
	} else {
		members = estimateMembers(d.b, start)
	}
	hint := tableHint[K, V](members, size)
	if len(cuts) == 0 {
		return dd.decodeWhole(d, newSink[K, V](hint, dd.toMap))
	}
	// Once the outcome is known, stop tells the goroutines still at work to
	// give up; decode returns once they have, so that none of them still
	// reads the record, which the caller may reuse, or runs a method of V.
	var workers sync.WaitGroup
	defer workers.Wait()
	var stop atomic.Bool
	defer stop.Store(true)
	pieces := newPieces[K, V](cuts, start, len(d.b))
	dd.spare = make(chan []pair[K, V], len(pieces))
	// The workers first: a goroutine takes about as long to start on another
	// core as the table takes to make.
	dd.startWorkers(pieces, d.b, d.depth, members, size, &stop, &workers)
	return dd.decodeCut(d, pieces, hint, &stop)
}

// decodeCut decodes the object cut into pieces, which other goroutines may
// be decoding too, or, if the pieces were not exactly its members (a comma
// that was not between two members, or an error), decodes it again in one
// pass, which finds the error.
func (dd *dataDecoder[K, V]) decodeCut(d *decoder, pieces []piece[K, V], hint int, stop *atomic.Bool) (*memberSink[K, V], error) {
	start, depth := d.i, d.depth
	into := newSink[K, V](hint, dd.toMap)
	if dd.decodePieces(d, pieces, into) {
		into.done()
		return into, nil
	}
	stop.Store(true)
	into.reset()
	d.i, d.depth = start, depth
	return dd.decodeWhole(d, into)
}

// decodeWhole decodes the object in one pass, on this goroutine, into the
// object's sink.
func (dd *dataDecoder[K, V]) decodeWhole(d *decoder, into *memberSink[K, V]) (*memberSink[K, V], error) {
	if _, err := dd.members(d, into, true, false); err != nil {
		return nil, err
	}
	into.done()
	return into, nil
}

// newPieces cuts b[start:end] at cuts: piece j starts after cuts[j-1] and
// ends at its comma, cuts[j].
func newPieces[K comparable, V any](cuts []int, start, end int) []piece[K, V] {
	pieces := make([]piece[K, V], len(cuts)+1)
	for j := range pieces {
		p := &pieces[j]
		p.from, p.limit = start, end
		if j > 0 {
			p.from = cuts[j-1] + 1
		}
		if j < len(cuts) {
			p.limit = cuts[j] + 1 // up to the comma that ends the piece
		}
		p.done = make(chan struct{})
	}
	return pieces
}

// startWorkers starts the goroutines that take pieces from the last back,
// decoding each into a slice of members that decodePieces takes into the
// table once it is done. They meet the goroutine of the first piece where
// their speeds put them (a busy core does less).
func (dd *dataDecoder[K, V]) startWorkers(pieces []piece[K, V], full []byte, depth, members, size int, stop *atomic.Bool, workers *sync.WaitGroup) {
	share := func(p *piece[K, V]) int { return members * (p.limit - p.from) / size }
	for range min(runtime.GOMAXPROCS(0)-1, len(pieces)-1) {
		workers.Go(func() {
			// One decoder for all the pieces this goroutine takes: their
			// strings share its chunks and its interned strings.
			pd := &decoder{stop: stop}
			for j := len(pieces) - 1; j > 0; j-- {
				p := &pieces[j]
				if !p.owner.CompareAndSwap(unclaimed, byWorker) {
					if p.owner.Load() == byFirst {
						return // the first goroutine is past this piece
					}
					continue
				}
				p.decodeApart(dd, pd, full, depth, share(p))
			}
		})
	}
}

// decodePieces decodes the pieces from the first on, into the object's sink,
// on this goroutine, and takes into it the pieces the workers decoded as soon
// as they are done, from the last back, so that little is left to take in
// when the goroutines meet. It reports whether the pieces were exactly the data
// object's members: piece 0 starts at the object's '{', each piece ends at
// the comma the next starts after (which confirms that the comma was
// between two members), and the last at the object's '}'. If so, d is just
// after the object; if not, into is to be reset.
func (dd *dataDecoder[K, V]) decodePieces(d *decoder, pieces []piece[K, V], into *memberSink[K, V]) bool {
	full, depth := d.b, d.depth
	defer func() { d.b = full }()
	last := len(pieces) - 1
	// here decodes piece j into the sink, on this goroutine.
	here := func(j int) (ended bool, err error) {
		p := &pieces[j]
		d.b, d.i, d.depth = full[:p.limit], p.from, depth+1
		if j == 0 {
			d.depth = depth // piece 0 starts at the object's '{'
		}
		return dd.members(d, into, j == 0, j < last)
	}
	taken := 0 // members in the pieces of workers taken in
	end := -1  // of the object, if a worker decoded the last piece
	take := func(j int) bool {
		p := &pieces[j]
		if p.err != nil || p.ended != (j == last) || j < last && !p.aligned {
			return false
		}
		taken += p.out.drainInto(into)
		if j == last {
			end = p.end
		}
		return true
	}
	back := len(pieces) // pieces[back:] are taken in
	for j := 0; j < back; j++ {
		p := &pieces[j]
		if j > 0 && !p.owner.CompareAndSwap(unclaimed, byFirst) {
			<-p.done // this piece and the ones after it are the workers'
			if !take(j) {
				return false
			}
			continue
		}
		if ended, err := here(j); err != nil || ended != (j == last) {
			return false
		}
		for back > j+1 && pieces[back-1].owner.Load() == byWorker && isClosed(pieces[back-1].done) {
			back--
			if !take(back) {
				return false
			}
			dd.reuse(&pieces[back])
		}
	}
	if into.n+taken != into.len() {
		// A member name more than once: the pieces of workers, taken
		// out of order, may have left a value that is not the last.
		// Taken again in order, they leave the last, as in Python; those
		// whose pairs went to another piece are decoded again.
		for j := range pieces {
			switch p := &pieces[j]; {
			case p.owner.Load() != byWorker:
			case p.out != nil:
				p.out.drainInto(into)
			default:
				if _, err := here(j); err != nil {
					return false
				}
			}
		}
	}
	if end >= 0 {
		d.i, d.depth = end, depth
	}
	return true
}

// reuse gives the pairs of p, taken into the table, to the workers' next
// pieces. A piece whose pairs were moved into a map of their own keeps it:
// that map is small, and taking it in again costs less than decoding the
// piece again.
func (dd *dataDecoder[K, V]) reuse(p *piece[K, V]) {
	if p.out.m != nil {
		return
	}
	select {
	case dd.spare <- p.out.pairs:
		p.out = nil
	default:
	}
}

// isClosed reports whether c is closed, without waiting.
func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A piece is a part of a data object, between two commas that may separate
// its members, and what decoding it apart found.
type piece[K comparable, V any] struct {
	from, limit int           // it starts at from, and ends at limit-1, its comma
	owner       atomic.Int32  // which goroutine decodes it
	done        chan struct{} // closed when a worker has decoded it

	out     *memberSink[K, V]
	ended   bool // at the object's '}', at end
	aligned bool // at the comma that ends the piece
	end     int
	err     error
}

// Owners of a piece.
const (
	unclaimed = iota
	byFirst   // the goroutine that decodes the first piece, into the table
	byWorker  // a goroutine that decodes it apart
)

// decodeApart decodes the piece into pairs with pd, on a goroutine of its
// own.
func (p *piece[K, V]) decodeApart(dd *dataDecoder[K, V], pd *decoder, full []byte, depth, members int) {
	defer close(p.done)
	defer func() {
		if r := recover(); r != nil {
			p.err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	pd.b, pd.i, pd.depth = full[:p.limit], p.from, depth+1
	p.out = newPairSink(members, p.limit-p.from, dd.spare)
	p.ended, p.err = dd.members(pd, p.out, false, true)
	p.aligned = p.err == nil && !p.ended && p.limit < len(full)
	p.end = pd.i
}

// errStopped ends the decoding of a piece whose outcome no longer matters.
var errStopped = errors.New("stopped")

// A memberSink takes the decoded members: into a table or a map (the data
// object's), or, for a piece decoded beside them, into a slice of pairs that
// they take in afterwards. A slice would keep every repetition of a member
// (a record may repeat one a million times): past a budget of memory, the
// pairs are moved into a map of their own.
type memberSink[K comparable, V any] struct {
	t      *table[K, V]
	m      map[K]V
	v      V // the value being decoded for m
	pairs  []pair[K, V]
	budget int // the most pairs kept
	n      int // members put, counting repetitions
}

// newSink returns the sink of a data object of about n members: a table,
// or with toMap a map.
func newSink[K comparable, V any](n int, toMap bool) *memberSink[K, V] {
	if toMap {
		return &memberSink[K, V]{m: make(map[K]V, n)}
	}
	t := newTable[K, V](n)
	return &memberSink[K, V]{t: &t}
}

type pair[K comparable, V any] struct {
	k K
	v V
}

// newPairSink returns a memberSink of pairs for a piece of size bytes and
// about members members: the pairs it holds take no more than the piece.
// It takes a slice of pairs from spare if one there is large enough.
func newPairSink[K comparable, V any](members, size int, spare chan []pair[K, V]) *memberSink[K, V] {
	budget := size / int(max(unsafe.Sizeof(pair[K, V]{}), 1))
	n := max(0, min(members, budget))
	select {
	case pairs := <-spare:
		if cap(pairs) >= n {
			// value overwrites each pair whole: no need to clear them.
			return &memberSink[K, V]{pairs: pairs[:0], budget: budget}
		}
	default:
	}
	return &memberSink[K, V]{pairs: make([]pair[K, V], 0, n), budget: budget}
}

// value returns the zero V that the member with key k is decoded into.
func (s *memberSink[K, V]) value(k K) *V {
	switch {
	case s.t != nil:
		return s.t.next()
	case s.m != nil:
		s.v = *new(V)
		return &s.v
	}
	s.pairs = append(s.pairs, pair[K, V]{k: k})
	return &s.pairs[len(s.pairs)-1].v
}

// put adds the member with key k, decoded.
func (s *memberSink[K, V]) put(k K) {
	s.n++
	switch {
	case s.t != nil:
		s.t.put(k)
	case s.m != nil:
		s.m[k] = s.v
	case len(s.pairs) >= s.budget:
		own := make(map[K]V) // as large as the keys are different, not as the pairs are many
		for _, p := range s.pairs {
			own[p.k] = p.v
		}
		s.m, s.pairs = own, nil
	}
}

// drainInto puts the members of a piece, in order, into the data object's
// sink, and returns how many it put.
func (s *memberSink[K, V]) drainInto(into *memberSink[K, V]) int {
	for k, v := range s.m {
		into.set(k, v) // the members up to the switch and after: no key twice
	}
	for _, p := range s.pairs {
		into.set(p.k, p.v)
	}
	return len(s.m) + len(s.pairs)
}

// The data object's sink, a table or a map:

// set makes v the value of k.
func (s *memberSink[K, V]) set(k K, v V) {
	if s.t != nil {
		s.t.set(k, v)
		return
	}
	s.m[k] = v
}

// len returns the number of keys.
func (s *memberSink[K, V]) len() int {
	if s.t != nil {
		return s.t.len()
	}
	return len(s.m)
}

// reset empties it, for the object to be decoded again.
func (s *memberSink[K, V]) reset() {
	if s.t != nil {
		s.t.reset()
	} else {
		clear(s.m)
	}
	s.n = 0
}

// done ends its filling: a table gives back its spare room.
func (s *memberSink[K, V]) done() {
	if s.t != nil {
		s.t.trim()
	}
}

// members decodes the members of the data object into out. With first, d.i
// is at the object's '{', else just after a comma between two members.
//
// In a piece (d.b ends at the comma that ends the piece), it returns with
// ended false and no error when it reaches that comma after a member.
func (dd *dataDecoder[K, V]) members(d *decoder, out *memberSink[K, V], first, piece bool) (ended bool, err error) {
	if first {
		if empty, err := d.open('}'); empty || err != nil {
			return empty, err
		}
	} else {
		d.space()
	}
	for {
		if d.stop != nil && d.stop.Load() {
			return false, errStopped
		}
		if d.peek() != '"' {
			return false, d.syntaxError("a member name")
		}
		start := d.i
		name, err := d.stringBytes()
		if err != nil {
			return false, err
		}
		k, err := dd.key(d, name, start)
		if err != nil {
			return false, err
		}
		if err := d.colon(); err != nil {
			return false, err
		}
		if err := dd.plan.decode(d, unsafe.Pointer(out.value(k))); err != nil {
			return false, inMember(err, fmt.Append(nil, k))
		}
		out.put(k)
		d.space()
		switch d.peek() {
		case ',':
			d.i++
			if piece && d.i == len(d.b) {
				return false, nil
			}
			d.space()
		case '}':
			d.i++
			d.leave()
			return true, nil
		default:
			return false, d.syntaxError("',' or '}' after a member")
		}
	}
}

// tableHint is the size to make a table of about members items with, for an
// object of size bytes: never a table larger than the object, whatever an
// estimate says (members repeated by the thousand are one item).
func tableHint[K comparable, V any](members, size int) int {
	entry := int(unsafe.Sizeof(*new(K)) + unsafe.Sizeof(*new(V)))
	return max(0, min(members, size/8, size/max(entry, 1)))
}

// probeWindow is how far a probe reads to check a cut in pieces of step
// bytes: far enough to see the end of the item a comma may be in.
func probeWindow(step int) int { return min(max(step/32, 2<<10), 64<<10) }

// estimateWindow is how far a probe reads to estimate the members of an
// object.
const estimateWindow = 4 << 10

// estimateMembers estimates the members of the object at b[start] from its
// first few kilobytes.
func estimateMembers(b []byte, start int) int {
	n, span, stop := probeMembers(b, start+1, estimateWindow)
	if stop != probeWindowEnd || span == 0 {
		return n // the object ended, or was not what it seemed
	}
	return n * (len(b) - start) / span
}

// probeMembers skips the members of an object from b[from] (just after its
// '{' or a comma between members) for about window bytes: it returns how
// many it skipped and over how many bytes, and why it stopped.
func probeMembers(b []byte, from, window int) (n, span int, stop probeStop) {
	d := decoder{b: b[:min(len(b), from+window)], i: from}
	d.space()
	for d.peek() == '"' {
		if d.skipString() != nil || d.colon() != nil || d.skipValue() != nil {
			break
		}
		n++
		span = d.i - from
		d.space()
		switch d.peek() {
		case ',':
			d.i++
			d.space()
			continue
		case '}':
			return n, d.i + 1 - from, probeObjectEnd
		}
		break
	}
	if d.i >= len(d.b) && len(d.b) < len(b) {
		return n, span, probeWindowEnd
	}
	return n, span, probeNotMember
}

// probeStop is why a probe stopped.
type probeStop int

const (
	probeWindowEnd probeStop = iota // at the end of its window, in a member or after one
	probeObjectEnd                  // at the object's '}'
	probeNotMember                  // at something that is not a member where one should be
)

// findCuts returns up to pieces-1 offsets of commas in b, about evenly
// spread after the object at b[start], that separate two of its members if
// what follows each for a few kilobytes is any guide (a comma inside a
// nested object is followed by that object's end; one inside a string, most
// likely by something that is not a member). members estimates the object's.
func findCuts(b []byte, start, pieces int) (cuts []int, members int) {
	step := (len(b) - start) / pieces
	window := probeWindow(step)
	probed, spans := 0, 0
	from := start
	for j := 1; j < pieces; j++ {
		cut, n, span := findCut(b, max(start+j*step, from+1), window)
		if cut < 0 {
			break
		}
		cuts = append(cuts, cut)
		probed, spans, from = probed+n, spans+span, cut
	}
	if spans > 0 {
		members = probed * (len(b) - start) / spans
	}
	return cuts, members
}

// findCut returns the first comma from b[at] that is followed by whole
// members up to the end of the probe's window, or -1.
func findCut(b []byte, at, window int) (cut, n, span int) {
	for tries := 0; tries < 64 && at < len(b); tries++ {
		c := bytes.IndexByte(b[at:], ',')
		if c < 0 {
			return -1, 0, 0
		}
		c += at
		n, span, stop := probeMembers(b, c+1, window)
		switch {
		case stop == probeObjectEnd:
			at = c + 1 + span // the object closed: try from after its end
		case n == 0:
			at = c + 1
		default:
			return c, n, span
		}
	}
	return -1, 0, 0
}

// A keyFunc makes a key of the data map from a member name (at byte at).
type keyFunc[K comparable] func(d *decoder, name []byte, at int) (K, error)

// keyFuncFor reads keys as encoding/json reads map keys: with
// UnmarshalText if *K has it, else as a string or a decimal integer.
func keyFuncFor[K comparable]() keyFunc[K] {
	t := reflect.TypeFor[K]()
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return func(d *decoder, name []byte, at int) (K, error) {
			var k K
			if err := any(&k).(encoding.TextUnmarshaler).UnmarshalText(name[:len(name):len(name)]); err != nil {
				return k, errorf("the member name at byte %d: %v.UnmarshalText: %v", at, t, err)
			}
			return k, nil
		}
	}
	switch t.Kind() {
	case reflect.String:
		return func(d *decoder, name []byte, at int) (K, error) {
			s := d.strings.copy(name)
			return *(*K)(unsafe.Pointer(&s)), nil // K's underlying type is string
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := t.Bits()
		return func(d *decoder, name []byte, at int) (K, error) {
			var k K
			n, ok := parseInt(name)
			if !ok || bits < 64 && (n < -1<<(bits-1) || n >= 1<<(bits-1)) {
				return k, errorf("the member name %q at byte %d is not a Go %v", name, at, t)
			}
			setInt(unsafe.Pointer(&k), bits, n)
			return k, nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		bits := t.Bits()
		return func(d *decoder, name []byte, at int) (K, error) {
			var k K
			n, ok := parseUint(name)
			if !ok || bits < 64 && n >= 1<<bits {
				return k, errorf("the member name %q at byte %d is not a Go %v", name, at, t)
			}
			setInt(unsafe.Pointer(&k), bits, int64(n))
			return k, nil
		}
	}
	return func(d *decoder, name []byte, at int) (K, error) {
		var k K
		return k, checkKeyType[K]()
	}
}

// setInt stores n in the integer of the given bits at p.
func setInt(p unsafe.Pointer, bits int, n int64) {
	switch bits {
	case 8:
		*(*int8)(p) = int8(n)
	case 16:
		*(*int16)(p) = int16(n)
	case 32:
		*(*int32)(p) = int32(n)
	default:
		*(*int64)(p) = n
	}
}

// decodeDataWithHook checks the data object, cuts it between members into
// one piece per core, and has hook decode the pieces in parallel.
func decodeDataWithHook[K comparable, V any](d *decoder, hook func([]byte, any) error, toMap bool) (*memberSink[K, V], error) {
	start := d.i
	pieces := max(1, min(runtime.GOMAXPROCS(0), (len(d.b)-start)/minPiece, maxPieces))
	step := (len(d.b) - start) / pieces
	var cuts []int
	members := 0
	if err := d.skipObject(func(comma int) {
		members++
		if len(cuts) < pieces-1 && comma-start >= (len(cuts)+1)*step {
			cuts = append(cuts, comma-start)
		}
	}); err != nil {
		return nil, err
	}
	raw := d.b[start:d.i]
	parts := make([]map[K]V, len(cuts)+1)
	errs := make([]error, len(parts))
	hint := tableHint[K, V](members+1, len(raw)) / len(parts)
	var wg sync.WaitGroup
	from := 1 // after the '{'
	for i := range parts {
		end := len(raw) - 1 // the last piece ends at the '}'
		if i < len(cuts) {
			end = cuts[i]
		}
		piece := raw
		if len(parts) > 1 {
			piece = append(append(append(make([]byte, 0, end-from+2), '{'), raw[from:end]...), '}')
		}
		from = end + 1
		parts[i] = make(map[K]V, hint)
		wg.Go(func() { errs[i] = callHook(hook, piece, &parts[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	items := 0
	for _, part := range parts {
		items += len(part)
	}
	into := newSink[K, V](items, toMap)
	for _, part := range parts {
		for k, v := range part {
			into.set(k, v) // in record order: the last value of a key wins
		}
	}
	into.done()
	return into, nil
}

// callHook turns a panic of the hook into an error: it runs in a goroutine
// of its own, where a panic would end the process.
func callHook(hook func([]byte, any) error, piece []byte, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the decoder panicked: %w", &PanicError{Value: p, Stack: debug.Stack()})
		}
	}()
	return hook(piece, v)
}
