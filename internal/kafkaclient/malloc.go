package kafkaclient

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static int tributary_arena_max(int n) { return mallopt(M_ARENA_MAX, n); }
#else
static int tributary_arena_max(int n) { return 0; }
#endif
*/
import "C"

import "os"

// MallocArenas is how many glibc malloc arenas LimitMallocArenas allows.
//
// librdkafka allocates its queued messages and buffers with malloc from many
// threads (one per broker connection, plus its main and poll threads). glibc
// gives each thread that meets contention an arena of its own, up to eight per
// core, and memory freed in an arena other than the main one is rarely given
// back: a node copying 100k records/s with three tasks measured 70 MiB more
// resident memory than with two arenas, at the same throughput (README,
// "Sizing").
const MallocArenas = 2

// LimitMallocArenas caps glibc's malloc arenas at MallocArenas, unless
// MALLOC_ARENA_MAX is set in the environment (glibc has then applied it). It
// reports whether it changed the setting: false on other C libraries too. Call
// it before the first Kafka client is made: threads already attached to an
// arena keep it.
func LimitMallocArenas() bool {
	if _, ok := os.LookupEnv("MALLOC_ARENA_MAX"); ok {
		return false
	}
	return C.tributary_arena_max(C.int(MallocArenas)) == 1
}
