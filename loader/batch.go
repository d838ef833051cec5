package loader

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/cilium/ebpf"
)

// batchChunk bounds one batch syscall's buffers.
const batchChunk = 8192

// putAll writes keys[i] -> values[i] into m with batch updates, chunked,
// falling back to one update per element on kernels without the batch
// API. For per-CPU maps values holds len(keys) * possible-CPUs elements.
func putAll(m *ebpf.Map, keys, values any) error {
	kv, vv := reflect.ValueOf(keys), reflect.ValueOf(values)
	n := kv.Len()
	if n == 0 {
		return nil
	}
	per := vv.Len() / n // 1, or the number of CPUs for per-CPU maps
	for lo := 0; lo < n; lo += batchChunk {
		hi := min(lo+batchChunk, n)
		k, v := kv.Slice(lo, hi).Interface(), vv.Slice(lo*per, hi*per).Interface()
		_, err := m.BatchUpdate(k, v, nil)
		if errors.Is(err, ebpf.ErrNotSupported) {
			for i := lo; i < hi; i++ {
				val := vv.Index(i).Addr().Interface()
				if per > 1 {
					val = vv.Slice(i*per, (i+1)*per).Interface()
				}
				if err := m.Put(kv.Index(i).Addr().Interface(), val); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteAll removes keys from m, batched like putAll; absent keys are fine.
func deleteAll(m *ebpf.Map, keys any) error {
	kv := reflect.ValueOf(keys)
	n := kv.Len()
	for lo := 0; lo < n; lo += batchChunk {
		hi := min(lo+batchChunk, n)
		_, err := m.BatchDelete(kv.Slice(lo, hi).Interface(), nil)
		if err == nil {
			continue
		}
		// A missing key stops a batch; finish one by one.
		for i := lo; i < hi; i++ {
			if err := m.Delete(kv.Index(i).Addr().Interface()); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("delete: %w", err)
			}
		}
	}
	return nil
}

// readAll reads every entry of a hash map with batch lookups, falling back
// to iteration on kernels without the batch API.
func readAll[K comparable, V any](m *ebpf.Map) ([]K, []V, error) {
	return readAllProgress[K, V](m, nil)
}

// readAllProgress is readAll telling progress how many entries it has read
// so far, after every batch (or every 1024 entries when iterating).
func readAllProgress[K comparable, V any](m *ebpf.Map, progress func(read int)) ([]K, []V, error) {
	var keys []K
	var vals []V
	var cursor ebpf.MapBatchCursor
	kbuf := make([]K, 1024)
	vbuf := make([]V, 1024)
	for {
		n, err := m.BatchLookup(&cursor, kbuf, vbuf, nil)
		keys = append(keys, kbuf[:n]...)
		vals = append(vals, vbuf[:n]...)
		if progress != nil {
			progress(len(keys))
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return keys, vals, nil // the end
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
	}
	keys, vals = keys[:0], vals[:0]
	var k K
	var v V
	it := m.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
		vals = append(vals, v)
		if progress != nil && len(keys)%1024 == 0 {
			progress(len(keys))
		}
	}
	return keys, vals, it.Err()
}

// readArray reads entries [0, n) of an array map with batch lookups,
// falling back to one lookup per entry on kernels without the batch API.
func readArray[V any](m *ebpf.Map, n uint32) ([]V, error) {
	return readArrayPer[V](m, n, 1)
}

// readPerCPUArray reads every CPU's value of every entry of a per-CPU
// array: entry i's are [i*ncpu, (i+1)*ncpu).
func readPerCPUArray[V any](m *ebpf.Map) ([]V, error) {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	return readArrayPer[V](m, m.MaxEntries(), ncpu)
}

// readArrayPer is readArray for per values an entry (1, or a per-CPU
// map's number of CPUs).
func readArrayPer[V any](m *ebpf.Map, n uint32, per int) ([]V, error) {
	vals := make([]V, int(n)*per)
	keys := make([]uint32, min(n, batchChunk))
	var cursor ebpf.MapBatchCursor
	for got := uint32(0); got < n; {
		want := min(n-got, uint32(len(keys)))
		c, err := m.BatchLookup(&cursor, keys[:want], vals[int(got)*per:int(got+want)*per], nil)
		got += uint32(c)
		if errors.Is(err, ebpf.ErrNotSupported) {
			for i := got; i < n; i++ {
				var v any = &vals[i]
				if per > 1 {
					v = vals[int(i)*per : int(i+1)*per]
				}
				if err := m.Lookup(i, v); err != nil {
					return nil, err
				}
			}
			break
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break // the end of the array
		}
		if err != nil {
			return nil, err
		}
		if c == 0 {
			break
		}
	}
	return vals, nil
}
