package redis

import "bytes"

// Slots is the number of Redis Cluster hash slots.
const Slots = 16384

// HashTag returns the part of key Redis Cluster hashes: the bytes between
// the first '{' and the first '}' after it, when there are any; otherwise
// the whole key. Keys with the same tag land in the same slot, which is
// what lets a multi-key command stay on one shard.
func HashTag(key []byte) []byte {
	if i := bytes.IndexByte(key, '{'); i >= 0 {
		if j := bytes.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// Slot returns key's Redis Cluster hash slot: CRC16 (XMODEM) of its hash
// tag, modulo 16384.
func Slot(key []byte) uint16 {
	return crc16(HashTag(key)) & (Slots - 1)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), as Redis'
// crc16.c computes it.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^c]
	}
	return crc
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
