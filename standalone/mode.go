package standalone

import "os"

// defaultReactor selects the host's I/O model. On Linux the epoll reactor
// (reactor_linux.go) is the default; METAPROXY_REACTOR=0 switches back to one
// goroutine per connection on Go's net package, which other systems always
// use.
var defaultReactor = reactorSupported && os.Getenv("METAPROXY_REACTOR") != "0"
