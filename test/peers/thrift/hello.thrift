// The service of the Thrift test peers (test/peers/thrift). Regenerate the
// Go code with `go generate` in this directory (needs Debian's
// thrift-compiler 0.17.0).
namespace go hello

exception HelloError {
  1: string message
  2: i32 code
}

// Bag holds a value of every Thrift type, so that a codec walking an
// unframed message meets each of them.
struct Bag {
  1: bool flag
  2: i8 small
  3: i16 short_num
  4: i32 num
  5: i64 big
  6: double ratio
  7: string text
  8: binary blob
  9: list<string> names
  10: set<i32> ids
  11: map<string, list<i64>> groups
  12: optional Bag child
  13: list<Bag> children
  14: map<i32, bool> switches
  15: list<bool> bits
  40: i32 far_field
}

service Hello {
  // sayHello greets name; the name "error" makes the server throw HelloError.
  string sayHello(1: string name) throws (1: HelloError err)
  // ping is fire-and-forget; the server counts pings per note.
  oneway void ping(1: string note)
  // echoHeader returns the value of the THeader info header key seen by the
  // server, or "" (non-THeader transports have no headers).
  string echoHeader(1: string key)
  // pingCount returns how many pings with this note the server has seen.
  i32 pingCount(1: string note)
  // echoBag returns bag unchanged.
  Bag echoBag(1: Bag bag)
}
