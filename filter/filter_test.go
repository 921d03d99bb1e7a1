package filter

import "testing"

// TestSetHeaderIgnoresCase: header keys compare as metadata keys do,
// case-insensitively: setting "X-Key" replaces "x-key".
func TestSetHeaderIgnoresCase(t *testing.T) {
	var x Exchange
	x.SetRequestHeader("x-key", "a")
	x.SetRequestHeader("X-Key", "b")
	x.SetResponseHeader("x-key", "a")
	x.SetResponseHeader("X-KEY", "b")
	if len(x.RequestHeaders) != 1 || x.RequestHeaders[0].Value != "b" || len(x.ResponseHeaders) != 1 || x.ResponseHeaders[0].Value != "b" {
		t.Fatalf("request %v, response %v", x.RequestHeaders, x.ResponseHeaders)
	}
}
