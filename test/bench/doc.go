// Package bench is metaproxy's side-by-side load benchmark (issue 5, `make
// bench`): the same real clients and servers (dubbo-go, Apache Thrift)
// talking directly, through HAProxy in TCP mode, through the standalone
// metaproxy and through metaprotocol.so in the ABI host, measured in one run
// on one machine.
//
// TestSideBySide runs it when given -sidebyside (bench/run.sh does); the
// rest of the package measures processes (/proc), renders the results
// (markdown, PNG chart) and reads Go benchmark output. The closed-loop load
// generator is the loadgen command next to it. bench/README.md explains how
// to read the numbers.
package bench
