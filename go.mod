module github.com/metaproxy/metaproxy

go 1.24
