//go:build cgo

package main

/*
#cgo linux LDFLAGS: -Wl,-unresolved-symbols=ignore-all
#include <stdint.h>

// As declared in Envoy's contrib/golang/common/go/api/api.h and exported by
// Envoy (contrib/golang/common/log/cgo.cc).
void envoyGoFilterLog(uint32_t level, void* message_data, int message_len);
uint32_t envoyGoFilterLogLevel();
*/
import "C"

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// levelRefresh is how often the log level is read from Envoy again, as the
// SDK's own implementation does.
const levelRefresh = time.Second

// envoyLog implements api.CommonCAPI: api.Log* write to Envoy's log under
// its golang logger, at the level Envoy's admin sets for that logger.
type envoyLog struct {
	level   atomic.Int32
	checked atomic.Int64 // when level was read, in Unix nanoseconds; 0: never
}

// Log writes message at level.
func (l *envoyLog) Log(level api.LogType, message string) {
	C.envoyGoFilterLog(C.uint32_t(level), unsafe.Pointer(unsafe.StringData(message)), C.int(len(message)))
}

// LogLevel returns Envoy's level for the golang logger, read at most once
// per levelRefresh.
func (l *envoyLog) LogLevel() api.LogType {
	now := time.Now().UnixNano()
	if last := l.checked.Load(); last == 0 || now-last > int64(levelRefresh) {
		// Concurrent callers may all ask Envoy; the level is stored before
		// checked, so a caller that sees checked set sees a real level.
		l.level.Store(int32(C.envoyGoFilterLogLevel()))
		l.checked.Store(now)
	}
	return api.LogType(l.level.Load())
}
