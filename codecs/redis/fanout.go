package redis

import (
	"github.com/metaproxy/metaproxy/codec"
)

// KeyHash is the metadata key holding a request's first key's hash tag
// (the part between the first "{" and the next "}", when not empty) or
// the whole key: what a cluster shards on (route hash_policy: [hash_key]),
// so that keys sharing a tag share a shard, as in Redis Cluster.
const KeyHash = "hash_key"

var _ codec.Fanout = (*Codec)(nil)

// FanoutKey implements codec.Fanout.
func (c *Codec) FanoutKey() string { return KeyHash }

// FanoutKeys implements codec.Fanout: the hash key of each key of MGET,
// DEL, EXISTS, UNLINK and TOUCH, and of each key/value pair of MSET.
func (c *Codec) FanoutKeys(dst []string, req *codec.Message) ([]string, bool) {
	mk, ok := Splittable(req)
	if !ok || mk.Groups < 2 {
		return dst, false
	}
	a, ok := request(req)
	if !ok {
		return dst, false
	}
	for g := range mk.Groups {
		dst = append(dst, alias(HashTag(a.bytes(mk.First+g*mk.Step))))
	}
	return dst, true
}

// FanoutPart implements codec.Fanout.
func (c *Codec) FanoutPart(dst []byte, req *codec.Message, groups []int) ([]byte, error) {
	mk, ok := Splittable(req)
	if !ok {
		return dst, malformed("not a multi-key command")
	}
	var arr [16][]byte
	args, err := Args(arr[:0], req)
	if err != nil {
		return dst, err
	}
	return AppendPart(dst, args, mk, groups)
}

// FanoutMerge implements codec.Fanout.
func (c *Codec) FanoutMerge(dst []byte, req *codec.Message, parts [][]int, answers [][]byte) ([]byte, error) {
	mk, ok := Splittable(req)
	if !ok {
		return dst, malformed("not a multi-key command")
	}
	return MergeReplies(dst, mk, parts, answers)
}
