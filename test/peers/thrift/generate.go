// Package thriftpeer runs Apache Thrift servers and clients of the Hello
// service (hello.thrift) with the Go library that matches Debian's
// thrift-compiler, for tests and benchmarks of the Thrift codec.
package thriftpeer

//go:generate sh -c "rm -rf gen && mkdir gen && thrift --gen go:package_prefix=github.com/metaproxy/metaproxy/test/peers/thrift/gen/ -out gen hello.thrift && rm -rf gen/hello/hello-remote && gofmt -w gen"
