package kafkaclient

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestLimitMallocArenas(t *testing.T) {
	if _, set := os.LookupEnv("MALLOC_ARENA_MAX"); set {
		if LimitMallocArenas() {
			t.Fatal("LimitMallocArenas changed the arenas although MALLOC_ARENA_MAX is set")
		}
		return
	}
	// The machines we build for use glibc (Debian, the image's runtime);
	// elsewhere mallopt is absent and the call reports false.
	if runtime.GOOS == "linux" && !LimitMallocArenas() {
		if glibc, _ := filepath.Glob("/lib/*-linux-gnu/libc.so.6"); len(glibc) > 0 {
			t.Fatal("LimitMallocArenas returned false on glibc: mallopt(M_ARENA_MAX) failed")
		}
	}
	t.Setenv("MALLOC_ARENA_MAX", "8")
	if LimitMallocArenas() {
		t.Error("LimitMallocArenas changed the arenas although MALLOC_ARENA_MAX is set")
	}
}
